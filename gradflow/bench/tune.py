"""Measure both sides of each gradflow.kernels.dispatch choice on a GPU and write the table.

    PYTHONPATH=. python -m gradflow.bench.tune            # measure and print
    PYTHONPATH=. python -m gradflow.bench.tune --write    # ... and record the choice

For every op and shape class it times both implementations on a few shapes of that class
(CUDA events, median of --repeats calls after a warm-up; float32) and keeps our kernel only
where it is at least ``MARGIN`` faster (geometric mean of the time ratios over the class's
shapes): the library side is the default and needs no measurement to be trusted. ``--write``
puts the choice for this GPU's architecture into gradflow/kernels/dispatch_table.json and the
numbers into benchmarks/results/<date>-dispatch-<arch>.md, which the table entry names.

The two sides, exactly as the ops run them:
- act_matmul_bwd (a frozen Linear + activation: dX only): "fused" = fused_act_matmul_bwd;
  "cublas" = bias_act_bwd (writes dZ) then dZ @ W through cuBLAS. relu; shapes (M, N, K) =
  (rows, out_features, in_features).
- bias_sum (the bias gradient of Linear): "kernel" = sum_to_bias; "cupy" = g.sum(axis=0).
- attention (F.scaled_dot_product_attention forward + backward, dQ, dK and dV, self-attention
  without a mask; shapes (B*H, L, S, E)): "flash" = the tiled kernels, "rows" = cuBLAS GEMMs
  and the row kernels, each forced with dispatch.forced. At most ATTENTION_REPEATS timed calls
  (the tiled kernels take long at the large shape), measured last. Each shape first runs both
  sides once and compares their gradients (ATTENTION_AGREE): where they disagree, flash is
  timed as infinite (never chosen) and the output says so, since no other GPU check of the
  tiled kernels runs in benchmarks/gpu_session.sh.

Interrupted (SIGINT, as benchmarks/gpu_session.sh's timeout sends), it decides and writes for
the ops it measured in full and exits 130.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gradflow.kernels import dispatch

MARGIN = 0.97  # our side must take at most this fraction of the library side's time
CASES: dict[str, dict[str, list[tuple[int, ...]]]] = {
    "act_matmul_bwd": {
        "small": [(128, 64, 64), (64, 128, 128), (32, 256, 256)],
        "medium": [(1024, 256, 256), (256, 512, 512), (512, 512, 512)],
        "large": [(4096, 1024, 1024), (2048, 4096, 1024), (8192, 1024, 2048)],
    },
    "bias_sum": {
        "small": [(64, 256), (128, 512)],
        "medium": [(1024, 1024), (4096, 512)],
        "large": [(16384, 1024), (65536, 512)],
    },
    "attention": {
        "small": [(16, 128, 128, 64), (8, 256, 256, 64)],
        "medium": [(64, 512, 512, 64), (32, 1024, 1024, 64)],
        "large": [(64, 2048, 2048, 64)],
    },
}
ATTENTION_REPEATS = 10
ATTENTION_AGREE = 1e-3  # float32 flash and rows gradients agree to this (relative to the max)


def decide(timings: dict[str, list[tuple[float, float]]], op: str) -> dict[str, str]:
    """Per class, our side if the geometric mean of ours/library over its shapes <= MARGIN.

    timings: class -> [(our seconds, library seconds), ...]."""
    ours, library = dispatch.CHOICES[op]
    choices = {}
    for cls, pairs in timings.items():
        ratio = math.exp(statistics.fmean(math.log(o / lib) for o, lib in pairs))
        choices[cls] = ours if ratio <= MARGIN else library
    return choices


def updated_table(data: dict, arch: str, entry: dict) -> dict:
    """The dispatch table `data` with `arch`'s entry replaced by `entry` (checked)."""
    out = {**data, "architectures": {**data.get("architectures", {}), arch: entry}}
    dispatch.parse_table(out, "the updated table")
    return out


def render_record(meta: dict, results: dict, choices: dict) -> str:
    """The markdown record: the machine, the command, every timing and the choice."""
    lines = [
        f"# Dispatch measurements: {meta['gpu_name']} ({meta['arch']}), {meta['date']}",
        "",
        f"- GPU: {meta['gpu_name']}; CUDA runtime {meta['cuda_runtime']}; CuPy {meta['cupy']}",
        f"- Command: `{meta['command']}`",
        f"- float32, median of {meta['repeats']} calls after a warm-up (CUDA events). Our",
        f"  kernel is chosen for a class when the geometric mean of ours/library is <= {MARGIN}.",
        "",
    ]
    for op, by_class in results.items():
        ours, library = dispatch.CHOICES[op]
        lines += [f"## {op}", "", f"| class | shape | {ours} us | {library} us | ratio |"]
        lines.append("|---|---|---:|---:|---:|")
        for cls, rows in by_class.items():
            for shape, (o, lib) in rows:
                dims = "x".join(map(str, shape))
                lines.append(
                    f"| {cls} | {dims} | {o * 1e6:.1f} | {lib * 1e6:.1f} | {o / lib:.3f} |"
                )
        picked = ", ".join(f"{cls}: **{c}**" for cls, c in choices[op].items())
        lines += ["", f"Choice: {picked}.", ""]
    return "\n".join(lines)


def _attention_sides(shape: tuple[int, ...]) -> tuple[Callable, Callable]:
    import numpy

    import gradflow
    from gradflow.nn.functional import scaled_dot_product_attention

    bh, n_query, n_keys, dim = shape
    rng = numpy.random.default_rng(0)

    def cuda(*size: int, grad: bool = True) -> Any:
        array = rng.standard_normal(size, dtype=numpy.float32)
        return gradflow.tensor(array, device="cuda", requires_grad=grad)

    q, k, v = cuda(bh, n_query, dim), cuda(bh, n_keys, dim), cuda(bh, n_keys, dim)
    g = cuda(bh, n_query, dim, grad=False)

    def side(choice: str) -> Callable:
        def step() -> Any:
            with dispatch.forced("attention", choice):
                scaled_dot_product_attention(q, k, v).backward(g)
            grads = (q.grad, k.grad, v.grad)
            q.grad = k.grad = v.grad = None
            return grads

        return step

    flash, rows = side("flash"), side("rows")
    worst = max(float(abs(a - b).max().item()) / max(float(abs(b).max().item()), 1e-30)
                for a, b in zip(flash(), rows()))  # fmt: skip
    if not worst <= ATTENTION_AGREE:
        print(
            f"attention {shape}: FLASH AND ROWS DISAGREE (largest difference {worst:.2e} of "
            "the largest gradient): flash is timed as infinite, never chosen",
            flush=True,
        )
        return _never, rows
    return flash, rows


def _never() -> None:
    """Stands for a side whose results were wrong: not run, timed as infinite (never chosen)."""


def _sides(op: str, shape: tuple[int, ...], cupy: Any) -> tuple[Callable, Callable]:
    from gradflow.kernels import bias_act_bwd, fused_act_matmul_bwd, sum_to_bias

    if op == "attention":
        return _attention_sides(shape)
    rng = cupy.random.default_rng(0)
    if op == "act_matmul_bwd":
        m, n, k = shape
        dy, z = (rng.standard_normal((m, n), dtype=cupy.float32) for _ in range(2))
        weight = rng.standard_normal((n, k), dtype=cupy.float32)

        def library() -> Any:
            dz, _ = bias_act_bwd(dy, z, "relu")
            return dz @ weight

        return (lambda: fused_act_matmul_bwd(dy, z, weight.T, "relu")), library
    g = rng.standard_normal(shape, dtype=cupy.float32)
    return (lambda: sum_to_bias(g)), (lambda: g.sum(axis=0))


def measure(repeats: int, ops: Sequence[str] = tuple(CASES)) -> tuple[dict, bool]:
    """(op -> class -> [(shape, (our seconds, library seconds))], on cuda:0; whether every op
    was measured). On KeyboardInterrupt the ops measured in full are returned, with False."""
    from gradflow.backend import cupy_module
    from gradflow.bench.timing import time_calls

    cupy = cupy_module()
    results: dict = {}
    try:
        for op in ops:
            results[op] = _measure_op(op, repeats, cupy, time_calls)
    except KeyboardInterrupt:
        results.pop(op, None)
        print(f"interrupted while measuring {op}: keeping {sorted(results) or 'nothing'}")
        return results, False
    return results, True


def _measure_op(op: str, repeats: int, cupy: Any, time_calls: Callable) -> dict:
    if op == "attention":
        repeats = min(repeats, ATTENTION_REPEATS)
    by_class: dict = {}
    for cls, shapes in CASES[op].items():
        rows = []
        for shape in shapes:
            if dispatch.shape_class(op, math.prod(shape)) != cls:
                raise AssertionError(f"{op} {shape} is not in class {cls}")
            ours, library = _sides(op, shape, cupy)
            times = [_median_time(f, repeats, time_calls) for f in (ours, library)]
            rows.append((shape, tuple(times)))
            print(
                f"{op:15s} {cls:6s} {shape!s:20s} ours {times[0] * 1e6:9.1f} us  "
                f"library {times[1] * 1e6:9.1f} us",
                flush=True,
            )
        by_class[cls] = rows
    return by_class


def _median_time(fn: Callable, repeats: int, time_calls: Callable) -> float:
    """The median of `repeats` timed calls after 3 warm-ups; infinite for a side that must not
    be chosen (its results were wrong)."""
    if fn is _never:
        return math.inf
    return statistics.median(time_calls(fn, "cuda", 3, repeats))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gradflow.bench.tune",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--write", action="store_true", help="record the choice and numbers")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per side (50)")
    parser.add_argument("--table", type=Path, default=dispatch.TABLE_PATH)
    parser.add_argument("--record-dir", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    from gradflow.bench.machine import gpu_description

    gpu = gpu_description()
    if "gpu_name" not in gpu:
        parser.exit(
            2,
            "gradflow.bench.tune: needs CuPy and a CUDA GPU; none is usable here "
            f"({gpu.get('gpu_error', 'no device')}). Nothing was measured.\n",
        )
    from gradflow.backend import cupy_module

    arch = f"sm_{cupy_module().cuda.Device(0).compute_capability}"
    results, complete = measure(args.repeats)
    if not results:
        parser.exit(130, "gradflow.bench.tune: interrupted before any op was measured\n")
    choices = {
        op: decide({c: [t for _, t in rows] for c, rows in by_class.items()}, op)
        for op, by_class in results.items()
    }
    date = datetime.date.today().isoformat()
    meta = {
        **gpu,
        "arch": arch,
        "date": date,
        "repeats": args.repeats,
        "command": "PYTHONPATH=. python -m gradflow.bench.tune " + " ".join(argv or sys.argv[1:]),
    }
    record = render_record(meta, results, choices)
    print(record)
    if args.write:
        args.record_dir.mkdir(parents=True, exist_ok=True)
        record_path = args.record_dir / f"{date}-dispatch-{arch}.md"
        record_path.write_text(record)
        entry = {
            "measured_on": gpu["gpu_name"],
            "date": date,
            "record": f"benchmarks/results/{record_path.name}",
            "choices": choices,
        }
        table = updated_table(json.loads(args.table.read_text()), arch, entry)
        args.table.write_text(json.dumps(table, indent=2) + "\n")
        print(f"wrote {record_path} and {args.table}")
    return 0 if complete else 130


if __name__ == "__main__":
    raise SystemExit(main())
