"""CPU heap padding: keep some freed memory for the next step's arrays instead of returning
it to the operating system and faulting it back in.

A training step allocates and frees the same few arrays of megabytes every call. With glibc's
default settings, memory freed at the top of the heap goes back to the kernel at once, so the
next call touches fresh pages: measured on attention at B=8, H=8, T=128 (float32), 2,528 page
faults per forward and backward, 22.9 ms against 16.8 ms without them (torch: 15.9 ms). glibc's
M_TOP_PAD keeps up to that much free memory at the top of the heap: with 64 MiB the faults are
0. The cost is that a gradflow process may hold up to 64 MiB it has freed. Setting it turns
off glibc's dynamic mmap threshold, so pad_heap also sets the mmap and trim thresholds where
the dynamic rule would take them (32 and 64 MiB): left at their 128 KiB start, torch's steps
in the same process faulted 3x as many pages (its layer_norm 1.5 -> 3.5 ms).

Applied once, when gradflow is imported, on Linux with glibc only. GRADFLOW_HEAP_PAD_MIB sets
the size (0 leaves glibc's default); glibc's own MALLOC_TOP_PAD_ in the environment wins.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters
DEFAULT_MIB = 64
DYNAMIC_MMAP_MAX = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
# what steady_heap sets (benchmarks only)
STEADY_HEAP = {M_MMAP_THRESHOLD: 32 << 20, M_TRIM_THRESHOLD: 256 << 20, M_TOP_PAD: 64 << 20}


def pad_heap(environ: dict | None = None) -> int:
    """Set glibc's top pad from GRADFLOW_HEAP_PAD_MIB (default 64); returns the bytes set, 0
    when nothing was changed (not glibc, turned off, or MALLOC_TOP_PAD_ already set)."""
    environ = os.environ if environ is None else environ
    if not sys.platform.startswith("linux") or "MALLOC_TOP_PAD_" in environ:
        return 0
    text = environ.get("GRADFLOW_HEAP_PAD_MIB", str(DEFAULT_MIB))
    try:
        mib = int(text)
    except ValueError:
        raise ValueError(
            f"GRADFLOW_HEAP_PAD_MIB must be a whole number of MiB (0 turns padding off), "
            f"got {text!r}"
        ) from None
    if mib <= 0:
        return 0
    mallopt = _mallopt()
    if mallopt is None:
        return 0
    size = min(mib, 1024) << 20
    if mallopt(M_TOP_PAD, size) != 1:
        return 0
    # Any mallopt of these turns off glibc's dynamic mmap threshold, which otherwise rises to
    # the size of freed mmapped blocks (up to 32 MiB, trim threshold twice that): left at its
    # 128 KiB start, every larger allocation of other libraries in the process (torch's 4 MiB
    # tensors) would be mapped and faulted in afresh (1,318 faults a layer_norm step against
    # 390). So set the two to where the dynamic rule takes them.
    mallopt(M_MMAP_THRESHOLD, DYNAMIC_MMAP_MAX)
    mallopt(M_TRIM_THRESHOLD, 2 * DYNAMIC_MMAP_MAX)
    return size


def _mallopt():
    """glibc's mallopt from the process's own symbols, or None (not Linux, no mallopt)."""
    if not sys.platform.startswith("linux"):
        return None
    try:  # the process's own symbols, libc's among them (find_library would run ldconfig)
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a C library without mallopt
        return None
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt


def steady_heap() -> bool:
    """For a benchmark process: keep freed memory in the heap (glibc only): arrays up to 32
    MiB come from the heap, not from mmap, and up to 256 MiB of free heap stays mapped. Then
    after a warm-up step neither gradflow's nor torch's steps fault pages in, and CPU times
    compare computation. Without it, glibc's adaptive thresholds gave torch (whose CPU
    allocator is malloc) 0 to 4,000 faults a step at 2^20 elements depending on what ran
    before in the process, which moved its times 2-4x between runs. Returns whether glibc
    took all three settings. `gradflow bench` on the CPU and benchmarks/op_sweep_cpu.py call
    it; gradflow itself only pads the heap's top (pad_heap)."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return all(mallopt(parameter, value) == 1 for parameter, value in STEADY_HEAP.items())
