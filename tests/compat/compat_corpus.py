"""The corpus's machinery: the @snippet registry and the comparison of what a snippet returns
under torch and under gradflow.

A snippet is everyday PyTorch user code written once as ``def name(torch): ...``; the test
calls it with the real ``torch`` module and with ``gradflow`` and compares the results after
`normalize` (tensors to NumPy arrays, dtypes and devices to their names, Size to tuples).
Snippets reach submodules through the parameter (``torch.utils.data.DataLoader``), since a
``from torch.utils.data import ...`` inside one would import the real torch under both runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy


@dataclass(frozen=True)
class Snippet:
    name: str
    run: Callable
    compare: bool  # False: the values depend on the random streams; only both must run
    rtol: float
    atol: float


SNIPPETS: list[Snippet] = []


def snippet(fn: Callable | None = None, *, compare: bool = True, rtol=1e-5, atol=1e-6):
    """Register `fn` (``def name(torch)``) in the corpus."""

    def register(fn: Callable) -> Callable:
        SNIPPETS.append(Snippet(fn.__name__, fn, compare, rtol, atol))
        return fn

    return register(fn) if fn is not None else register


def normalize(value):
    """What a snippet returned, in terms both frameworks share."""
    kind = type(value)
    module, name = kind.__module__, kind.__name__
    if name in ("Tensor", "Parameter") or (name.endswith("Tensor") and hasattr(value, "detach")):
        array = value.detach().cpu().numpy()
        return numpy.array(array)  # a copy: later in-place changes don't reach it
    if name == "Size":
        return ("Size", tuple(int(v) for v in value))
    if (name == "dtype" and module.startswith("torch")) or isinstance(value, numpy.dtype):
        return ("dtype", str(value).removeprefix("torch.").removeprefix("dtype(").strip("')"))
    if name == "device":
        return ("device", str(value))
    if name == "Device" and module.startswith("gradflow"):
        return ("device", str(value))
    if isinstance(value, numpy.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):  # namedtuples (torch.return_types) included
        return [normalize(v) for v in value]
    return value


def assert_same(got, expected, rtol: float, atol: float, where: str = "result") -> None:
    """gradflow's normalized result `got` matches torch's `expected`."""
    if isinstance(expected, numpy.ndarray):
        assert isinstance(got, numpy.ndarray), f"{where}: expected an array, got {got!r}"
        assert got.shape == expected.shape, f"{where}: shape {got.shape} != {expected.shape}"
        assert got.dtype == expected.dtype, f"{where}: dtype {got.dtype} != {expected.dtype}"
        if expected.dtype.kind in "fc":
            numpy.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=where)
        else:
            numpy.testing.assert_array_equal(got, expected, err_msg=where)
        return
    if isinstance(expected, dict):
        assert isinstance(got, dict), f"{where}: expected a dict, got {got!r}"
        assert list(got) == list(expected), f"{where}: keys {list(got)} != {list(expected)}"
        for key in expected:
            assert_same(got[key], expected[key], rtol, atol, f"{where}[{key!r}]")
        return
    if isinstance(expected, list):
        assert isinstance(got, list), f"{where}: expected a sequence, got {got!r}"
        assert len(got) == len(expected), f"{where}: length {len(got)} != {len(expected)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_same(g, e, rtol, atol, f"{where}[{i}]")
        return
    assert type(got) is type(expected), (
        f"{where}: {type(got).__name__} {got!r} where torch gives {type(expected).__name__} "
        f"{expected!r}"
    )
    if isinstance(expected, float) and not math.isnan(expected):
        assert math.isclose(got, expected, rel_tol=rtol, abs_tol=atol), (
            f"{where}: {got!r} != {expected!r}"
        )
    elif isinstance(expected, float):
        assert math.isnan(got), f"{where}: {got!r} != nan"
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"
