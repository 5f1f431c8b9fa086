"""Statistics and distances, in PyTorch's names and argument order: nanmedian, nanquantile,
cov, corrcoef, histogram, dist, pdist, renorm.

Most are compositions of differentiable gradflow ops (so they have double backward and run on
CuPy unchanged). PdistL2 is a Function of its own: pdist's Euclidean distances from one matrix
product, cancelling pairs recomputed directly.

Memory: PdistL2 keeps its input, the distances and the pairs' int64 flat indices; nanmedian
keeps its int64 indices (as median); the compositions keep what their parts keep. Integer
results carry no gradient.
"""

from __future__ import annotations

import builtins
import math
import warnings
from collections import namedtuple
from collections.abc import Sequence
from typing import Any

import numpy

from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops import arithmetic as _arith
from gradflow.ops._util import normalize_dim
from gradflow.ops.pointwise_extras import _as, _float, _name, _tensor, _wrap
from gradflow.tensor import Tensor

# torch.return_types' named tuples of these functions
_nanmedian = namedtuple("nanmedian", ["values", "indices"])
_histogram = namedtuple("histogram", ["hist", "bin_edges"])


# ---- statistics --------------------------------------------------------------------------------
def nanmedian(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Any:
    """median ignoring NaN: the lower median of each slice's non-NaN values (NaN, index 0,
    where a slice is all NaN). Without dim, the median of every element (a 0-d tensor)."""
    from gradflow.ops import reduction as _reduction
    from gradflow.ops.indexing import Gather

    input = _tensor(input, "nanmedian")
    if input.dtype.kind == "b":
        raise NotImplementedError("\"median_cpu\" not implemented for 'Bool'")
    xp = get_array_module(input.array)
    if dim is None:
        flat = input.reshape(-1)
        if flat.shape[0] == 0:
            return _wrap(xp.asarray(numpy.nan, input.dtype))
        return nanmedian(flat, 0).values
    d = normalize_dim(dim, input.ndim, "nanmedian")
    if input.ndim > 0:
        _reduction._require_nonempty(input, (d,), "nanmedian")
    a = input.array
    nan = xp.isnan(a) if a.dtype.kind == "f" else None
    if nan is None or input.ndim == 0 or not bool(nan.any()):  # one host sync on cuda
        values, indices = _reduction.median(input, d, keepdim)
        return _nanmedian(values, indices)
    count = a.shape[d] - nan.sum(axis=d, keepdims=True)
    kth = xp.maximum((count - 1) // 2, 0)
    # The stable sort's element at kth, without an argsort: its value v (a sort, NaN last),
    # then the (kth - #{x < v})-th of the elements equal to v (an all-NaN slice: index 0).
    value = xp.take_along_axis(xp.sort(a, axis=d), kth, axis=d)
    with _arith._quiet():
        rank = kth - (a < value).sum(axis=d, keepdims=True)
        seen = xp.cumsum(a == value, axis=d, dtype="int64")
    index = xp.argmax(seen > rank, axis=d, keepdims=True).astype("int64", copy=False)
    values = Gather.apply(input, index, dim=d, op_name="nanmedian")
    if not keepdim:
        values, index = values.squeeze(d), index.squeeze(d)
    return _nanmedian(values, _wrap(index))


def nanquantile(
    input: Tensor,
    q: Any,
    dim: int | None = None,
    keepdim: bool = False,
    *,
    interpolation: str = "linear",
) -> Tensor:
    """quantile over each slice's non-NaN values (NaN where a slice is all NaN)."""
    from gradflow.ops import reduction as _reduction
    from gradflow.ops.indexing import gather
    from gradflow.ops.shape import movedim

    input = _tensor(input, "nanquantile")
    _reduction._check_interpolation(interpolation)
    if input.dtype.kind != "f":
        raise RuntimeError(
            "quantile() input tensor must be either float or double dtype, got "
            f"{input.dtype}; convert with .float()"
        )
    qs = _reduction._quantile_q(q)
    if dim is None:
        source, d = input.reshape(-1), 0
    else:
        d = normalize_dim(dim, input.ndim, "nanquantile")
        source = input.reshape(1) if input.ndim == 0 else input
    if source.shape[d] == 0:
        raise RuntimeError("quantile() input tensor must be non-empty")
    xp = get_array_module(input.array)
    a = source.array
    nan = xp.isnan(a)
    count = (a.shape[d] - nan.sum(axis=d, keepdims=True)).astype("float64")
    order = _wrap(xp.argsort(a, axis=d, kind="stable").astype("int64"))  # NaN last
    ordered = gather(source, d, order)
    q_shape = [1] * source.ndim
    q_shape[d] = qs.size
    pos = xp.asarray(qs.reshape(q_shape)) * xp.maximum(count - 1, 0)
    lo, hi, weight = _reduction._quantile_neighbours(xp, pos, interpolation)
    low = gather(ordered, d, _wrap(lo.astype("int64")))
    high = gather(ordered, d, _wrap(hi.astype("int64")))
    w = _wrap(weight.astype(input.dtype))
    out = _arith.add(low, _arith.mul(w, _arith.sub(high, low)))
    empty = count == 0
    if bool(empty.any()):  # one host sync on cuda
        out = _arith.where(_wrap(xp.broadcast_to(empty, out.shape)), math.nan, out)
    out = movedim(out, d, 0)  # the quantiles first
    if dim is None:
        out = out.reshape(qs.size, *((1,) * input.ndim)) if keepdim else out.reshape(qs.size)
    elif keepdim and input.ndim > 0:
        out = out.unsqueeze(d + 1)
    return out.reshape(out.shape[1:]) if qs.ndim == 0 else out


def cov(
    input: Tensor, *, correction: int = 1, fweights: Tensor | None = None, aweights: Any = None
) -> Tensor:
    """The covariance matrix of the variables in input's rows (observations in its columns; a
    1-D input is one variable), with `correction` (1: Bessel's) and optional integer frequency
    weights and float observation weights per column, as PyTorch and NumPy compute it."""
    from gradflow.ops.linalg import mm

    input = _tensor(input, "cov")
    if input.ndim > 2:
        raise RuntimeError(
            "cov(): expected input to have two or fewer dimensions but got an input with "
            f"{input.ndim} dimensions"
        )
    if input.dtype.kind == "b":
        raise RuntimeError("cov(): bool dtype is not supported for input")
    x = _float(input)
    x = x.reshape(1, -1) if x.ndim < 2 else x
    observations = x.shape[1]
    w = None
    for name, weights, integral in (("fweights", fweights, True), ("aweights", aweights, False)):
        if weights is None:
            continue
        weights = _tensor(weights, "cov", name)
        if weights.ndim > 1:
            raise RuntimeError(
                f"cov(): expected {name} to have one or fewer dimensions but got {name} with "
                f"{weights.ndim} dimensions"
            )
        if (weights.dtype.kind in "iu") != integral or weights.dtype.kind == "b":
            wanted = "integral" if integral else "floating point"
            raise RuntimeError(
                f"cov(): expected {name} to have {wanted} dtype but got {name} with "
                f"{_name(weights.dtype)} dtype"
            )
        if weights.numel() != observations:
            raise RuntimeError(
                f"cov(): expected {name} to have the same numel as there are observations in "
                f"the input but got {weights.numel()} != {observations}"
            )
        if observations and bool((weights.array < 0).any()):
            raise RuntimeError(f"cov(): {name} cannot be negative")
        w = weights if w is None else _arith.mul(w, weights)
    if w is None:
        w_sum = float(observations)
        avg = _arith.div(x.sum(1), w_sum)
        norm_factor: Any = w_sum - correction
    else:
        w = _as(w, x.dtype)
        w_sum = w.sum()
        avg = _arith.div(_arith.mul(x, w).sum(1), w_sum)
        if aweights is not None and correction != 0:
            spread = _arith.div(_arith.mul(w, _as(aweights, x.dtype)).sum(), w_sum)
            norm_factor = _arith.sub(w_sum, _arith.mul(spread, correction))
        else:
            norm_factor = _arith.sub(w_sum, correction)
    if float(norm_factor if not isinstance(norm_factor, Tensor) else norm_factor.item()) <= 0:
        warnings.warn(
            "cov(): degrees of freedom is <= 0. Correction should be strictly less than the "
            "number of observations.",
            UserWarning,
            stacklevel=2,
        )
        norm_factor = 0.0 if not isinstance(norm_factor, Tensor) else norm_factor * 0
    xm = _arith.sub(x, avg.unsqueeze(1))
    c = mm(xm, (xm if w is None else _arith.mul(xm, w)).t())
    with numpy.errstate(divide="ignore", invalid="ignore"):
        return _arith.div(c, norm_factor).squeeze()


def corrcoef(input: Tensor) -> Tensor:
    """The Pearson correlation coefficients of the variables in input's rows, clipped to
    [-1, 1] (cov divided by the outer product of the standard deviations)."""
    from gradflow.ops.unary import sqrt

    c = cov(input)
    if c.ndim == 0:
        return _arith.div(c, c)
    std = sqrt(c.diagonal())
    with numpy.errstate(divide="ignore", invalid="ignore"):
        c = _arith.div(_arith.div(c, std.unsqueeze(1)), std.unsqueeze(0))
    return _arith.clip(c, -1, 1)


def histogram(
    input: Tensor,
    bins: Any,
    *,
    range: Sequence[float] | None = None,
    weight: Tensor | None = None,
    density: bool = False,
) -> Any:
    """The named tuple (hist, bin_edges): counts (or summed weights) of input's elements in
    `bins` equal bins over `range` (input's min and max by default) or between the edges of a
    1-D tensor `bins`; the last bin includes its right edge, elements outside are left out.
    density=True divides by the total and the bin widths. No gradient."""
    input = _tensor(input, "histogram")
    if input.dtype.kind != "f":
        raise NotImplementedError(
            f"\"histogramdd\" not implemented for '{_name(input.dtype)}'; convert with .float()"
        )
    xp = get_array_module(input.array)
    a = input.array.reshape(-1)
    if isinstance(bins, Tensor):
        if bins.ndim != 1 or bins.shape[0] < 1:
            raise RuntimeError("torch.histogram(): bins must be a 1-D tensor of bin edges")
        edges = bins.array.astype(a.dtype, copy=False)
    else:
        if not isinstance(bins, int | numpy.integer) or isinstance(bins, bool) or bins < 1:
            raise RuntimeError(f"torch.histogramdd(): bins must be > 0, but got {bins}")
        if range is not None:
            low, high = (float(v) for v in range)
        elif a.size:
            low, high = float(a.min()), float(a.max())
        else:
            low, high = 0.0, 1.0
        if not (math.isfinite(low) and math.isfinite(high)):
            raise RuntimeError(
                f"torch.histogramdd: dimension 0's range [{low:g}, {high:g}] is not finite"
            )
        if low > high:
            raise RuntimeError(
                f"torch.histogramdd: min should not exceed max, but got min {low:g} max "
                f"{high:g} for dimension 0"
            )
        if low == high:
            low, high = low - 0.5, high + 0.5
        edges = xp.linspace(low, high, int(bins) + 1).astype(a.dtype)
    nbins = edges.shape[0] - 1
    if weight is not None:
        weight = _tensor(weight, "histogram", "weight")
        if tuple(weight.shape) != tuple(input.shape):
            raise RuntimeError(
                f"torch.histogramdd: weight should have the same shape as the input, got "
                f"{tuple(weight.shape)} and {tuple(input.shape)}"
            )
    hist = xp.zeros(builtins.max(nbins, 0), a.dtype)
    if nbins > 0 and a.size:
        inside = (a >= edges[0]) & (a <= edges[-1])
        index = xp.searchsorted(edges, a, side="right") - 1
        index = xp.minimum(index, nbins - 1)[inside]
        w = None if weight is None else weight.array.reshape(-1)[inside].astype(a.dtype)
        hist = xp.bincount(index, weights=w, minlength=nbins).astype(a.dtype)
    if density:
        with numpy.errstate(divide="ignore", invalid="ignore"):
            hist = hist / (hist.sum() * xp.diff(edges))
    return _histogram(_wrap(xp.asarray(hist, a.dtype)), _wrap(xp.array(edges)))


def dist(input: Tensor, other: Tensor, p: float = 2) -> Tensor:
    """The p-norm of input - other (broadcast), a 0-d tensor."""
    from gradflow.ops.norms import vector_norm

    input, other = _tensor(input, "dist"), _tensor(other, "dist", "other")
    for t in (input, other):
        if t.dtype.kind != "f":
            raise RuntimeError(
                "norm(): input dtype should be either floating point or complex. Got "
                f"{_name(t.dtype)} instead."
            )
    return vector_norm(_arith.sub(input, other), p)


class PdistL2(Function):
    """The Euclidean distances of pdist from the Gram matrix (|a|^2 + |b|^2 - 2 a.b, one
    matrix product), with the pairs where that form cancels (d^2 under a quarter of
    |a|^2 + |b|^2) recomputed from their differences, so every distance has the accuracy of
    the direct form (PyTorch's pdist), duplicates exactly 0. The gradient is
    x * G.sum(1) - G @ x with G the symmetric matrix of g / d (0 where d is 0)."""

    op_name = "pdist"

    def forward(self, x):
        xp = get_array_module(x)
        n = x.shape[0]
        rows, cols = (xp.asarray(v) for v in numpy.triu_indices(n, 1))
        flat = rows * n + cols
        norms = xp.einsum("ij,ij->i", x, x)
        both = norms[rows] + norms[cols]
        sq = both - 2 * (x @ x.T).reshape(-1).take(flat)
        redo = xp.nonzero(sq < both * x.dtype.type(0.25))[0]
        chunk = builtins.max(1, (1 << 20) // builtins.max(x.shape[1], 1))
        for start in builtins.range(0, int(redo.shape[0]), chunk):  # blocks of 2^20 elements
            pick = redo[start : start + chunk]
            delta = x[rows[pick]] - x[cols[pick]]
            sq[pick] = xp.einsum("ij,ij->i", delta, delta)
        d = xp.sqrt(xp.maximum(sq, 0, out=sq), out=sq)
        self.save_for_backward(x, d, flat)  # the input (a reference), distances, pair indices
        return d

    def backward(self, g):
        x, d, flat = self.saved_arrays
        xp = get_array_module(g)
        n = x.shape[0]
        with numpy.errstate(divide="ignore", invalid="ignore"):
            weight = xp.where(d == 0, d.dtype.type(0), g / d)
        G = xp.zeros((n, n), x.dtype)
        G.reshape(-1)[flat] = weight
        G += G.T
        return x * G.sum(1)[:, None] - G @ x

    def backward_graph(self, g):
        from gradflow.autograd.differentiable import decomposed_backward_graph

        x = self.saved_arrays[0]
        return decomposed_backward_graph(self, g, lambda t: _pdist_direct(t, 2.0), (x,))


def _pdist_direct(x: Tensor, p: float) -> Tensor:
    """pdist as differentiable ops: the norms of the (pairs, M) differences."""
    from gradflow.ops.distance import _norm
    from gradflow.ops.indexing import index_select

    xp = get_array_module(x.array)
    rows, cols = numpy.triu_indices(x.shape[0], 1)
    first = index_select(x, 0, _wrap(xp.asarray(rows)))
    second = index_select(x, 0, _wrap(xp.asarray(cols)))
    return _norm(_arith.sub(first, second), p, 1)


def pdist(input: Tensor, p: float = 2) -> Tensor:
    """The p-norm distances between the rows of a 2-D input, pair (i, j) for i < j in
    row-major order: the upper triangle of cdist(input, input) as a vector."""
    input = _tensor(input, "pdist")
    if input.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    if input.dtype.kind != "f":
        raise RuntimeError("pdist only supports floating-point dtypes")
    if not isinstance(p, int | float) or p < 0:
        raise RuntimeError("pdist only supports non-negative p values")
    if input.shape[0] < 2:
        return _wrap(get_array_module(input.array).zeros(0, input.dtype))
    if p == 2 and input.shape[1] > 0:
        return PdistL2.apply(input)
    return _pdist_direct(input, float(p))


def renorm(input: Tensor, p: float, dim: int, maxnorm: float) -> Tensor:
    """input with each slice along dim (input.select(dim, i)) whose p-norm exceeds maxnorm
    scaled to norm maxnorm (by maxnorm / (norm + 1e-7), as PyTorch)."""
    from gradflow.ops.norms import vector_norm

    input = _tensor(input, "renorm")
    if input.ndim < 2:
        raise RuntimeError(
            f"renorm: input needs at least 2 dimensions, got {input.ndim} dimensions"
        )
    if p <= 0:
        raise RuntimeError("renorm: non-positive-norm not supported")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    d = normalize_dim(dim, input.ndim, "renorm")
    others = tuple(k for k in builtins.range(input.ndim) if k != d)
    norm = vector_norm(input, p, others, keepdim=True)
    scale = _arith.where(_arith.gt(norm, maxnorm), _arith.div(maxnorm, _arith.add(norm, 1e-7)), 1.0)
    return _arith.mul(input, scale)
