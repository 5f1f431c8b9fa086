"""The figure of a `gradflow bench` run: median time against size per op (log-log), and the
ratio to torch per case as bars. Needs matplotlib (``pip install 'gradflow[plot]'``)."""

from __future__ import annotations

from collections import defaultdict

from gradflow.bench.report import Row

MISSING_MATPLOTLIB = (
    "--plot needs matplotlib: pip install 'gradflow[plot]' (or pip install matplotlib)"
)


class PlotUnavailableError(RuntimeError):
    """matplotlib is not installed."""


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailableError(MISSING_MATPLOTLIB) from exc
    return plt


def check_available() -> None:
    """Raise PlotUnavailableError now, before a run, when matplotlib is missing."""
    _pyplot()


def save_plot(rows: list[Row], path: str) -> None:
    """Draw time-vs-size per op and the torch ratios, and save the figure to `path`."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6))
    by_op: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_op[row.case.name].append(row)
    for op, op_rows in by_op.items():
        op_rows.sort(key=lambda r: r.case.size)
        left.plot([r.case.size for r in op_rows], [r.ours.median for r in op_rows], "o-", label=op)
    left.set(xscale="log", yscale="log", xlabel="size (elements, parameters or FLOPs)",
             ylabel="median seconds", title="gradflow: time against size")  # fmt: skip
    left.legend(fontsize="x-small")
    compared = [r for r in rows if r.ratio_to_torch is not None]
    labels = [f"{r.case.name}\n{r.case.shape}" for r in compared]
    right.barh(range(len(compared)), [r.ratio_to_torch for r in compared])
    right.set_yticks(range(len(compared)), labels, fontsize="xx-small")
    right.axvline(1.0, color="black", linewidth=0.8)
    right.set(xlabel="gradflow time / torch time (below 1: gradflow faster)",
              title="ratio to torch" if compared else "ratio to torch (not compared)")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
