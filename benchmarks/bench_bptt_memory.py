"""Memory-bounded BPTT (issue 20): peak memory and time of one LSTM training step over T steps
(forward over the whole sequence, the mean MSE over all steps, backward) against T, in three
modes of gradflow.nn.tbptt.truncated_bptt:

- full: full BPTT (k = T), every step's activations kept until the one backward;
- checkpointed: full BPTT (k = T) with ``checkpoint_every = round(sqrt(T))``: only the state
  at each segment boundary is kept, backward recomputes one segment at a time (Chen et al.
  2016), so memory should grow as sqrt(T), for one more forward;
- truncated: k = 50, no checkpoint (gradients flow at most 50 steps back; memory of 50 steps).

nn.LSTM(32, 128), batch 16, float32, random inputs and targets, a no-op optimizer (zero_grad
clears the gradients, step changes nothing), one BLAS thread (threadpoolctl). Peak memory: one
untimed step under tracemalloc (NumPy reports its buffers to it), the bytes at the peak above
what was live before the step (gradflow.bench.timing.peak_memory). Time: the median CPU time
(time.process_time) of a few steps after that one, fewer at large T so the whole run stays
under about 3 minutes. The log-log slope of memory against T is fitted per mode (about 1 full,
0.5 checkpointed, 0 truncated). Once, at T = 200 in float64, checkpointed and full BPTT are
checked to give the same gradients (the largest difference is printed).

``--device cuda`` runs the same on a GPU: time is then wall time (the loss's ``.item()`` ends
each step), and memory is the CuPy pool's: the peak of its used bytes during the step (a
memory hook, gradflow.bench.timing.peak_memory) and the pool's total_bytes after the step,
its blocks freed before.

    python benchmarks/bench_bptt_memory.py                 # measure: about 1-2 minutes
    python benchmarks/bench_bptt_memory.py --smoke         # T = 20, 40: seconds
    python benchmarks/bench_bptt_memory.py --markdown benchmarks/results/DATE-cpu-bptt-memory.md \\
        --plot benchmarks/results/DATE-cpu-bptt-memory.png
    python benchmarks/bench_bptt_memory.py --device cuda   # on a GPU (CuPy)
    pytest benchmarks/bench_bptt_memory.py --benchmark-disable   # the smoke run, as CI runs it

``--markdown`` writes the table with the command, the commit and the machine; ``--plot`` the
figure (needs matplotlib: without it the plot is skipped with a message).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import gc
import math
import os
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy

import gradflow
from gradflow import nn
from gradflow.backend.threads import blas_threads
from gradflow.bench.machine import describe_machine_line, source_commit
from gradflow.bench.timing import peak_memory
from gradflow.nn.functional import mse_loss
from gradflow.nn.tbptt import truncated_bptt
from gradflow.plotting import PlotUnavailableError, pyplot

STEPS = [100, 250, 500, 1000, 2000, 4000]
SMOKE_STEPS = [20, 40]
INPUT, HIDDEN, BATCH = 32, 128, 16
TRUNCATION, SMOKE_TRUNCATION = 50, 10  # k of the truncated mode
LARGE_T = 2000  # from this T on, fewer timed steps (--large-repeats)
CHECK_STEPS = 200  # the gradient check: checkpointed against full BPTT, float64
MODES = ("full", "checkpointed", "truncated")
MiB = 2**20


class NoOpOptimizer:
    """What truncated_bptt calls each chunk: zero_grad clears the gradients (as a real
    optimizer's would), step changes nothing, so every timed step does the same work."""

    def __init__(self, parameters: Any):
        self.parameters = list(parameters)

    def zero_grad(self) -> None:
        for p in self.parameters:
            p.grad = None

    def step(self) -> None:
        pass


def mode_settings(mode: str, steps: int, truncation: int) -> tuple[int, int | None]:
    """(k, checkpoint_every) of truncated_bptt for `mode` over `steps` steps."""
    if mode == "full":
        return steps, None
    if mode == "checkpointed":
        return steps, max(1, round(math.sqrt(steps)))
    return min(truncation, steps), None


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        from gradflow.backend import cupy_module

        cupy_module().cuda.get_current_stream().synchronize()


def _pool_total_bytes(step: Any, device: str) -> int | None:
    """On a GPU: the CuPy pool's total_bytes after `step()`, its free blocks released before
    (so the pool grows to the step's high-water mark); None on the CPU."""
    if not device.startswith("cuda"):
        return None
    from gradflow.backend import cupy_module

    pool = cupy_module().get_default_memory_pool()
    pool.free_all_blocks()
    before = pool.total_bytes()
    step()
    _sync(device)
    return max(0, pool.total_bytes() - before)


def _minor_faults() -> int:
    """The process' minor page faults so far (first touches of fresh memory: CPU time too)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _forward_seconds(model: Any, inputs: Any, targets: Any, count: int, clock: Any,
                     device: str) -> float:  # fmt: skip
    """The median time of the full sequence's forward and loss alone (graph recorded, no
    backward)."""
    times = []
    for _ in range(count):
        gc.collect()
        start = clock()
        output, _ = model(inputs)
        float(mse_loss(output, targets).item())
        _sync(device)
        times.append(clock() - start)
        del output
    return statistics.median(times)


def measure(steps_list: list[int], truncation: int, repeats: int, large_repeats: int,
            device: str) -> list[dict]:  # fmt: skip
    """One row per (T, mode): peak bytes of one step, the median step seconds, k and s."""
    gpu = device.startswith("cuda")
    clock = time.perf_counter if gpu else time.process_time
    rows = []
    for steps in steps_list:
        gradflow.manual_seed(0)
        model = nn.LSTM(INPUT, HIDDEN).to(device)
        inputs = gradflow.randn(steps, BATCH, INPUT, device=device)
        targets = gradflow.randn(steps, BATCH, HIDDEN, device=device)
        optimizer = NoOpOptimizer(model.parameters())
        count = repeats if steps < LARGE_T else large_repeats
        for mode in MODES:
            k, every = mode_settings(mode, steps, truncation)

            step = functools.partial(truncated_bptt, model, inputs, targets, mse_loss,
                                     optimizer, k, checkpoint_every=every)  # fmt: skip

            gc.collect()
            peak = peak_memory(step, device)  # also the warm-up
            pool_total = _pool_total_bytes(step, device)
            times, faults = [], []
            for _ in range(count):
                gc.collect()
                faulted = _minor_faults()
                start = clock()
                step()
                _sync(device)
                times.append(clock() - start)
                faults.append(_minor_faults() - faulted)
            rows.append({"steps": steps, "mode": mode, "k": k, "every": every, "peak": peak,
                         "pool_total": pool_total, "seconds": statistics.median(times),
                         "faults": statistics.median(faults), "repeats": count})  # fmt: skip
            if mode == "full":  # the forward alone (and the loss), for the recompute's share
                rows[-1]["forward_seconds"] = _forward_seconds(
                    model, inputs, targets, count, clock, device
                )
            row = rows[-1]
            extra = "" if pool_total is None else f", pool total {pool_total / MiB:8.2f} MiB"
            print(
                f"T={steps:5d} {mode:>12} (k={k}, s={every}): peak {peak / MiB:8.2f} MiB"
                f"{extra}, {1e3 * row['seconds']:8.1f} ms, {row['faults']:7.0f} page faults "
                f"(medians of {count})",
                flush=True,
            )
    return rows


def table(rows: list[dict]) -> list[dict]:
    """One entry per T: each mode's peak and seconds, and checkpointed / full of both."""
    by_t: dict[int, dict] = {}
    for r in rows:
        by_t.setdefault(r["steps"], {"steps": r["steps"]})[r["mode"]] = r
    for entry in by_t.values():
        full, ckpt = entry["full"], entry["checkpointed"]
        entry["memory_ratio"] = ckpt["peak"] / full["peak"] if full["peak"] else float("nan")
        entry["recompute_cost"] = ckpt["seconds"] / full["seconds"]
        # one more forward on top of full BPTT's forward and backward
        entry["expected_cost"] = 1 + full["forward_seconds"] / full["seconds"]
    return list(by_t.values())


def slopes(rows: list[dict], key: str = "peak") -> dict[str, float]:
    """Each mode's least-squares slope of log(key) against log(T) (the growth exponent)."""
    found = {}
    for mode in MODES:
        mine = [r for r in rows if r["mode"] == mode and r[key] > 0]
        if len(mine) >= 2:
            x = numpy.log([r["steps"] for r in mine])
            y = numpy.log([r[key] for r in mine])
            found[mode] = float(numpy.polyfit(x, y, 1)[0])
        else:
            found[mode] = float("nan")
    return found


def gradient_check(steps: int, device: str) -> float:
    """The largest absolute difference between the parameter gradients of full BPTT and of
    checkpointed full BPTT (s = round(sqrt(T))), LSTM(INPUT, HIDDEN) in float64, one step."""
    grads = []
    for every in (None, max(1, round(math.sqrt(steps)))):
        gradflow.manual_seed(1)
        model = nn.LSTM(INPUT, HIDDEN).double().to(device)
        inputs = gradflow.randn(steps, BATCH, INPUT, dtype=gradflow.float64, device=device)
        targets = gradflow.randn(steps, BATCH, HIDDEN, dtype=gradflow.float64, device=device)
        params = list(model.parameters())
        truncated_bptt(model, inputs, targets, mse_loss, NoOpOptimizer(params), steps,
                       checkpoint_every=every)  # fmt: skip
        grads.append([p.grad.numpy() if p.grad.device.type == "cpu" else p.grad.cpu().numpy()
                      for p in params])  # fmt: skip
    worst = max(float(numpy.max(numpy.abs(a - b))) for a, b in zip(*grads, strict=True))
    scale = max(float(numpy.max(numpy.abs(a))) for a in grads[0])
    print(f"gradient check, T={steps}, float64: checkpointed against full BPTT, largest "
          f"difference {worst:.2e} (largest gradient {scale:.2e})")  # fmt: skip
    return worst


# -- the record ----------------------------------------------------------------------------


def _mib(value: float) -> str:
    return f"{value / MiB:.2f}"


def write_markdown(path: str, rows: list[dict], check: tuple[int, float], argv: list[str],
                   device: str, truncation: int, plot: str | None, load: str) -> None:  # fmt: skip
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    command = shlex.join(["python", "benchmarks/bench_bptt_memory.py", *argv])
    gpu = device.startswith("cuda")
    entries, fit, time_fit = table(rows), slopes(rows), slopes(rows, "seconds")
    memory_how = (
        "the CuPy pool's used bytes at their peak during one step (a memory hook)"
        if gpu
        else "tracemalloc's peak during one untimed step, above what was live before it "
        "(NumPy's buffers are traced)"
    )
    time_how = "wall time (the loss's .item() ends each step)" if gpu else "CPU time"
    lines = [
        f"# Memory-bounded BPTT: LSTM peak memory and time against T, {device}, {today} (issue 20)",
        "",
        f"- command: `{command}` (one BLAS thread, set through threadpoolctl)",
        f"- commit: {source_commit()}",
        f"- machine: {describe_machine_line()}",
        f"- date: {today}; load average (1 min) before, after the run: {load}",
        "",
        f"One training step of `nn.LSTM({INPUT}, {HIDDEN})`, batch {BATCH}, float32, through "
        "`gradflow.nn.tbptt.truncated_bptt` with a no-op optimizer: forward over the T steps, "
        "the mean MSE over all steps, backward. full: k = T; checkpointed: k = T, "
        f"`checkpoint_every` = s = round(sqrt(T)); truncated: k = {truncation}, no checkpoint. "
        f"Peak: {memory_how}. Time: the median {time_how} of the steps after that one (the "
        "repeats column). Memory ratio and recompute cost: checkpointed / full.",
        "",
        "| T | s | full MiB | checkpointed MiB | truncated MiB | memory ratio | full ms "
        "(its forward) | checkpointed ms | truncated ms | recompute cost | 1 + forward / full "
        "| repeats |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in entries:
        f, c, t = e["full"], e["checkpointed"], e["truncated"]
        lines.append(
            f"| {e['steps']} | {c['every']} | {_mib(f['peak'])} | {_mib(c['peak'])} | "
            f"{_mib(t['peak'])} | {e['memory_ratio']:.3f} | {1e3 * f['seconds']:.0f} "
            f"({1e3 * f['forward_seconds']:.0f}) | {1e3 * c['seconds']:.0f} | "
            f"{1e3 * t['seconds']:.0f} | {e['recompute_cost']:.2f}x | "
            f"{e['expected_cost']:.2f}x | {f['repeats']} |"
        )
    if gpu:
        lines += ["", "The pool's total_bytes after one step (its free blocks released before), "
                  "MiB: " + "; ".join(
                      f"T={e['steps']}: " + ", ".join(
                          f"{m} {_mib(e[m]['pool_total'] or 0)}" for m in MODES)
                      for e in entries)]  # fmt: skip
    costs = [e["recompute_cost"] for e in entries]
    expected = [e["expected_cost"] for e in entries]
    agreement = [e["recompute_cost"] / e["expected_cost"] for e in entries]
    backward_share = statistics.median(
        (e["full"]["seconds"] - e["full"]["forward_seconds"]) / e["full"]["forward_seconds"]
        for e in entries
    )
    last, before = entries[-1], entries[-2] if len(entries) > 1 else entries[-1]
    steps, every = last["steps"], last["checkpointed"]["every"]
    per_step = last["full"]["peak"] / steps  # bytes of activations a step keeps
    state = 2 * BATCH * HIDDEN * 4  # LSTM's (h, c) in float32, kept at each segment boundary
    model = math.ceil(steps / every) * state + every * per_step
    tail = (
        math.log(last["checkpointed"]["peak"] / before["checkpointed"]["peak"])
        / math.log(steps / before["steps"])
        if before is not last
        else float("nan")
    )
    lines += [
        "",
        "Growth, the least-squares slope of log(peak memory) against log(T) over the T above "
        "(expected about 1 for full, 0.5 for checkpointed, 0 for truncated): "
        + ", ".join(f"{m} **{fit[m]:.2f}**" for m in MODES)
        + f" (checkpointed between the two largest T: {tail:.2f}); of log(time): "
        + ", ".join(f"{m} {time_fit[m]:.2f}" for m in MODES)
        + ".",
        "",
        f"Gradient check (T = {check[0]}, float64, s = {round(math.sqrt(check[0]))}): "
        f"checkpointed and full BPTT give the same parameter gradients, largest difference "
        f"{check[1]:.1e}.",
        "",
        "## Reading",
        "",
        f"- At T = {steps}, checkpointing keeps {_mib(last['checkpointed']['peak'])} MiB against "
        f"{_mib(last['full']['peak'])} MiB for full BPTT ({1 / last['memory_ratio']:.0f}x less) "
        f"for {last['recompute_cost']:.2f}x the time; over the T measured the recompute cost "
        f"is {min(costs):.2f}x to {max(costs):.2f}x. The expected cost is one more forward: "
        "1 + (full BPTT's forward) / (its whole step), "
        f"{min(expected):.2f}x to {max(expected):.2f}x here (backward takes about "
        f"{backward_share:.1f}x the forward); measured / expected: "
        f"{min(agreement):.2f} to {max(agreement):.2f}.",
        f"- Full BPTT keeps {per_step / 1024:.0f} KiB per step (slope {fit['full']:.2f}). "
        f"Checkpointed keeps ceil(T/s) boundary states of {state // 1024} KiB ((h, c)) plus one "
        f"segment's activations, s steps: {math.ceil(steps / every)} x {state // 1024} KiB + "
        f"{every} x {per_step / 1024:.0f} KiB = {_mib(model)} MiB at T = {steps}, against "
        f"{_mib(last['checkpointed']['peak'])} MiB measured, the rest being what a step "
        "holds whatever T (the gradients, the loss, backward's temporaries). That model grows "
        "as sqrt(T); the constant part weighs more at small T and pulls a fitted slope below "
        "0.5. With a boundary state smaller than a step's activations, s = sqrt(T x state / "
        f"step) (here {math.sqrt(steps * state / per_step):.0f} at T = {steps}) would keep "
        "less than s = sqrt(T).",
        f"- Truncated BPTT (k = {truncation}) stays flat (slope {fit['truncated']:.2f}) at "
        f"{_mib(last['truncated']['peak'])} MiB, the memory of {truncation} steps, but its "
        f"gradients reach only {truncation} steps back; checkpointed full BPTT takes "
        f"{last['checkpointed']['peak'] / last['truncated']['peak']:.2f}x that memory at "
        f"T = {steps} for the whole gradient.",
        "- Time grows linearly in every mode. The peak is that of the step itself (inputs and "
        "targets are allocated before it).",
        *(
            []
            if gpu
            else [
                f"- Minor page faults per step at T = {steps} (medians): "
                + ", ".join(f"{m} {last[m]['faults']:.0f}" for m in MODES)
                + " (first touches of fresh memory)."
            ]
        ),
    ]
    if not gpu:
        lines += [
            "",
            "GPU: awaits a GPU run (`python benchmarks/bench_bptt_memory.py --device cuda`, "
            "memory from the CuPy pool).",
        ]
    if plot:
        lines += ["", f"![peak memory and time against T]({Path(plot).name})"]
    Path(path).write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


def _two_and_five(value: float, _: Any) -> str:
    """A log axis' minor label at 2 and 5 times a power of ten, none at the others."""
    if value <= 0:
        return ""
    leading = round(value / 10 ** math.floor(math.log10(value)))
    return f"{value:g}" if leading in (2, 5) else ""


def write_plot(path: str, rows: list[dict], device: str) -> bool:
    """Peak memory and time against T, one line per mode; False (with a message) when
    matplotlib is missing."""
    try:
        plt = pyplot()
    except PlotUnavailableError as exc:
        print(f"skipping the plot: {exc}")
        return False
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode, marker in zip(MODES, "os^", strict=True):
        mine = [r for r in rows if r["mode"] == mode]
        steps = [r["steps"] for r in mine]
        left.plot(steps, [r["peak"] / MiB for r in mine], marker + "-", label=mode)
        right.plot(steps, [1e3 * r["seconds"] for r in mine], marker + "-", label=mode)
    clock = "wall" if device.startswith("cuda") else "CPU"
    title = f"peak memory of one BPTT step, LSTM({INPUT}, {HIDDEN}), batch {BATCH}"
    left.set(xscale="log", yscale="log", xlabel="T (steps)", ylabel="peak memory (MiB)",
             title=title)  # fmt: skip
    right.set(xscale="log", yscale="log", xlabel="T (steps)", ylabel=f"{clock} time (ms)",
              title="time of one step")  # fmt: skip
    from matplotlib.ticker import FuncFormatter, NullLocator

    steps = sorted({r["steps"] for r in rows})
    for axis in (left, right):
        axis.set_xticks(steps, [str(t) for t in steps])
        axis.xaxis.set_minor_locator(NullLocator())
        axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.yaxis.set_minor_formatter(FuncFormatter(_two_and_five))
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"wrote {path}")
    return True


def main(argv: list[str] | None = None) -> tuple[list[dict], float]:
    """Measure, print and write the record; return (rows, the gradient check's difference)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="T = 20, 40, one repeat")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--repeats", type=int, default=9, help="timed steps per row, T < 2000")
    parser.add_argument("--large-repeats", type=int, default=5, help="timed steps, T >= 2000")
    parser.add_argument("--markdown", metavar="PATH", help="write the table to PATH")
    parser.add_argument("--plot", metavar="PATH", help="write the figure (PNG) to PATH")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    steps = SMOKE_STEPS if args.smoke else STEPS
    truncation = SMOKE_TRUNCATION if args.smoke else TRUNCATION
    repeats = 1 if args.smoke else args.repeats
    load_before = os.getloadavg()[0]
    with blas_threads(1):
        rows = measure(steps, truncation, repeats, 1 if args.smoke else args.large_repeats,
                       args.device)  # fmt: skip
        check_steps = SMOKE_STEPS[0] if args.smoke else CHECK_STEPS
        check = gradient_check(check_steps, args.device)
    fit = slopes(rows)
    print("log-log slope of peak memory against T: "
          + ", ".join(f"{m} {fit[m]:.2f}" for m in MODES))  # fmt: skip
    for e in table(rows):
        print(f"T={e['steps']:5d}: memory checkpointed / full {e['memory_ratio']:.3f}, "
              f"recompute cost {e['recompute_cost']:.2f}x")  # fmt: skip
    plotted = bool(args.plot) and write_plot(args.plot, rows, args.device)
    if args.markdown:
        argv_text = sys.argv[1:] if argv is None else argv
        load = f"{load_before:.2f}, {os.getloadavg()[0]:.2f}"
        write_markdown(args.markdown, rows, (check_steps, check), argv_text, args.device,
                       truncation, args.plot if plotted else None, load)  # fmt: skip
    return rows, check


def test_bptt_memory(benchmark: Any, bench: Any, tmp_path: Path) -> None:
    """The whole measurement once (pedantic, one round): T = 20, 40 in the smoke run."""
    record = tmp_path / "bptt-memory.md"
    argv = ["--smoke"] if bench.smoke else []
    argv += ["--markdown", str(record), "--plot", str(tmp_path / "bptt-memory.png")]
    rows, check = benchmark.pedantic(main, args=(argv,), rounds=1, iterations=1)
    assert {r["mode"] for r in rows} == set(MODES)
    assert all(r["peak"] > 0 and r["seconds"] > 0 for r in rows)
    assert check < 1e-8  # float64: checkpointing changes no gradient
    longest = max(r["steps"] for r in rows)
    peak = {r["mode"]: r["peak"] for r in rows if r["steps"] == longest}
    assert peak["checkpointed"] < peak["full"] and peak["truncated"] < peak["full"]
    text = record.read_text()
    assert "| T | s | full MiB |" in text and "commit: " in text and "recompute cost" in text
    for e in table(rows):
        benchmark.extra_info[f"memory_ratio_T{e['steps']}"] = round(e["memory_ratio"], 3)
        benchmark.extra_info[f"recompute_cost_T{e['steps']}"] = round(e["recompute_cost"], 2)
    for mode, slope in slopes(rows).items():
        benchmark.extra_info[f"memory_slope_{mode}"] = round(slope, 2)


if __name__ == "__main__":
    main()
