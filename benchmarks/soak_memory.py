"""Memory soak: does training memory grow over many steps? Prints a table (and --json).

    python benchmarks/soak_memory.py --model mlp --steps 10000
    python benchmarks/soak_memory.py --model lstm --steps 1000 --json lstm.json
    python benchmarks/soak_memory.py --model mlp --steps 2000 --device cuda   # + CuPy's pool

Runs gradflow.models' model on the embedded digits with Adam and cross-entropy (the loop of
`gradflow train`), samples the process RSS, tracemalloc's traced memory and, on a GPU, the
CuPy pool's used bytes, and reports the growth after the warm-up (the first 10% of steps) as
the slope of a least-squares line in bytes per 1,000 steps. The engine is gradflow.bench.soak.
"""

from __future__ import annotations

import argparse
import json
import sys

from gradflow import models
from gradflow.bench.machine import describe_machine_line
from gradflow.bench.soak import SoakResult, soak

FIELDS = {"rss_bytes": "RSS", "traced_bytes": "tracemalloc", "gpu_pool_bytes": "CuPy pool"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=list(models.MODELS), default="mlp")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument(
        "--sample-every", type=int, default=None, help="steps between samples (default: steps/100)"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--warmup", type=float, default=0.1, help="fraction of steps left out of the fit"
    )
    parser.add_argument(
        "--no-tracemalloc", action="store_true", help="skip tracemalloc (faster; RSS only)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the samples and figures here")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1:
        parser.error("--steps and --batch-size must be positive")
    if args.sample_every is None:
        args.sample_every = max(1, args.steps // 100)
    return args


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.3f}"


def _kib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**10:,.1f}"


def table(result: SoakResult) -> str:
    """The figures of a run as a small Markdown table, with a header line about the run."""
    warm = [s for s in result.samples if s.step >= result.warmup_steps]
    lines = [
        f"{result.model} on {result.device}: {result.steps} steps of batch {result.batch_size} "
        f"in {result.seconds:.1f} s, final loss {result.final_loss:.4f}, samples every "
        f"{result.sample_every} steps, warm-up {result.warmup_steps} steps; graphs not freed "
        f"by refcount: {result.graphs_not_freed}; cyclic garbage found: {result.cyclic_garbage}",
        "",
        "| memory | after warm-up MiB | at end MiB | change KiB | peak change KiB "
        "| fitted growth KiB/1,000 steps |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for field, label in FIELDS.items():
        values = [getattr(s, field) for s in warm if getattr(s, field) is not None]
        if not values:
            continue
        lines.append(
            f"| {label} | {_mib(values[0])} | {_mib(values[-1])} | "
            f"{_kib(result.growth_after_warmup(field))} | {_kib(result.peak_growth(field))} | "
            f"{_kib(result.growth_per_1000_steps(field))} |"
        )
    lines.append(
        f"\nRSS from {result.rss_source}. Peak change: the highest value in the second half "
        "of the samples after the warm-up minus the highest in the first half."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the soak and print the table; write --json when asked."""
    args = parse_args(argv)
    result = soak(
        args.model,
        steps=args.steps,
        sample_every=args.sample_every,
        device=args.device,
        batch_size=args.batch_size,
        seed=args.seed,
        warmup_fraction=args.warmup,
        trace=not args.no_tracemalloc,
    )
    machine = describe_machine_line()  # after the run: it imports torch when installed
    print(machine)
    print(table(result))
    if args.json:
        record = {"command": sys.argv, "machine": machine, **result.as_dict()}
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(record, out, indent=1)
        print(f"json: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
