"""The stand-in's ``cupy.random``: CuPy's names, a different stream from NumPy's.

``default_rng(seed)`` draws from NumPy's Philox, not the PCG64 gradflow uses on the CPU: CuPy
draws from XORWOW, so a test that expects a cuda run to repeat a cpu run's random numbers is
wrong, and the stand-in shows it. Its Generator has only the methods CuPy's has (no
``normal``, ``permutation``, ``choice``, ``shuffle``: see cupy/random/_generator_api.pyx).
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from gradflow.testing.standin._array import _new, ndarray, unwrap
from gradflow.testing.standin._counts import COUNTS

_FLOAT_METHODS = ("random", "standard_normal", "standard_exponential", "standard_gamma")


class Generator:
    """``cupy.random.Generator`` over NumPy's Philox bit generator."""

    def __init__(self, bit_generator: Any) -> None:
        self._rng = np.random.Generator(bit_generator)

    def _draw(self, method: str, *args: Any, dtype: Any = None, **kwargs: Any) -> ndarray:
        values = getattr(self._rng, method)(
            *unwrap(args), **{k: unwrap(v) for k, v in kwargs.items()}
        )
        COUNTS.kernels += 1
        out = np.asarray(values)
        return _new(out if dtype is None else out.astype(dtype, copy=False))

    def random(self, size: Any = None, dtype: Any = np.float64, out: Any = None) -> ndarray:
        return self._fill(self._draw("random", size, dtype=dtype), out)

    def standard_normal(
        self, size: Any = None, dtype: Any = np.float64, out: Any = None
    ) -> ndarray:
        return self._fill(self._draw("standard_normal", size, dtype=dtype), out)

    def uniform(
        self, low: Any = 0.0, high: Any = 1.0, size: Any = None, dtype: Any = np.float64
    ) -> ndarray:
        return self._draw("uniform", low, high, size, dtype=dtype)

    def integers(
        self,
        low: Any,
        high: Any = None,
        size: Any = None,
        dtype: Any = np.int64,
        endpoint: bool = False,
    ) -> ndarray:
        return self._draw("integers", low, high, size, dtype=dtype, endpoint=endpoint)

    def binomial(self, n: Any, p: Any, size: Any = None) -> ndarray:
        return self._draw("binomial", n, p, size)

    def exponential(self, scale: Any = 1.0, size: Any = None) -> ndarray:
        return self._draw("exponential", scale, size)

    def standard_exponential(
        self, size: Any = None, dtype: Any = np.float64, method: str = "inv", out: Any = None
    ) -> ndarray:
        return self._fill(self._draw("standard_exponential", size, dtype=dtype), out)

    def poisson(self, lam: Any = 1.0, size: Any = None) -> ndarray:
        return self._draw("poisson", lam, size)

    def gamma(self, shape: Any, scale: Any = 1.0, size: Any = None) -> ndarray:
        return self._draw("gamma", shape, scale, size)

    def beta(self, a: Any, b: Any, size: Any = None, dtype: Any = np.float64) -> ndarray:
        return self._draw("beta", a, b, size, dtype=dtype)

    @staticmethod
    def _fill(values: ndarray, out: Any) -> ndarray:
        if out is None:
            return values
        out._a[...] = values._a
        return out


def default_rng(seed: Any = None) -> Generator:
    if isinstance(seed, Generator):
        return seed
    return Generator(np.random.Philox(seed))


def _legacy(name: str) -> Any:
    """A module-level cupy.random function (the RandomState API) on a Philox stream."""

    def function(*args: Any, **kwargs: Any) -> Any:
        dtype = kwargs.pop("dtype", None)
        values = getattr(_state[0], name)(
            *unwrap(args), **{k: unwrap(v) for k, v in kwargs.items()}
        )
        COUNTS.kernels += 1
        out = np.asarray(values)
        return _new(out if dtype is None else out.astype(dtype, copy=False))

    function.__name__ = name
    return function


_state = [np.random.RandomState(np.random.MT19937(np.random.SeedSequence(1234)))]


def seed(value: Any = None) -> None:
    _state[0] = np.random.RandomState(value)


def build(names: frozenset[str]) -> types.ModuleType:
    random = types.ModuleType("cupy.random")
    random.default_rng = default_rng
    random.seed = seed
    random.Generator = Generator  # CuPy binds it lazily (cupy/random/__init__.py, __getattr__)
    for name in names:
        if hasattr(random, name):
            continue
        if callable(getattr(np.random.RandomState, name, None)):
            setattr(random, name, _legacy(name))
    return random


_ = (_FLOAT_METHODS,)
