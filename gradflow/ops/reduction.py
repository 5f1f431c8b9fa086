"""Reductions: sum, mean, var, std, max/min (amax/amin), logsumexp, prod; cumulative cumsum,
cumprod, cummax/cummin, logcumsumexp; argmax, argmin, any, all (integer/bool results, no
gradient).

`dim` is an int or a tuple of ints (`axis` is an alias; None means every dim) and `keepdim`
has the alias `keepdims`. On a 0-d tensor dim 0 and -1 are accepted, as in PyTorch.

Ties in max/min: ``max(x)`` and ``amax(x, dim)`` split the gradient evenly among the tied
elements; ``max(x, dim)`` returns the index of the first maximum and gives it the whole
gradient (both as PyTorch does on cpu).
"""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

import numpy

from gradflow import return_types
from gradflow.autograd import versions as _versions
from gradflow.autograd.differentiable import const, graph_input, graph_output
from gradflow.autograd.function import Function
from gradflow.backend import compiled, get_array_module
from gradflow.ops import arithmetic
from gradflow.ops._util import normalize_dim, normalize_dims
from gradflow.tensor import Tensor

# What median(x, dim) and aminmax return, as torch.return_types' named tuples.
_median = namedtuple("median", ["values", "indices"])
_aminmax = namedtuple("aminmax", ["min", "max"])


def _with_dtype(x: Tensor, dtype: Any) -> Tensor:
    """x cast to PyTorch's ``dtype=`` keyword before reducing, if given."""
    return x if dtype is None else x.to(dtype)


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

    def backward_graph(self, g):
        g = g.reshape(_kept_shape(self.shape, self.dims)) if not self.keepdim else g
        return g.expand(self.shape)


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

    def backward_graph(self, g):
        count = _count(self.shape, self.dims)
        g = g.reshape(_kept_shape(self.shape, self.dims)) if not self.keepdim else g
        return (g / count).expand(self.shape)


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

    def backward_graph(self, g):
        x_array, out = self.saved_arrays
        x = graph_input(self, 0, x_array)
        diff = x - x.mean(dim=self.dims, keepdim=True)
        if not self.keepdim:
            g = g.reshape(_kept_shape(x_array.shape, self.dims))
        if self.root:
            # d std = d var / (2 std), 0 where std is 0 (as backward); std as this node's output
            std = graph_output(self, _keep(out, self.dims, self.keepdim))
            if not self.keepdim:
                std = std.reshape(_kept_shape(x_array.shape, self.dims))
            zero = const(out == 0)
            g = arithmetic.where(zero, 0.0, g / (2 * arithmetic.where(zero, 1.0, std)))
        return diff * (g * (2 / self.divisor))


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

    def backward_graph(self, g):
        (hit,) = self.saved_arrays
        share = hit / hit.sum(axis=self.dims, keepdims=True).astype(g.dtype)
        if not self.keepdim:
            g = g.reshape(_kept_shape(hit.shape, self.dims))
        return g * const(share.astype(g.dtype))


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

    def backward_graph(self, g):
        (index,) = self.saved_arrays
        xp = get_array_module(index)
        positions = xp.arange(self.shape[self.dim]).reshape(
            [-1 if d == self.dim else 1 for d in range(len(self.shape))]
        )
        if not self.keepdim:
            g = g.unsqueeze(self.dim)
        return arithmetic.where(const(positions == index), g, 0.0), None


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

    def backward_graph(self, g):
        x_array, out = self.saved_arrays
        kept = _kept_shape(x_array.shape, self.dims)
        y = graph_output(self, _keep(out, self.dims, self.keepdim)).reshape(kept)
        if not self.keepdim:
            g = g.reshape(kept)
        y = arithmetic.where(const(out == -math.inf), 0.0, y)  # all -inf slices: 0, as backward
        return (graph_input(self, 0, x_array) - y).exp() * g


class Prod(Function):
    """Product; the gradient stays exact with zeros in the input (no division by zero)."""

    dims: tuple | None
    keepdim: bool

    def forward(self, x):
        self.save_for_backward(x)
        out = x.prod(axis=self.dims, keepdims=self.keepdim, dtype=_accumulator(x))
        # the output too, outside the saved arrays (an in-place write to it is no error, as
        # before): backward uses it only while its storage is unwritten
        self.out = out
        self.out_version = _versions.version(out)
        return out

    def backward(self, g):
        (x,) = self.saved_arrays
        xp = get_array_module(g)
        g = _expand_grad(g, x.shape, self.dims, self.keepdim)
        out = self.out  # the output's own array, alive with it anyway
        if (
            xp is numpy
            and x.ndim
            and _versions.version(out) == self.out_version
            and not (x == 0).any()
        ):
            # no input is zero: PyTorch's g * (out / x), in one temporary (the same bits as
            # the general path's, whose non-zero product is this one)
            kept = numpy.reshape(out, _kept_shape(x.shape, self.dims))
            others = numpy.divide(kept, x)
            return numpy.multiply(others, g, out=others)
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

    def backward_graph(self, g):
        (x_a,) = self.saved_arrays
        if (x_a == 0).any():  # the zero-exact form is not written with Tensor ops yet
            return NotImplemented
        kept = _kept_shape(x_a.shape, self.dims)
        out = graph_output(self, self.out).reshape(kept)
        if not self.keepdim:
            g = g.reshape(kept)
        return g * out / graph_input(self, 0, x_a)


class CumSum(Function):
    dim: int

    def forward(self, x):
        if self.dim is not None and (out := _blocked_cumsum(x, self.dim)) is not None:
            return out
        out = get_array_module(x).cumsum(x, axis=self.dim, dtype=_accumulator(x))
        return out.reshape(x.shape)  # dim None: a 0-d input

    def backward(self, g):
        if self.dim is None:
            return g
        if (grad := _blocked_cumsum(g, self.dim, reverse=True)) is not None:
            return grad
        xp = get_array_module(g)
        # d(sum_j out_j g_j)/dx_i = sum of g_j for j >= i: a reversed cumulative sum.
        return xp.flip(xp.cumsum(xp.flip(g, self.dim), axis=self.dim), self.dim)

    def backward_graph(self, g):
        if self.dim is None:
            return g
        return CumSum.apply(g.flip([self.dim]), dim=self.dim).flip([self.dim])


_SCAN_BLOCK = 64


def _blocked_cumsum(x: Any, dim: int, reverse: bool = False) -> Any:
    """cumsum of a float32 NumPy array along dim (reverse: from the end, out[i] = sum
    of x[j] for j >= i), a new contiguous array; None for other arrays and for small ones.
    NumPy's scan is one dependent add per element (~3.5x PyTorch's); here dim is cut into
    blocks of _SCAN_BLOCK, scanned all at once by one vector add per position in the block,
    then each block gets the running sum of the blocks before it. Sums in another order than
    NumPy's sequential one, and more accurately (PyTorch accumulates float32 in float64);
    float64 keeps NumPy's scan, the same sequential sums as PyTorch's. With numba installed
    (gradflow.backend.compiled) float32 and float64 take the compiled scan instead: PyTorch's sums,
    float64 running totals in order, in one pass."""
    if type(x) is not numpy.ndarray:
        return None
    shape = x.shape
    n = shape[dim]
    outer = math.prod(shape[:dim])
    inner = math.prod(shape[dim + 1 :])
    if x.size and (loops := compiled.loops(x)) is not None:  # compiled: float64 sums, in order
        out = numpy.empty(shape, x.dtype)
        src = numpy.ascontiguousarray(x).reshape(outer, n, inner)
        loops.scan(src, out.reshape(outer, n, inner), reverse)
        return out
    b = _SCAN_BLOCK
    if x.dtype != numpy.float32 or n < 2 * b or x.size < 1 << 15:
        return None
    src = x.reshape(outer, n, inner)
    out = src.copy()  # scanned in place (faster than adding from src into it)
    dst = out
    if reverse:
        src, dst = src[:, ::-1], out[:, ::-1]
    blocks = n // b
    whole = blocks * b
    dst_b = dst[:, :whole].reshape(outer, blocks, b, inner)  # a view: one axis split
    for j in range(1, b):
        numpy.add(dst_b[:, :, j], dst_b[:, :, j - 1], out=dst_b[:, :, j])
    before = numpy.cumsum(dst_b[:, :-1, b - 1], axis=1)  # the sums of the blocks before
    dst_b[:, 1:] += before[:, :, None]
    if whole < n:  # the last, partial block goes on from the last whole one
        numpy.cumsum(src[:, whole:], axis=1, out=dst[:, whole:])
        dst[:, whole:] += dst[:, whole - 1 : whole]
    return out.reshape(shape)


class CumProd(Function):
    """Cumulative product along dim. The gradient is exact with zeros in the input: before a
    slice's first zero it is revcumsum(g * out) / x; at the first zero it is the reversed
    cumulative sum of g times the products that skip that zero; after it, zero."""

    op_name = "cumprod"
    dim: int

    def forward(self, x):
        out = get_array_module(x).cumprod(x, axis=self.dim, dtype=_accumulator(x))
        self.save_for_backward(x, out)
        return out

    def backward(self, g):
        x, out = self.saved_arrays
        xp = get_array_module(g)
        d = self.dim
        n = x.shape[d]
        if xp is numpy and n and x.size:
            last = out[(slice(None),) * d + (slice(n - 1, n),)]
            # A zero in a slice leaves its last product 0 (or NaN): without either, no slice
            # has a zero and the gradient is revcumsum(g * out) / x, in three passes (the
            # reversed cumsum is CumSum's backward: blocked, or compiled with numba).
            if not bool(((last == 0) | (last != last)).any()):
                with _quiet():
                    weighted = numpy.multiply(g, out)
                    grad = _blocked_cumsum(weighted, d, reverse=True)
                    if grad is None:
                        grad = weighted
                        rev = numpy.flip(grad, d)
                        numpy.cumsum(rev, axis=d, out=rev)
                    numpy.divide(grad, x, out=grad)
                return grad.astype(g.dtype, copy=False)
        shape = [1] * x.ndim
        shape[d] = n
        position = xp.arange(n).reshape(shape)
        zero = x == 0
        # the first zero's position in each slice (n where there is none)
        first = xp.where(zero.any(axis=d, keepdims=True), xp.argmax(zero, axis=d, keepdims=True), n)
        before = position < first
        with _quiet():
            grad = xp.where(before, _reverse_cumsum(g * out, d) / xp.where(zero, 1, x), 0)
        at = position == first
        if bool(at.any()):  # some slice has a zero (one host sync on cuda)
            skipping = xp.cumprod(xp.where(at, 1, x), axis=d)  # the products without that zero
            grad = xp.where(at, _reverse_cumsum(g * skipping, d), grad)
        return grad.astype(g.dtype, copy=False)

    def backward_graph(self, g):
        x_a, out_a = self.saved_arrays
        if (x_a == 0).any():  # the zero-exact form is not written with Tensor ops yet
            return NotImplemented
        d = self.dim
        weighted = (g * graph_output(self, out_a)).flip([d])
        return CumSum.apply(weighted, dim=d).flip([d]) / graph_input(self, 0, x_a)


def _reverse_cumsum(a: Any, dim: int) -> Any:
    """out[i] = sum of a[j] for j >= i along dim."""
    xp = get_array_module(a)
    return xp.flip(xp.cumsum(xp.flip(a, dim), axis=dim), dim)


def _cumulative_extreme(x: Any, dim: int, reduce: str) -> tuple:
    """(values, int64 indices) of the running max/min along dim. Ties take the later index and
    a NaN, once seen, stays (both as PyTorch; each later NaN takes the index on).
    NumPy: maximum/minimum.accumulate gives the values (NaN propagates); an element starts a new
    run where it equals the running value (or is NaN), and each run's index is its start, filled
    in by numpy.repeat. CuPy (no accumulate with indices): a log2(n)-step scan."""
    xp = get_array_module(x)
    if xp is numpy:
        return _cumulative_extreme_numpy(x, dim, reduce)
    v = xp.moveaxis(x, dim, -1).copy()
    n = v.shape[-1]
    idx = xp.broadcast_to(xp.arange(n, dtype="int64"), v.shape).copy()
    better = xp.greater if reduce == "max" else xp.less
    step = 1
    while step < n:
        prev_v, prev_i = v[..., :-step], idx[..., :-step]
        cur = v[..., step:]
        take = better(prev_v, cur)
        if v.dtype.kind == "f":
            take |= xp.isnan(prev_v) & ~xp.isnan(cur)
        # new arrays first: the slices overlap the ones written
        new_v = xp.where(take, prev_v, cur)
        new_i = xp.where(take, prev_i, idx[..., step:])
        v[..., step:] = new_v
        idx[..., step:] = new_i
        step *= 2
    return xp.moveaxis(v, -1, dim), xp.moveaxis(idx, -1, dim)


def _cumulative_extreme_numpy(x: Any, dim: int, reduce: str) -> tuple:
    """_cumulative_extreme on NumPy, on rows made contiguous along dim (the accumulate along
    the last, contiguous axis is about 3x faster than along a strided one)."""
    v = numpy.ascontiguousarray(numpy.moveaxis(x, dim, -1))
    n = v.shape[-1]
    if v.size == 0:
        return numpy.moveaxis(v.copy(), -1, dim), numpy.moveaxis(
            numpy.zeros(v.shape, numpy.int64), -1, dim
        )
    ufunc = numpy.maximum if reduce == "max" else numpy.minimum
    running = ufunc.accumulate(v, axis=-1)  # NaN, once seen, stays
    new = v == running  # ties (x equal to the running value) start a run: the later index
    if v.dtype.kind in "fc" and bool(numpy.isnan(running[..., -1]).any()):
        new |= numpy.isnan(v)  # every NaN starts a run (the running value is NaN from there)
    new = new.reshape(-1)
    new[::n] = True  # each row's first element (a NaN-free row has it already)
    starts = numpy.flatnonzero(new)
    lengths = numpy.diff(starts, append=v.size)
    index = numpy.repeat(starts % n, lengths).reshape(v.shape)
    return numpy.moveaxis(running, -1, dim), numpy.moveaxis(index, -1, dim)


class CumulativeExtreme(Function):
    """The running max/min values; each gradient goes to the element its index names.
    `values`, when given, are the gathered values already (forward returns them)."""

    dim: int
    values: Any = None

    def forward(self, x, index):
        self.shape = x.shape
        self.save_for_backward(index)  # int64 indices
        values, self.values = self.values, None
        if values is not None:
            return values
        return get_array_module(x).take_along_axis(x, index, axis=self.dim)

    def backward(self, g):
        (index,) = self.saved_arrays
        from gradflow.ops.indexing import _scatter_add

        xp = get_array_module(g)
        gm = xp.ascontiguousarray(xp.moveaxis(g, self.dim, -1))
        im = xp.moveaxis(index, self.dim, -1)
        n = gm.shape[-1]
        if xp is numpy and gm.size:
            # The indices along a row are runs of one value each, starting where the index is
            # its own position: each run's gradients sum (add.reduceat) onto that start.
            start = (im == numpy.arange(n, dtype=numpy.int64)).reshape(-1)
            starts = numpy.flatnonzero(start)
            out = numpy.zeros(gm.size, dtype=g.dtype)
            out[starts] = numpy.add.reduceat(gm.reshape(-1), starts)
            return numpy.moveaxis(out.reshape(gm.shape), -1, self.dim), None
        rows = xp.arange(gm.size // n if n else 0, dtype="int64").reshape(*gm.shape[:-1], 1)
        out = xp.zeros(gm.size, dtype=g.dtype)
        _scatter_add(out, ((rows * n + im).reshape(-1),), gm.reshape(-1))
        return xp.moveaxis(out.reshape(gm.shape), -1, self.dim), None

    def backward_graph(self, g):
        from gradflow.autograd.differentiable import pick_backward_graph

        (index,) = self.saved_arrays
        xp = get_array_module(index)
        d = self.dim % len(self.shape)
        inner = self.shape[d + 1 :]
        # each element's source: its index along dim, in the block of the dims from dim on
        rest = xp.arange(math.prod(inner), dtype=index.dtype).reshape(inner)
        flat = index * math.prod(inner) + rest
        return pick_backward_graph(self, g, flat, len(self.shape) - d), None


def _quiet() -> Any:
    """Silence NumPy's warnings where inf/NaN intermediates are expected and then replaced."""
    return numpy.errstate(divide="ignore", invalid="ignore", over="ignore")


# ---- public functions ------------------------------------------------------------------
def sum(
    input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None, **kw: Any
) -> Tensor:
    """Sum over `dim` (all dims by default); ``dtype=`` casts the input first."""
    input = _with_dtype(input, dtype)
    dims, keepdim = _dim_args(input, dim, keepdim, kw, "sum")
    return Sum.apply(input, dims=dims, keepdim=keepdim)


def mean(
    input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None, **kw: Any
) -> Tensor:
    """Mean over `dim` (all dims by default) of a floating-point tensor: an integer or bool
    tensor raises a TypeError, as PyTorch refuses to infer the result's dtype (call .float()
    or .double() first, or pass dtype=)."""
    input = _with_dtype(input, dtype)
    dims, keepdim = _dim_args(input, dim, keepdim, kw, "mean")
    if input.dtype.kind not in "fc":
        raise TypeError(
            f"mean: could not infer output dtype; the input's dtype must be floating point, got "
            f"{input.dtype}; call .float() or .double() first"
        )
    return Mean.apply(input, dims=dims, keepdim=keepdim)


def _variance(
    x: Tensor, dim: Any, unbiased: bool, keepdim: bool, correction: Any, kw: dict, op: str,
    root: bool,
) -> Tensor:  # fmt: skip
    if isinstance(dim, bool):  # var(input, unbiased), PyTorch's other overload
        dim, unbiased = None, dim
    if correction is None:
        correction = 1 if unbiased else 0
    dims, keepdim = _dim_args(x, dim, keepdim, kw, op)
    _require_float(x, op)
    return Var.apply(x, dims=dims, keepdim=keepdim, correction=correction, root=root)


def var(
    input: Tensor,
    dim: Any = None,
    unbiased: bool = True,
    keepdim: bool = False,
    *,
    correction: Any = None,
    **kw: Any,
) -> Tensor:
    """Variance over `dim`: sum((x - mean)^2) / (N - correction).

    `unbiased=True` divides by N - 1 (Bessel), False by N; PyTorch's `correction=` keyword
    overrides it. ``var(tensor([1., 2., 3., 4.]))`` is 1.6667. A bool in dim's place is
    `unbiased` (PyTorch's ``var(input, unbiased)``).
    """
    return _variance(input, dim, unbiased, keepdim, correction, kw, "var", root=False)


def std(
    input: Tensor,
    dim: Any = None,
    unbiased: bool = True,
    keepdim: bool = False,
    *,
    correction: Any = None,
    **kw: Any,
) -> Tensor:
    """Standard deviation over `dim`: sqrt(var(input, dim, unbiased)); `correction=` and a
    bool in dim's place as in var."""
    return _variance(input, dim, unbiased, keepdim, correction, kw, "std", root=True)


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
        zero = Tensor._wrap(get_array_module(x.array).zeros((), "int64"))
        return getattr(return_types, reduce)(values, zero)
    d = dims[0]
    xp = get_array_module(x.array)
    arg = xp.argmax if reduce == "max" else xp.argmin
    index = arg(x.array, axis=d, keepdims=True).astype("int64", copy=False)
    values = SelectAlongDim.apply(x, index, dim=d, keepdim=keepdim)
    return getattr(return_types, reduce)(
        values, Tensor._wrap(index if keepdim else index.squeeze(d))
    )


def max(
    input: Tensor, dim: Any = None, keepdim: bool = False, *, other: Any = None, **kw: Any
) -> Any:
    """The largest element (a 0-d tensor), or with an int `dim` the tuple (values, indices).

    Ties: the full reduction splits the gradient evenly among the tied elements; with a dim
    the first index of the maximum is returned and gets the gradient. ``max(x, other)`` with a
    tensor (in dim's place, or ``other=``) is the elementwise maximum.
    """
    return _extreme(input, _other_as_dim(dim, other, "max"), keepdim, kw, "max")


def min(
    input: Tensor, dim: Any = None, keepdim: bool = False, *, other: Any = None, **kw: Any
) -> Any:
    """The smallest element, or (values, indices) along an int `dim`; ties and ``other`` as in
    `max`."""
    return _extreme(input, _other_as_dim(dim, other, "min"), keepdim, kw, "min")


def _other_as_dim(dim: Any, other: Any, op: str) -> Any:
    """max/min's ``other=`` keyword (PyTorch's max(input, other)) as the tensor _extreme takes
    in dim's place."""
    if other is None:
        return dim
    if dim is not None:
        raise TypeError(f"{op}() takes a dim or other, not both")
    if not isinstance(other, Tensor):
        raise TypeError(f"{op}(): argument 'other' must be a Tensor, got {type(other).__name__}")
    return other


def amax(input: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """The maximum over `dim` (int or tuple; all by default); ties share the gradient evenly."""
    dims, keepdim = _dim_args(input, dim, keepdim, kw, "amax")
    _require_nonempty(input, dims, "amax")
    return Extreme.apply(input, dims=dims, keepdim=keepdim, reduce="max")


def amin(input: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """The minimum over `dim` (int or tuple; all by default); ties share the gradient evenly."""
    dims, keepdim = _dim_args(input, dim, keepdim, kw, "amin")
    _require_nonempty(input, dims, "amin")
    return Extreme.apply(input, dims=dims, keepdim=keepdim, reduce="min")


def logsumexp(input: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """log(sum(exp(x))) over `dim`, computed stably (max-shifted); its gradient is softmax.

    A slice of all -inf gives -inf and a zero gradient.
    """
    dims, keepdim = _dim_args(input, dim, keepdim, kw, "logsumexp")
    _require_float(input, "logsumexp")
    return LogSumExp.apply(input, dims=dims, keepdim=keepdim)


def prod(
    input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None, **kw: Any
) -> Tensor:
    """Product over `dim`; the gradient is exact when the input holds zeros."""
    input = _with_dtype(input, dtype)
    dims, keepdim = _dim_args(input, dim, keepdim, kw, "prod")
    return Prod.apply(input, dims=dims, keepdim=keepdim)


def cumsum(input: Tensor, dim: int, *, dtype: Any = None, **kw: Any) -> Tensor:
    """Cumulative sum along `dim`: out[i] = x[0] + ... + x[i]."""
    input = _with_dtype(input, dtype)
    dim = kw.pop("axis", dim)
    if kw:
        raise TypeError(f"cumsum() got unexpected keyword arguments {sorted(kw)}")
    d = normalize_dim(dim, input.ndim, "cumsum")
    return CumSum.apply(input, dim=d if input.ndim else None)


def cumprod(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """Cumulative product along `dim`: out[i] = x[0] * ... * x[i]; the gradient is exact
    where the input holds zeros. Integer and bool inputs accumulate in int64."""
    if dtype is not None:
        input = input.to(dtype)
    d = normalize_dim(dim, input.ndim, "cumprod")
    if input.ndim == 0:
        return prod(input)
    return CumProd.apply(input, dim=d)


def logcumsumexp(input: Tensor, dim: int) -> Tensor:
    """log(cumsum(exp(x))) along `dim`, shifted by the slice's max (a constant) so large
    values do not overflow. Prefixes more than ~700 (float64; ~87 float32) below the slice's
    max underflow to -inf, where PyTorch's running shift keeps them."""
    from gradflow.ops.unary import exp, log

    _require_float(input, "logcumsumexp")
    d = normalize_dim(dim, input.ndim, "logcumsumexp")
    if input.ndim == 0:
        return input * 1
    xp = get_array_module(input.array)
    with _quiet():
        shift = (
            input.array.max(axis=d, keepdims=True)
            if input.array.size
            else input.array.sum(axis=d, keepdims=True)
        )
        shift = Tensor._wrap(xp.where(xp.isfinite(shift), shift, 0))
        return arithmetic.add(log(cumsum(exp(arithmetic.sub(input, shift)), d)), shift)


def cummax(input: Tensor, dim: int) -> Any:
    """The running maximum along `dim` and the index where each was found:
    ``values, indices = cummax(x, 0)`` (ties take the later index; NaN propagates)."""
    return _cumulative(input, dim, "max")


def cummin(input: Tensor, dim: int) -> Any:
    """The running minimum along `dim` and its indices, as cummax."""
    return _cumulative(input, dim, "min")


def _cumulative(x: Tensor, dim: int, reduce: str) -> Any:
    from gradflow import return_types

    op = "cum" + reduce
    d = normalize_dim(dim, x.ndim, op)
    result = getattr(return_types, op)
    if x.ndim == 0:
        zero = Tensor._wrap(get_array_module(x.array).zeros((), "int64"))
        return result(x.clone() if x.requires_grad else Tensor._wrap(x.array.copy()), zero)
    running, index = _cumulative_extreme(x.array, d, reduce)
    values = CumulativeExtreme.apply(x, index, dim=d, op_name=op, values=running)
    return result(values, Tensor._wrap(index))


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


def argmax(input: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """Index of the (first) maximum along an int `dim`; of the flattened tensor for None."""
    return _arg(input, dim, keepdim, kw, "max")


def argmin(input: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """Index of the (first) minimum along an int `dim`; of the flattened tensor for None."""
    return _arg(input, dim, keepdim, kw, "min")


def any(input: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """Whether any element over `dim` is nonzero (a bool tensor, no gradient)."""
    dims, keepdim = _dim_args(input, dim, keepdim, kw, "any")
    xp = get_array_module(input.array)
    return Tensor._wrap(xp.asarray(xp.any(input.array, axis=dims, keepdims=keepdim)))


def all(input: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """Whether every element over `dim` is nonzero (a bool tensor, no gradient)."""
    dims, keepdim = _dim_args(input, dim, keepdim, kw, "all")
    xp = get_array_module(input.array)
    return Tensor._wrap(xp.asarray(xp.all(input.array, axis=dims, keepdims=keepdim)))


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


# ---- statistics built on the reductions above ---------------------------------------------
def var_mean(
    input: Tensor,
    dim: Any = None,
    unbiased: bool = True,
    keepdim: bool = False,
    *,
    correction: Any = None,
    **kw: Any,
) -> tuple:
    """(var(input, dim, ...), mean(input, dim, ...)): var's arguments."""
    return _statistic_mean(var, input, dim, unbiased, keepdim, correction, kw)


def std_mean(
    input: Tensor,
    dim: Any = None,
    unbiased: bool = True,
    keepdim: bool = False,
    *,
    correction: Any = None,
    **kw: Any,
) -> tuple:
    """(std(input, dim, ...), mean(input, dim, ...)): std's arguments."""
    return _statistic_mean(std, input, dim, unbiased, keepdim, correction, kw)


def _statistic_mean(
    statistic: Any, input: Tensor, dim: Any, unbiased: bool, keepdim: bool, correction: Any,
    kw: dict,
) -> tuple:  # fmt: skip
    if isinstance(dim, bool):  # (input, unbiased), as in var
        dim, unbiased = None, dim
    dim = kw.pop("axis", dim)
    keepdim = kw.pop("keepdims", keepdim)
    out = statistic(input, dim, unbiased, keepdim, correction=correction, **kw)
    return out, mean(input, dim, keepdim)


def aminmax(input: Tensor, *, dim: int | None = None, keepdim: bool = False) -> Any:
    """(min, max) over dim (every element when None), as a named tuple."""
    return _aminmax(amin(input, dim, keepdim), amax(input, dim, keepdim))


def nansum(
    input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None, **kw: Any
) -> Tensor:
    """Sum over `dim` treating NaN as zero."""
    input = _with_dtype(input, dtype)
    if input.dtype.kind == "f":
        input = arithmetic.where(arithmetic.isnan(input), 0.0, input)
    return sum(input, dim, keepdim, **kw)


def nanmean(
    input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None, **kw: Any
) -> Tensor:
    """Mean over `dim` of the elements that are not NaN (NaN where a slice has none)."""
    input = _with_dtype(input, dtype)
    _require_float(input, "nanmean")
    present = arithmetic.logical_not(arithmetic.isnan(input))
    count = sum(present, dim, keepdim, **kw).to(input.dtype)
    return arithmetic.div(nansum(input, dim, keepdim, **kw), count)


def median(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Any:
    """The lower median of every element (a 0-d tensor), or with an int `dim` the named tuple
    (values, indices); NaN if the slice holds one. The gradient goes to the chosen element."""
    xp = get_array_module(input.array)
    if dim is None:
        flat = input.reshape(-1)
        if flat.shape[0] == 0:
            return Tensor._wrap(xp.asarray(numpy.nan, input.dtype))
        return median(flat, 0).values
    d = normalize_dim(dim, input.ndim, "median")
    if input.ndim == 0:
        return _median(input * 1, Tensor._wrap(xp.zeros((), "int64")))
    _require_nonempty(input, (d,), "median")
    from gradflow.ops.indexing import Gather
    from gradflow.ops.sorting import kth_smallest_index

    a = input.array
    n = a.shape[d]
    # The stable sort's element at (n - 1) // 2: by a partition on NumPy (no full sort).
    index = kth_smallest_index(a, (n - 1) // 2, d)
    if index is None:
        order = xp.argsort(a, axis=d, kind="stable")  # NaN sorts last
        index = xp.take(order, [(n - 1) // 2], axis=d)
    if a.dtype.kind == "f":
        nan = xp.isnan(a)
        has_nan = nan.any(axis=d, keepdims=True)
        if xp is not numpy or has_nan.any():  # a slice holding NaN: its first NaN
            index = xp.where(has_nan, xp.argmax(nan, axis=d, keepdims=True), index)
    index = index.astype("int64", copy=False)
    values = Gather.apply(input, index, dim=d, op_name="median")
    if not keepdim:
        values, index = values.squeeze(d), index.squeeze(d)
    return _median(values, Tensor._wrap(index))


def _check_interpolation(interpolation: str) -> None:
    if interpolation not in ("linear", "lower", "higher", "nearest", "midpoint"):
        raise ValueError(
            "quantile() interpolation must be one of linear, lower, higher, midpoint or "
            f"nearest, got {interpolation!r}"
        )


def _quantile_q(q: Any) -> Any:
    """quantile's q as a float64 NumPy array (0-d or 1-d), checked to lie in [0, 1]."""
    qs = numpy.asarray(q.tolist() if isinstance(q, Tensor) else q, dtype=numpy.float64)
    if qs.ndim > 1:
        raise RuntimeError(f"quantile() q must be a scalar or 1D tensor, got {qs.ndim}D")
    if ((qs < 0) | (qs > 1)).any():
        bad = qs[(qs < 0) | (qs > 1)].reshape(-1)[0]
        raise RuntimeError(f"quantile() q must be in the range [0, 1] but got {bad}")
    return qs


def _quantile_neighbours(mod: Any, pos: Any, interpolation: str) -> tuple[Any, Any, Any]:
    """The sorted positions (lo, hi, as floats) around each fractional position pos and the
    weight of hi, for quantile's interpolation modes; mod is numpy or the device's module."""
    lo, hi = mod.floor(pos), mod.ceil(pos)
    weight = pos - lo
    if interpolation == "lower":
        hi, weight = lo, weight * 0
    elif interpolation == "higher":
        lo, weight = hi, weight * 0
    elif interpolation == "nearest":
        lo = hi = mod.round(pos)  # halves to even, as PyTorch
        weight = weight * 0
    elif interpolation == "midpoint":
        weight = mod.where(hi > lo, 0.5, 0.0)
    return lo, hi, weight


def quantile(
    input: Tensor,
    q: Any,
    dim: int | None = None,
    keepdim: bool = False,
    *,
    interpolation: str = "linear",
) -> Tensor:
    """The q-th quantiles over dim (of every element when None), interpolating between the
    sorted neighbours (``interpolation``: linear, lower, higher, nearest, midpoint). A 1-D q
    puts its quantiles first in the result; NaN in a slice gives NaN."""
    from gradflow.ops.indexing import gather, index_select
    from gradflow.ops.shape import movedim, squeeze

    _check_interpolation(interpolation)
    _require_float(input, "quantile")
    qs = _quantile_q(q)
    if dim is None:
        source, d, shape = input.reshape(-1), 0, (1,) * input.ndim
    else:
        d = normalize_dim(dim, input.ndim, "quantile")
        source, shape = input, None
    _require_nonempty(source, (d,), "quantile")
    xp = get_array_module(input.array)
    n = source.shape[d]
    order = Tensor._wrap(xp.argsort(source.array, axis=d, kind="stable").astype("int64"))
    ordered = gather(source, d, order)
    pos = qs.reshape(-1) * (n - 1)
    lo, hi, weight = _quantile_neighbours(numpy, pos, interpolation)
    low = index_select(ordered, d, Tensor._wrap(xp.asarray(lo.astype(numpy.int64))))
    high = index_select(ordered, d, Tensor._wrap(xp.asarray(hi.astype(numpy.int64))))
    w_shape = [1] * source.ndim
    w_shape[d] = len(pos)
    w = Tensor._wrap(xp.asarray(weight.reshape(w_shape), dtype=input.dtype))
    out = arithmetic.add(low, arithmetic.mul(w, arithmetic.sub(high, low)))
    nan = xp.isnan(source.array).any(axis=d, keepdims=True)
    if bool(nan.any()):  # one host sync on cuda
        out = arithmetic.where(Tensor._wrap(nan), math.nan, out)
    out = movedim(out, d, 0)  # the quantiles first
    if shape is not None and keepdim:
        out = out.reshape(len(pos), *shape)
    elif keepdim:
        from gradflow.ops.shape import unsqueeze

        out = unsqueeze(out, d + 1)
    return squeeze(out, 0) if qs.ndim == 0 else out
