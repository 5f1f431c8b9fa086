"""Building, viewing and scattering tensors, in PyTorch's names and argument order:
block_diag, cartesian_prod, combinations, diagflat, vander, tril_indices, triu_indices,
unravel_index, range, ravel, t, negative, narrow_copy, select_scatter, slice_scatter,
diagonal_scatter, index_reduce, as_strided (of a contiguous input).

Most are compositions of differentiable gradflow ops (so they have double backward and run on
CuPy unchanged). Functions of their own: RegionScatter (select/slice/diagonal_scatter: a copy
with one region replaced) and AsStrided.

Memory: RegionScatter and AsStrided keep nothing; the compositions keep what their parts keep.
Integer and bool results carry no gradient.
"""

from __future__ import annotations

import builtins
import itertools
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy

from gradflow import dtypes
from gradflow.autograd.differentiable import const
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops import arithmetic as _arith
from gradflow.ops._util import normalize_dim
from gradflow.ops.pointwise_extras import _along, _as, _result_dtype, _tensor, _wrap
from gradflow.tensor import Tensor


# ---- building tensors ------------------------------------------------------------------------
def ravel(input: Tensor) -> Tensor:
    """input as a 1-D tensor (a view where possible)."""
    return _tensor(input, "ravel").reshape(-1)


def t(input: Tensor) -> Tensor:
    """The transpose of a 2-D tensor; 0-D and 1-D tensors are returned as they are."""
    input = _tensor(input, "t")
    if input.ndim > 2:
        raise RuntimeError(
            f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D; use "
            "transpose(dim0, dim1) or mT"
        )
    return input.transpose(0, 1) if input.ndim == 2 else input


def negative(input: Tensor) -> Tensor:
    """-input (neg under NumPy's name)."""
    return _arith.neg(input)


def narrow_copy(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """narrow's slice as a new tensor (not a view)."""
    from gradflow.ops.shape import narrow

    return narrow(_tensor(input, "narrow_copy"), dim, start, length).clone()


def diagflat(input: Tensor, offset: int = 0) -> Tensor:
    """A 2-D tensor with input's elements (flattened) on its offset-th diagonal."""
    from gradflow.ops.diagonals import diag

    return diag(_tensor(input, "diagflat").reshape(-1), offset)


def block_diag(*tensors: Tensor) -> Tensor:
    """The tensors (0-D, 1-D as a row, or 2-D) as blocks down the diagonal of one 2-D tensor,
    zero elsewhere, in their promoted dtype."""
    from gradflow.ops.shape import cat

    if not tensors:
        return _wrap(numpy.zeros((1, 0), dtypes.get_default_dtype()))
    blocks = []
    for k, x in enumerate(tensors):
        x = _tensor(x, "block_diag", f"tensors[{k}]")
        if x.ndim > 2:
            raise RuntimeError(
                "torch.block_diag: Input tensors must have 2 or fewer dimensions. Input "
                f"{k} has {x.ndim} dimensions"
            )
        blocks.append(x.reshape(1, -1) if x.ndim < 2 else x)
    target = _result_dtype([b.array for b in blocks])
    xp = get_array_module(blocks[0].array)
    width = builtins.sum(b.shape[1] for b in blocks)
    rows, left = [], 0
    for b in blocks:
        r, c = b.shape
        parts = [_as(b, target)]
        if left:
            parts.insert(0, _wrap(xp.zeros((r, left), target)))
        if width - left - c:
            parts.append(_wrap(xp.zeros((r, width - left - c), target)))
        rows.append(cat(parts, 1) if len(parts) > 1 else parts[0])
        left += c
    return cat(rows, 0) if len(rows) > 1 else rows[0]


def cartesian_prod(*tensors: Tensor) -> Tensor:
    """Every combination of one element of each 1-D tensor, as rows in lexicographic order
    (itertools.product); one tensor is returned as it is."""
    from gradflow.ops.shape import stack
    from gradflow.ops.stacking import meshgrid

    for x in tensors:
        if _tensor(x, "cartesian_prod", "tensors").ndim != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(x.shape)}")
    if len(tensors) == 1:
        return tensors[0]
    if len({x.dtype for x in tensors}) > 1:
        raise RuntimeError("meshgrid expects all tensors to have the same dtype")
    grids = meshgrid(*tensors, indexing="ij")
    return stack([g.reshape(-1) for g in grids], 1)


def combinations(input: Tensor, r: int = 2, with_replacement: bool = False) -> Tensor:
    """The r-length combinations of a 1-D tensor's elements (itertools.combinations, or
    combinations_with_replacement) as the rows of a (count, r) tensor."""
    from gradflow.ops.indexing import index_select

    input = _tensor(input, "combinations")
    if input.ndim != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    xp = get_array_module(input.array)
    if r == 0:
        return _wrap(xp.zeros(0, input.dtype))
    n = input.shape[0]
    grids = numpy.meshgrid(*([numpy.arange(n)] * r), indexing="ij")
    keep = numpy.ones(grids[0].shape, bool)
    for lo, hi in itertools.pairwise(grids):
        keep &= (lo <= hi) if with_replacement else (lo < hi)
    index = numpy.stack([g[keep] for g in grids], 1).reshape(-1)
    picked = index_select(input, 0, _wrap(xp.asarray(index, dtype="int64")))
    return picked.reshape(-1, r)


def vander(x: Tensor, N: int | None = None, increasing: bool = False) -> Tensor:
    """The Vandermonde matrix of a 1-D x: columns x ** (N-1), ..., x ** 0 (increasing=True:
    x ** 0 first); integer and bool x give int64, as PyTorch."""
    from gradflow.ops.reduction import cumprod
    from gradflow.ops.shape import cat, flip

    x = _tensor(x, "vander", "x")
    if x.ndim != 1:
        raise RuntimeError("x must be a one-dimensional tensor.")
    n = x.shape[0] if N is None else N
    if n < 0:
        raise RuntimeError("N must be non-negative.")
    if x.dtype.kind != "f":
        x = x.to(dtypes.int64)
    xp = get_array_module(x.array)
    ones = _wrap(xp.ones((x.shape[0], builtins.min(n, 1)), x.dtype))
    result = ones
    if n > 1:
        result = cat([ones, cumprod(x.unsqueeze(1).expand(x.shape[0], n - 1), 1)], 1)
    return result if increasing or n < 2 else flip(result, (1,))


def _index_factory(
    row: int, col: int, offset: int, dtype: Any, device: Any, options: dict, lower: bool
) -> Tensor:
    from gradflow.creation import tensor
    from gradflow.layout import check_factory_options

    name = "tril_indices" if lower else "triu_indices"
    check_factory_options(name, options)
    for what, v in (("row", row), ("col", col)):
        if v < 0:
            raise RuntimeError(f"{what} must be non-negative, got{v}")
    if lower:
        rows, cols = numpy.tril_indices(row, offset, col)
    else:
        rows, cols = numpy.triu_indices(row, offset, col)
    target = dtypes.int64 if dtype is None else dtype
    return tensor(numpy.stack([rows, cols]).astype(numpy.int64), dtype=target, device=device)


def tril_indices(
    row: int, col: int, offset: int = 0, *, dtype: Any = None, device: Any = None, **options: Any
) -> Tensor:
    """The (2, count) row and column indices of the lower triangle of a row x col matrix
    (below the offset-th diagonal), row by row."""
    return _index_factory(row, col, offset, dtype, device, options, lower=True)


def triu_indices(
    row: int, col: int, offset: int = 0, *, dtype: Any = None, device: Any = None, **options: Any
) -> Tensor:
    """The (2, count) indices of the upper triangle (above the offset-th diagonal)."""
    return _index_factory(row, col, offset, dtype, device, options, lower=False)


def unravel_index(indices: Tensor, shape: Any) -> tuple:
    """The coordinates in `shape` of flat indices (integer tensor), one int64 tensor per dim
    (each coordinate taken modulo its size, as PyTorch)."""
    indices = _tensor(indices, "unravel_index", "indices")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"expected 'indices' to be integer dtype, but got {indices.dtype}")
    sizes = (shape,) if isinstance(shape, int | numpy.integer) else tuple(shape)
    if any(int(s) < 0 for s in sizes):
        raise ValueError(f"'shape' cannot have negative values, but got {sizes}")
    xp = get_array_module(indices.array)
    rest = indices.array.astype("int64")
    out = []
    for size in reversed(sizes):
        size = int(size)
        if size == 0:
            out.append(xp.zeros_like(rest))
            continue
        out.append(xp.mod(rest, size))
        rest = xp.floor_divide(rest, size)
    return tuple(_wrap(a) for a in reversed(out))


def range(
    start: Any = 0,
    end: Any = None,
    step: Any = 1,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """Deprecated, as in PyTorch: values from start to end inclusive by step, in the default
    float dtype unless dtype says otherwise. Use arange (end exclusive)."""
    from gradflow.creation import tensor
    from gradflow.layout import check_factory_options

    check_factory_options("range", options)
    warnings.warn(
        "torch.range is deprecated and will be removed in a future release because its "
        "behavior is inconsistent with Python's range builtin. Instead, use torch.arange, "
        "which produces values in [start, end).",
        UserWarning,
        stacklevel=2,
    )
    if end is None:
        raise TypeError("range() missing its end: range(start, end[, step])")
    if step == 0:
        raise RuntimeError("step must be nonzero")
    span = (float(end) - float(start)) / float(step)
    if span < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    count = math.floor(span) + 1
    values = float(start) + numpy.arange(count, dtype=numpy.float64) * float(step)
    target = dtypes.get_default_dtype() if dtype is None else dtype
    return tensor(values, dtype=target, device=device, requires_grad=requires_grad)


# ---- scattering into a region ------------------------------------------------------------------
class RegionScatter(Function):
    """A copy of x whose region `key` holds src (after moving `axes` to the end, for a
    diagonal): the gradient is g with the region zeroed for x, g's region for src."""

    key: Any
    axes: Any = None

    def _view(self, a):
        if self.axes is None:
            return a
        return get_array_module(a).moveaxis(a, self.axes, (-2, -1))

    def forward(self, x, src):
        out = x.copy()
        self._view(out)[self.key] = src
        return out

    def backward(self, g):
        need_x, need_src = self.needs_input_grad
        gx = gsrc = None
        if need_x:
            gx = g.copy()
            self._view(gx)[self.key] = 0
        if need_src:
            gsrc = self._view(g)[self.key].copy()
        return gx, gsrc

    def backward_graph(self, g):
        need_x, need_src = self.needs_input_grad
        gx = gsrc = None
        view = g if self.axes is None else g.movedim(self.axes, (-2, -1))
        region = view[self.key]
        if need_x:
            zero = const(get_array_module(g.array).zeros(region.shape, g.dtype))
            gx = RegionScatter.apply(g, zero, key=self.key, axes=self.axes, op_name=self.op_name)
        if need_src:
            gsrc = region
        return gx, gsrc


def _region_scatter(x: Tensor, src: Any, key: tuple, axes: Any, region: tuple, op: str) -> Tensor:
    src = _tensor(src, op, "src")
    if tuple(src.shape) != tuple(region):
        raise RuntimeError(
            "expected src to have a size equal to the slice of self. src size = "
            f"{list(src.shape)}, slice size = {list(region)}"
        )
    return RegionScatter.apply(x, _as(src, x.dtype), key=key, axes=axes, op_name=op)


def select_scatter(input: Tensor, src: Tensor, dim: int, index: int) -> Tensor:
    """A copy of input with input.select(dim, index) replaced by src."""
    input = _tensor(input, "select_scatter")
    if input.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = normalize_dim(dim, input.ndim, "select_scatter")
    size = input.shape[d]
    if not -size <= index < size:
        raise IndexError(
            f"select(): index {index} out of range for tensor of size {list(input.shape)} at "
            f"dimension {d}"
        )
    region = input.shape[:d] + input.shape[d + 1 :]
    key = _along(d, input.ndim, int(index) % size)
    return _region_scatter(input, src, key, None, region, "select_scatter")


def slice_scatter(
    input: Tensor,
    src: Tensor,
    dim: int = 0,
    start: int | None = None,
    end: int | None = None,
    step: int = 1,
) -> Tensor:
    """A copy of input with input[start:end:step] along dim replaced by src."""
    input = _tensor(input, "slice_scatter")
    if input.ndim == 0:
        raise RuntimeError("slice() cannot be applied to a 0-dim tensor.")
    if step <= 0:
        raise RuntimeError("slice step must be positive")
    d = normalize_dim(dim, input.ndim, "slice_scatter")
    part = slice(start, end, step)
    region = list(input.shape)
    region[d] = len(builtins.range(*part.indices(input.shape[d])))
    return _region_scatter(
        input, src, _along(d, input.ndim, part), None, tuple(region), "slice_scatter"
    )


def diagonal_scatter(
    input: Tensor, src: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1
) -> Tensor:
    """A copy of input with input.diagonal(offset, dim1, dim2) replaced by src."""
    input = _tensor(input, "diagonal_scatter")
    if input.ndim < 2:
        raise RuntimeError(
            f"diagonal_scatter: expected a tensor of at least 2 dims, got {input.ndim}"
        )
    d1 = normalize_dim(dim1, input.ndim, "diagonal_scatter")
    d2 = normalize_dim(dim2, input.ndim, "diagonal_scatter")
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    n1, n2 = input.shape[d1], input.shape[d2]
    if offset >= 0:
        length = builtins.max(builtins.min(n1, n2 - offset), 0)
        first, second = 0, offset
    else:
        length = builtins.max(builtins.min(n1 + offset, n2), 0)
        first, second = -offset, 0
    xp = get_array_module(input.array)
    steps = xp.arange(length)
    key = (Ellipsis, steps + first, steps + second)
    region = tuple(s for k, s in enumerate(input.shape) if k not in (d1, d2)) + (length,)
    return _region_scatter(input, src, key, (d1, d2), region, "diagonal_scatter")


def index_reduce(
    input: Tensor,
    dim: int,
    index: Tensor,
    source: Tensor,
    reduce: str,
    *,
    include_self: bool = True,
) -> Tensor:
    """input with source's slices along dim reduced into the slices `index` names ('prod',
    'mean', 'amax' or 'amin'); include_self=False leaves input's own values at the written
    slices out of the reduction. Gradients as scatter_reduce's."""
    from gradflow.ops.scatter import scatter_reduce

    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(
            "index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got "
            f"{reduce}."
        )
    input = _tensor(input, "index_reduce")
    source = _tensor(source, "index_reduce", "source")
    index = _tensor(index, "index_reduce", "index")
    if index.ndim > 1 or index.dtype.kind not in "iu":
        raise IndexError("index_reduce_(): Index is supposed to be a vector of int32 or int64")
    d = normalize_dim(dim, input.ndim, "index_reduce")
    src_shape = tuple(source.shape) if source.ndim else (1,)
    in_shape = tuple(input.shape) if input.ndim else (1,)
    if len(src_shape) != len(in_shape) or any(
        a != b for k, (a, b) in enumerate(zip(src_shape, in_shape)) if k != d
    ):
        raise RuntimeError(
            "index_reduce_(): Source/destination tensor must have same slice shapes. "
            f"Destination slice shape: {list(in_shape)} at dimension {d} and source slice "
            f"shape: {list(src_shape)} at dimension {d}."
        )
    if index.numel() != src_shape[d]:
        raise RuntimeError(
            "index_reduce_(): Number of indices "
            f"({index.numel()}) should be equal to source.size(dim) ({src_shape[d]})"
        )
    if source.dtype != input.dtype:
        raise RuntimeError(
            f"index_reduce_(): self ({input.dtype}) and source ({source.dtype}) must have the "
            "same scalar type"
        )
    view = [1] * len(src_shape)
    view[d] = -1
    spread = index.reshape(view).expand(src_shape).to(dtypes.int64)
    base = input.reshape(in_shape) if input.ndim == 0 else input
    src = source.reshape(src_shape) if source.ndim == 0 else source
    out = scatter_reduce(base, d, spread, src, reduce, include_self=include_self)
    return out.reshape(()) if input.ndim == 0 else out


# ---- as_strided ----------------------------------------------------------------------------------
class AsStrided(Function):
    """A strided view of a contiguous input's elements (read as its storage). The gradient
    adds g at each element's storage position (one bincount; overlapping windows sum)."""

    op_name = "as_strided"
    size: tuple
    stride: tuple
    offset: int

    def forward(self, x):
        xp = get_array_module(x)
        flat = x.reshape(-1)
        self.shape = x.shape
        strides = tuple(s * x.itemsize for s in self.stride)
        return xp.lib.stride_tricks.as_strided(flat[self.offset :], self.size, strides)

    def _positions(self, xp):
        pos = xp.full((1,) * len(self.size), self.offset, "int64")
        for k, (n, s) in enumerate(zip(self.size, self.stride, strict=True)):
            shape = [1] * len(self.size)
            shape[k] = n
            pos = pos + (xp.arange(n, dtype="int64") * s).reshape(shape)
        return xp.broadcast_to(pos, self.size).reshape(-1)

    def backward(self, g):
        xp = get_array_module(g)
        numel = math.prod(self.shape)
        weights = g.reshape(-1).astype("float64", copy=False)
        gx = xp.bincount(self._positions(xp), weights=weights, minlength=numel)
        return gx[:numel].astype(g.dtype, copy=False).reshape(self.shape)

    def backward_graph(self, g):
        from gradflow.ops.scatter import index_add

        xp = get_array_module(g.array)
        zero = const(xp.zeros(math.prod(self.shape), g.dtype))
        spread = index_add(zero, 0, _wrap(self._positions(xp)), g.reshape(-1))
        return spread.reshape(self.shape)


def as_strided(
    input: Tensor, size: Sequence[int], stride: Sequence[int], storage_offset: int | None = None
) -> Tensor:
    """A view of input's elements laid out with `size` and `stride` (in elements), starting
    `storage_offset` elements in. gradflow reads a contiguous input's own elements as the
    storage (a non-contiguous one raises: call .contiguous() first); PyTorch's storage of a
    view may reach outside it."""
    input = _tensor(input, "as_strided")
    size, stride = tuple(int(v) for v in size), tuple(int(v) for v in stride)
    offset = 0 if storage_offset is None else int(storage_offset)
    if len(size) != len(stride):
        raise RuntimeError(
            f"mismatch in length of strides and shape: size {list(size)}, stride {list(stride)}"
        )
    if any(s < 0 for s in stride) or offset < 0 or any(n < 0 for n in size):
        raise RuntimeError("as_strided: Negative strides, sizes or offsets are not supported")
    a = input.array
    if not a.flags.c_contiguous:
        raise NotImplementedError(
            "as_strided: gradflow reads a contiguous tensor's elements as its storage; call "
            ".contiguous() on the input first"
        )
    needed = 0 if 0 in size else offset + builtins.sum((n - 1) * s for n, s in zip(size, stride))
    if 0 not in size and needed >= a.size:
        raise RuntimeError(
            f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset {offset} "
            f"require a storage of {needed + 1} elements, out of bounds for storage of size "
            f"{a.size}"
        )
    return AsStrided.apply(input, size=size, stride=stride, offset=offset)
