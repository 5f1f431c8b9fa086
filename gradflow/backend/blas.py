"""Two BLAS routines NumPy does not expose, on the CPU: a GEMM that adds into its output
(``out += a @ b``, cblas_?gemm with beta = 1) and a transposing copy (cblas_?omatcopy), from the
BLAS NumPy itself loaded, called through ctypes.

- NumPy's matmul always overwrites its output, so a sum of products (a conv's kernel offsets,
  gradflow/ops/conv_offsets.py) costs a product into a scratch buffer and one more pass adding
  it: at (16, 64, 32, 32) with a 3x3 kernel those adds were 17% of the forward. With beta = 1
  BLAS adds each product where it writes it, while the block is in cache.
- NumPy copies a transposed array element by element across its strides: 3.7 ms for a
  (1024, 1024) float32 ``a.T.copy()``, against 0.57 ms for OpenBLAS's omatcopy (SIMD blocks),
  and 1.1 against 0.42 ms to lay a (16, 64, 32, 32) input out channels last. ``copy_into`` and
  ``ascontiguous`` take that route for float32 layouts that are a batch of transposed matrices
  (a ``.t()``, ``transpose(-1, -2)``, NCHW <-> NHWC) of large enough matrices.

The BLAS is the one NumPy loaded (threadpoolctl names its file, so its thread limits apply), and
only OpenBLAS, whose ``openblas_get_config`` says the width of its integers: the wheels' ILP64
``scipy_cblas_sgemm64_`` / ``cblas_sgemm64_`` and plain ``cblas_sgemm`` in either width. Any
other BLAS (MKL, Accelerate), a failed self-test at loading, GRADFLOW_CBLAS=0 in the environment,
or operands BLAS cannot read in place take NumPy's matmul and an add (the same values up to
the rounding of the last add) and NumPy's copy (the same bits); tests compare the two.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import os
from collections.abc import Iterator
from typing import Any

import numpy

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_FLOATS = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
# (routine, BLAS type letter, dtype) looked up; float64 keeps NumPy's copy (see MIN_VALUES)
_ROUTINES = (("gemm", "s", numpy.float32), ("gemm", "d", numpy.float64),
             ("omatcopy", "s", numpy.float32))  # fmt: skip
# functions: {(routine, dtype): ctypes function}; int_max: the largest size or stride its
# integers hold; why: the reason the route is off
_loaded: dict = {"functions": None, "int_max": 0, "why": None}
# Per thread and asyncio task, as compiled.disabled: turning the route off in one thread never
# changes what another runs.
_disabled: contextvars.ContextVar[bool] = contextvars.ContextVar("cblas_off", default=False)


def _openblas_file() -> tuple[str | None, str]:
    """The file of a loaded OpenBLAS, NumPy's own when several are loaded (torch or SciPy may
    bring theirs), or None and why not."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None, "off (threadpoolctl is absent)"
    pools = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
    openblas = [pool for pool in pools if pool.get("internal_api") == "openblas"]
    if not openblas:
        names = ", ".join(sorted({str(pool.get("internal_api")) for pool in pools})) or "none"
        return None, f"off (no OpenBLAS loaded; BLAS: {names})"
    numpy_dir = os.path.dirname(os.path.dirname(numpy.__file__))
    own = [pool for pool in openblas if str(pool.get("filepath", "")).startswith(numpy_dir)
           and "numpy" in str(pool.get("filepath", ""))]  # fmt: skip
    return (own or openblas)[0].get("filepath"), ""


def _symbols(lib: Any) -> tuple[dict, int] | None:
    """({(routine, dtype): function} with ctypes signatures, routine "gemm" or "omatcopy", and
    the largest value its integers hold) for the names this OpenBLAS exports; None when it
    exports none of them."""
    for prefix, suffix in (("scipy_", "64_"), ("", "64_"), ("", "")):
        try:
            functions = {
                (routine, numpy.dtype(dtype)): getattr(lib, f"{prefix}cblas_{t}{routine}{suffix}")
                for routine, t, dtype in _ROUTINES
            }
            config = getattr(lib, f"{prefix}openblas_get_config{suffix}")
        except AttributeError:
            continue
        config.restype = ctypes.c_char_p
        wide = suffix == "64_" or b"USE64BITINT" in (config() or b"")
        i, p, e = ctypes.c_int64 if wide else ctypes.c_int32, ctypes.c_void_p, ctypes.c_int
        for (routine, dtype), fn in functions.items():
            r = ctypes.c_float if dtype == numpy.float32 else ctypes.c_double
            fn.restype = None
            fn.argtypes = (
                [e, e, e, i, i, i, r, p, i, p, i, r, p, i]  # order, transa, transb, m, n, k, ...
                if routine == "gemm"
                else [e, e, i, i, r, p, i, p, i]  # order, trans, rows, cols, alpha, a, lda, b, ldb
            )
        return functions, 2**63 - 1 if wide else 2**31 - 1
    return None


def _self_test() -> bool:
    """Whether the loaded functions add a small product of each dtype and copy a transposed
    float32 matrix correctly, with strided operands."""
    rng = numpy.random.default_rng(0)
    for dtype in _FLOATS:
        a = rng.standard_normal((5, 3)).astype(dtype)
        b = rng.standard_normal((4, 3)).astype(dtype).T
        out = rng.standard_normal((6, 7)).astype(dtype)[1:, 2:6]
        expected = out + a @ b
        if not _gemm(out, a, b) or not numpy.allclose(out, expected, rtol=1e-5, atol=1e-5):
            return False
    src = rng.standard_normal((9, 7)).astype(numpy.float32)[1:, 2:].T
    dst = numpy.zeros((5, 10), dtype=numpy.float32)
    if not _transpose(dst[:, 1:9], src) or not numpy.array_equal(dst[:, 1:9], src):
        return False
    return not (dst[:, 0].any() or dst[:, 9].any())


def _load() -> dict | None:
    """{(routine, dtype): function}, looked up once; None (with the reason kept) when the
    route is off."""
    if _loaded["functions"] is None and _loaded["why"] is None:
        if os.environ.get("GRADFLOW_CBLAS", "1") == "0":
            _loaded["why"] = "off (GRADFLOW_CBLAS=0)"
            return None
        path, why = _openblas_file()
        found = None
        if path is not None:
            try:
                found = _symbols(ctypes.CDLL(path))
            except OSError as exc:
                why = f"off ({exc})"
            else:
                why = "" if found else f"off (no cblas gemm exported by {path})"
        if found is not None:
            _loaded["functions"], _loaded["int_max"] = found
            if not _self_test():
                _loaded["functions"], why = None, "off (the cblas routines failed their self-test)"
        _loaded["why"] = why or None
    return _loaded["functions"]


def _operand(m: Any) -> tuple[int, int] | None:
    """(transpose flag, leading dimension) of a 2-D operand BLAS reads in place: rows or
    columns contiguous; None when neither."""
    rows, cols = m.shape
    size = m.itemsize
    s0, s1 = m.strides
    if s0 % size or s1 % size:
        return None
    s0, s1 = s0 // size, s1 // size
    if (s1 == 1 or cols == 1) and s0 >= max(cols, 1):
        return _NO_TRANS, s0
    if (s0 == 1 or rows == 1) and s1 >= max(rows, 1):
        return _TRANS, s1
    return None


def _gemm(out: Any, a: Any, b: Any) -> bool:
    """out += a @ b through cblas when the operands allow it in place; False when they don't.
    Called once per kernel offset and block by the convs: its checks are kept cheap."""
    dtype = out.dtype
    fn = (_loaded["functions"] or {}).get(("gemm", dtype))
    if fn is None or a.dtype != dtype or b.dtype != dtype:  # _FLOATS are native byte order
        return False
    if not (out.flags.writeable and out.flags.aligned and a.flags.aligned and b.flags.aligned):
        return False
    pa, pb, pc = _operand(a), _operand(b), _operand(out)
    if pa is None or pb is None or pc is None or pc[0] != _NO_TRANS:
        return False
    m, n = out.shape
    k = a.shape[1]
    if max(m, n, k, pa[1], pb[1], pc[1]) > _loaded["int_max"]:
        return False
    if numpy.may_share_memory(out, a) or numpy.may_share_memory(out, b):
        return False
    fn(_ROW_MAJOR, pa[0], pb[0], m, n, k, 1.0, a.ctypes.data, pa[1], b.ctypes.data, pb[1], 1.0,
       out.ctypes.data, pc[1])  # fmt: skip
    return True


def addmm_(out: Any, a: Any, b: Any) -> Any:
    """out += a @ b for 2-D NumPy arrays a [M, K], b [K, N], out [M, N] of one float dtype;
    returns out. One cblas call where it can (see the module docstring), else matmul and an
    add."""
    if a.shape[1] != b.shape[0] or out.shape != (a.shape[0], b.shape[1]):
        raise ValueError(
            f"addmm_: shapes {a.shape} @ {b.shape} do not give the output's {out.shape}"
        )
    if 0 in out.shape or a.shape[1] == 0:
        return out
    if not _disabled.get() and _load() is not None and _gemm(out, a, b):
        return out
    out += a @ b
    return out


def _transpose(dst: Any, src: Any) -> bool:
    """dst[...] = src for 2-D arrays, src column-major (a transposed row-major matrix), dst
    row-major, through omatcopy; False (nothing written) when the layouts are not those."""
    fn = (_loaded["functions"] or {}).get(("omatcopy", dst.dtype))
    if fn is None or src.dtype != dst.dtype or src.shape != dst.shape or not dst.flags.writeable:
        return False
    rows, cols = dst.shape
    sa, sb = _operand(src), _operand(dst)
    if sa is None or sb is None or sa[0] != _TRANS or sb[0] != _NO_TRANS:
        return False
    if not (src.dtype.isnative and src.flags.aligned and dst.flags.aligned):
        return False
    if numpy.may_share_memory(dst, src) or max(rows, cols, sa[1], sb[1]) > _loaded["int_max"]:
        return False
    # src is the row-major matrix src.T [cols, rows] with leading dimension sa[1]
    fn(_ROW_MAJOR, _TRANS, cols, rows, 1.0, src.ctypes.data, sa[1], dst.ctypes.data, sb[1])
    return True


# The smallest matrix (rows and columns) and the fewest values per omatcopy call: below them
# NumPy's copy wins over a ctypes call per matrix (float32, one thread: even at 128x128, 5x
# faster at 512x512). float64 keeps NumPy's copy: OpenBLAS's domatcopy lost at (2048, 64) and
# (4096, 16), 0.26 against 0.14 ms.
MIN_SIDE, MIN_VALUES = 8, 16384


def _coalesced(shape: tuple, strides: tuple) -> tuple[list, list]:
    """shape and strides (in elements) with unit axes dropped and neighbours that step as one
    axis merged."""
    dims: list = []
    for n, s in zip(shape, strides):
        if n == 1:
            continue
        if dims and dims[-1][1] == s * n:
            dims[-1] = (dims[-1][0] * n, s)
        else:
            dims.append((n, s))
    return [n for n, _ in dims], [s for _, s in dims]


def _matrices(src: Any) -> Any:
    """src viewed as a batch of matrices [..., A, B] that each step 1 along A (transposed
    row-major [B, A] ones omatcopy copies in place), when src is a float32 NumPy array whose
    layout is one and whose matrices are large enough to pay; None otherwise. Checked before
    any destination is allocated."""
    if (
        _disabled.get() or type(src) is not numpy.ndarray or src.dtype != numpy.float32
        or src.size < MIN_VALUES or _load() is None
    ):  # fmt: skip
        return None
    if any(s % src.itemsize or s == 0 for s in src.strides):  # a broadcast has no transpose
        return None
    shape, strides = _coalesced(src.shape, tuple(s // src.itemsize for s in src.strides))
    if len(shape) < 2 or strides[-2] != 1 or min(shape[-2:]) < MIN_SIDE:
        return None
    if shape[-2] * shape[-1] < MIN_VALUES or not strides[-1] >= shape[-2]:
        return None  # small matrices, or columns that overlap or run backwards
    return numpy.lib.stride_tricks.as_strided(
        src, tuple(shape), tuple(s * src.itemsize for s in strides), writeable=False
    )


def copy_into(dst: Any, src: Any) -> bool:
    """dst[...] = src for float32 NumPy arrays of one shape, dst C-contiguous, when src
    is a batch of transposed matrices large enough for omatcopy (see the module docstring);
    False otherwise, and the caller copies with NumPy."""
    if type(dst) is not numpy.ndarray or src.shape != dst.shape or not dst.flags.c_contiguous:
        return False
    matrices = _matrices(src)
    if matrices is None:
        return False
    dst_m = dst.reshape(matrices.shape)
    lead = matrices.shape[:-2]
    return all(_transpose(dst_m[index], matrices[index]) for index in numpy.ndindex(*lead))


def ascontiguous(a: Any) -> Any:
    """a C-contiguous array equal to the NumPy array a: a itself when it already is, a copy
    through omatcopy when its layout allows (copy_into), else numpy.ascontiguousarray. Other
    arrays (CuPy's) take their module's ascontiguousarray."""
    if type(a) is not numpy.ndarray:
        from gradflow.backend import get_array_module

        return get_array_module(a).ascontiguousarray(a)
    if a.flags.c_contiguous:
        return a
    if _matrices(a) is not None:
        out = numpy.empty(a.shape, dtype=a.dtype)
        if copy_into(out, a):
            return out
    return numpy.ascontiguousarray(a)


def copy(a: Any) -> Any:
    """A C-contiguous copy of the array a (always a new array), through omatcopy when its
    layout allows (copy_into); no buffer is allocated for a layout it does not take."""
    if type(a) is numpy.ndarray and not a.flags.c_contiguous and _matrices(a) is not None:
        out = numpy.empty(a.shape, dtype=a.dtype)
        if copy_into(out, a):
            return out
    return a.copy()


def status() -> str:
    """One line for benchmark records: the routines taken, or why the route is off."""
    if _load() is None:
        return _loaded["why"]
    return "OpenBLAS gemm (beta = 1), omatcopy"


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Inside the block addmm_ takes matmul and an add and copy_into NumPy's copy, in this
    thread or task (tests compare the two; benchmarks time them)."""
    token = _disabled.set(True)
    try:
        yield
    finally:
        _disabled.reset(token)
