"""Sorting and searching: sort, argsort, msort, topk, kthvalue, mode, nonzero, argwhere, unique,
unique_consecutive, searchsorted, bucketize, histc, bincount, count_nonzero.

Only the values of sort, msort, topk, kthvalue and mode are differentiable: they are gathered from
the input at the computed indices (``indexing.Gather``), so the gradient is scattered back to
the positions the values came from and the node saves only the integer indices. The rest
return integer tensors (or counts) and carry no gradient. Ops whose output size depends on
the data (nonzero, unique, bincount) read it back to the host on cuda, as PyTorch does.
"""

from __future__ import annotations

from typing import Any

import numpy

from gradflow import return_types
from gradflow.backend import get_array_module
from gradflow.ops._util import normalize_dim
from gradflow.ops.indexing import Gather
from gradflow.tensor import Tensor


def _input(x: Any, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: argument 'input' must be a Tensor, got {type(x).__name__}")
    return x


def _argsort(a: Any, axis: int, descending: bool, stable: bool) -> Any:
    """Indices that sort `a` along axis; NaN counts as the largest value (PyTorch's order).
    A stable descending sort keeps equal elements in their original order."""
    xp = get_array_module(a)
    kind = {"kind": "stable"} if xp is numpy else {}  # CuPy's sort is always stable
    if not descending:
        return xp.argsort(a, axis=axis, **kind)
    if a.dtype.kind == "b":
        a = a.astype(numpy.uint8)
    # Sort the reversed array ascending, then reverse the order: ties come out in their
    # original order, and NaNs (sorted last) come first, as in PyTorch.
    n = a.shape[axis]
    order = xp.argsort(xp.flip(a, axis), axis=axis, **kind)
    return (n - 1) - xp.flip(order, axis)


def _sorted(x: Tensor, dim: int, descending: bool, stable: bool, op: str) -> tuple:
    """(values, indices) along dim."""
    if x.ndim == 0:
        return x, Tensor._wrap(get_array_module(x.array).zeros((), numpy.int64))
    d = normalize_dim(dim, x.ndim, op)
    order = _argsort(x.array, d, descending, stable).astype(numpy.int64, copy=False)
    return Gather.apply(x, order, dim=d, op_name=op), Tensor._wrap(order)


def sort(
    input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False
) -> return_types.sort:
    """(values, indices) sorted along `dim`; gradients flow to the values' original positions.
    gradflow's sort is always stable (stable=False gives the same order)."""
    values, indices = _sorted(_input(input, "sort"), dim, descending, stable, "sort")
    return return_types.sort(values, indices)


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices that sort `input` along `dim` (int64)."""
    return _sorted(_input(input, "argsort"), dim, descending, stable, "argsort")[1]


def msort(input: Tensor) -> Tensor:
    """Values sorted along dim 0."""
    return _sorted(_input(input, "msort"), 0, False, True, "msort")[0]


def topk(
    input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True
) -> return_types.topk:
    """The k largest (smallest with largest=False) values along `dim` and their indices, in
    sorted order (also with sorted=False)."""
    x = _input(input, "topk")
    size = x.shape[normalize_dim(dim, x.ndim, "topk")] if x.ndim else 1
    if not isinstance(k, int | numpy.integer) or not 0 <= k <= size:
        raise IndexError(f"topk: selected index k={k} out of range for a dim of size {size}")
    if x.ndim == 0:
        return return_types.topk(*_sorted(x, 0, largest, True, "topk"))
    d = normalize_dim(dim, x.ndim, "topk")
    order = _topk_partitioned(x.array, k, d, largest)
    if order is None:
        order = _argsort(x.array, d, largest, True)
        order = order[(slice(None),) * d + (slice(0, k),)]
    order = order.astype(numpy.int64, copy=False)
    return return_types.topk(Gather.apply(x, order, dim=d, op_name="topk"), Tensor._wrap(order))


def _topk_partitioned(a: Any, k: int, d: int, largest: bool) -> Any:
    """topk's indices on NumPy without sorting whole rows: argpartition picks k per row, only
    those are sorted (stable: equal values in index order, NaN largest). Exactly the first k of
    the stable full sort; None (sort whole rows) on CuPy, for other dtypes, for k of 0 or the
    whole dim, and where the k-th value has an equal outside the chosen k (or is NaN), where the
    partition may have chosen a later index than the stable order."""
    n = a.shape[d]
    if get_array_module(a) is not numpy or a.dtype.kind not in "fiu" or not 0 < k < n:
        return None
    if k * 4 > n:  # little left to skip: the full sort is as fast
        return None
    kth = n - k if largest else k - 1
    part = numpy.argpartition(a, kth, axis=d)
    pick = part[(slice(None),) * d + ((slice(n - k, n) if largest else slice(0, k)),)]
    pick.sort(axis=d)  # index order, so that the stable sort below keeps ties in it
    values = numpy.take_along_axis(a, pick, axis=d)
    bound = values.min(axis=d, keepdims=True) if largest else values.max(axis=d, keepdims=True)
    if a.dtype.kind == "f" and bool(numpy.isnan(bound).any()):
        return None
    # the k-th value's equals: all of them among the chosen k, or the choice may differ
    if not numpy.array_equal((a == bound).sum(axis=d), (values == bound).sum(axis=d)):
        return None
    inner = _argsort(values, d, largest, True)
    return numpy.take_along_axis(pick, inner, axis=d)


def kth_smallest_index(a: Any, kth: int, d: int) -> Any:
    """The index along `d` of each slice's element at position `kth` (from 0) of the stable
    ascending sort (NaN largest; equal values in index order), keepdims int64; NumPy's
    integer and floating arrays only (None otherwise: sort the whole rows then).

    Without sorting: numpy.partition finds the kth value (an introselect, O(n) a row), and
    where it occurs once in its row that occurrence is the index. Rows where it occurs more
    than once or is NaN (which equals nothing) take the occurrence at the stable rank: the
    (kth - number of smaller elements)-th equal one, in index order."""
    if get_array_module(a) is not numpy or a.dtype.kind not in "fiu" or a.size == 0:
        return None
    rows = numpy.moveaxis(a, d, -1)
    n = rows.shape[-1]
    value = numpy.partition(rows, kth, axis=-1)[..., kth : kth + 1]
    equal = rows == value
    # C-ordered, so that the rows fixed below are written through a flat view
    index = numpy.ascontiguousarray(equal.argmax(axis=-1, keepdims=True), dtype=numpy.int64)
    count = numpy.count_nonzero(equal, axis=-1)
    uneven = numpy.flatnonzero(count != 1)  # ties, or a NaN value
    if uneven.size:
        flat_rows = rows.reshape(-1, n)
        sub = flat_rows[uneven]
        v = value.reshape(-1, 1)[uneven]
        equal = sub == v
        smaller = numpy.count_nonzero(sub < v, axis=1)
        if a.dtype.kind == "f":
            nan = numpy.isnan(sub)
            v_nan = numpy.isnan(v[:, 0])
            equal |= nan & v_nan[:, None]
            smaller = numpy.where(v_nan, n - numpy.count_nonzero(nan, axis=1), smaller)
        rank = (kth - smaller + 1).astype(numpy.int64)  # the rank-th equal one, from 1
        hit = numpy.cumsum(equal, axis=1, dtype=numpy.int64) == rank[:, None]
        index.reshape(-1)[uneven] = hit.argmax(axis=1)
    return numpy.moveaxis(index, -1, d)


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False) -> return_types.kthvalue:
    """The k-th smallest value (k counts from 1) along `dim` and its index."""
    x = _input(input, "kthvalue")
    size = x.shape[normalize_dim(dim, x.ndim, "kthvalue")] if x.ndim else 1
    if not isinstance(k, int | numpy.integer) or not 1 <= k <= size:
        raise IndexError(f"kthvalue(): selected number k={k} out of range for a dim of size {size}")
    if x.ndim == 0:
        return return_types.kthvalue(*_sorted(x, 0, False, True, "kthvalue"))
    d = normalize_dim(dim, x.ndim, "kthvalue")
    order = kth_smallest_index(x.array, k - 1, d)
    if order is None:
        order = _argsort(x.array, d, False, True)
        order = order[(slice(None),) * d + (slice(k - 1, k),)].astype(numpy.int64, copy=False)
    values = Gather.apply(x, order, dim=d, op_name="kthvalue")
    indices = Tensor._wrap(order)
    if not keepdim:
        values, indices = values.squeeze(d), indices.squeeze(d)
    return return_types.kthvalue(values, indices)


def mode(input: Tensor, dim: int = -1, keepdim: bool = False) -> return_types.mode:
    """The most frequent value along `dim` (the smallest among equally frequent ones) and the
    index of its last occurrence, as PyTorch returns them (NaNs count as one value)."""
    x = _input(input, "mode")
    if x.ndim == 0:
        return return_types.mode(
            x * 1, Tensor._wrap(get_array_module(x.array).zeros((), numpy.int64))
        )
    d = normalize_dim(dim, x.ndim, "mode")
    n = x.shape[d]
    if n == 0:
        raise IndexError(f"mode(): expected a non-empty dim {dim}, got size 0")
    xp = get_array_module(x.array)
    a = xp.moveaxis(x.array, d, -1)
    rows = a.reshape(-1, n)
    s = xp.sort(rows, axis=1)
    starts = xp.ones(s.shape, dtype=bool)  # a run of equal values starts here
    starts[:, 1:] = s[:, 1:] != s[:, :-1]
    if s.dtype.kind == "f":  # NaNs are one value here, as in PyTorch
        starts[:, 1:] &= ~(xp.isnan(s[:, 1:]) & xp.isnan(s[:, :-1]))
    flat_starts = xp.flatnonzero(starts)
    lengths = xp.diff(xp.concatenate([flat_starts, xp.asarray([s.size])]))
    run_length = xp.zeros(s.size, dtype=numpy.int64)  # each run's length, at its start
    run_length[flat_starts] = lengths
    run_length = run_length.reshape(s.shape)
    first = xp.argmax(run_length, axis=1)  # the first (smallest) of the longest runs
    value = xp.take_along_axis(s, first[:, None], axis=1)
    equal = rows == value
    if rows.dtype.kind == "f":
        equal |= xp.isnan(rows) & xp.isnan(value)
    last = (n - 1) - xp.argmax(equal[:, ::-1], axis=1)  # its last occurrence, in any sort order
    index = xp.moveaxis(last.astype(numpy.int64).reshape(a.shape[:-1] + (1,)), -1, d)
    values = Gather.apply(x, index, dim=d, op_name="mode")
    indices = Tensor._wrap(index)
    if not keepdim:
        values, indices = values.squeeze(d), indices.squeeze(d)
    return return_types.mode(values, indices)


# ---- searching and counting (no gradient) ---------------------------------------------
def nonzero(input: Tensor, *, as_tuple: bool = False) -> Any:
    """The indices of the nonzero elements: an (n, ndim) int64 tensor, or with as_tuple=True
    one 1-D tensor per dim (what ``x[mask]`` indexing takes)."""
    a = _input(input, "nonzero").array
    xp = get_array_module(a)
    if a.ndim == 0:  # PyTorch treats a 0-d input as one element
        a = a.reshape(1)
        if as_tuple:
            return (Tensor._wrap(xp.nonzero(a)[0].astype(numpy.int64)),)
        return Tensor._wrap(xp.zeros((int(bool(a[0])), 0), numpy.int64))
    found = xp.nonzero(a)
    if as_tuple:
        return tuple(Tensor._wrap(i.astype(numpy.int64, copy=False)) for i in found)
    return Tensor._wrap(xp.stack(found, axis=1).astype(numpy.int64, copy=False))


def argwhere(input: Tensor) -> Tensor:
    """nonzero(input): the (n, ndim) indices of the nonzero elements."""
    return nonzero(input)


def count_nonzero(input: Tensor, dim: Any = None) -> Tensor:
    """How many elements are nonzero, over all of input or along dim (int or tuple): int64."""
    x = _input(input, "count_nonzero")
    axes = None
    if dim is not None:
        dims = dim if isinstance(dim, list | tuple) else (dim,)
        axes = tuple(normalize_dim(d, x.ndim, "count_nonzero") for d in dims)
    counts = (x.array != 0).sum(axis=axes)
    return Tensor._wrap(get_array_module(x.array).asarray(counts, dtype=numpy.int64))


def _result(output: Any, inverse: Any, counts: Any, return_inverse: bool, return_counts: bool):
    out = Tensor._wrap(output)
    extra = []
    if return_inverse:
        extra.append(Tensor._wrap(inverse.astype(numpy.int64, copy=False)))
    if return_counts:
        extra.append(Tensor._wrap(counts.astype(numpy.int64, copy=False)))
    return (out, *extra) if extra else out


def unique(
    input: Tensor,
    sorted: bool = True,
    return_inverse: bool = False,
    return_counts: bool = False,
    dim: int | None = None,
) -> Any:
    """The distinct elements (slices along `dim`) in ascending order, and with return_inverse
    the position of each input element in them, with return_counts how often each occurs.
    Returns a tensor, or a tuple when inverse or counts are asked for. Always sorted."""
    x = _input(input, "unique")
    a = x.array
    xp = get_array_module(a)
    if dim is None:
        output, inverse, counts = xp.unique(a.reshape(-1), return_inverse=True, return_counts=True)
        inverse = inverse.reshape(x.shape)
    else:
        d = normalize_dim(dim, x.ndim, "unique")
        output, inverse, counts = xp.unique(a, return_inverse=True, return_counts=True, axis=d)
        inverse = inverse.reshape(-1)
    return _result(output, inverse, counts, return_inverse, return_counts)


def unique_consecutive(
    input: Tensor, return_inverse: bool = False, return_counts: bool = False, dim: int | None = None
) -> Any:
    """Drops each run of equal consecutive elements (slices along `dim`) to one, as Unix
    ``uniq``; inverse and counts as in unique."""
    x = _input(input, "unique_consecutive")
    a = x.array
    xp = get_array_module(a)
    if dim is None:
        a, axis = a.reshape(-1), 0
    else:
        axis = normalize_dim(dim, x.ndim, "unique_consecutive")
        a = xp.moveaxis(a, axis, 0)
    n = a.shape[0] if a.ndim else 1
    if n == 0:
        empty = xp.zeros(0, numpy.int64)
        return _result(xp.moveaxis(a, 0, axis), empty, empty, return_inverse, return_counts)
    change = (a[1:] != a[:-1]).reshape(n - 1, -1).any(axis=1)
    starts = xp.concatenate([xp.ones(1, bool), change])
    output = xp.moveaxis(a[starts], 0, axis) if dim is not None else a[starts]
    inverse = xp.cumsum(starts) - 1
    first = xp.nonzero(starts)[0]
    counts = xp.diff(xp.concatenate([first, xp.asarray([n], first.dtype)]))
    inverse = inverse.reshape(x.shape) if dim is None else inverse
    return _result(output, inverse, counts, return_inverse, return_counts)


def _side(right: bool, side: str | None) -> bool:
    if side is not None:
        if side not in ("left", "right"):
            raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
        if right and side == "left":
            raise ValueError(
                "searchsorted: side and right can't be set to opposites, got side of left "
                "while right was True"
            )
        return side == "right"
    return bool(right)


def searchsorted(
    sorted_sequence: Tensor,
    input: Any,
    *,
    out_int32: bool = False,
    right: bool = False,
    side: str | None = None,
    sorter: Any = None,
) -> Tensor:
    """Where each value of `input` would go in the (innermost dim of) `sorted_sequence` to
    keep it sorted: the first such index, or the last with right=True / side='right'. An N-D
    sequence is searched row by row (its leading dims must match input's)."""
    seq = _input(sorted_sequence, "searchsorted").array
    xp = get_array_module(seq)
    right = _side(right, side)
    if sorter is not None:
        order = sorter.array if isinstance(sorter, Tensor) else xp.asarray(sorter)
        seq = xp.take_along_axis(seq, order, axis=-1)
    scalar = not isinstance(input, Tensor)
    values = xp.asarray(input) if scalar else input.array
    if seq.ndim <= 1:
        out = xp.searchsorted(seq.reshape(-1), values, side="right" if right else "left")
    else:
        if values.ndim != seq.ndim or values.shape[:-1] != seq.shape[:-1]:
            raise ValueError(
                f"searchsorted: boundaries of shape {tuple(seq.shape)} and input of shape "
                f"{tuple(values.shape)} must have the same leading dims"
            )
        # Each row: how many of the sorted row's elements lie before the value.
        before = (
            seq[..., None, :] <= values[..., None]
            if right
            else seq[..., None, :] < values[..., None]
        )
        out = before.sum(axis=-1)
    dtype = numpy.int32 if out_int32 else numpy.int64
    return Tensor._wrap(xp.asarray(out).astype(dtype))


def bucketize(
    input: Any, boundaries: Tensor, *, out_int32: bool = False, right: bool = False
) -> Tensor:
    """The bucket of each value for the sorted 1-D `boundaries`: i with boundaries[i-1] <
    x <= boundaries[i] (boundaries[i-1] <= x < boundaries[i] with right=True)."""
    b = _input(boundaries, "bucketize")
    if b.ndim != 1:
        raise ValueError(f"bucketize: boundaries must be 1-D, got shape {tuple(b.shape)}")
    # PyTorch's right=False is searchsorted's left side.
    return searchsorted(b, input, out_int32=out_int32, right=right)


def histc(input: Tensor, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:
    """A histogram of `bins` equal-width bins over [min, max] (min == max: the data's range);
    elements outside are ignored; the result has input's dtype."""
    x = _input(input, "histc")
    if x.dtype.kind != "f":
        raise TypeError(
            f"histc: input must be a floating-point tensor, got {x.dtype}; use .float()"
        )
    if bins <= 0:
        raise ValueError(f"histc: bins must be > 0, got {bins}")
    a = x.array.reshape(-1)
    xp = get_array_module(a)
    low, high = float(min), float(max)
    if low == high and a.size:
        low, high = float(a.min()), float(a.max())
    if low == high:
        low, high = low - 1, high + 1
    if low > high:
        raise ValueError(f"histc: max must be larger than min, got min {min} and max {max}")
    inside = a[(a >= low) & (a <= high)]
    which = ((inside - low) * bins / (high - low)).astype(numpy.int64)
    which = xp.minimum(which, bins - 1)  # x == max goes in the last bin
    counts = xp.bincount(which, minlength=bins) if which.size else xp.zeros(bins, numpy.int64)
    return Tensor._wrap(counts[:bins].astype(x.dtype))


def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:
    """How often each value 0..max occurs in the 1-D non-negative integer `input` (at least
    `minlength` bins); with `weights` the sum of each value's weights instead."""
    x = _input(input, "bincount")
    a = x.array
    xp = get_array_module(a)
    if a.ndim != 1 or a.dtype.kind not in "iu" or (a.size and int(a.min()) < 0):
        raise ValueError("bincount only supports 1-d non-negative integral inputs.")
    if minlength < 0:
        raise ValueError(f"bincount: minlength should be >= 0, got {minlength}")
    w = None
    dtype = numpy.int64
    if weights is not None:
        w = weights.array if isinstance(weights, Tensor) else xp.asarray(weights)
        if w.shape != a.shape:
            raise ValueError(
                f"bincount: weights of shape {tuple(w.shape)} must match input's {tuple(a.shape)}"
            )
        # PyTorch: float weights keep their dtype, integer weights count in float64
        dtype = w.dtype if w.dtype.kind == "f" else numpy.float64
    if not a.size:
        return Tensor._wrap(xp.zeros(minlength, dtype))
    out = xp.bincount(a, weights=w, minlength=minlength)
    return Tensor._wrap(out.astype(dtype, copy=False))
