"""PyTorch's top-level helpers that have no other home here: ``is_tensor``, ``numel``,
``compile``, ``set_printoptions``, ``use_deterministic_algorithms``, ``autocast``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy

from gradflow.amp import autocast
from gradflow.tensor import Tensor

__all__ = [
    "are_deterministic_algorithms_enabled",
    "autocast",
    "compile",
    "equal",
    "get_float32_matmul_precision",
    "get_num_threads",
    "is_floating_point",
    "is_tensor",
    "numel",
    "set_float32_matmul_precision",
    "set_num_threads",
    "set_printoptions",
    "use_deterministic_algorithms",
]


def is_tensor(obj: Any) -> bool:
    """True for a gradflow Tensor (a Parameter included)."""
    return isinstance(obj, Tensor)


def is_floating_point(input: Tensor) -> bool:
    return input.is_floating_point()


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both have the same shape and elements."""
    return input.equal(other)


def numel(input: Tensor) -> int:
    """The number of elements."""
    return input.numel()


def compile(model: Callable | None = None, **options: Any) -> Any:
    """PyTorch's graph compiler has no counterpart here: returns `model` unchanged (so code
    that compiles its model runs, eagerly). Usable as ``compile(model)`` and ``@compile(...)``."""
    if model is None:
        return lambda fn: fn
    return model


def set_printoptions(
    precision: int | None = None,
    threshold: int | None = None,
    edgeitems: int | None = None,
    linewidth: int | None = None,
    profile: str | None = None,
    sci_mode: bool | None = None,
) -> None:
    """How tensors print, as PyTorch's (``profile='default'`` restores the defaults)."""
    from gradflow.tensor import PRINT_OPTIONS

    if profile == "default":
        PRINT_OPTIONS.update(precision=4, threshold=1000, edgeitems=3, max_line_width=80)
    elif profile == "full":
        PRINT_OPTIONS.update(threshold=numpy.iinfo(numpy.int64).max)
    elif profile == "short":
        PRINT_OPTIONS.update(precision=2, threshold=1000, edgeitems=2)
    given = {"precision": precision, "threshold": threshold, "edgeitems": edgeitems}
    given["max_line_width"] = linewidth
    PRINT_OPTIONS.update({k: v for k, v in given.items() if v is not None})
    if sci_mode is not None:
        PRINT_OPTIONS["suppress_small"] = not sci_mode


_deterministic = [False]
_matmul_precision = ["highest"]


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Recorded, and otherwise nothing to do: gradflow's cpu ops and cuda kernels are
    deterministic already (col2im by gather, no atomics)."""
    _deterministic[0] = bool(mode)


def are_deterministic_algorithms_enabled() -> bool:
    """What use_deterministic_algorithms last set (gradflow is deterministic either way)."""
    return _deterministic[0]


def set_float32_matmul_precision(precision: str) -> None:
    """Accepted ('highest', 'high', 'medium'); gradflow's float32 GEMMs always run in float32
    (no TF32), so every setting computes at 'highest'."""
    if precision not in ("highest", "high", "medium"):
        raise RuntimeError(f"Invalid precision {precision!r}: use 'highest', 'high' or 'medium'")
    _matmul_precision[0] = precision


def get_float32_matmul_precision() -> str:
    return _matmul_precision[0]


_thread_limit: list = [None]


def set_num_threads(threads: int) -> None:
    """The number of threads NumPy's BLAS uses for the cpu's GEMMs and convolutions (the
    intra-op threads that matter here; NumPy's elementwise math is single-threaded), for the
    whole process, as torch.set_num_threads.

    When to use it: with small models and many small steps (an LSTMCell loop, the digits
    models of `gradflow train`) or on a machine other jobs share, set 1. A multi-threaded
    OpenBLAS that waits for a descheduled thread made an LSTMCell loop 15x slower on a loaded
    2-core machine, and small GEMMs gain little from a second thread. Keep the default (all
    cores) for large GEMMs and convolutions on an idle machine. `gradflow train --threads`
    sets it for a training run (default 1)."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise RuntimeError(f"set_num_threads expects a positive integer, got {threads!r}")
    from threadpoolctl import threadpool_limits

    _thread_limit[0] = threadpool_limits(limits=threads, user_api="blas")


def get_num_threads() -> int:
    """The BLAS threads NumPy uses now (1 when no BLAS library reports a count)."""
    from threadpoolctl import threadpool_info

    counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
    return max(counts, default=1)
