"""Scatter ops: scatter, scatter_add, scatter_reduce, index_add/copy/fill, index_put, put,
masked_fill, masked_scatter, and their in-place ``_`` forms (PyTorch's names and semantics).

Every one of them is one op, ``ScatterFlat``: a copy of the input whose elements at a set of
flat positions are set to, or reduced with, source values. The public functions turn their
index (a dim and an index tensor, a tuple of indices, a mask) into those flat positions and
shape the source to match them with differentiable ops (a corner slice, an expand), so one
backward serves all of them (index_add on NumPy floats has its own op, ``IndexAdd``: slices
added by fancy indexing, no flat positions). Repeated positions add up through
``numpy.ufunc.at`` on cpu and ``cupyx.scatter_add/max/min`` on cuda (CuPy has no atomic
multiply, nor int64 max/min: those reduce on the host). Memory: the positions (int64, the
index's size) always; ``mean`` keeps the counts; ``prod`` the input, source values and two
input-sized arrays; ``amax``/``amin`` the input, source values, output and tie counts.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy

from gradflow.autograd import versions as _versions
from gradflow.autograd.function import Function
from gradflow.autograd.grad_mode import no_grad
from gradflow.backend import Device, device_of, get_array_module, is_cuda_array, move_array
from gradflow.ops._util import normalize_dim, unbroadcast
from gradflow.ops.indexing import _convert, _is_array, _min_max, normalize_index
from gradflow.tensor import Tensor, _make_tensor

_REDUCES = ("sum", "prod", "mean", "amax", "amin")


_UFUNCS = {"sum": numpy.add, "prod": numpy.multiply, "amax": numpy.maximum, "amin": numpy.minimum}
# The dtypes (NumPy type chars) CuPy 14's cupyx.scatter_add/max/min take; CuPy has no
# atomic multiply at all.
_ATOMIC = {"sum": "iefdILQ", "amax": "ifdILQ", "amin": "ifdILQ", "prod": ""}


def _reduce_at(kind: str, flat: Any, positions: Any, values: Any) -> None:
    """flat[positions] (op)= values with repeated positions combined: ufunc.at on cpu, cupyx's
    atomic scatters on cuda."""
    if not is_cuda_array(flat):
        _UFUNCS[kind].at(flat, positions, values)
        return
    if kind == "sum" and flat.dtype == numpy.int64:
        # No int64 atomic add in CuPy; two's-complement addition is the same on uint64.
        flat, values = flat.view(numpy.uint64), values.astype(numpy.int64).view(numpy.uint64)
    if flat.dtype.char not in _ATOMIC[kind]:  # reduce on the host, copy back once
        cpu = Device("cpu")
        host = move_array(flat, cpu)
        _UFUNCS[kind].at(host, move_array(positions, cpu), move_array(values, cpu))
        flat[...] = move_array(host, device_of(flat))
        return
    import cupyx

    name = {"sum": "scatter_add", "amax": "scatter_max", "amin": "scatter_min"}[kind]
    getattr(cupyx, name)(flat, positions, values)


def _lowest(dtype: Any, highest: bool = False) -> Any:
    """The identity of amax (amin with highest=True) for dtype."""
    if dtype.kind == "f":
        return dtype.type(numpy.inf if highest else -numpy.inf)
    if dtype.kind == "b":
        return numpy.bool_(highest)
    info = numpy.iinfo(dtype)
    return dtype.type(info.max if highest else info.min)


class ScatterFlat(Function):
    """out = input with out.flat[positions] set to src (reduce 'none') or reduced with it."""

    op_name = "scatter"
    positions: Any  # integer array (any shape): the flat position in input of each src value
    reduce: str = "none"  # none, sum, prod, mean, amax, amin
    include_self: bool = True

    def forward(self, x, src):
        xp = get_array_module(x)
        self.src_shape = getattr(src, "shape", ())
        pos = self.positions.reshape(-1)
        values = xp.broadcast_to(xp.asarray(src, dtype=x.dtype), self.positions.shape)
        values = xp.ascontiguousarray(values).reshape(-1)
        out = xp.array(x, copy=True, order="C")
        flat = out.reshape(-1)
        kind = self.reduce
        if kind == "none":
            flat[pos] = values
            return out
        if not self.include_self:
            identity = {"sum": 0, "mean": 0, "prod": 1}.get(kind)
            flat[pos] = _lowest(x.dtype, kind == "amin") if identity is None else identity
        if kind == "prod":
            self._prod_saves(x, values, flat, pos, xp)
        _reduce_at("sum" if kind == "mean" else kind, flat, pos, values)
        if kind == "mean":
            counts = xp.ones(x.size, x.dtype if x.dtype.kind == "f" else xp.int64)
            if not self.include_self:
                counts[pos] = 0
            _reduce_at("sum", counts, pos, xp.ones(pos.size, counts.dtype))
            counts = xp.maximum(counts, 1).reshape(x.shape)
            self.save_for_backward(counts)  # Memory: the counts (input-sized)
            out = out / counts if x.dtype.kind == "f" else out // counts
        elif kind in ("amax", "amin") and self._recording:
            # How many values equal the result, the gradient's share of each. Like PyTorch,
            # input's own value counts even with include_self=False (it gets no share then).
            ties = (x.reshape(-1) == flat).astype(x.dtype)
            _reduce_at("sum", ties, pos, (values == flat[pos]).astype(x.dtype))
            # Memory: input, source values, output and tie counts (for ties sharing a gradient)
            self.save_for_backward(x, values, out, ties.reshape(x.shape))
        return out

    def _prod_saves(self, x, values, flat, pos, xp):
        """Saves what prod's backward needs: per position, how many included values are zero
        and the product of the nonzero ones (so a single zero gets the others' product)."""
        if not self._recording:
            return
        zeros = xp.zeros(x.size, x.dtype)
        nonzero = xp.ones(x.size, x.dtype)
        mine = x.reshape(-1)
        if self.include_self:
            zeros += mine == 0
            nonzero = xp.where(mine == 0, nonzero, mine)
        _reduce_at("sum", zeros, pos, (values == 0).astype(x.dtype))
        _reduce_at("prod", nonzero, pos, xp.where(values == 0, 1, values).astype(x.dtype))
        # Memory: the input, the source values, and two input-sized arrays
        self.save_for_backward(x, values, zeros, nonzero)

    def backward(self, g):
        need_x, need_src = self.needs_input_grad
        xp = get_array_module(g)
        pos = self.positions.reshape(-1)
        kind = self.reduce
        gx = gsrc = None
        g = xp.ascontiguousarray(g)
        if kind == "prod":
            x, values, zeros, nonzero = self.saved_arrays
            g_flat = g.reshape(-1)

            def others(v, zc, nz):  # the product of the other values at a position
                safe = xp.where(v == 0, 1, v)
                return xp.where(v == 0, xp.where(zc == 1, nz, 0), xp.where(zc == 0, nz / safe, 0))

            if need_x and self.include_self:
                gx = (g_flat * others(x.reshape(-1), zeros, nonzero)).reshape(x.shape)
            if need_src:
                gsrc = g_flat[pos] * others(values, zeros[pos], nonzero[pos])
        elif kind in ("amax", "amin"):
            # Ties share the gradient evenly, as PyTorch's scatter_reduce does.
            x, values, out, ties = self.saved_arrays
            share = (g / xp.maximum(ties, 1)).reshape(-1)
            if need_x and self.include_self:
                gx = (share * (x.reshape(-1) == out.reshape(-1))).reshape(g.shape)
            if need_src:
                gsrc = share[pos] * (values == out.reshape(-1)[pos])
        else:
            if kind == "mean":
                (counts,) = self.saved_arrays
                g = g / counts
            if need_x and kind != "none" and self.include_self:
                gx = g
            if need_src:
                gsrc = g.reshape(-1)[pos]
        if need_x and gx is None:  # include_self=False: the written positions get nothing
            gx = g.copy()
            gx.reshape(-1)[pos] = 0
        if gsrc is not None:
            gsrc = unbroadcast(gsrc.reshape(self.positions.shape), self.src_shape)
        return gx, gsrc

    def backward_graph(self, g):
        # 'none', 'sum' and 'mean' are linear in input and src, amax/amin too with their tie
        # masks fixed: backward's picks and masks on Tensors. prod is not written yet.
        from gradflow.autograd.differentiable import const
        from gradflow.autograd.differentiable import unbroadcast as unbroadcast_graph

        kind = self.reduce
        if kind == "prod":
            return NotImplemented
        need_x, need_src = self.needs_input_grad
        xp = get_array_module(g.array)
        pos = self.positions.reshape(-1)
        if kind in ("amax", "amin"):  # ties share the gradient: constant masks
            x, values, out, ties = self.saved_arrays
            share = (g / const(xp.maximum(ties, 1))).reshape(-1)
            gx = gsrc = None
            if need_x and self.include_self:
                gx = (share * const(x.reshape(-1) == out.reshape(-1))).reshape(g.shape)
            if need_src:
                gsrc = share[pos] * const(values == out.reshape(-1)[pos])
                gsrc = unbroadcast_graph(gsrc.reshape(self.positions.shape), self.src_shape)
            if need_x and gx is None:
                kept = xp.ones(g.shape, g.dtype)
                kept.reshape(-1)[pos] = 0
                gx = g * const(kept)
            return gx, gsrc
        if kind == "mean":
            g = g / const(self.saved_arrays[0])
        gx = gsrc = None
        if need_x:
            if kind != "none" and self.include_self:
                gx = g
            else:  # the written positions get nothing
                kept = xp.ones(g.shape, g.dtype)
                kept.reshape(-1)[pos] = 0
                gx = g * const(kept)
        if need_src:
            gsrc = g.reshape(-1)[pos].reshape(self.positions.shape)
            gsrc = unbroadcast_graph(gsrc, self.src_shape)
        return gx, gsrc


# ---- turning indices into flat positions ----------------------------------------------
def _int_index(index: Any, x: Tensor, op: str) -> Any:
    """An integer index (Tensor, array or list) as an array on x's device."""
    if isinstance(index, Tensor) and index.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor (int64/int32), got {index.dtype}")
    array = _convert(
        index if not isinstance(index, numbers.Integral) else [index], get_array_module(x.array), x
    )
    if isinstance(array, int):
        array = get_array_module(x.array).asarray(array)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor (int64/int32), got {array.dtype}")
    return array


def _check_range(array: Any, size: int, dim: int, op: str, negative: bool = False) -> Any:
    """array checked against [0, size) ([-size, size) with negative=True, then wrapped): an
    IndexError naming the index, the dim and its size, as PyTorch's message does."""
    if not array.size:
        return array
    ((low, high),) = _min_max([array], get_array_module(array))  # one sync on cuda
    if low < (-size if negative else 0) or high >= size:
        bad = high if high >= size else low
        raise IndexError(f"{op}: index {bad} is out of bounds for dimension {dim} with size {size}")
    if low < 0:
        array = get_array_module(array).where(array < 0, array + size, array)
    return array


def _positions(shape: tuple, dim: int, index: Any) -> Any:
    """Flat (C order) positions in an array of `shape` of the elements that a scatter along
    `dim` writes: index[i, j, k] along dim 1 names x[i, index[i, j, k], k]."""
    xp = get_array_module(index)
    strides = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        strides[d] = strides[d + 1] * shape[d + 1]
    pos = index.astype(xp.int64) * strides[dim]
    for d, n in enumerate(index.shape):
        if d != dim:
            lay = [-1 if k == d else 1 for k in range(index.ndim)]
            pos = pos + xp.arange(n, dtype=xp.int64).reshape(lay) * strides[d]
    return pos


def _same_dtype(x: Tensor, src: Tensor, op: str, name: str = "src") -> None:
    if src.dtype != x.dtype:
        raise TypeError(
            f"{op}: expected {name} to have the input's dtype {x.dtype}, got {src.dtype}; "
            f"convert with {name}.to(input.dtype)"
        )


def _value(x: Tensor, value: Any, op: str) -> Any:
    """A fill value: a number (as x's dtype), or a 0-d tensor (differentiable, cast to x's
    dtype), as PyTorch's masked_fill/index_fill take it."""
    if isinstance(value, Tensor):
        if value.ndim:
            raise ValueError(
                f"{op} only supports a 0-dimensional value tensor, but got tensor with "
                f"{value.ndim} dimension(s); use masked_scatter or where() for tensor values"
            )
        return value.to(x.dtype) if value.dtype != x.dtype else value
    if not isinstance(value, numbers.Number):
        raise TypeError(f"{op}: value must be a number or a 0-d tensor, got {type(value).__name__}")
    return x.dtype.type(value)


def _apply(
    x: Tensor, positions: Any, src: Any, op: str, reduce: str = "none", include_self: bool = True
) -> Tensor:
    return ScatterFlat.apply(
        x, src, positions=positions, reduce=reduce, include_self=include_self, op_name=op
    )


def _scatter_along(
    x: Tensor, dim: int, index: Any, src: Any, op: str, reduce: str, include_self: bool = True
) -> Tensor:
    """The scatter family: index has x's ndim, sizes at most x's outside dim (and at most
    src's everywhere); src is a Tensor or a number."""
    d = normalize_dim(dim, x.ndim, op)
    array = _int_index(index, x, op)
    if x.ndim == 0:  # PyTorch treats a 0-d input (and index) as one element
        src = src.reshape(1) if isinstance(src, Tensor) and src.ndim == 0 else src
        out = _scatter_along(x.reshape(1), 0, array.reshape(-1), src, op, reduce, include_self)
        return out.reshape(())
    if array.ndim != x.ndim and array.size:
        raise ValueError(
            f"{op}: index of shape {tuple(array.shape)} must have as many dims as the input "
            f"{tuple(x.shape)}"
        )
    if isinstance(src, Tensor):
        _same_dtype(x, src, op)
        if src.ndim != array.ndim and array.size:
            raise ValueError(
                f"{op}: src of shape {tuple(src.shape)} must have the {x.ndim} dims of the input"
            )
    too_big = any(n > m for k, (n, m) in enumerate(zip(array.shape, x.shape)) if k != d)
    if isinstance(src, Tensor) and array.size:
        too_big = too_big or any(n > m for n, m in zip(array.shape, src.shape))
    if too_big:
        src_shape = (
            f" and to be no larger than src {list(src.shape)}" if isinstance(src, Tensor) else ""
        )
        raise ValueError(
            f"{op}: expected index {list(array.shape)} to be no larger than self "
            f"{list(x.shape)} apart from dimension {d}{src_shape}"
        )
    if not array.size:
        return _apply(x, get_array_module(array).zeros(0, numpy.int64), 0, op, reduce, include_self)
    array = _check_range(array, x.shape[d], d, op)
    if isinstance(src, Tensor) and src.shape != array.shape:
        src = src[tuple(slice(0, n) for n in array.shape)]  # PyTorch uses src's leading corner
    return _apply(x, _positions(x.shape, d, array), src, op, reduce, include_self)


def scatter(
    input: Tensor,
    dim: int,
    index: Any,
    src: Any = None,
    value: Any = None,
    *,
    reduce: str | None = None,
) -> Tensor:
    """A copy of input with src's values written at `index` along `dim` (out[i][index[i][j]]
    = src[i][j] for dim 1); src may be a number (or pass value=). With duplicate positions one
    of the values wins. reduce='add' or 'multiply' combines instead (PyTorch's older form of
    scatter_reduce). Gradients: to input where nothing was written, to src gathered back."""
    if src is None and value is None:
        raise TypeError("scatter() missing an argument: pass src (a tensor) or value (a number)")
    src = value if src is None else src
    if not isinstance(src, Tensor):
        src = _value(input, src, "scatter")
    kinds = {None: "none", "add": "sum", "multiply": "prod"}
    if reduce not in kinds:
        raise ValueError(f"scatter: reduce argument must be either add or multiply, got {reduce!r}")
    return _scatter_along(input, dim, index, src, "scatter", kinds[reduce])


def scatter_add(input: Tensor, dim: int, index: Any, src: Tensor) -> Tensor:
    """A copy of input with src's values added at `index` along `dim`; repeated positions add
    up (out[i][index[i][j]] += src[i][j] for dim 1)."""
    return _scatter_along(
        input, dim, index, _tensor_arg(src, "scatter_add", "src"), "scatter_add", "sum"
    )


def scatter_reduce(
    input: Tensor, dim: int, index: Any, src: Tensor, reduce: str, *, include_self: bool = True
) -> Tensor:
    """Reduce src's values into input at `index` along `dim` with 'sum', 'prod', 'mean',
    'amax' or 'amin'; include_self=False leaves input's own values at the written positions
    out of the reduction. amax/amin share the gradient evenly among tied values (as PyTorch)."""
    if reduce not in _REDUCES:
        raise ValueError(
            f"scatter_reduce: reduce argument must be either sum, prod, mean, amax or amin, "
            f"got {reduce!r}"
        )
    src = _tensor_arg(src, "scatter_reduce", "src")
    return _scatter_along(input, dim, index, src, "scatter_reduce", reduce, bool(include_self))


def _tensor_arg(t: Any, op: str, name: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: argument '{name}' must be a Tensor, got {type(t).__name__}")
    return t


def _index_along(x: Tensor, dim: int, index: Any, op: str) -> tuple:
    """(dim, 1-D index checked against x.shape[dim]) for the index_* family."""
    d = normalize_dim(dim, x.ndim, op)
    array = _int_index(index, x, op)
    if array.ndim > 1:
        raise ValueError(f"{op}: index must be 1-D (or 0-d), got shape {tuple(array.shape)}")
    array = array.reshape(-1)
    size = x.shape[d] if x.ndim else 1
    return d, _check_range(array, size, d, op)


def _index_scatter(x: Tensor, dim: int, index: Any, source: Any, op: str, reduce: str) -> Tensor:
    """index_add/index_copy: source's slice k along dim goes to x's slice index[k]."""
    source = _tensor_arg(source, op, "source")
    _same_dtype(x, source, op, "source")
    d, array = _index_along(x, dim, index, op)
    if x.ndim == 0 or source.ndim == 0:
        x1, s1 = x.reshape(-1), source.reshape(-1)
        if x1.shape != s1.shape or array.size != 1:
            raise ValueError(f"{op}: a 0-d input takes a 0-d (or one-element) source and index")
        out = _index_scatter(x1, 0, array, s1, op, reduce)
        return out.reshape(x.shape)
    expected = x.shape[:d] + (array.size,) + x.shape[d + 1 :]
    if source.shape != expected:
        raise ValueError(
            f"{op}: source of shape {tuple(source.shape)} must have the input's shape "
            f"{tuple(x.shape)} with {array.size} (the number of indices) in dim {d}"
        )
    xp = get_array_module(array)
    if reduce == "sum" and xp is numpy and x.dtype.kind == "f":
        return IndexAdd.apply(x, source, dim=d, index=array)
    full = xp.broadcast_to(array.reshape([-1 if k == d else 1 for k in range(x.ndim)]), expected)
    return _apply(x, _positions(x.shape, d, full), source, op, reduce)


class IndexAdd(Function):
    """NumPy, floating point: index_add without ScatterFlat's flat positions. The copy of x
    gets source's slices added along dim by one fancy-indexed += when the index has no
    repeats (each slice added once, as numpy.add.at would); with repeats, numpy.add.at on
    (rows, width) (indexing._add_rows) for dim 0, on dim moved first otherwise (repeats add
    in index order either way). Backward: g itself for x, its slices at index for source.
    Memory: the index only (a reference)."""

    op_name = "index_add"
    dim: int
    index: Any  # 1-D integer array, in range

    def forward(self, x, src):
        from gradflow.ops.indexing import _add_rows

        out = numpy.array(x, copy=True, order="C")
        index, d = self.index, self.dim
        if index.size == 0:
            return out
        if int(numpy.bincount(index.astype(numpy.intp, copy=False)).max()) == 1:  # no repeats
            moved = numpy.moveaxis(out, d, 0)
            moved[index] += numpy.moveaxis(src, d, 0)
        elif d == 0:
            _add_rows(out.reshape(out.shape[0], -1), index, src.reshape(index.size, -1))
        else:
            numpy.add.at(numpy.moveaxis(out, d, 0), index, numpy.moveaxis(src, d, 0))
        return out

    def backward(self, g):
        need_x, need_src = self.needs_input_grad
        gsrc = numpy.take(g, self.index, axis=self.dim) if need_src else None
        return (g if need_x else None), gsrc

    def backward_graph(self, g):
        need_x, need_src = self.needs_input_grad
        gsrc = g.index_select(self.dim, self.index) if need_src else None
        return (g if need_x else None), gsrc


def index_add(input: Tensor, dim: int, index: Any, source: Tensor, *, alpha: Any = 1) -> Tensor:
    """A copy of input with alpha * source's slices added at the 1-D `index` along `dim`;
    repeated indices add up."""
    if alpha != 1:
        source = _tensor_arg(source, "index_add", "source") * alpha
    return _index_scatter(input, dim, index, source, "index_add", "sum")


def index_copy(input: Tensor, dim: int, index: Any, source: Tensor) -> Tensor:
    """A copy of input with source's slices written at the 1-D `index` along `dim`."""
    return _index_scatter(input, dim, index, source, "index_copy", "none")


def index_fill(input: Tensor, dim: int, index: Any, value: Any) -> Tensor:
    """A copy of input with the slices at the 1-D `index` along `dim` set to `value` (a
    number or a 0-d tensor)."""
    value = _value(input, value, "index_fill")
    d, array = _index_along(input, dim, index, "index_fill")
    if input.ndim == 0:
        return _apply(input.reshape(1), array, value, "index_fill").reshape(())
    shape = input.shape[:d] + (array.size,) + input.shape[d + 1 :]
    xp = get_array_module(array)
    full = xp.broadcast_to(array.reshape([-1 if k == d else 1 for k in range(input.ndim)]), shape)
    return _apply(input, _positions(input.shape, d, full), value, "index_fill")


def _selected(x: Tensor, index: Any) -> Any:
    """The flat positions x[index] picks, in the shape of the result (any index __getitem__
    takes: ints, slices, integer arrays, masks)."""
    xp = get_array_module(x.array)
    return xp.arange(x.array.size, dtype=xp.int64).reshape(x.shape)[normalize_index(index, x)]


def _fit(values: Any, positions: Any, x: Tensor, op: str) -> Any:
    if isinstance(values, Tensor):
        _same_dtype(x, values, op, "values")
        extra = len(values.shape) - positions.ndim
        if extra > 0 and values.shape[:extra] == (1,) * extra:  # leading 1s: PyTorch drops them
            values = values.reshape(values.shape[extra:])
        try:
            fits = numpy.broadcast_shapes(values.shape, positions.shape) == positions.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"{op}: values of shape {tuple(values.shape)} can't be broadcast to the indexed "
                f"shape {tuple(positions.shape)}"
            )
        return values
    return _value(x, values, op)


def index_put(input: Tensor, indices: tuple, values: Any, accumulate: bool = False) -> Tensor:
    """A copy of input with input[indices] = values (accumulate=True: += , repeated positions
    adding up). `indices` is a tuple of index tensors (or anything indexing takes)."""
    if not isinstance(indices, tuple | list):
        raise TypeError(
            f"index_put: indices must be a tuple of tensors, got {type(indices).__name__}"
        )
    rows = _leading_rows(input, tuple(indices), values) if accumulate else None
    if rows is not None:  # input[rows] += values: index_add's node, not a flat position per value
        return _index_scatter(input, 0, rows, values, "index_put", "sum")
    positions = _selected(input, tuple(indices))
    values = _fit(values, positions, input, "index_put")
    return _apply(input, positions, values, "index_put", "sum" if accumulate else "none")


def _leading_rows(x: Tensor, indices: tuple, values: Any) -> Tensor | None:
    """index_put's one common form, (rows,) of a 1-D integer tensor within [-M, M) with values
    of shape (len(rows), *x.shape[1:]) and x's dtype, as non-negative rows (None otherwise:
    the general route, whose flat positions cost an input-sized arange)."""
    if len(indices) != 1 or x.ndim < 2 or not isinstance(values, Tensor):
        return None
    (rows,) = indices
    if not isinstance(rows, Tensor) or rows.ndim != 1 or rows.dtype.kind not in "iu":
        return None
    if values.dtype != x.dtype or tuple(values.shape) != (rows.shape[0], *x.shape[1:]):
        return None
    if rows.device != x.device or not rows.numel():
        return None
    array, m = rows.array, x.shape[0]
    xp = get_array_module(array)
    low, high = (int(v) for v in xp.stack([array.min(), array.max()]).tolist())
    if low < -m or high >= m:
        return None  # the general route raises torch's IndexError
    if low < 0:
        array = xp.where(array < 0, array + m, array)
    return Tensor._wrap(array) if array is not rows.array else rows


def put(input: Tensor, index: Any, source: Tensor, accumulate: bool = False) -> Tensor:
    """A copy of input with its flattened elements at `index` set to source's (added with
    accumulate=True); negative indices count from the end."""
    source = _tensor_arg(source, "put", "source")
    _same_dtype(input, source, "put", "source")
    array = _check_range(_int_index(index, input, "put").reshape(-1), input.numel(), 0, "put", True)
    if source.numel() != array.size:
        raise ValueError(
            f"put: expected source and index to have the same number of elements, got "
            f"{source.numel()} and {array.size}"
        )
    return _apply(input, array, source.reshape(-1), "put", "sum" if accumulate else "none")


def _mask(x: Tensor, mask: Any, op: str, inplace: bool = False) -> Any:
    if isinstance(mask, Tensor) and mask.dtype.kind != "b":
        raise TypeError(f"{op} only supports boolean masks, but got mask with dtype {mask.dtype}")
    array = _convert(mask, get_array_module(x.array), x)
    if not _is_array(array) or array.dtype.kind != "b":
        what = getattr(array, "dtype", type(mask).__name__)
        raise TypeError(f"{op} only supports boolean masks, but got mask with dtype {what}")
    try:
        shape = numpy.broadcast_shapes(x.shape, array.shape)
    except ValueError:
        shape = None
    if shape is None or (inplace and shape != x.shape):
        raise ValueError(
            f"{op}: mask of shape {tuple(array.shape)} doesn't broadcast to the input's shape "
            f"{tuple(x.shape)}"
        )
    return array


def masked_fill(input: Tensor, mask: Any, value: Any) -> Tensor:
    """input with `value` (a number or a 0-d tensor, cast to input's dtype) where the bool
    `mask` holds; mask and input broadcast together. E.g. attention scores
    ``scores.masked_fill(~keep, float('-inf'))``."""
    from gradflow.ops.arithmetic import Where

    array = _mask(input, mask, "masked_fill")
    value = _value(input, value, "masked_fill")
    return Where.apply(Tensor._wrap(array), value, input, op_name="masked_fill")


def masked_scatter(input: Tensor, mask: Any, source: Tensor) -> Tensor:
    """input with source's first elements (in order) written where the bool `mask` holds."""
    source = _tensor_arg(source, "masked_scatter", "source")
    _same_dtype(input, source, "masked_scatter", "source")
    array = _mask(input, mask, "masked_scatter")
    shape = numpy.broadcast_shapes(input.shape, array.shape)
    if shape != input.shape:
        input = input.expand(shape)
    xp = get_array_module(array)
    positions = xp.arange(input.numel(), dtype=xp.int64)[xp.broadcast_to(array, shape).reshape(-1)]
    if positions.size > source.numel():
        raise ValueError(
            f"masked_scatter: the mask selects {positions.size} elements but source has only "
            f"{source.numel()}"
        )
    return _apply(input, positions, source.reshape(-1)[: positions.size], "masked_scatter")


# ---- in place -------------------------------------------------------------------------
def inplace(
    x: Tensor, what: str, compute: Callable[[Tensor], Tensor], operand: Any = None
) -> Tensor:
    """x = compute(x), written into x's storage (PyTorch's ``_`` forms). Recorded through the
    in-place machinery of tensor.py when x or the operand requires grad: the node gets a copy
    of x's old values, and x becomes its output."""
    x._check_inplace(what)
    if x._records(what, operand):
        old = _make_tensor(x.array.copy(), x.grad_fn, x._requires_grad, x._output_nr)
        return x._rebase(_same_shape(compute(old), x, what))
    with no_grad():
        result = _same_shape(compute(x), x, what)
    x.array[...] = result.array
    _versions.bump(x.array)
    return x


def _same_shape(result: Tensor, x: Tensor, what: str) -> Tensor:
    if result.shape != x.shape:  # e.g. a mask or src broadcasting x to a larger shape
        raise ValueError(
            f"{what}: the result has shape {tuple(result.shape)}, not the shape "
            f"{tuple(x.shape)} of the tensor written in place"
        )
    return result


def masked_fill_(x: Tensor, mask: Any, value: Any) -> Tensor:
    """masked_fill in place; mask must broadcast to x's shape."""
    array = _mask(x, mask, "masked_fill_", inplace=True)
    value = _value(x, value, "masked_fill_")
    x._check_inplace("masked_fill_")
    if x._records("masked_fill_", value):
        return inplace(x, "masked_fill_", lambda t: masked_fill(t, array, value), value)
    if isinstance(value, Tensor):
        value = value.array
    x.array[get_array_module(array).broadcast_to(array, x.shape)] = value  # unrecorded: in place
    _versions.bump(x.array)
    return x
