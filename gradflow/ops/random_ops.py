"""Random fills and sampling: normal_, uniform_, exponential_, bernoulli_, random_ (in place)
and bernoulli, multinomial, drawn from gradflow's seeded generator of the tensor's device
(``manual_seed`` makes them reproducible; ``generator=`` picks another stream).

The fills write as PyTorch's do: outside the graph (a write into a tensor with history is
recorded through ``Tensor._write``, so its gradient is zero), and a leaf that requires grad
must be filled under ``no_grad``. Nothing here is differentiable.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow.backend import get_array_module, is_cuda_array
from gradflow.random import Generator, seed_for
from gradflow.tensor import Tensor


def _draw(t: Tensor, generator: Generator | None, method: str, *args: Any, **kw: Any) -> Any:
    """rng.<method>(*args, **kw) from the generator of t's device, on that device."""
    rng = seed_for(generator, t.device)
    if is_cuda_array(t.array):
        with t.array.device:
            return getattr(rng, method)(*args, **kw)
    return getattr(rng, method)(*args, **kw)


def _float_draw_dtype(t: Tensor) -> Any:
    """The dtype NumPy/CuPy draw in: t's float32/float64, float32 for float16 (cast after)."""
    return t.dtype if t.dtype in (numpy.float32, numpy.float64) else numpy.float32


def _require_float(t: Tensor, what: str) -> None:
    if t.dtype.kind != "f":
        raise RuntimeError(
            f"{what}: expected a floating-point tensor, got {t.dtype}; call .float() first"
        )


def _fill(t: Tensor, what: str, values: Any) -> Tensor:
    """Write values (an array of t's shape) into t through the in-place machinery."""
    return t._write(what, Ellipsis, values.astype(t.dtype, copy=False))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, *, generator: Any = None) -> Tensor:
    """Fill t with samples of N(mean, std^2)."""
    _require_float(t, "normal_")
    if std < 0:
        raise RuntimeError(f"normal_: expects std >= 0.0, but found std {std}")
    values = _draw(t, generator, "standard_normal", t.shape, dtype=_float_draw_dtype(t))
    if std != 1:
        values *= values.dtype.type(std)
    if mean != 0:
        values += values.dtype.type(mean)
    return _fill(t, "normal_", values)


def uniform_(t: Tensor, from_: float = 0.0, to: float = 1.0, *, generator: Any = None) -> Tensor:
    """Fill t with samples of the uniform distribution on [from, to)."""
    _require_float(t, "uniform_")
    if from_ > to:
        raise RuntimeError(
            f"uniform_: expects to return a [from, to) range, but found from={from_} > to={to}"
        )
    values = _draw(t, generator, "random", t.shape, dtype=_float_draw_dtype(t))
    if to - from_ != 1:
        values *= values.dtype.type(to - from_)
    if from_ != 0:
        values += values.dtype.type(from_)
    return _fill(t, "uniform_", values)


def exponential_(t: Tensor, lambd: float = 1.0, *, generator: Any = None) -> Tensor:
    """Fill t with samples of the exponential distribution of rate lambd (mean 1 / lambd)."""
    _require_float(t, "exponential_")
    if not lambd > 0:
        raise RuntimeError(f"exponential_: expects lambda > 0.0, but found lambda={lambd}")
    values = _draw(t, generator, "standard_exponential", t.shape)
    return _fill(t, "exponential_", values / lambd)


def bernoulli_(t: Tensor, p: Any = 0.5, *, generator: Any = None) -> Tensor:
    """Fill t with 1 (probability p, a number or a tensor broadcast to t) or 0."""
    if isinstance(p, Tensor):
        probs = p.array
        if probs.dtype.kind != "f":
            raise RuntimeError(f"bernoulli_: p must be a floating-point tensor, got {p.dtype}")
    else:
        if not 0 <= p <= 1:
            raise RuntimeError(f"bernoulli_: expects p to be in [0, 1], but got p={p}")
        probs = p
    u = _draw(t, generator, "random", t.shape, dtype=numpy.float64)
    return _fill(t, "bernoulli_", u < probs)


def random_(t: Tensor, from_: int = 0, to: int | None = None, *, generator: Any = None) -> Tensor:
    """Fill t with integers drawn uniformly from [from, to); ``random_(to)`` is [0, to). Without
    `to` the range is [0, 2^mantissa] for floats and [0, max) for integer dtypes (PyTorch's
    includes max itself)."""
    if to is None and from_ != 0:
        from_, to = 0, from_  # random_(to), as PyTorch
    if to is None:
        if t.dtype.kind == "f":
            to = 2 ** numpy.finfo(t.dtype).nmant + 1
        elif t.dtype.kind == "b":
            to = 2
        else:
            to = int(numpy.iinfo(t.dtype).max)  # exclusive: 2^63 itself overflows int64
    if from_ >= to:
        raise RuntimeError(
            f"random_: expects 'from' to be less than 'to', but got from={from_} >= to={to}"
        )
    values = _draw(t, generator, "integers", from_, to, size=t.shape, dtype=numpy.int64)
    return _fill(t, "random_", values)


def bernoulli(input: Tensor, p: float | None = None, *, generator: Any = None) -> Tensor:
    """A tensor of input's shape and dtype holding 1 with probability input (elementwise), or
    p when given, else 0."""
    if not isinstance(input, Tensor):
        raise TypeError(f"bernoulli: expected a Tensor, got {type(input).__name__}")
    _require_float(input, "bernoulli")
    out = Tensor._wrap(get_array_module(input.array).empty_like(input.array))
    return bernoulli_(out, input if p is None else p, generator=generator)


def multinomial(
    input: Tensor, num_samples: int, replacement: bool = False, *, generator: Any = None
) -> Tensor:
    """Category indices (int64) drawn from each row of `input` (1-D or 2-D, non-negative
    weights, not necessarily normalized): num_samples per row, with or without replacement."""
    if not isinstance(input, Tensor):
        raise TypeError(f"multinomial: expected a Tensor, got {type(input).__name__}")
    if input.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got {input.ndim} dims")
    _require_float(input, "multinomial")
    if not isinstance(num_samples, int) or num_samples <= 0:
        raise RuntimeError(f"multinomial: cannot sample {num_samples!r} (<= 0) samples")
    categories = input.shape[-1]
    if not replacement and num_samples > categories:
        raise RuntimeError(
            f"multinomial: cannot sample n_sample ({num_samples}) > prob_dist.size(-1) "
            f"({categories}) samples without replacement"
        )
    xp = get_array_module(input.array)
    w = input.array.reshape(-1, categories).astype(numpy.float64)
    # One host sync for both checks, as PyTorch's own checks make.
    bad, empty = (
        bool(v)
        for v in xp.stack([(~(w >= 0) | xp.isinf(w)).any(), (w.sum(-1) <= 0).any()]).tolist()
    )
    if bad:
        raise RuntimeError(
            "multinomial: probability tensor contains either `inf`, `nan` or element < 0"
        )
    if empty:
        raise RuntimeError(
            "multinomial: invalid multinomial distribution (sum of probabilities <= 0)"
        )
    rows = w.shape[0]
    if replacement:
        cdf = xp.cumsum(w, axis=-1)
        cdf /= cdf[:, -1:]
        u = _draw(input, generator, "random", (rows, num_samples), dtype=numpy.float64)
        # the first category whose cumulative weight exceeds u (a comparison per category:
        # no per-row searchsorted on cuda)
        index = (cdf[:, None, :] <= u[:, :, None]).sum(axis=-1)
        index = xp.minimum(index, categories - 1)  # u just under 1 with rounding in cdf
    else:
        # Exponential races: category i finishes at E_i / w_i; the first num_samples to finish
        # are a draw without replacement in proportion to the weights.
        e = _draw(input, generator, "standard_exponential", (rows, categories))
        with numpy.errstate(divide="ignore"):
            keys = xp.where(w > 0, e / w, math.inf)
        index = xp.argsort(keys, axis=-1)[:, :num_samples]
    index = index.astype(numpy.int64, copy=False)
    return Tensor._wrap(index if input.ndim == 2 else index.reshape(num_samples))
