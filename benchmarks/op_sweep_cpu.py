"""Op-by-op CPU sweep against torch (issue 17): forward + ``.sum().backward()`` of each case,
float32, one thread on each side, gradflow and torch interleaved call by call, CPU-time
medians (``time.process_time``, which other jobs on a shared machine distort less than wall
time). Prints a ratio per case (gradflow time / torch time) and their geometric mean.

    python benchmarks/op_sweep_cpu.py                 # every case, about a minute
    python benchmarks/op_sweep_cpu.py gelu gather     # the named cases
    python benchmarks/op_sweep_cpu.py --repeat 41     # more calls per case (steadier medians)

Needs torch (the yardstick); without it the script says so and exits. The smoke test in
tests/bench/test_op_sweep_cpu.py runs it at a tiny size; the figures go to benchmarks/results.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable

import numpy

import gradflow as gf

MILLION = 1 << 20


def cases(n: int, rng: numpy.random.Generator) -> dict[str, tuple[Callable, Callable]]:
    """name -> (make the input arrays, the step written once as PyTorch code: fn(lib, *inputs)
    with lib gradflow or torch); n elements for the pointwise cases."""
    side = max(2, math.isqrt(n))
    f32 = numpy.float32

    def normal(*shape):
        return rng.standard_normal(shape).astype(f32)

    def x1():
        return [normal(n)]

    def square():
        return [normal(side, side)]

    rows, vocab = max(2, n // 16), max(2, n // 20)
    return {
        "gelu": (x1, lambda lib, x: lib.nn.functional.gelu(x)),
        "leaky_relu": (x1, lambda lib, x: lib.nn.functional.leaky_relu(x, 0.1)),
        "elu": (x1, lambda lib, x: lib.nn.functional.elu(x)),
        "softplus": (x1, lambda lib, x: lib.nn.functional.softplus(x)),
        "silu": (x1, lambda lib, x: lib.nn.functional.silu(x)),
        "sigmoid": (x1, lambda lib, x: lib.sigmoid(x)),
        "relu": (x1, lambda lib, x: lib.relu(x)),
        "abs": (x1, lambda lib, x: lib.abs(x)),
        "pow_scalar": (x1, lambda lib, x: x**3),
        "where": (x1, lambda lib, x: lib.where(x > 0, x, x * 2)),
        "prod": (lambda: [rng.random(n).astype(f32) + 0.1],
                 lambda lib, x: x.reshape(side, -1).prod(1)),
        "cumsum": (x1, lambda lib, x: x.reshape(side, -1).cumsum(1)),
        "layer_norm": (square, lambda lib, x: lib.nn.functional.layer_norm(x, (side,))),
        "softmax": (square, lambda lib, x: lib.softmax(x, 1) * x),
        "log_softmax": (square, lambda lib, x: lib.log_softmax(x, 1) * x),
        "gather": (lambda: [normal(side, side), rng.integers(0, side, (side, side // 4 or 1))],
                   lambda lib, x, i: x.gather(1, i)),
        "index_select": (lambda: [normal(rows, 16), rng.integers(0, rows, rows)],
                         lambda lib, x, i: x.index_select(0, i)),
        "getitem_int": (lambda: [normal(rows, 16), rng.integers(0, rows, rows)],
                        lambda lib, x, i: x[i]),
        "getitem_two": (lambda: [normal(side, side), rng.integers(0, side, n // 4),
                                 rng.integers(0, side, n // 4)],
                        lambda lib, x, i, j: x[i, j]),
        "embedding": (lambda: [rng.integers(0, vocab, (32, 128)), normal(vocab, 64)],
                      lambda lib, i, w: lib.nn.functional.embedding(i, w)),
    }  # fmt: skip


def time_case(make: Callable, step_fn: Callable, torch: object,
              repeat: int) -> tuple[float, float]:  # fmt: skip
    """CPU-time medians (seconds) of forward + sum().backward(), gradflow's then torch's."""
    arrays = make()
    sides = [
        (lib, [lib.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays])
        for lib in (gf, torch)
    ]

    def step(lib: object, inputs: list) -> None:
        for t in inputs:
            t.grad = None
        step_fn(lib, *inputs).sum().backward()

    for lib, inputs in sides:  # warm both
        step(lib, inputs)
    times: tuple[list, list] = ([], [])
    for _ in range(repeat):
        for side, (lib, inputs) in enumerate(sides):
            start = time.process_time()
            step(lib, inputs)
            times[side].append(time.process_time() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main(argv: list[str] | None = None) -> float:
    """Run the sweep; returns the geometric mean of the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="cases to run (default: all)")
    parser.add_argument("--elements", type=int, default=MILLION, help="pointwise size")
    parser.add_argument("--repeat", type=int, default=15, help="calls per case and side")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("op_sweep_cpu needs torch, the yardstick: pip install torch")
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    table = cases(args.elements, numpy.random.default_rng(0))
    unknown = set(args.names) - set(table)
    if unknown:
        sys.exit(f"unknown case(s) {sorted(unknown)}; choose from {', '.join(table)}")
    ratios = []
    with threadpool_limits(1):
        for name, (make, step_fn) in table.items():
            if args.names and name not in args.names:
                continue
            g, t = time_case(make, step_fn, torch, args.repeat)
            ratios.append(g / t)
            print(f"{name:14s} gradflow {g * 1e3:8.3f} ms  torch {t * 1e3:8.3f} ms  "
                  f"ratio {g / t:5.2f}", flush=True)  # fmt: skip
    mean = math.exp(sum(map(math.log, ratios)) / len(ratios))
    print(f"geometric mean {mean:.2f} over {len(ratios)} cases")
    return mean


if __name__ == "__main__":
    main()
