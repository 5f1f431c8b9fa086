"""How many threads NumPy's BLAS may use: a block-scoped limit for training and benchmarking."""

from __future__ import annotations

import contextlib


def blas_threads(threads: int) -> contextlib.AbstractContextManager:
    """Limit NumPy's BLAS (OpenBLAS, MKL, ...) to `threads` threads inside the block; 0 leaves
    the library's default.

    gradflow's models multiply small matrices, where a second BLAS thread gains little; on a
    busy machine a multi-threaded OpenBLAS that waits for a descheduled thread made the cnn's
    15 training epochs take 16-21 s instead of 2.5 s on 2 cores (measured 2026-11-21). Uses
    threadpoolctl, which changes the limit at run time (the OPENBLAS_NUM_THREADS variable only
    counts before NumPy is imported).
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ValueError(f"BLAS threads must be 0 (the library's default) or more, got {threads!r}")
    if threads == 0:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")
