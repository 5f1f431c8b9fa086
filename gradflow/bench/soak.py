"""Memory soak: run many training steps of a `gradflow train` model and measure whether memory
grows (process RSS, tracemalloc's traced Python memory, CuPy's pool), after a warm-up.

``soak("mlp", steps=10_000)`` trains on the embedded digits with Adam and cross-entropy, as
`gradflow train` does, samples memory every `sample_every` steps and fits a line to the
samples after the warm-up: the slope, in bytes per 1,000 steps, is the growth. It also checks
after every step that the step's graph was freed by reference counting alone (a weak
reference to the loss's grad_fn dies as soon as the loss is dropped), which catches a
reference cycle in the graph even where the garbage collector would later clean it up.
Used by benchmarks/soak_memory.py and tests/test_memory_soak.py.

Each sample starts with a full garbage collection, which counts any cyclic garbage the steps
left (none is expected: the graph has no cycles) and empties CPython's free lists. Those
lists keep up to 2,000 freed tuples of each size 1 to 20 for reuse, and an LSTM step frees a
few more small tuples than it takes from them, so without the collection they fill over the
first thousands of steps and tracemalloc counts that as growth (about 170 KiB per 1,000
steps, stopping at the cap). The samples themselves are kept in an array allocated before
measuring, so keeping them adds nothing to what is measured.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import time
import tracemalloc
import weakref
from collections.abc import Iterator
from typing import Any

import numpy

from gradflow import cuda, data, models, nn, optim
from gradflow.backend import Device
from gradflow.ops.losses import cross_entropy
from gradflow.random import Generator, manual_seed
from gradflow.tensor import Tensor

DEFAULT_LR = {"mlp": 2e-3, "cnn": 2e-3, "lstm": 1e-2, "gru": 1e-2}  # as `gradflow train`


@dataclasses.dataclass
class MemorySample:
    """Memory in use after `step` training steps (bytes; gpu_pool_bytes None on the cpu)."""

    step: int
    rss_bytes: int
    traced_bytes: int | None
    gpu_pool_bytes: int | None


@dataclasses.dataclass
class SoakResult:
    """The samples of one soak run and the growth fitted to them after the warm-up."""

    model: str
    device: str
    steps: int
    batch_size: int
    sample_every: int
    warmup_steps: int
    seconds: float
    final_loss: float
    graphs_not_freed: int  # steps whose graph outlived its loss (0 when the graph is acyclic)
    cyclic_garbage: int  # objects the collections at the samples found unreachable
    rss_source: str
    samples: list[MemorySample]

    def growth_per_1000_steps(self, field: str) -> float | None:
        """Bytes per 1,000 steps of `field` ("rss_bytes", "traced_bytes", "gpu_pool_bytes"),
        the slope of a least-squares line through the samples after the warm-up."""
        points = self._after_warmup(field)
        if len(points) < 2:
            return None
        return 1000.0 * linear_slope([p[0] for p in points], [p[1] for p in points])

    def growth_after_warmup(self, field: str) -> int | None:
        """Bytes of `field` at the last sample minus at the first sample after the warm-up."""
        values = [value for _, value in self._after_warmup(field)]
        return values[-1] - values[0] if len(values) >= 2 else None

    def peak_growth(self, field: str) -> int | None:
        """The highest `field` in the second half of the samples after the warm-up minus the
        highest in the first half: robust where memory swings in a band (RSS, as the
        allocator takes and returns large blocks), where a fitted slope follows the swings."""
        values = [value for _, value in self._after_warmup(field)]
        if len(values) < 2:
            return None
        half = len(values) // 2
        return max(values[half:]) - max(values[:half])

    def _after_warmup(self, field: str) -> list[tuple[int, int]]:
        """(step, bytes of `field`) of the samples after the warm-up that have the field."""
        return [
            (s.step, getattr(s, field))
            for s in self.samples
            if s.step >= self.warmup_steps and getattr(s, field) is not None
        ]

    def as_dict(self) -> dict[str, Any]:
        """The run as plain data (for --json), growth figures included."""
        record = dataclasses.asdict(self)
        fields = ("rss_bytes", "traced_bytes", "gpu_pool_bytes")
        record["growth_per_1000_steps"] = {f: self.growth_per_1000_steps(f) for f in fields}
        record["growth_after_warmup"] = {f: self.growth_after_warmup(f) for f in fields}
        record["peak_growth"] = {f: self.peak_growth(f) for f in fields}
        return record


def linear_slope(xs: list[float], ys: list[float]) -> float:
    """The slope of the least-squares line through the points (xs, ys)."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread


def rss_bytes() -> tuple[int, str]:
    """The process's resident set size now, and where the figure came from.

    Reads /proc/self/statm (Linux); elsewhere falls back to getrusage's peak RSS, which only
    ever grows, so a flat reading there still means no growth but a rising one is an upper
    bound.
    """
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE"), "/proc/self/statm (current)"
    except (OSError, ValueError, IndexError):
        import resource  # POSIX only, and only needed here

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        scale = 1 if os.uname().sysname == "Darwin" else 1024  # bytes on macOS, KiB elsewhere
        return peak * scale, "getrusage ru_maxrss (peak)"


def build(model: str, device: Device, lr: float | None = None) -> tuple[nn.Module, optim.Optimizer]:
    """One of gradflow.models for the 8x8 digits on `device`, with its Adam optimizer."""
    if model not in models.MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(models.MODELS)}")
    network = models.MODELS[model](image_size=8).to(device)
    rate = DEFAULT_LR[model] if lr is None else lr
    return network, optim.Adam(network.parameters(), lr=rate)


def batches(loader: data.DataLoader) -> Iterator[tuple[Tensor, Tensor]]:
    """The loader's batches, epoch after epoch, without end."""
    while True:
        yield from loader


def train_step(
    model: nn.Module, optimizer: optim.Optimizer, images: Tensor, labels: Tensor
) -> Tensor:
    """One step of `gradflow train`'s loop; returns the loss (its graph already run)."""
    loss = cross_entropy(model(images), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def soak(
    model: str = "mlp",
    steps: int = 1000,
    sample_every: int = 50,
    device: str | Device = "cpu",
    batch_size: int = 64,
    seed: int = 0,
    warmup_fraction: float = 0.1,
    trace: bool = True,
) -> SoakResult:
    """Train `model` for `steps` steps on the digits and sample memory every `sample_every`.

    trace=False leaves tracemalloc off (faster; traced_bytes is then None). The warm-up is
    the first `warmup_fraction` of the steps: allocator pools, optimizer state and caches
    settle there and are not counted as growth.
    """
    if steps < 1 or sample_every < 1:
        raise ValueError(f"steps and sample_every must be positive, got {steps}, {sample_every}")
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    target = Device(device)
    manual_seed(seed)
    network, optimizer = build(model, target)
    train_set = data.Digits(train=True, device=target)
    loader = data.DataLoader(
        train_set, batch_size, shuffle=True, drop_last=True, generator=Generator("cpu", seed)
    )
    network.train()
    on_gpu = target.type == "cuda" and cuda.is_available()
    # One row per sample (step, rss, traced, pool; -1 for none), allocated before measuring
    # so that keeping the samples adds nothing to what is measured.
    records = numpy.full((math.ceil(steps / sample_every) + 2, 4), -1, numpy.int64)
    rows = 0
    source = rss_bytes()[1]
    not_freed = garbage = 0
    loss_value = float("nan")
    # One step before anything is counted: what a process sets up once on its first step
    # (numba compiling or loading the compiled CPU loops leaves a few reference cycles of its
    # own, once) is not the per-step garbage or growth this run looks for.
    warm_images, warm_labels = next(batches(loader))
    train_step(network, optimizer, warm_images, warm_labels)
    del warm_images, warm_labels
    started_tracing = trace and not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start()
    gc.collect()

    def sample(step: int) -> None:
        nonlocal rows, garbage
        garbage += gc.collect()
        if on_gpu:
            cuda.synchronize(target)
        records[rows, 0] = step
        records[rows, 1] = rss_bytes()[0]
        if tracemalloc.is_tracing():
            records[rows, 2] = tracemalloc.get_traced_memory()[0]
        if on_gpu:
            records[rows, 3] = cuda.memory_allocated(target)
        rows += 1

    start = time.perf_counter()
    try:
        sample(0)
        stream = batches(loader)
        for step in range(1, steps + 1):
            images, labels = next(stream)
            loss = train_step(network, optimizer, images, labels)
            graph = weakref.ref(loss.grad_fn)
            if step == steps:
                loss_value = float(loss.array)
            del loss, images, labels
            if graph() is not None:
                not_freed += 1
            if step % sample_every == 0 or step == steps:
                sample(step)
    finally:
        if started_tracing:
            tracemalloc.stop()
    samples = [
        MemorySample(*(None if value < 0 else int(value) for value in row))
        for row in records[:rows].tolist()
    ]
    return SoakResult(
        model=model,
        device=str(target),
        steps=steps,
        batch_size=batch_size,
        sample_every=sample_every,
        warmup_steps=int(steps * warmup_fraction),
        seconds=time.perf_counter() - start,
        final_loss=loss_value,
        graphs_not_freed=not_freed,
        cyclic_garbage=garbage,
        rss_source=source,
        samples=samples,
    )
