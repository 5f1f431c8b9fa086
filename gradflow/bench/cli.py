"""`gradflow bench`: run the suites on a device, print a table, optionally --json / --plot."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

from gradflow.backend import Device, get_array_module
from gradflow.backend.heap import steady_heap
from gradflow.backend.threads import blas_threads
from gradflow.bench import ceilings as ceilings_module
from gradflow.bench import suites, user_model
from gradflow.bench import timing as timing_module
from gradflow.bench.report import Row, geometric_mean_ratio, record, table, write_json
from gradflow.bench.timing import (
    BenchResult,
    Side,
    peak_memory,
    repeat_for,
    time_interleaved,
    time_rounds,
)

TARGET_SECONDS = 0.2  # time spent on each side of a case when --repeat is not given
MPI_INSTALL = "pip install -e '.[mpi]'"
LAUNCH_TIMEOUT_S: float | None = None  # --suite distributed's limit on mpiexec (tests set one)
OPS_MIN_REPEAT = 11  # calls per side at least for an ops case (a median of 11 calls or more)


def _sizes(text: str) -> list[str]:
    sizes = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in suites.SIZES]
    if not sizes or unknown:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}: expected {', '.join(suites.SIZES)} or a comma-separated list"
        )
    return sizes


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _positive(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _threads(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (the BLAS default) or more, got {value}")
    return value


def _device(text: str) -> str:
    """`text` once it names a device ("auto" is resolved later, by Device)."""
    if text.strip().lower() != "auto":
        try:
            Device(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `bench` subcommand to the `gradflow` parser's subparsers; returns its parser."""
    p = subparsers.add_parser(
        "bench",
        help="time gradflow's backward passes (and torch's, with --compare torch)",
        description="Run benchmark suites and print a table: median time (and CPU time on the "
        "CPU), GB/s or TFLOP/s, % of the measured ceiling (copy bandwidth at the case's working "
        "set, or GEMM rate), ratio to torch (the two timed in alternating rounds). With --model: "
        "your model, whole and per layer.",
    )
    p.add_argument("--device", default="auto", type=_device,
                   help="auto (cuda if usable, else cpu), cpu, cuda, cuda:N")  # fmt: skip
    p.add_argument("--suite", choices=[*suites.SUITES, "distributed", "all"],
                   help="all (the default): every suite but ops (issue 17's op cases at full "
                   "size, CPU only, one size: --suite ops) and distributed (all_reduce "
                   "bandwidth and DDP training throughput under mpiexec: --suite "
                   "distributed)")  # fmt: skip
    p.add_argument(
        "--sizes",
        type=_sizes,
        metavar="{small,medium,large}",
        help="problem sizes (default small; a comma-separated list for several; ops: small only)",
    )
    p.add_argument("--compare", choices=["torch"], help="also time PyTorch (when importable)")
    p.add_argument("--json", metavar="PATH", help="write every figure and the machine here")
    p.add_argument("--plot", metavar="PATH", help="save time-vs-size and torch ratios (matplotlib)")
    p.add_argument(
        "--threads",
        type=_threads,
        default=1,
        help="NumPy BLAS threads on the CPU (default 1, as torch gets; 0: the BLAS default)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--processes", type=_positive, metavar="P",
                   help="--suite distributed: how many processes mpiexec starts "
                   "(default 2); its messages go to 1 MiB (--sizes small, the default) or "
                   "to 64 MiB (--sizes medium or large)")  # fmt: skip
    model = p.add_argument_group(
        "your own model",
        "--model times forward and backward of your model, whole and per layer (each distinct "
        "call of a layer; a row for the work outside any layer; the fixed cost of one "
        "backward() call), instead of the suites, on a steady heap as the suites are "
        "(gradflow.bench.model from Python)",
    )
    model.add_argument("--model", metavar="MODULE:CALLABLE",
                       help="the callable building your gradflow model: a dotted module path "
                       "(from the current directory) or a .py file, then its name")  # fmt: skip
    model.add_argument("--input-shape", metavar="N,C,H,W",
                       help="the input's shape, e.g. 64,3,32,32 (a value starting with '-' "
                       "needs the = form: --input-shape=-1,2)")  # fmt: skip
    model.add_argument("--loss", choices=user_model.LOSSES,
                       help="sum (the default: out.sum()) or cross_entropy (random targets "
                       "over the output's last dimension)")  # fmt: skip
    model.add_argument("--torch-model", metavar="MODULE:CALLABLE",
                       help="the same model built with torch: times it too and gives ratios "
                       "(gradflow's weights copied in when state_dict names match)")  # fmt: skip
    model.add_argument("--dtype", choices=user_model.DTYPES, help="float32 (default) or float64")
    model.add_argument("--input-dtype", choices=["int64"],
                       help="int64: integer input (token ids) drawn from [0, --input-high); "
                       "default: a float input of --dtype")  # fmt: skip
    model.add_argument("--input-high", type=_positive, metavar="N",
                       help="with --input-dtype int64: the input's integers are below N (e.g. "
                       "an Embedding's row count)")  # fmt: skip
    p.add_argument("--repeat", type=_positive, help=argparse.SUPPRESS)  # fixed count (tests)
    return p  # fmt: skip


def _run_case(case: suites.Case, device: str, compare: bool, fixed: int | None) -> tuple:
    """gradflow's result and torch's (None without --compare or a twin), the two sides timed
    with the same number of calls: an ops case call by call (timing.time_interleaved, the
    method of benchmarks/op_sweep_cpu.py, at least OPS_MIN_REPEAT calls), any other in
    alternating rounds (timing.time_rounds); then one untimed call of gradflow's step for its
    peak memory."""
    step = case.setup("gradflow", device)
    ops = case.suite == "ops"
    least = OPS_MIN_REPEAT if ops else timing_module.MIN_REPEAT
    repeat = repeat_for(step, TARGET_SECONDS, fixed, device, least=least)
    sides = [Side(step, device, "gradflow")]
    if compare and case.torch:
        sides.append(Side(case.setup("torch", device), device, "torch"))
    if ops:
        records = [(walls, cpus) for walls, cpus, _ in time_interleaved(sides, repeat)]
    else:
        records = time_rounds(sides, repeat, 1 if fixed is not None else 2)
    ours = BenchResult(case.name, device, records[0][0], case.bytes_moved, case.flops,
                       peak_memory(step, device), cpu_times=records[0][1])  # fmt: skip
    theirs = None
    if len(records) > 1:
        theirs = BenchResult(f"torch {case.name}", device, records[1][0], case.bytes_moved,
                             case.flops, cpu_times=records[1][1])  # fmt: skip
    return ours, theirs


def _progress(items: list, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(items, desc="gradflow bench", unit="case", leave=False, file=sys.stderr,
                disable=not enabled)  # fmt: skip


def _output_problem(args: argparse.Namespace) -> str | None:
    """Why --json or --plot can't be written (checked before the run, not after it), or None."""
    from gradflow.plotting import PlotUnavailableError, check_available
    from gradflow.training import output_path_problem, plot_format_problem

    if args.json and (problem := output_path_problem(args.json)):
        return f"--json {args.json}: {problem}"
    if args.plot:
        if problem := output_path_problem(args.plot):
            return f"--plot {args.plot}: {problem}"
        try:
            check_available()
        except PlotUnavailableError as exc:
            return str(exc)
        if problem := plot_format_problem(args.plot):
            return f"--plot {args.plot}: {problem}"
    return None


def _model_problem(args: argparse.Namespace) -> str | None:
    """Why the --model options don't go together, or None."""
    if args.model is None:
        names = ("input_shape", "loss", "torch_model", "dtype", "input_dtype", "input_high")
        given = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) is not None]
        if given:
            return f"{', '.join(given)} only go with --model"
        if args.suite == "ops" and args.sizes not in (None, ["small"]):
            return ("--suite ops has one size, small (issue 17's sizes); "
                    f"--sizes {','.join(args.sizes)} does not apply")  # fmt: skip
        return None
    given = [f"--{n}" for n in ("suite", "sizes") if getattr(args, n) is not None]
    if given:
        return f"{' and '.join(given)} do not go with --model (it times your model, not a suite)"
    if args.input_shape is None:
        return "--model needs --input-shape, e.g. --input-shape 64,3,32,32"
    if args.plot:
        return "--plot does not go with --model (its table and --json hold every figure)"
    if args.compare == "torch" and args.torch_model is None:
        return "--compare torch with --model needs --torch-model MODULE:CALLABLE (the torch model)"
    return None


def run_model(args: argparse.Namespace, device: str) -> int:
    """`gradflow bench --model`: time the user's model (user_model.model), print its table."""
    try:
        report = user_model.model(
            args.model,
            args.input_shape,
            loss=args.loss or "sum",
            torch_factory=args.torch_model,
            dtype=args.dtype or "float32",
            device=device,
            repeat=args.repeat,
            threads=args.threads,
            progress=not args.no_progress,
            input_dtype=args.input_dtype,
            input_high=args.input_high,
        )
    except user_model.ModelError as exc:  # what was given; gradflow's own errors: a traceback
        print(f"gradflow bench: error: {exc}", file=sys.stderr)
        return 2
    print(report.table())
    if args.json:
        from gradflow.bench.machine import machine_description

        write_json(args.json, {**report.to_dict(), "command": sys.argv,
                               "machine": machine_description()})  # fmt: skip
        print(f"wrote {args.json}")
    return 0


def _has_mpi4py() -> bool:
    return importlib.util.find_spec("mpi4py") is not None


def _mpiexec() -> str | None:
    """The mpiexec beside this Python (the mpich wheel's), or on PATH."""
    from gradflow.distributed.launch import find_mpiexec

    return find_mpiexec()


def _distributed_problem(args: argparse.Namespace) -> str | None:
    """Why the options don't go with --suite distributed (or --processes without it), or None."""
    if args.suite != "distributed":
        return "--processes only goes with --suite distributed" if args.processes else None
    given = [f"--{n.replace('_', '-')}" for n in ("compare", "plot", "model") if getattr(args, n)]
    if args.device.strip().lower() not in ("auto", "cpu"):
        given.append(f"--device {args.device}")
    if given:
        verb = "does" if len(given) == 1 else "do"
        return (f"{', '.join(given)} {verb} not go with --suite distributed (it times MPI on the "
                "CPU: all_reduce and DDP training)")  # fmt: skip
    if not _has_mpi4py():
        return f"--suite distributed needs mpi4py: {MPI_INSTALL}"
    if _mpiexec() is None:
        return f"--suite distributed needs mpiexec (the mpich wheel brings it): {MPI_INSTALL}"
    return None


def run_distributed(args: argparse.Namespace) -> int:
    """`gradflow bench --suite distributed`: gradflow.bench.distributed in each of --processes
    ranks under mpiexec (small message sizes by default, to 64 MiB with --sizes medium or
    large); its table on stdout, its exit status returned."""
    from gradflow.distributed import launch

    sizes = "tiny" if args.repeat else "full" if set(args.sizes or []) - {"small"} else "small"
    arguments = ["-m", "mpi4py", "-m", "gradflow.bench.distributed", "--sizes", sizes]
    if args.json:
        arguments += ["--json", str(Path(args.json).resolve())]
    sys.stdout.flush()
    try:
        done = launch.run(arguments, args.processes or 2, LAUNCH_TIMEOUT_S, capture=False)
    except TimeoutError as exc:
        print(f"gradflow bench: error: {exc}", file=sys.stderr)
        return 124
    return done.returncode


def run(args: argparse.Namespace) -> int:
    """Run `gradflow bench` with parsed arguments; prints the table, returns the exit status."""
    from gradflow.bench.plot import save_plot

    if problem := _distributed_problem(args):
        print(f"gradflow bench: error: {problem}", file=sys.stderr)
        return 2
    if args.suite == "distributed":
        if problem := _output_problem(args):
            print(f"gradflow bench: error: {problem}", file=sys.stderr)
            return 2
        return run_distributed(args)
    problem = _output_problem(args) or _model_problem(args)
    if problem:
        print(f"gradflow bench: error: {problem}", file=sys.stderr)
        return 2
    device = Device(args.device)
    xp = get_array_module(device)  # raises CudaUnavailableError now for cuda without a GPU
    device_name = str(device)
    if getattr(xp, "__gradflow_standin__", False):
        print(
            f"gradflow bench: {device_name} is the CuPy stand-in (GRADFLOW_CUDA_STANDIN=1): "
            "the timings below measure the CPU emulation, not a GPU",
            file=sys.stderr,
        )
    if args.model is not None:
        return run_model(args, device_name)
    compare = args.compare == "torch"
    if compare and not suites.torch_ready(device_name):
        print(f"gradflow bench: torch is not importable for {device_name}; no comparison",
              file=sys.stderr)  # fmt: skip
        compare = False
    names = list(suites.ALL) if args.suite in (None, "all") else [args.suite]
    if "ops" in names and device.type not in suites.OPS_DEVICES:
        print(f"gradflow bench: the ops suite runs on the CPU only, not {device_name}",
              file=sys.stderr)  # fmt: skip
        return 2
    cases = suites.cases(names, args.sizes or ["small"])
    ops_only = names == ["ops"]
    # glibc keeps freed arrays mapped, so neither side's steps fault pages in (backend/heap.py)
    steady = device.type == "cpu" and steady_heap()
    with blas_threads(args.threads if device.type == "cpu" else 0):
        # the ops cases have no byte or FLOP counts: no ceiling applies to them
        ceilings = {} if ops_only else ceilings_module.ceilings(device_name)
        rows = []
        for case in _progress(cases, not args.no_progress):
            ours, theirs = _run_case(case, device_name, compare, args.repeat)
            case_ceilings = (ceilings_module.case_ceilings(device_name, case.bytes_moved)
                             if case.suite != "ops" else {})  # fmt: skip
            rows.append(Row(case, ours, theirs, case_ceilings))
    clock = "CPU" if device.type == "cpu" else "device"
    head = f"gradflow bench on {device_name}: "
    if not ops_only:
        head += (f"copy {ceilings['copy_GBps']:.1f} GB/s at "
                 f"{ceilings_module.COPY_BYTES[device.type] >> 20} MiB, GEMM "
                 f"{ceilings['gemm_TFLOPs']:.3g} TFLOP/s (the ceilings; a memory-bound case's "
                 "copy ceiling is measured at its working set); ")  # fmt: skip
    head += f"vs torch = gradflow {clock} time / torch {clock} time, "
    head += ("the two alternating call by call (each side's data evicted by the other's), one "
             "warm-up call each" if ops_only else "timed in alternating rounds")  # fmt: skip
    print(head + f"{'; heap held steady (no page faults after warm-up)' if steady else ''}")
    print(table(rows))
    if (mean := geometric_mean_ratio(rows)) is not None:
        print(f"geometric mean of vs torch over {mean[1]} cases: {mean[0]:.2f}x")
    if args.json:
        write_json(args.json, record(rows, device_name, ceilings, sys.argv))
        print(f"wrote {args.json}")
    if args.plot:
        save_plot(rows, args.plot)
        print(f"wrote {args.plot}")
    return 0


__all__ = ["BenchResult", "add_parser", "run"]
