"""Reductions: sum, mean, var, std, max/min (amax/amin), logsumexp, prod, cumsum; argmax,
argmin, any, all (integer/bool results, no gradient).

`dim` is an int or a tuple of ints (`axis` is an alias; None means every dim) and `keepdim`
has the alias `keepdims`. On a 0-d tensor dim 0 and -1 are accepted, as in PyTorch.

Ties in max/min: ``max(x)`` and ``amax(x, dim)`` split the gradient evenly among the tied
elements; ``max(x, dim)`` returns the index of the first maximum and gives it the whole
gradient (both as PyTorch does on cpu).
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy

from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops import arithmetic
from gradflow.ops._util import normalize_dim, normalize_dims
from gradflow.tensor import Tensor

# What max(x, dim)/min(x, dim) return, like torch.return_types.max: a tuple with names.
MaxMin = namedtuple("MaxMin", ["values", "indices"])


def _dim_args(x: Tensor, dim: Any, keepdim: bool, kw: dict, op: str) -> tuple:
    """The reduced dims (a sorted tuple, or None for all) and keepdim, with the aliases."""
    if "axis" in kw:
        dim = kw.pop("axis")
    if "keepdims" in kw:
        keepdim = kw.pop("keepdims")
    if kw:
        raise TypeError(f"{op}() got unexpected keyword arguments {sorted(kw)}")
    dims = normalize_dims(dim, x.ndim, op)
    if x.ndim == 0:
        dims = None  # a 0-d tensor's only "dim" is the whole tensor
    return dims, bool(keepdim)


def _expand_grad(g: Any, shape: tuple, dims: tuple | None, keepdim: bool) -> Any:
    """Reshape a reduced gradient so it broadcasts against the input shape."""
    if not keepdim:
        if dims is None:
            g = g.reshape((1,) * len(shape))
        else:
            g = get_array_module(g).expand_dims(g, dims)
    return g


def _keep(out: Any, dims: tuple | None, keepdim: bool) -> Any:
    """Drop the reduced dims of a keepdims=True result unless keepdim was asked for."""
    if keepdim:
        return out
    return out.reshape(()) if dims is None else out.squeeze(dims)


def _kept_shape(shape: tuple, dims: tuple | None) -> tuple:
    """The shape of a keepdims=True reduction over dims (None: all)."""
    return tuple(1 if dims is None or i in dims else n for i, n in enumerate(shape))


def _count(shape: tuple, dims: tuple | None) -> int:
    n = 1
    for i, s in enumerate(shape):
        if dims is None or i in dims:
            n *= s
    return n


def _accumulator(x: Any) -> Any:
    """int64 for integer and bool inputs (PyTorch's rule; NumPy would give uint64 for uint8,
    which is no gradflow dtype); None keeps a float dtype."""
    return "int64" if x.dtype.kind in "biu" else None


class Sum(Function):
    dims: tuple | None
    keepdim: bool

    def forward(self, x):
        self.shape = x.shape  # saves the shape only
        return x.sum(axis=self.dims, keepdims=self.keepdim, dtype=_accumulator(x))

    def backward(self, g):
        g = _expand_grad(g, self.shape, self.dims, self.keepdim)
        return get_array_module(g).broadcast_to(g, self.shape)


class Mean(Function):
    dims: tuple | None
    keepdim: bool

    def forward(self, x):
        self.shape = x.shape  # saves the shape only
        return x.mean(axis=self.dims, keepdims=self.keepdim)

    def backward(self, g):
        count = _count(self.shape, self.dims)
        g = _expand_grad(g, self.shape, self.dims, self.keepdim) / g.dtype.type(count)
        return get_array_module(g).broadcast_to(g, self.shape)


class Var(Function):
    """Variance (or its square root, with root=True) with `correction` degrees of freedom."""

    correction: float
    dims: tuple | None
    keepdim: bool
    root: bool

    def forward(self, x):
        diff = x - x.mean(axis=self.dims, keepdims=True)
        # N <= correction gives NaN (0 / 0) or inf, as NumPy and PyTorch; never a sign flip
        divisor = _count(x.shape, self.dims) - self.correction
        self.divisor = divisor if divisor > 0 else 0
        with _quiet():
            out = (diff * diff).sum(axis=self.dims, keepdims=True) / x.dtype.type(self.divisor)
        if self.root:
            out = get_array_module(x).sqrt(out)
        # x, not x - mean (the input is usually alive anyway); std also keeps its reduced output
        self.save_for_backward(x, out if self.root else None)
        return _keep(out, self.dims, self.keepdim)

    def backward(self, g):
        x, out = self.saved_arrays
        diff = x - x.mean(axis=self.dims, keepdims=True)
        g = _expand_grad(g, x.shape, self.dims, self.keepdim)
        with _quiet():  # N <= correction: 2 / 0 (the NaN or inf of forward, as PyTorch)
            if self.root:
                # d std = d var / (2 std); where std is 0 (a constant slice) the gradient is 0
                # as in PyTorch, not 0 * inf = NaN.
                g = get_array_module(g).where(out == 0, g.dtype.type(0), g / (2 * out))
            return diff * (g * (2 / g.dtype.type(self.divisor)))


class Extreme(Function):
    """amax/amin over dims: the gradient is split evenly among elements tied at the extreme."""

    dims: tuple | None
    keepdim: bool
    reduce: str

    def forward(self, x):
        out = getattr(x, self.reduce)(axis=self.dims, keepdims=True)
        if self.needs_input_grad[0]:
            hit = x == out
            if x.dtype.kind == "f":
                hit |= x != x  # a NaN result comes from the NaNs: they get the gradient
            self.save_for_backward(hit)  # a bool mask, not the float input
        return _keep(out, self.dims, self.keepdim)

    def backward(self, g):
        (hit,) = self.saved_arrays
        count = hit.sum(axis=self.dims, keepdims=True).astype(g.dtype)
        g = _expand_grad(g, hit.shape, self.dims, self.keepdim)
        return hit * (g / count)


class SelectAlongDim(Function):
    """The values at given indices (one per slice along `dim`): max/min with a dim."""

    dim: int
    keepdim: bool

    def forward(self, x, index):
        self.shape = x.shape
        self.save_for_backward(index)  # int64 indices, keepdims shape
        out = get_array_module(x).take_along_axis(x, index, axis=self.dim)
        return out if self.keepdim else out.squeeze(self.dim)

    def backward(self, g):
        (index,) = self.saved_arrays
        xp = get_array_module(g)
        if not self.keepdim:
            g = xp.expand_dims(g, self.dim)
        # One index per slice: a one-hot comparison scatters without atomics or add.at.
        positions = xp.arange(self.shape[self.dim]).reshape(
            [-1 if d == self.dim else 1 for d in range(len(self.shape))]
        )
        return xp.where(positions == index, g, g.dtype.type(0)), None


class LogSumExp(Function):
    """log(sum(exp(x))), shifted by the max so |x| ~ 1e4 neither overflows nor underflows."""

    dims: tuple | None
    keepdim: bool

    def forward(self, x):
        xp = get_array_module(x)
        if x.size:
            shift = x.max(axis=self.dims, keepdims=True)
        else:  # NumPy and CuPy refuse the max of nothing; any shift gives -inf here
            shift = xp.zeros(_kept_shape(x.shape, self.dims), x.dtype)
        shift = xp.where(xp.isfinite(shift), shift, 0)  # all -inf (or an inf): shift by 0
        with _quiet():
            out = xp.log(xp.exp(x - shift).sum(axis=self.dims, keepdims=True)) + shift
        self.save_for_backward(x, out)  # the input and the (reduced) output
        return _keep(out, self.dims, self.keepdim)

    def backward(self, g):
        x, out = self.saved_arrays
        xp = get_array_module(g)
        # Slices whose result is -inf (all -inf) get a zero gradient instead of NaN.
        out = xp.where(out == -xp.inf, 0, out)
        g = _expand_grad(g, x.shape, self.dims, self.keepdim)
        return xp.exp(x - out) * g


class Prod(Function):
    """Product; the gradient stays exact with zeros in the input (no division by zero)."""

    dims: tuple | None
    keepdim: bool

    def forward(self, x):
        self.save_for_backward(x)
        return x.prod(axis=self.dims, keepdims=self.keepdim, dtype=_accumulator(x))

    def backward(self, g):
        (x,) = self.saved_arrays
        xp = get_array_module(g)
        g = _expand_grad(g, x.shape, self.dims, self.keepdim)
        zero = x == 0
        zeros = zero.sum(axis=self.dims, keepdims=True)
        # The product of the other elements: the non-zero product divided by x where the
        # slice has no zero; at the single zero of a slice, the non-zero product itself;
        # 0 everywhere else (a slice with two zeros has a zero gradient).
        nonzero_prod = xp.where(zero, 1, x).prod(axis=self.dims, keepdims=True)
        with _quiet():
            others = xp.where(zero, nonzero_prod, nonzero_prod / x)
        keep = xp.where(zero, zeros == 1, zeros == 0)
        return xp.where(keep, others, 0) * g


class CumSum(Function):
    dim: int

    def forward(self, x):
        out = get_array_module(x).cumsum(x, axis=self.dim, dtype=_accumulator(x))
        return out.reshape(x.shape)  # dim None: a 0-d input

    def backward(self, g):
        if self.dim is None:
            return g
        xp = get_array_module(g)
        # d(sum_j out_j g_j)/dx_i = sum of g_j for j >= i: a reversed cumulative sum.
        return xp.flip(xp.cumsum(xp.flip(g, self.dim), axis=self.dim), self.dim)


def _quiet() -> Any:
    """Silence NumPy's warnings where inf/NaN intermediates are expected and then replaced."""
    return numpy.errstate(divide="ignore", invalid="ignore", over="ignore")


# ---- public functions ------------------------------------------------------------------
def sum(x: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """Sum over `dim` (all dims by default)."""
    dims, keepdim = _dim_args(x, dim, keepdim, kw, "sum")
    return Sum.apply(x, dims=dims, keepdim=keepdim)


def mean(x: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """Mean over `dim` (all dims by default) of a floating-point tensor: an integer or bool
    tensor raises a TypeError, as PyTorch refuses to infer the result's dtype (call .float()
    or .double() first)."""
    dims, keepdim = _dim_args(x, dim, keepdim, kw, "mean")
    if x.dtype.kind not in "fc":
        raise TypeError(
            f"mean: could not infer output dtype; the input's dtype must be floating point, got "
            f"{x.dtype}; call .float() or .double() first"
        )
    return Mean.apply(x, dims=dims, keepdim=keepdim)


def _variance(
    x: Tensor, dim: Any, unbiased: bool, keepdim: bool, kw: dict, op: str, root: bool
) -> Tensor:
    correction = kw.pop("correction", None)
    if correction is None:
        correction = 1 if unbiased else 0
    dims, keepdim = _dim_args(x, dim, keepdim, kw, op)
    _require_float(x, op)
    return Var.apply(x, dims=dims, keepdim=keepdim, correction=correction, root=root)


def var(
    x: Tensor, dim: Any = None, unbiased: bool = True, keepdim: bool = False, **kw: Any
) -> Tensor:
    """Variance over `dim`: sum((x - mean)^2) / (N - correction).

    `unbiased=True` divides by N - 1 (Bessel), False by N; PyTorch's `correction=` keyword
    overrides it. ``var(tensor([1., 2., 3., 4.]))`` is 1.6667.
    """
    return _variance(x, dim, unbiased, keepdim, kw, "var", root=False)


def std(
    x: Tensor, dim: Any = None, unbiased: bool = True, keepdim: bool = False, **kw: Any
) -> Tensor:
    """Standard deviation over `dim`: sqrt(var(x, dim, unbiased)); `correction=` as in var."""
    return _variance(x, dim, unbiased, keepdim, kw, "std", root=True)


def _extreme(x: Tensor, dim: Any, keepdim: bool, kw: dict, reduce: str) -> Any:
    """max/min: the full reduction for dim=None, (values, indices) for an int dim."""
    if isinstance(dim, Tensor):  # x.max(other) is the elementwise maximum, as in PyTorch
        return (arithmetic.maximum if reduce == "max" else arithmetic.minimum)(x, dim)
    dim = kw.pop("axis", dim)
    if isinstance(dim, list | tuple):
        raise TypeError(
            f"{reduce}: dim must be an int, got {dim}; use a{reduce}(x, dim) for several dims"
        )
    dims, keepdim = _dim_args(x, dim, keepdim, kw, reduce)
    _require_nonempty(x, dims, reduce)
    if dims is None:
        values = Extreme.apply(x, dims=None, keepdim=keepdim, reduce=reduce)
        if dim is None:
            return values
        # dim=0 on a 0-d tensor: the value itself, at index 0
        return MaxMin(values, Tensor._wrap(get_array_module(x.array).zeros((), "int64")))
    d = dims[0]
    xp = get_array_module(x.array)
    arg = xp.argmax if reduce == "max" else xp.argmin
    index = arg(x.array, axis=d, keepdims=True).astype("int64", copy=False)
    values = SelectAlongDim.apply(x, index, dim=d, keepdim=keepdim)
    return MaxMin(values, Tensor._wrap(index if keepdim else index.squeeze(d)))


def max(x: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Any:
    """The largest element (a 0-d tensor), or with an int `dim` the tuple (values, indices).

    Ties: the full reduction splits the gradient evenly among the tied elements; with a dim
    the first index of the maximum is returned and gets the gradient. ``max(x, other)`` with a
    tensor is the elementwise maximum.
    """
    return _extreme(x, dim, keepdim, kw, "max")


def min(x: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Any:
    """The smallest element, or (values, indices) along an int `dim`; ties as in `max`."""
    return _extreme(x, dim, keepdim, kw, "min")


def amax(x: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """The maximum over `dim` (int or tuple; all by default); ties share the gradient evenly."""
    dims, keepdim = _dim_args(x, dim, keepdim, kw, "amax")
    _require_nonempty(x, dims, "amax")
    return Extreme.apply(x, dims=dims, keepdim=keepdim, reduce="max")


def amin(x: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """The minimum over `dim` (int or tuple; all by default); ties share the gradient evenly."""
    dims, keepdim = _dim_args(x, dim, keepdim, kw, "amin")
    _require_nonempty(x, dims, "amin")
    return Extreme.apply(x, dims=dims, keepdim=keepdim, reduce="min")


def logsumexp(x: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """log(sum(exp(x))) over `dim`, computed stably (max-shifted); its gradient is softmax.

    A slice of all -inf gives -inf and a zero gradient.
    """
    dims, keepdim = _dim_args(x, dim, keepdim, kw, "logsumexp")
    _require_float(x, "logsumexp")
    return LogSumExp.apply(x, dims=dims, keepdim=keepdim)


def prod(x: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """Product over `dim`; the gradient is exact when the input holds zeros."""
    dims, keepdim = _dim_args(x, dim, keepdim, kw, "prod")
    return Prod.apply(x, dims=dims, keepdim=keepdim)


def cumsum(x: Tensor, dim: int, **kw: Any) -> Tensor:
    """Cumulative sum along `dim`: out[i] = x[0] + ... + x[i]."""
    dim = kw.pop("axis", dim)
    if kw:
        raise TypeError(f"cumsum() got unexpected keyword arguments {sorted(kw)}")
    d = normalize_dim(dim, x.ndim, "cumsum")
    return CumSum.apply(x, dim=d if x.ndim else None)


def _arg(x: Tensor, dim: Any, keepdim: bool, kw: dict, reduce: str) -> Tensor:
    op = "arg" + reduce
    dim = kw.pop("axis", dim)
    keepdim = kw.pop("keepdims", keepdim)
    if kw:
        raise TypeError(f"{op}() got unexpected keyword arguments {sorted(kw)}")
    xp = get_array_module(x.array)
    fn = xp.argmax if reduce == "max" else xp.argmin
    axis = None if dim is None else normalize_dim(dim, x.ndim, op)  # 0-d: dims 0 and -1
    axis = None if x.ndim == 0 else axis
    _require_nonempty(x, None if axis is None else (axis,), op)
    out = fn(x.array, axis=axis, keepdims=bool(keepdim))
    return Tensor._wrap(xp.asarray(out, dtype="int64"))  # NumPy gives a scalar for axis=None


def argmax(x: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """Index of the (first) maximum along an int `dim`; of the flattened tensor for None."""
    return _arg(x, dim, keepdim, kw, "max")


def argmin(x: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """Index of the (first) minimum along an int `dim`; of the flattened tensor for None."""
    return _arg(x, dim, keepdim, kw, "min")


def any(x: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """Whether any element over `dim` is nonzero (a bool tensor, no gradient)."""
    dims, keepdim = _dim_args(x, dim, keepdim, kw, "any")
    xp = get_array_module(x.array)
    return Tensor._wrap(xp.asarray(xp.any(x.array, axis=dims, keepdims=keepdim)))


def all(x: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """Whether every element over `dim` is nonzero (a bool tensor, no gradient)."""
    dims, keepdim = _dim_args(x, dim, keepdim, kw, "all")
    xp = get_array_module(x.array)
    return Tensor._wrap(xp.asarray(xp.all(x.array, axis=dims, keepdims=keepdim)))


def _require_nonempty(x: Tensor, dims: tuple | None, op: str) -> None:
    """max/min have no identity: refuse a reduction over an empty dim (dims None: all)."""
    shape = x.shape
    if x.array.size == 0 and (dims is None or 0 in [shape[d] for d in dims]):
        raise ValueError(
            f"{op}: the tensor of shape {tuple(shape)} is empty along the reduced dims; the "
            "reduction has no identity, so it needs at least one element"
        )


def _require_float(x: Tensor, op: str) -> None:
    if x.dtype.kind not in "fc":
        raise TypeError(f"{op}: expected a floating-point tensor, got {x.dtype}; call .float()")
