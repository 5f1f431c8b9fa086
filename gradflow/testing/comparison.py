"""``assert_close``: PyTorch's tensor comparison for tests (``torch.testing.assert_close``)."""

from __future__ import annotations

from typing import Any

import numpy

# PyTorch's default tolerances per dtype (rtol, atol).
_TOLERANCES = {
    numpy.dtype("float16"): (1e-3, 1e-5),
    numpy.dtype("float32"): (1.3e-6, 1e-5),
    numpy.dtype("float64"): (1e-7, 1e-7),
}


def assert_close(
    actual: Any,
    expected: Any,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    equal_nan: bool = False,
    check_dtype: bool = True,
    check_device: bool = True,
    msg: str | None = None,
    **ignored: Any,
) -> None:
    """Raise AssertionError unless |actual - expected| <= atol + rtol * |expected| elementwise
    (tolerances by dtype as PyTorch's; 0 for integers), with matching shapes and dtypes."""
    from gradflow.tensor import Tensor

    if (rtol is None) != (atol is None):
        raise ValueError("assert_close: pass both rtol and atol, or neither")
    if isinstance(actual, list | tuple) and isinstance(expected, list | tuple):
        if len(actual) != len(expected):
            raise AssertionError(f"sequences differ in length: {len(actual)} != {len(expected)}")
        for a, e in zip(actual, expected):
            assert_close(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan, check_dtype=check_dtype)
        return
    a = _host(actual)
    e = _host(expected)
    both = isinstance(actual, Tensor) and isinstance(expected, Tensor)
    if both and check_device and actual.device != expected.device:
        raise AssertionError(f"devices differ: {actual.device} != {expected.device}")
    if a.shape != e.shape:
        raise AssertionError(f"shapes differ: {a.shape} != {e.shape}")
    if check_dtype and a.dtype != e.dtype:
        raise AssertionError(f"dtypes differ: {a.dtype} != {e.dtype}")
    if rtol is None:
        rtol, atol = _TOLERANCES.get(a.dtype, (0.0, 0.0))
    ok = numpy.isclose(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if not ok.all():
        bad = int((~ok).sum())
        diff = numpy.abs(a.astype(numpy.float64) - e.astype(numpy.float64))
        raise AssertionError(
            msg
            or f"Tensor-likes are not close! Mismatched elements: {bad} / {ok.size}; greatest "
            f"absolute difference: {numpy.nanmax(diff)} (up to {atol} allowed, rtol {rtol})"
        )


def _host(x: Any) -> numpy.ndarray:
    from gradflow.backend import Device, move_array
    from gradflow.tensor import Tensor

    if isinstance(x, Tensor):
        return numpy.asarray(move_array(x.array, Device("cpu")))
    return numpy.asarray(x)
