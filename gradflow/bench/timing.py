"""The one timer of gradflow's benchmarks (`gradflow bench` and benchmarks/), on either device:
calls timed with device sync (CUDA events for gradflow/CuPy or torch code) and, on the CPU,
the process's CPU time beside the wall clock; sides of a comparison timed in alternating
rounds (time_rounds: blocks of a few calls per side, each side's caches warm within a block)
or call by call (time_interleaved: each side's data evicted by the other's; issue 17's op
cases); median and spread, and peak memory.

    result = measure("relu", lambda: x.relu(), "cuda", bytes_moved=2 * x.nbytes)
    print(result.median, result.iqr, result.gbps, result.peak_memory_bytes)

Timing the backward pass of user code (``gradflow.bench.backward``) is in backward_pass.py.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gradflow.backend import Device, get_array_module

DEFAULT_WARMUP = 3
DEFAULT_REPEAT = 20


@dataclass
class BenchResult:
    """Timings of one measured region: the raw seconds, their median and spread, throughput
    (when bytes or flops are given) and the peak memory of one call."""

    name: str
    device: str
    times: list[float]
    bytes_moved: float = 0.0
    flops: float = 0.0
    peak_memory_bytes: int = 0
    extra: dict = field(default_factory=dict)
    cpu_times: list[float] = field(default_factory=list)  # process_time per call (the CPU)

    @property
    def repeat(self) -> int:
        """How many timed calls the statistics are over."""
        return len(self.times)

    @property
    def median(self) -> float:
        """Median seconds per call."""
        return statistics.median(self.times)

    @property
    def cpu_median(self) -> float | None:
        """Median CPU seconds (time.process_time: every thread of the process) per call, on
        the CPU; None on a GPU, where the host's CPU time says nothing about the device's."""
        return statistics.median(self.cpu_times) if self.cpu_times else None

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def max(self) -> float:
        return max(self.times)

    @property
    def iqr(self) -> float:
        """Interquartile range of the per-call seconds (0 for fewer than two calls)."""
        if len(self.times) < 2:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.times, n=4, method="inclusive")
        return q3 - q1

    @property
    def gbps(self) -> float | None:
        """Bytes moved per second, in GB/s, when bytes_moved was given."""
        return self.bytes_moved / self.median / 1e9 if self.bytes_moved else None

    @property
    def tflops(self) -> float | None:
        """FLOPs per second, in TFLOP/s, when flops was given."""
        return self.flops / self.median / 1e12 if self.flops else None

    def to_dict(self) -> dict:
        """Every figure as plain JSON-ready values (the raw times included)."""
        d = asdict(self)
        d.update(repeat=self.repeat, median_s=self.median, iqr_s=self.iqr, min_s=self.min,
                 max_s=self.max, GBps=self.gbps, TFLOPs=self.tflops,
                 cpu_median_s=self.cpu_median)  # fmt: skip
        return d

    def __str__(self) -> str:
        text = f"{self.name}: median {format_seconds(self.median)} (IQR {format_seconds(self.iqr)}"
        text += f", n={self.repeat}, {self.device})"
        if self.cpu_median is not None:
            text += f", CPU {format_seconds(self.cpu_median)}"
        if self.gbps is not None:
            text += f", {self.gbps:.2f} GB/s"
        if self.tflops is not None:
            text += f", {self.tflops:.4g} TFLOP/s"
        return text + f", peak {self.peak_memory_bytes / 2**20:.2f} MiB"


def format_seconds(seconds: float) -> str:
    """A duration with a unit that keeps 3-4 significant digits (ns, µs, ms or s)."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            value = seconds / scale
            return f"{value:.0f} {unit}" if value >= 100 else f"{value:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def _cupy_for(device: Device) -> Any:
    return get_array_module(device) if device.type == "cuda" else None


class _WallClock:
    """The CPU: perf_counter and process_time around each call (wall and CPU seconds)."""

    def __enter__(self) -> _WallClock:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def time(self, fn: Callable[[], Any]) -> tuple[float, float | None]:
        cpu, start = time.process_time(), time.perf_counter()
        fn()
        return time.perf_counter() - start, time.process_time() - cpu


class _EventClock:
    """A GPU: CUDA events on the current stream around each call, after a synchronize, so the
    figure is device time; CuPy's stream and events, or torch's for torch code."""

    def __init__(self, dev: Device, framework: str) -> None:
        if framework == "torch":
            import torch

            self.place = torch.cuda.device(dev.index)
            self.sync = torch.cuda.synchronize
            self.event = lambda: torch.cuda.Event(enable_timing=True)
            self.seconds = lambda start, stop: start.elapsed_time(stop) / 1e3
        else:
            cupy = _cupy_for(dev)
            self.place = cupy.cuda.Device(dev.index)
            self.sync = lambda: cupy.cuda.get_current_stream().synchronize()
            self.event = cupy.cuda.Event
            self.seconds = lambda start, stop: cupy.cuda.get_elapsed_time(start, stop) / 1e3

    def __enter__(self) -> _EventClock:
        self.place.__enter__()
        self.sync()
        return self

    def __exit__(self, *exc: object) -> None:
        self.place.__exit__(*exc)

    def time(self, fn: Callable[[], Any]) -> tuple[float, float | None]:
        start, stop = self.event(), self.event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        return self.seconds(start, stop), None


def time_calls(
    fn: Callable[[], Any],
    device: str | Device = "cpu",
    warmup: int = DEFAULT_WARMUP,
    repeat: int = DEFAULT_REPEAT,
    before: Callable[[], Any] | None = None,
    framework: str = "gradflow",
) -> list[float]:
    """Seconds of each of `repeat` calls of ``fn()`` after `warmup` untimed calls.

    ``before()`` runs before every call, outside the timed region (e.g. clearing grads). On a
    GPU each call is bracketed by CUDA events on the current stream, after a synchronize, so
    the figure is device time and kernel compilation stays in the warm-up; `framework` says
    whose stream and events: "gradflow" (CuPy's, also for raw CuPy code) or "torch".
    """
    return time_calls_cpu(fn, device, warmup, repeat, before, framework)[0]


def time_calls_cpu(
    fn: Callable[[], Any],
    device: str | Device = "cpu",
    warmup: int = DEFAULT_WARMUP,
    repeat: int = DEFAULT_REPEAT,
    before: Callable[[], Any] | None = None,
    framework: str = "gradflow",
) -> tuple[list[float], list[float]]:
    """time_calls' seconds and, on the CPU, the CPU seconds (time.process_time) of the same
    calls; the second list is empty on a GPU."""
    check_counts(warmup, repeat)
    dev = Device(device)
    clock = _EventClock(dev, framework) if dev.type == "cuda" else _WallClock()
    for _ in range(warmup):
        if before is not None:
            before()
        fn()
    times: list[float] = []
    cpu_times: list[float] = []
    with clock:
        for _ in range(repeat):
            if before is not None:
                before()
            wall, cpu = clock.time(fn)
            times.append(wall)
            if cpu is not None:
                cpu_times.append(cpu)
    return times, cpu_times


@dataclass(frozen=True)
class Side:
    """One function of a comparison and how to time it: on `device`, with the clock of
    `framework` ("gradflow" for gradflow and raw NumPy/CuPy code, or "torch"); ``before()``,
    when given, runs before every call outside the timed region (see time_calls)."""

    fn: Callable[[], Any]
    device: str = "cpu"
    framework: str = "gradflow"
    before: Callable[[], Any] | None = None


MIN_REPEAT, MAX_REPEAT = 5, 50  # calls per side of a region sized by repeat_for


def repeat_for(
    fn: Callable[[], Any],
    target_seconds: float,
    fixed: int | None = None,
    device: str | Device = "cpu",
    before: Callable[[], Any] | None = None,
    framework: str = "gradflow",
    least: int = MIN_REPEAT,
) -> int:
    """`fixed` when given, or as many calls as fit `target_seconds` (one untimed call, then one
    timed), between `least` and MAX_REPEAT (at least `least`)."""
    if fixed is not None:
        return fixed
    (seconds,) = time_calls(fn, device, 1, 1, before, framework)
    return max(least, min(max(least, MAX_REPEAT), int(target_seconds / max(seconds, 1e-9))))


def round_size(repeat: int, rounds: int = 5, most: int = 5) -> int:
    """Calls per side in one round, so that `repeat` calls make at least `rounds` rounds
    (where repeat allows) and a round holds at most `most` calls: 1 for repeat 2-9, 2 for
    10-14, ..., 5 from 25 on."""
    return max(1, min(most, repeat // rounds))


def time_rounds(
    sides: Sequence[Side], repeat: int, warmup: int = 2, block: int | None = None
) -> list[tuple[list[float], list[float]]]:
    """Each side's per-call (wall or device seconds, CPU seconds) lists (time_calls_cpu),
    `repeat` calls each, timed in rounds: every side runs `block` calls (default round_size),
    then the next side, and round after round until each has `repeat` calls, after `warmup`
    untimed rounds of one call each. A shared box drifts; rounds make every side see the same
    load, while calls within a block keep their caches warm (call-by-call alternation made a
    0.3 ms MLP step 40% slower; one block per side moved a ratio up to 3x between runs)."""
    check_counts(warmup, repeat)
    block = round_size(repeat) if block is None else block
    for _ in range(warmup):
        for side in sides:
            if side.before is not None:
                side.before()
            side.fn()
    records: list[tuple[list[float], list[float]]] = [([], []) for _ in sides]
    done = 0
    while done < repeat:
        n = min(block, repeat - done)
        for side, (walls, cpus) in zip(sides, records):
            wall, cpu = time_calls_cpu(side.fn, side.device, 0, n, side.before, side.framework)
            walls += wall
            cpus += cpu
        done += n
    return records


INTERLEAVED_WARMUP = 1  # untimed calls of each side before time_interleaved's timed ones


def minor_faults() -> int:
    """The process's minor page faults so far (0 where getrusage is missing: not Unix)."""
    try:
        import resource
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_interleaved(
    sides: Sequence[Side], repeat: int, warmup: int = INTERLEAVED_WARMUP
) -> list[tuple[list[float], list[float], list[int]]]:
    """Each side's per-call (wall or device seconds, CPU seconds, minor page faults), `repeat`
    calls each, the sides alternating call by call (a, b, a, b, ...) after `warmup` untimed
    calls of each, alternating too. The method of issue 17's op cases (`gradflow bench --suite
    ops` and benchmarks/op_sweep_cpu.py both time them here).

    The cache state it measures: every call finds the caches holding the other side's data,
    not its own (each side's working set evicted by the other's, as in a training step where
    each op runs once on data the step before it just wrote); the heap is warm (one warm-up
    call; with backend.heap.steady_heap neither side faults pages in after it). Faults are
    counted on the CPU only (0 on a GPU: the device's memory is not the process's pages);
    CPU seconds are empty on a GPU, as in time_calls_cpu."""
    check_counts(warmup, repeat)
    clocks = [_EventClock(Device(s.device), s.framework) if Device(s.device).type == "cuda"
              else _WallClock() for s in sides]  # fmt: skip
    for _ in range(warmup):
        for side in sides:
            if side.before is not None:
                side.before()
            side.fn()
    records: list[tuple[list[float], list[float], list[int]]] = [([], [], []) for _ in sides]
    for _ in range(repeat):
        for side, clock, (walls, cpus, faults) in zip(sides, clocks, records):
            if side.before is not None:
                side.before()
            with clock:
                before = minor_faults()
                wall, cpu = clock.time(side.fn)
                faulted = minor_faults() - before
            walls.append(wall)
            if cpu is not None:
                cpus.append(cpu)
            faults.append(faulted if cpu is not None else 0)
    return records


def synced(fn: Callable[[], Any], device: str, framework: str = "gradflow") -> Callable[[], Any]:
    """`fn` on the CPU; on a GPU, `fn` followed by a synchronize of its framework's device, for
    a timer that only reads the wall clock (pytest-benchmark's)."""
    if not str(device).startswith("cuda"):
        return fn
    if framework == "torch":
        import torch

        sync = torch.cuda.synchronize
    else:
        sync = _cupy_for(Device(device)).cuda.Device().synchronize

    def call() -> Any:
        out = fn()
        sync()
        return out

    return call


def peak_memory(fn: Callable[[], Any], device: str | Device = "cpu") -> int:
    """Bytes allocated at the peak of one ``fn()`` call above what was live before it.

    CPU: tracemalloc (NumPy reports its buffers to it); this call is slow, so it is never
    the timed one. GPU: a CuPy memory hook following the pool's used bytes.
    """
    dev = Device(device)
    cupy = _cupy_for(dev)
    if cupy is None:
        was_tracing = tracemalloc.is_tracing()
        if not was_tracing:
            tracemalloc.start()
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        try:
            fn()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            if not was_tracing:
                tracemalloc.stop()
        return max(0, peak - base)
    hook = _PoolPeakHook(cupy)
    with cupy.cuda.Device(dev.index), hook:
        fn()
        cupy.cuda.get_current_stream().synchronize()
    return hook.peak


class _PoolPeakHook:
    """Follows CuPy's pool: bytes handed out minus bytes returned, and the highest point."""

    def __new__(cls, cupy: Any) -> Any:
        from cupy.cuda import memory_hook

        class Hook(memory_hook.MemoryHook):
            name = "gradflow_bench_peak"

            def __init__(self) -> None:
                self.live = 0
                self.peak = 0

            def malloc_postprocess(self, **kw: Any) -> None:
                self.live += kw["mem_size"]
                self.peak = max(self.peak, self.live)

            def free_postprocess(self, **kw: Any) -> None:
                self.live -= kw["mem_size"]

        return Hook()


def check_counts(warmup: int, repeat: int) -> None:
    """Refuse a repeat below 1 or a warmup below 0 (ValueError)."""
    if not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat must be an int >= 1, got {repeat!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")


def measure(
    name: str,
    fn: Callable[[], Any],
    device: str | Device = "cpu",
    warmup: int = DEFAULT_WARMUP,
    repeat: int = DEFAULT_REPEAT,
    bytes_moved: float = 0,
    flops: float = 0,
    before: Callable[[], Any] | None = None,
    memory: bool = True,
    framework: str = "gradflow",
) -> BenchResult:
    """Time ``fn()`` (see time_calls) and, when `memory`, record one call's peak memory."""
    if not callable(fn):
        raise TypeError(f"expected a callable to time, got {type(fn).__name__}")
    times, cpu_times = time_calls_cpu(fn, device, warmup, repeat, before, framework)
    peak = 0
    if memory:
        if before is not None:
            before()
        peak = peak_memory(fn, device)
    return BenchResult(name, str(Device(device)), times, bytes_moved, flops, peak,
                       cpu_times=cpu_times)  # fmt: skip
