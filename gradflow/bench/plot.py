"""The figure of a `gradflow bench` run: median time against size per op (log-log), and the
ratio to torch per case as bars. Needs matplotlib, which gradflow.plotting provides (or says
what to install)."""

from __future__ import annotations

import math
from collections import defaultdict

from gradflow.bench.report import Row
from gradflow.bench.timing import format_seconds
from gradflow.plotting import pyplot

# What a case's `size` counts, per suite (the x axis of its panel).
SIZE_UNITS = {
    "engine": "ops (chain), FLOPs (MLP)",
    "elementwise": "elements",
    "fused": "elements",
    "matmul": "FLOPs",
    "conv": "FLOPs",
    "rnn": "FLOPs",
    "optim": "parameters",
    "train": "batch",
}
PANEL_COLUMNS = 4


def save_plot(rows: list[Row], path: str) -> None:
    """Draw the figure and save it to `path` (PNG, or any format matplotlib knows by suffix).

    Top: one log-log panel per suite, median time against size, a line per op (sizes that
    count different things never share an axis). Bottom: gradflow time / torch time per case
    as horizontal bars on a log axis centred on 1 (green: gradflow faster, red: slower), one
    readable label per bar; "not compared" when no torch figures were taken.
    """
    plt = pyplot()
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    by_suite: dict[str, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_suite[row.case.suite][row.case.name].append(row)
    compared = [r for r in rows if r.ratio_to_torch is not None]
    panel_rows = max(1, -(-len(by_suite) // PANEL_COLUMNS))
    bars_height = 0.8 + 0.24 * max(1, len(compared))
    fig = plt.figure(figsize=(16, 3.6 * panel_rows + bars_height), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[3.6 * panel_rows, bars_height])
    panels = top.subplots(panel_rows, PANEL_COLUMNS, squeeze=False).ravel()
    for ax, (suite, ops) in zip(panels, by_suite.items()):
        ticks: set[float] = set()
        for op, op_rows in ops.items():
            op_rows.sort(key=lambda r: r.case.size)
            sizes = [r.case.size for r in op_rows]
            ticks.update(sizes)
            ax.plot(sizes, [r.ours.median for r in op_rows], "o-", label=op, markersize=4)
        ax.set(xscale="log", yscale="log", title=suite,
               xlabel=SIZE_UNITS.get(suite, "size"), ylabel="median time")  # fmt: skip
        kept = _spread(sorted(ticks))
        if len(kept) <= 6:  # label the measured sizes themselves (ones too close dropped)
            ax.xaxis.set_major_locator(FixedLocator(kept))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _short(v)))
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_seconds(v)))
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="x-small")
    for ax in panels[len(by_suite) :]:
        ax.set_axis_off()
    bars = bottom.subplots()
    ratios = [r.ratio_to_torch for r in compared]
    colors = ["tab:green" if q < 1 else "tab:red" for q in ratios]
    positions = range(len(compared))[::-1]  # first case at the top
    bars.barh(list(positions), ratios, color=colors)
    bars.set_yticks(list(positions), [f"{r.case.suite}: {r.case.name} ({r.case.shape})"
                                      for r in compared], fontsize="small")  # fmt: skip
    bars.set_xscale("log")
    bars.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    bars.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    bars.xaxis.set_minor_formatter(NullFormatter())
    if ratios:
        low, high = min(min(ratios), 0.5), max(max(ratios), 2.0)
        bars.set_xlim(low / 1.3, high * 1.3)
    bars.axvline(1.0, color="black", linewidth=0.8)
    bars.grid(True, axis="x", which="both", alpha=0.3)
    for y, q in zip(positions, ratios):
        bars.annotate(f"{q:.2f}x", (q, y), xytext=(3, 0), textcoords="offset points",
                      va="center", fontsize="x-small")  # fmt: skip
    bars.set(xlabel="gradflow time / torch time (log scale; below 1: gradflow faster)",
             title="ratio to torch" if compared else "ratio to torch (not compared)")  # fmt: skip
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _short(value: float) -> str:
    """A count in 3 significant digits with k / M / G (1048576 -> "1.05M")."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def _spread(values: list[float]) -> list[float]:
    """The sorted positive `values` less any too close to the last one kept for both labels
    to fit on a log axis: a factor of 3, or a seventh of the whole span if that is more."""
    if not values:
        return []
    span = math.log10(values[-1] / values[0]) if values[0] > 0 else 0.0
    gap = max(math.log10(3.0), span / 7)
    kept: list[float] = []
    for v in values:
        if not kept or math.log10(v / kept[-1]) >= gap:
            kept.append(v)
    return kept
