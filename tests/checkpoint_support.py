"""Shared by the checkpoint tests: deep equality of what gradflow.load returns."""

from __future__ import annotations

from typing import Any

import numpy

import gradflow as gf


def assert_same(a: Any, b: Any, nan_equal: bool = False) -> None:
    """Assert that two loaded objects are equal, down to dtypes, shapes, devices, requires_grad
    and container types; with nan_equal, a float NaN equals a float NaN."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, gf.Tensor):
        assert (a.dtype, a.shape, a.device, a.requires_grad) == (
            b.dtype,
            b.shape,
            b.device,
            b.requires_grad,
        )
        assert numpy.array_equal(a.cpu().detach().numpy(), b.cpu().detach().numpy())
    elif isinstance(a, numpy.ndarray | numpy.generic):
        assert a.dtype == b.dtype and numpy.array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key], nan_equal)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y, nan_equal)
    else:
        assert a == b or (nan_equal and a != a and b != b), (a, b)
