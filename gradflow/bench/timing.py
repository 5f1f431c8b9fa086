"""Timing on either device: a timer with device sync, median and spread, peak memory, and
``backward()`` / ``backward_module()`` for timing the backward pass of user code.

    result = gradflow.bench.backward(lambda x, w: (x @ w).relu().sum(), x, w)
    print(result.median, result.iqr, result.peak_memory_bytes)
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterable
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

    @property
    def repeat(self) -> int:
        """How many timed calls the statistics are over."""
        return len(self.times)

    @property
    def median(self) -> float:
        """Median seconds per call."""
        return statistics.median(self.times)

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
                 max_s=self.max, GBps=self.gbps, TFLOPs=self.tflops)  # fmt: skip
        return d

    def __str__(self) -> str:
        text = f"{self.name}: median {format_seconds(self.median)} (IQR {format_seconds(self.iqr)}"
        text += f", n={self.repeat}, {self.device})"
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


def time_calls(
    fn: Callable[[], Any],
    device: str | Device = "cpu",
    warmup: int = DEFAULT_WARMUP,
    repeat: int = DEFAULT_REPEAT,
    before: Callable[[], Any] | None = None,
) -> list[float]:
    """Seconds of each of `repeat` calls of ``fn()`` after `warmup` untimed calls.

    ``before()`` runs before every call, outside the timed region (e.g. clearing grads). On a
    GPU each call is bracketed by CUDA events on the current stream, after a synchronize, so
    the figure is device time and kernel compilation stays in the warm-up.
    """
    _check_counts(warmup, repeat)
    dev = Device(device)
    cupy = _cupy_for(dev)
    for _ in range(warmup):
        if before is not None:
            before()
        fn()
    times = []
    if cupy is None:
        for _ in range(repeat):
            if before is not None:
                before()
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return times
    with cupy.cuda.Device(dev.index):
        cupy.cuda.get_current_stream().synchronize()
        for _ in range(repeat):
            if before is not None:
                before()
            start, stop = cupy.cuda.Event(), cupy.cuda.Event()
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    return times


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


def _check_counts(warmup: int, repeat: int) -> None:
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
) -> BenchResult:
    """Time ``fn()`` (see time_calls) and, when `memory`, record one call's peak memory."""
    if not callable(fn):
        raise TypeError(f"expected a callable to time, got {type(fn).__name__}")
    times = time_calls(fn, device, warmup, repeat, before)
    peak = 0
    if memory:
        if before is not None:
            before()
        peak = peak_memory(fn, device)
    return BenchResult(name, str(Device(device)), times, bytes_moved, flops, peak)


# ---- backward of user code ---------------------------------------------------------------------
def backward(
    fn: Callable[..., Any],
    *inputs: Any,
    warmup: int = DEFAULT_WARMUP,
    repeat: int = DEFAULT_REPEAT,
    grad_output: Any = None,
    bytes_moved: float = 0,
    flops: float = 0,
    name: str | None = None,
) -> BenchResult:
    """Time the backward pass of ``fn(*inputs)`` alone, on the device of its output.

    The graph is built once, then ``out.backward(grad_output, retain_graph=True)`` is timed
    `repeat` times after `warmup` calls; the grads of the tensor inputs (and of a module's
    parameters, see backward_module) are cleared before each call, outside the timed region,
    so every call does the same work. `fn` must return a one-element tensor (a loss) unless
    `grad_output` is given. Peak memory is that of one backward call.
    """
    return _time_backward(fn, inputs, (), warmup, repeat, grad_output, bytes_moved, flops, name)


def backward_module(
    module: Any,
    *inputs: Any,
    warmup: int = DEFAULT_WARMUP,
    repeat: int = DEFAULT_REPEAT,
    grad_output: Any = None,
    bytes_moved: float = 0,
    flops: float = 0,
    name: str | None = None,
) -> BenchResult:
    """Time the backward pass of ``module(*inputs)`` (see backward); the output is reduced with
    ``.sum()`` when it has more than one element and no grad_output is given."""
    from gradflow.nn import Module

    if not isinstance(module, Module):
        kind = type(module).__name__
        raise TypeError(f"backward_module expects a gradflow.nn.Module, got {kind}")

    def forward(*xs: Any) -> Any:
        out = module(*xs)
        if isinstance(out, tuple):  # recurrent layers return (output, state)
            out = out[0]
        return out if grad_output is not None or out.numel() == 1 else out.sum()

    label = name or type(module).__name__
    params = list(module.parameters())
    return _time_backward(forward, inputs, params, warmup, repeat, grad_output, bytes_moved,
                          flops, label)  # fmt: skip


def _time_backward(
    fn: Callable[..., Any],
    inputs: tuple,
    params: Iterable[Any],
    warmup: int,
    repeat: int,
    grad_output: Any,
    bytes_moved: float,
    flops: float,
    name: str | None,
) -> BenchResult:
    from gradflow.tensor import Tensor

    if not callable(fn):
        raise TypeError(f"backward() expects a callable as fn, got {type(fn).__name__}")
    _check_counts(warmup, repeat)
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"fn must return a gradflow Tensor, got {type(out).__name__}")
    if out.grad_fn is None:
        raise ValueError(
            "fn's output has no grad_fn: give some input requires_grad=True, and do not compute "
            "it under no_grad()"
        )
    if grad_output is None and out.numel() != 1:
        raise ValueError(
            f"fn returned a tensor of shape {tuple(out.shape)}; backward() needs a one-element "
            "output (a loss) or grad_output= of that shape"
        )
    leaves = [t for t in (*inputs, *params) if isinstance(t, Tensor) and t.requires_grad]

    def clear() -> None:
        for t in leaves:
            t.grad = None

    result = measure(name or getattr(fn, "__name__", "backward"),
                     lambda: out.backward(grad_output, retain_graph=True), out.device, warmup,
                     repeat, bytes_moved, flops, before=clear)  # fmt: skip
    return result
