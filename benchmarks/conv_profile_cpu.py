"""Where a CPU convolution's time goes, against torch (issue 17's profile of the conv cases):
forward and backward (from the op sweep's dense output gradient) timed apart, gradflow and
torch alternating call by call, one thread
each, CPU-time medians; beside them the FLOPs of the conv's three GEMM-shaped passes
(forward, input gradient, weight gradient) and the time they take at the rate OpenBLAS
reaches on one GEMM of the case's own shape (the floor for any route that hands the
arithmetic to NumPy's BLAS), and the rate torch's whole step reaches on those FLOPs.

    python benchmarks/conv_profile_cpu.py                  # the conv cases of op_cases.py
    python benchmarks/conv_profile_cpu.py conv2d cnn_block

Needs torch. The heap is held steady, as in op_sweep_cpu.py. A depthwise conv has one input
and one output channel per group, no GEMM: its floor column is empty, its time is kh*kw
multiply-adds in NumPy's elementwise loops.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import numpy

from gradflow.backend.heap import steady_heap
from gradflow.bench import op_cases

CONV_CASES = ("conv2d", "conv2d_depthwise", "conv2d_groups4", "conv1d", "conv_transpose2d",
              "cnn_block")  # fmt: skip


def conv_node(output: Any) -> Any:
    """The conv node (it has a window and shapes) in the graph behind a gradflow output."""
    stack, seen = [output.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if all(hasattr(node, a) for a in ("window", "shapes", "groups")):
            return node
        stack.extend(n[0] if isinstance(n, tuple) else n for n in node.next_functions or ())
    raise ValueError("no conv in the case's graph")


def gemm_shape(node: Any) -> tuple[int, int, int, int]:
    """(rows, inner, cols, groups) of one group's forward GEMM, and the groups."""
    s, groups = node.shapes, node.groups
    if "transpose" in node.op_name:  # x (N, Cin, H, W), w (Cin, Cout/G, kh, kw)
        n, c_in, h, w = s.x4
        _, c_out, kh, kw = s.w4
        return n * h * w, c_in // groups, c_out * kh * kw, groups
    n, o, oh, ow = s.out4
    _, c, kh, kw = s.w4
    return n * oh * ow, c * kh * kw, o // groups, groups


def _medians(steps: list, repeat: int) -> list[float]:
    """CPU-time medians of each step, the steps taken in turn `repeat` times after a warm-up."""
    for step in steps:
        step()
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(repeat):
        for step, seconds in zip(steps, times):
            start = time.process_time()
            step()
            seconds.append(time.process_time() - start)
    return [statistics.median(s) for s in times]


def gemm_rate(rows: int, inner: int, cols: int, repeat: int = 7) -> float:
    """FLOP/s of a float32 (rows, inner) @ (inner, cols) matmul, the median of `repeat`."""
    a = numpy.ones((rows, inner), numpy.float32)
    b = numpy.ones((inner, cols), numpy.float32)
    return 2 * rows * inner * cols / _medians([lambda: a @ b], repeat)[0]


def profile(name: str, torch: Any, repeat: int, scale: float = 1.0) -> dict:
    """One case's forward and backward, each side, and its GEMM figures."""
    case = op_cases.CASES_BY_NAME[name]
    sides = op_cases.prepare(case, torch, scale)
    node = conv_node(sides[0].fn_output(case.fn))
    rows, inner, cols, groups = gemm_shape(node)
    held: dict = {}

    def forward(side: op_cases.Side) -> Any:
        return lambda: held.__setitem__(side.lib, side.fn_output(case.fn))

    def backward(side: op_cases.Side) -> Any:
        def step() -> None:
            held.pop(side.lib).backward(side.grad)  # the sweep's dense output gradient

        return step

    fwd_ours, fwd_theirs = forward(sides[0]), forward(sides[1])
    bwd_ours, bwd_theirs = backward(sides[0]), backward(sides[1])
    times: list[list[float]] = [[], [], [], []]
    for _ in range(repeat + 1):
        for i, (fwd, bwd) in enumerate(((fwd_ours, bwd_ours), (fwd_theirs, bwd_theirs))):
            start = time.process_time()
            fwd()
            middle = time.process_time()
            bwd()
            times[2 * i].append(middle - start)
            times[2 * i + 1].append(time.process_time() - middle)
    f_ours, b_ours, f_theirs, b_theirs = (statistics.median(t[1:]) for t in times)
    depthwise = inner * cols == node.shapes.w4[2] * node.shapes.w4[3] and groups > 1
    flops = 3 * 2 * rows * inner * cols * groups
    floor = None if depthwise else flops / gemm_rate(rows, inner, cols)
    return dict(name=name, fwd=f_ours, bwd=b_ours, torch_fwd=f_theirs, torch_bwd=b_theirs,
                flops=flops, gemm=(rows, inner, cols, groups), floor=floor)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"cases (default: {', '.join(CONV_CASES)})")
    parser.add_argument("--repeat", type=int, default=11, help="steps per side")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink every dimension")
    parser.add_argument("--default-heap", action="store_true", help="leave glibc's heap as is")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("conv_profile_cpu needs torch, the yardstick: pip install torch")
    from threadpoolctl import threadpool_limits

    unknown = set(args.names) - set(op_cases.CASES_BY_NAME)
    if unknown:
        sys.exit(f"unknown case(s) {sorted(unknown)}; e.g. {', '.join(CONV_CASES)}")
    if not args.default_heap:
        steady_heap()
    torch.set_num_threads(1)
    print(
        "| case | GEMM per group (rows, inner, cols) x groups | gradflow fwd / bwd ms | "
        "torch fwd / bwd ms | ratio | GEMM floor ms (share of gradflow) | torch GFLOP/s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    with threadpool_limits(1):
        for name in args.names or CONV_CASES:
            p = profile(name, torch, args.repeat, args.scale)
            ours, theirs = p["fwd"] + p["bwd"], p["torch_fwd"] + p["torch_bwd"]
            floor = "-" if p["floor"] is None else \
                f"{p['floor'] * 1e3:.1f} ({p['floor'] / ours:.0%})"  # fmt: skip
            print(f"| {name} | {p['gemm'][:3]} x {p['gemm'][3]} | {p['fwd'] * 1e3:.1f} / "
                  f"{p['bwd'] * 1e3:.1f} | {p['torch_fwd'] * 1e3:.1f} / {p['torch_bwd'] * 1e3:.1f}"
                  f" | {ours / theirs:.2f}x | {floor} | {p['flops'] / theirs / 1e9:.0f} |",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
