"""Indexing: __getitem__ (basic and advanced), gather/take_along_axis, index_select,
masked_select, one_hot (no gradient); ``normalize_index`` also serves Tensor.__setitem__.

An index may hold ints, slices, None, Ellipsis, integer (int64/int32) or bool tensors, and
lists of them. Every index is checked against the tensor's shape before NumPy sees it, so an
out-of-range index names the index, the dim and its size (on cuda too, where CuPy would wrap it
around without a word). On cuda that check is one host synchronization per op: the min and max
of every integer array of an index are reduced on the device and read back together.

Backward scatters the gradient into zeros of the input's shape; integer arrays can pick an
element more than once, so their gradients are added (``_scatter_add``), never assigned.

On cpu, integer arrays that pick whole rows (x[idx], x[i, j], index_select; ``_take_plan``) are
read with one numpy.take and gather takes from flat positions computed once in forward; their
gradients, and embedding's, go through one scatter-add, ``_add_rows``/``_add_at`` (numpy.add.at
on 1-D operands: exact in the gradient's dtype, repeats summed in index order).
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy

from gradflow.autograd.differentiable import linear_backward_graph
from gradflow.autograd.function import Function
from gradflow.autograd.versions import storage_root
from gradflow.backend import (
    Device,
    compiled,
    device_of,
    get_array_module,
    is_cuda_array,
    move_array,
)
from gradflow.ops._util import normalize_dim, unbroadcast
from gradflow.tensor import Tensor


# ---- index normalization ---------------------------------------------------------------
def normalize_index(index: Any, x: Tensor) -> tuple:
    """The index as a tuple NumPy/CuPy accept for x's array: Tensors and lists become arrays
    on x's device, negative integer arrays become non-negative, and every int, integer array
    and mask is checked against x's shape (IndexError naming the index, dim and size)."""
    items = index if isinstance(index, tuple) else (index,)
    xp = get_array_module(x.array)
    return _check(tuple(_convert(i, xp, x) for i in items), x.shape, xp)


def _convert(item: Any, xp: Any, x: Tensor) -> Any:
    """One index item in the form the array module takes (ints, slices, None, ..., arrays)."""
    if isinstance(item, slice) and item.step == 0:
        raise ValueError(f"index: slice step cannot be zero, got {item}")
    if item is None or item is Ellipsis or isinstance(item, slice | bool | numpy.bool_):
        return item
    if isinstance(item, int | numpy.integer):
        return int(item)
    if isinstance(item, Tensor):
        array = item.array
    elif isinstance(item, list):
        array = _list_to_array(item)
    elif hasattr(item, "dtype") and hasattr(item, "shape"):
        array = item
    else:
        raise TypeError(
            f"indices must be ints, slices, None, Ellipsis, integer or bool tensors, or lists "
            f"of them; got {type(item).__name__}"
        )
    if array.dtype.kind not in "iub":
        raise TypeError(
            f"index tensors must be integer (int64/int32) or bool, got {array.dtype}; convert "
            "with .long() (or compare to get a bool mask)"
        )
    if array.ndim == 0 and array.dtype.kind != "b":
        return int(array)  # a 0-d integer index is an int (basic indexing, a view)
    if type(array) is not type(x.array):
        if device_of(array).type != "cpu":
            raise RuntimeError(
                f"the index is on {device_of(array)} but the tensor is on {x.device}; move the "
                "index with .to(tensor.device)"
            )
        array = move_array(array, x.device)
    return array


def _list_to_array(items: list) -> numpy.ndarray:
    def plain(v: Any) -> Any:
        if isinstance(v, Tensor):
            return move_array(v.array, Device("cpu"))
        return [plain(e) for e in v] if isinstance(v, list | tuple) else v

    if not items:
        return numpy.zeros(0, numpy.int64)  # [] selects nothing (NumPy would make it float)
    array = numpy.asarray(plain(items))
    if array.dtype == object:
        raise TypeError("a list used as an index must hold numbers or bools of one regular shape")
    return array


def _is_array(item: Any) -> bool:
    return hasattr(item, "dtype") and hasattr(item, "shape") and not isinstance(item, bool)


def _check(items: tuple, shape: tuple, xp: Any) -> tuple:
    """Bounds and mask shapes against `shape`; negative integer arrays made non-negative."""
    shape = tuple(shape)  # messages print (2, 3), not Size([2, 3])
    ndim = len(shape)
    used = 0
    for i in items:
        if _is_array(i) and i.dtype.kind == "b":
            used += i.ndim
        elif not (i is None or i is Ellipsis or isinstance(i, bool | numpy.bool_)):
            used += 1
    ellipses = sum(1 for i in items if i is Ellipsis)
    if ellipses > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if used > ndim:
        raise IndexError(
            f"too many indices for a tensor of dimension {ndim}: the index uses {used} dims "
            f"of shape {shape}"
        )
    out = list(items)
    arrays = []  # (position, dim) of cuda integer arrays, their bounds read in one sync
    dim = 0
    for k, i in enumerate(items):
        if i is Ellipsis:
            dim += ndim - used
        elif i is None or isinstance(i, bool | numpy.bool_):
            continue
        elif isinstance(i, int):
            if not -shape[dim] <= i < shape[dim]:
                _check_arrays(out, arrays, shape, xp)  # an earlier bad array is named first
                _check_bounds(i, i, dim, shape[dim])
            dim += 1
        elif isinstance(i, slice):
            dim += 1
        elif i.dtype.kind == "b":
            if tuple(i.shape) != shape[dim : dim + i.ndim]:
                _check_arrays(out, arrays, shape, xp)
                raise IndexError(
                    f"the mask of shape {tuple(i.shape)} doesn't match the indexed tensor's "
                    f"shape {shape[dim : dim + i.ndim]} at dim {dim}"
                )
            dim += i.ndim
        elif i.size and xp is numpy:  # no synchronization to share: checked as it comes
            low, high = int(i.min()), int(i.max())
            _check_bounds(low, high, dim, shape[dim])
            if low < 0:
                out[k] = numpy.where(i < 0, i + shape[dim], i)
            dim += 1
        else:
            if i.size:
                arrays.append((k, dim))  # on cuda: read together below
            dim += 1
    _check_arrays(out, arrays, shape, xp)
    return tuple(out)


def _check_arrays(out: list, arrays: list, shape: tuple, xp: Any) -> None:
    """Bounds of the cuda integer arrays out[k] (at dim) for (k, dim) in arrays, in order; the
    negative ones made non-negative in out. One host synchronization for them all."""
    if not arrays:
        return
    ranges = _min_max([out[k] for k, _ in arrays], xp)
    for (k, dim), (low, high) in zip(arrays, ranges):
        _check_bounds(low, high, dim, shape[dim])
        if low < 0:
            i = out[k]
            out[k] = xp.where(i < 0, i + shape[dim], i)


def _min_max(arrays: list, xp: Any) -> list[tuple[int, int]]:
    """(min, max) of each non-empty integer array, read to the host in one synchronization on
    cuda: every min and max is reduced on the device and the lot copied back at once (CuPy
    wraps an out-of-range index around instead of raising, so every array must be checked)."""
    if xp is numpy:
        return [(int(a.min()), int(a.max())) for a in arrays]
    values = xp.stack([r for a in arrays for r in (a.min(), a.max())]).tolist()
    return [(int(values[j]), int(values[j + 1])) for j in range(0, len(values), 2)]


def _check_bounds(low: int, high: int, dim: int, size: int, op: str = "") -> None:
    if low < -size or high >= size:
        bad = high if high >= size else low
        prefix = f"{op}: " if op else ""
        raise IndexError(f"{prefix}index {bad} is out of bounds for dim {dim} with size {size}")


def _add_at(flat: Any, positions: Any, values: Any) -> None:
    """flat[positions] += values for 1-D flat, positions and values, repeated positions adding
    up in index order: numpy.add.at (its fast 1-D path; exact, in flat's dtype) on cpu,
    cupyx.scatter_add on cuda. numpy.bincount with weights is slower (2x at 256K positions of
    a 1M float32 output) and sums in float64, changing the bits of repeated positions."""
    if is_cuda_array(flat):
        import cupyx

        cupyx.scatter_add(flat, positions, values)
        return
    numpy.add.at(flat, positions, values)


def _add_rows(out: Any, rows: Any, values: Any) -> None:
    """out[rows[i]] += values[i] for every i, repeated rows adding up in index order (the bits
    of numpy.add.at(out, rows, values)); out is (M, W) and C-ordered, rows 1-D, values (N, W).

    The one scatter-add of gather, index_select, x[idx] and embedding (and embedding_bag). On
    cpu numpy.add.at on the 2-D out is slow (no fast path): narrow rows (W <= 32) are added one
    column at a time (a strided 1-D view per column, no position array), wider ones through
    flat element positions, 256K at a time so they stay in cache (65536 rows of 16: 2.4 ms a
    column at a time, 3.8 ms flat, 15.9 ms 2-D add.at; 2048 rows of 512: 1.9 ms flat, 10.7 ms
    a column at a time). With numba, compiled_loops.add_rows: the same order and bits."""
    if is_cuda_array(out):
        import cupyx

        cupyx.scatter_add(out, rows, values)
        return
    loops = compiled.loops(out, values) if out.flags.c_contiguous else None
    if loops is not None and rows.size and rows.min() >= 0 and rows.max() < out.shape[0]:
        # numba: one pass in index order, numpy.add.at's bits without its position array
        # (256 rows of 1024: 0.03 against 0.44 ms; 8192 rows of 16: 0.04 against 0.27);
        # negative or stray rows take numpy.add.at, which wraps or raises
        loops.add_rows(out, rows, values)
        return
    width = out.shape[1]
    if width <= 32:
        for k in range(width):
            numpy.add.at(out[:, k], rows, values[:, k])
        return
    flat = out.reshape(-1)
    columns = numpy.arange(width)
    step = max(1, (1 << 18) // width)
    rows = rows.astype(numpy.intp, copy=False)  # int32 * M * W could overflow
    for start in range(0, rows.shape[0], step):
        positions = (rows[start : start + step, None] * width + columns).reshape(-1)
        numpy.add.at(flat, positions, values[start : start + step].reshape(-1))


def _scatter_add(out: Any, index: tuple, g: Any) -> None:
    """out[index] += g where repeated indices add up (np.add.at; cupy's add.at on cuda)."""
    xp = get_array_module(out)
    if xp is numpy and len(index) == 1 and out.ndim > 1:
        # One integer array picking rows of out.
        rows = index[0].reshape(-1)
        width = math.prod(out.shape[1:])
        _add_rows(out.reshape(-1, width), rows, g.reshape(rows.shape[0], width))
        return
    xp.add.at(out, index, g)


def _take_plan(index: tuple, shape: tuple) -> tuple | None:
    """How a NumPy advanced index reads whole rows: (d, k, rows) where x[index] equals
    numpy.take(x viewed with the first k dims as one, rows, axis=d), for an index of k >= 1
    integer arrays on the leading dims (d = 0; rows their flat position in shape[:k]) or of
    d >= 1 full slices then one integer array (index_select; rows that array), either followed
    by full slices only. None for any other index (ints, masks, None, Ellipsis, steps)."""
    full = slice(None)
    items = list(index)
    while items and isinstance(items[-1], slice) and items[-1] == full:
        items.pop()
    if not items or not all(isinstance(i, numpy.ndarray) for i in items[-1:]):
        return None
    arrays = [i for i in items if isinstance(i, numpy.ndarray)]
    if any(a.dtype.kind not in "iu" for a in arrays):
        return None
    if len(arrays) == 1:
        d = len(items) - 1
        if any(not (isinstance(i, slice) and i == full) for i in items[:d]):
            return None
        return d, 1, arrays[0]
    if len(arrays) != len(items):
        return None
    rows = arrays[0].astype(numpy.intp, copy=False)
    try:
        for a, n in zip(arrays[1:], shape[1 : len(arrays)]):
            rows = rows * n + a.astype(numpy.intp, copy=False)  # uint64 + int64 is float
    except ValueError:  # arrays that don't broadcast: NumPy's IndexError from x[index]
        return None
    return 0, len(arrays), rows


# ---- ops -------------------------------------------------------------------------------
class GetItem(Function):
    index: Any

    def forward(self, x):
        self.shape = x.shape  # saves the shape and the index (with its arrays)
        # On cpu, integer arrays that pick whole rows (x[idx], x[i, j], index_select): one
        # numpy.take, 2-5x faster than NumPy's advanced indexing. Memory: with several arrays,
        # their combined rows (int64, the arrays' broadcast shape) besides the index.
        self.plan = None
        if type(x) is numpy.ndarray and x.size:
            self.plan = _take_plan(self.index, x.shape)
        if self.plan is None:
            return x[self.index]
        d, k, rows = self.plan
        if k > 1:  # several arrays: the first k dims as one
            if not x.flags.c_contiguous:
                return x[self.index]
            x = x.reshape((math.prod(x.shape[:k]),) + x.shape[k:])
        return numpy.take(x, rows, axis=d)

    def backward(self, g):
        if self.plan is not None:
            d, k, rows = self.plan
            width = math.prod(self.shape[d + k :])
            if d:  # x as (lead * shape[d], width): one run of rows per leading index
                lead = math.prod(self.shape[:d])
                rows = rows.reshape(1, -1).astype(numpy.intp, copy=False)
                rows = numpy.arange(lead)[:, None] * self.shape[d] + rows
            rows = rows.reshape(-1)
            out = numpy.zeros(self.shape, g.dtype)  # not a view: the leaf keeps it, no copy
            rows_of_out = out.reshape(math.prod(self.shape[: d + k]), width)
            _add_rows(rows_of_out, rows, g.reshape(rows.shape[0], width))
            return out
        out = get_array_module(g).zeros(self.shape, g.dtype)
        if any(_is_array(i) and i.dtype.kind != "b" for i in self.index):
            _scatter_add(out, self.index, g)
        else:
            out[self.index] = g  # basic indexing and masks never pick an element twice
        return out

    def backward_graph(self, g):
        return GetItemBackward.apply(g, item=self)


class GetItemBackward(Function):
    """GetItem's backward (the gradient scattered into zeros of the input's shape) as an op,
    for double backward: its own gradient is the same indexing again."""

    op_name = "getitem_backward"
    item: Any  # the GetItem node

    def forward(self, g):
        return self.item.backward(g)

    def backward(self, gg):
        return GetItem.inner(False, index=self.item.index).forward(gg)

    def backward_graph(self, gg):
        return GetItem.apply(gg, index=self.item.index)


class GatherBackward(Function):
    """gather's backward (g added at the gathered positions) as an op, for double backward:
    its own gradient gathers again."""

    op_name = "gather_backward"
    item: Any  # the Gather node

    def forward(self, g):
        return self.item.backward(g)[0]

    def _gather(self, gg: Any) -> Any:
        item = self.item
        (index,) = item.saved_arrays
        if type(gg) is numpy.ndarray:  # index holds flat positions (Gather.forward)
            return numpy.take(gg.reshape(-1), index)
        corner = tuple(
            slice(None) if d == item.dim else slice(0, n) for d, n in enumerate(index.shape)
        )
        return get_array_module(gg).take_along_axis(gg[corner], index, axis=item.dim)

    def backward(self, gg):
        return self._gather(gg)

    def backward_graph(self, gg):
        from gradflow.autograd.differentiable import const

        item = self.item
        (index,) = item.saved_arrays
        if type(gg.array) is numpy.ndarray:  # flat positions: a gather from the flat array
            return gg.reshape(-1)[index]
        corner = tuple(
            slice(None) if d == item.dim else slice(0, n) for d, n in enumerate(index.shape)
        )
        return Gather.apply(gg[corner], const(index), dim=item.dim)


class SetItem(Function):
    """x[index] = value, written into x's own storage and recorded (PyTorch's CopySlices):
    the gradient of the written region goes to value (summed over broadcast dims), the rest
    to x's history. Saves the index and value's shape only; x's storage is the output."""

    index: Any

    def forward(self, x, value):
        self.value_shape = getattr(value, "shape", ())
        x[self.index] = value
        return x

    def backward(self, g):
        need_x, need_value = self.needs_input_grad
        gx = gv = None
        if need_value:
            gv = unbroadcast(g[self.index], self.value_shape)
        if need_x:
            gx = g.copy()
            gx[self.index] = 0
        return gx, gv

    def backward_graph(self, g):
        need_x, need_value = self.needs_input_grad
        gx = gv = None
        if need_value:
            from gradflow.autograd.differentiable import unbroadcast as unbroadcast_graph

            gv = unbroadcast_graph(g[self.index], self.value_shape)
        if need_x:
            from gradflow.autograd.differentiable import const

            kept = get_array_module(g.array).ones(g.shape, g.dtype)
            kept[self.index] = 0  # the written region's gradient goes to value
            gx = g * const(kept)
        return gx, gv


class Gather(Function):
    """out[i][j][k] = x[i][index[i][j][k]][k] for dim 1 (PyTorch's gather)."""

    dim: int

    def forward(self, x, index):
        self.shape = x.shape
        if type(x) is numpy.ndarray:
            # On cpu: the flat position in x of every element picked, computed once; forward
            # takes them from the flat x, backward adds g at them (numpy.add.at's 1-D fast
            # path): 4x faster than take_along_axis and add.at over index grids. Memory: the
            # positions (int64, the index's size) instead of the index.
            positions = _flat_positions(x.shape, self.dim, index)
            self.save_for_backward(positions)
            return numpy.take(x.reshape(-1), positions)  # a copy of x if x isn't C-ordered
        self.save_for_backward(index)  # the integer index only
        # PyTorch lets index be smaller than x in the other dims: gather from that corner.
        corner = tuple(
            slice(None) if d == self.dim else slice(0, n) for d, n in enumerate(index.shape)
        )
        return get_array_module(x).take_along_axis(x[corner], index, axis=self.dim)

    def backward(self, g):
        (index,) = self.saved_arrays
        xp = get_array_module(g)
        if xp is numpy:  # index holds the flat positions (forward)
            out = numpy.zeros(self.shape, g.dtype)  # not a view: the leaf keeps it, no copy
            _add_at(out.reshape(-1), index.reshape(-1), g.reshape(-1))
            return out, None
        out = xp.zeros(self.shape, g.dtype)
        # Open grids for the other dims, broadcast against the index: out[i, index[i, j], j]
        grid = tuple(
            index if d == self.dim else xp.arange(n).reshape(_along(d, index.ndim))
            for d, n in enumerate(index.shape)
        )
        _scatter_add(out, grid, g)
        return out, None

    def backward_graph(self, g):
        return GatherBackward.apply(g, item=self), None


def _flat_positions(shape: tuple, dim: int, index: Any) -> Any:
    """The flat (C-order) position in an array of `shape` of each element a gather along `dim`
    picks: index[i, j, k] along dim 1 names [i, index[i, j, k], k] (index no larger than shape
    outside dim, its values in range and non-negative)."""
    strides = [math.prod(shape[d + 1 :]) for d in range(len(shape))]
    positions = index.astype(numpy.intp) * strides[dim]
    for d, n in enumerate(index.shape):
        if d != dim and n > 1:
            positions += numpy.arange(0, n * strides[d], strides[d]).reshape(_along(d, index.ndim))
    return positions


def _along(dim: int, ndim: int) -> list:
    """The reshape that lays a 1-D range along `dim` of an ndim-dim array."""
    return [-1 if k == dim else 1 for k in range(ndim)]


# ---- public functions ------------------------------------------------------------------
def getitem(x: Tensor, index: Any) -> Tensor:
    """x[index]: basic indexing gives a view; integer and bool arrays give a copy."""
    index = normalize_index(index, x)
    try:
        return GetItem.apply(x, index=index)
    except IndexError as exc:  # NumPy's: index arrays (and masks) that don't broadcast together
        raise IndexError(f"index: {exc} (a tensor of shape {tuple(x.shape)})") from exc


def _index_array(index: Any, x: Tensor, op: str) -> Any:
    """An integer index (Tensor, array or list) as an array on x's device."""
    array = _convert(index if not isinstance(index, int) else [index], get_array_module(x.array), x)
    if isinstance(array, int):
        array = get_array_module(x.array).asarray(array)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor (int64/int32), got {array.dtype}")
    return array


def gather(input: Tensor, dim: int, index: Any, *, sparse_grad: bool = False) -> Tensor:
    """Values along `dim` at `index` (same ndim as input; other dims at most input's): PyTorch's
    gather, e.g. picking each row's target logit with ``logits.gather(1, target[:, None])``.
    sparse_grad=True (a sparse gradient for input) is not supported: gradflow has no sparse
    tensors."""
    if sparse_grad:
        raise NotImplementedError(
            "gather: sparse_grad=True is not supported (gradflow has no sparse tensors); leave "
            "it False for a dense gradient of the same values"
        )
    d = normalize_dim(dim, input.ndim, "gather")
    array = _index_array(index, input, "gather")
    if input.ndim == 0 and array.size == 1:  # a 0-d input: its value, for index 0
        return _gather(input.reshape(1), 0, array.reshape(1), "gather").reshape(array.shape)
    if array.ndim != input.ndim or any(
        n > m for k, (n, m) in enumerate(zip(array.shape, input.shape)) if k != d
    ):
        raise ValueError(
            f"gather: index of shape {tuple(array.shape)} must have the {input.ndim} dims of the "
            f"input {tuple(input.shape)} and be no larger outside dim {d}"
        )
    return _gather(input, d, array, "gather")


def _gather(x: Tensor, d: int, array: Any, op: str) -> Tensor:
    if array.size:
        ((low, high),) = _min_max([array], get_array_module(array))
        _check_bounds(low, high, d, x.shape[d], op)
        if low < 0:
            array = get_array_module(array).where(array < 0, array + x.shape[d], array)
    return Gather.apply(x, array, dim=d)


def take_along_axis(x: Tensor, indices: Any, axis: int | None) -> Tensor:
    """NumPy's take_along_axis (torch.take_along_dim): like gather, with x and indices
    broadcast against each other outside `axis`; axis=None works on the flattened x."""
    array = _index_array(indices, x, "take_along_axis")
    if axis is None:
        return _gather(x.reshape(-1), 0, array.reshape(-1), "take_along_axis")
    d = normalize_dim(axis, x.ndim, "take_along_axis")
    if array.ndim != x.ndim:
        raise ValueError(
            f"take_along_axis: indices of shape {tuple(array.shape)} must have as many dims as "
            f"the input {tuple(x.shape)}"
        )
    if x.ndim == 0:  # a 0-d input and index: the value, for index 0 (or -1)
        return _gather(x.reshape(1), 0, array.reshape(1), "take_along_axis").reshape(())
    try:
        outside = numpy.broadcast_shapes(
            tuple(1 if k == d else n for k, n in enumerate(x.shape)),
            tuple(1 if k == d else n for k, n in enumerate(array.shape)),
        )
    except ValueError:
        raise ValueError(
            f"take_along_axis: shapes {tuple(x.shape)} and {tuple(array.shape)} don't broadcast "
            f"outside axis {d}"
        ) from None
    x_shape = tuple(x.shape[k] if k == d else n for k, n in enumerate(outside))
    if x_shape != x.shape:
        x = x.expand(x_shape)
    index_shape = tuple(array.shape[k] if k == d else n for k, n in enumerate(outside))
    return _gather(
        x, d, get_array_module(array).broadcast_to(array, index_shape), "take_along_axis"
    )


def take_along_dim(input: Tensor, indices: Any, dim: int | None = None) -> Tensor:
    """PyTorch's name for take_along_axis; dim=None (the default) works on the flattened input
    and indices."""
    return take_along_axis(input, indices, dim)


def index_select(input: Tensor, dim: int, index: Any) -> Tensor:
    """The slices of input along `dim` at the positions in a 1-D integer `index` (a copy)."""
    d = normalize_dim(dim, input.ndim, "index_select")
    array = _index_array(index, input, "index_select")
    if array.ndim > 1:
        raise ValueError(
            f"index_select: index must be 1-D (or 0-d), got shape {tuple(array.shape)}"
        )
    rows = array.reshape(-1)
    if rows.size:  # checked here (once: getitem's check is skipped), the error naming index_select
        size = input.shape[d] if input.ndim else 1
        ((low, high),) = _min_max([rows], get_array_module(rows))
        _check_bounds(low, high, d, size, "index_select")
        if low < 0:
            rows = get_array_module(rows).where(rows < 0, rows + size, rows)
    if input.ndim == 0:
        return GetItem.apply(input.reshape(1), index=(rows,)).reshape(array.shape)
    return GetItem.apply(input, index=(slice(None),) * d + (rows,))


def _window_view(x: Any, d: int, n: int, size: int, step: int) -> Any:
    """The n windows of `size` elements, `step` apart, along dim d of a NumPy array, as a view
    of x's memory (windows replace dim d, their elements a new last dim), overlapping where
    step < size. Built on x's storage root, so the view's base chain reaches it and a write
    through either bumps the version counter they share (autograd/versions.py)."""
    shape = x.shape[:d] + (n,) + x.shape[d + 1 :] + (size,)
    strides = x.strides[:d] + (x.strides[d] * step,) + x.strides[d + 1 :] + (x.strides[d],)
    root = storage_root(x)
    try:
        offset = x.__array_interface__["data"][0] - root.__array_interface__["data"][0]
        return numpy.ndarray(shape, x.dtype, buffer=root, offset=offset, strides=strides)
    except (AttributeError, TypeError, ValueError, BufferError):  # a root without a buffer
        return numpy.lib.stride_tricks.as_strided(x, shape, strides, writeable=False).copy()


class UnfoldWindows(Function):
    """Tensor.unfold along one dim: a view of the input on cpu (PyTorch's is a view too: a
    write into a window reaches the input), a gather on cuda. Backward adds each window's
    gradient into zeros of the input's shape: one compiled loop with numba, else one strided
    add per window offset. Saves the input's shape only."""

    op_name = "unfold"
    dim: int
    size: int
    step: int

    def forward(self, x):
        xp = get_array_module(x)
        d, size, step = self.dim, self.size, self.step
        self.source = x.shape
        n = (x.shape[d] - size) // step + 1
        if xp is numpy:
            return _window_view(x, d, n, size, step)
        windows = xp.arange(n)[:, None] * step + xp.arange(size)[None, :]  # (n, size)
        return xp.moveaxis(x[(slice(None),) * d + (windows,)], d + 1, -1)

    def backward(self, g):
        xp = get_array_module(g)
        d, size, step, shape = self.dim, self.size, self.step, self.source
        dx = xp.zeros(shape, g.dtype)
        n = g.shape[d]
        if g.size == 0:
            return dx
        if (loops := compiled.loops(g, dx)) is not None:
            outer, inner = math.prod(shape[:d]), math.prod(shape[d + 1 :])
            g4 = g.reshape(outer, n, inner, size)  # a view of any strides (numba takes them)
            loops.unfold_backward(g4, dx.reshape(outer, shape[d], inner), step)
            return dx
        lead = (slice(None),) * d
        stop = (n - 1) * step + 1
        for j in range(size):  # windows' element j sit at j, j + step, ...
            dx[lead + (slice(j, j + stop, step),)] += g[..., j]
        return dx

    def backward_graph(self, g):
        return linear_backward_graph(self, g)


def unfold(x: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """Tensor.unfold: every window of `size` elements along `dimension`, `step` apart; the
    windows replace that dimension and their elements form a new last one. A view on cpu, as
    PyTorch's (windows overlap where step < size); backward adds overlapping windows'
    gradients."""
    if step <= 0:
        raise RuntimeError(f"unfold: step is {step} but must be > 0")
    if x.ndim == 0:  # PyTorch: one window, of `size` (0 or 1) elements
        return unfold(x.reshape(1), dimension, size, step).reshape(size)
    d = normalize_dim(dimension, x.ndim, "unfold")
    length = x.shape[d]
    if size > length or size < 0:
        raise RuntimeError(
            f"unfold: maximum size for tensor at dimension {d} is {length} but size is {size}"
        )
    return UnfoldWindows.apply(x, dim=d, size=operator.index(size), step=operator.index(step))


def masked_select(input: Tensor, mask: Any) -> Tensor:
    """The elements of input where the bool `mask` (broadcast with it) holds, as a 1-D tensor."""
    array = _convert(mask, get_array_module(input.array), input)
    if not _is_array(array) or array.dtype.kind != "b":
        raise TypeError(f"masked_select: mask must be a bool tensor, got {type(mask).__name__}")
    try:
        shape = numpy.broadcast_shapes(input.shape, array.shape)
    except ValueError:
        raise ValueError(
            f"masked_select: mask of shape {tuple(array.shape)} doesn't broadcast with the "
            f"input's shape {tuple(input.shape)}"
        ) from None
    if shape != input.shape:
        input = input.expand(shape)
    return getitem(input, get_array_module(array).broadcast_to(array, shape))


def one_hot(input: Tensor, num_classes: int = -1) -> Tensor:
    """Class indices (any shape) as one-hot rows: out[..., k] = 1 where tensor[...] == k, int64
    of shape tensor.shape + (num_classes,); num_classes=-1 uses max + 1. No gradient.

    >>> import gradflow
    >>> one_hot(gradflow.tensor([0, 2]), 3).tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    if not isinstance(input, Tensor) or input.dtype.kind not in "iu":
        dtype = input.dtype if isinstance(input, Tensor) else type(input).__name__
        raise TypeError(f"one_hot: argument 'tensor' has dtype {dtype}; expected integer indices")
    t = input.array
    xp = get_array_module(t)
    if num_classes == -1 and t.size == 0:
        raise ValueError("one_hot: cannot infer num_classes from an empty tensor; pass it")
    if t.size:
        ((low, high),) = _min_max([t], xp)  # one host synchronization on cuda
        if num_classes == -1:
            num_classes = high + 1
        if low < 0 or high >= num_classes:
            raise IndexError(
                f"one_hot: class values must be in [0, {num_classes}), got min {low} and max {high}"
            )
    out = xp.arange(num_classes) == t[..., None]
    return Tensor._wrap(out.astype(xp.int64))
