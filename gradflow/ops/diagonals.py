"""Triangles and diagonals of matrices: tril, triu, diagonal, diag, diag_embed, trace.

diagonal is a view of its input; none of these ops saves an array for backward, only the
offset and the dims.
"""

from __future__ import annotations

import operator

import numpy

from gradflow.autograd.differentiable import linear_backward_graph
from gradflow.autograd.function import Function
from gradflow.backend import compiled, get_array_module
from gradflow.ops._util import normalize_dim
from gradflow.tensor import Tensor


class Triangle(Function):
    """tril (upper=False) or triu of the last two dims; backward masks the gradient alike."""

    upper: bool
    diagonal: int

    def _mask(self, a):
        n, m = a.shape[-2:]
        xp = get_array_module(a)
        if self.upper:
            return ~xp.tri(n, m, self.diagonal - 1, dtype=bool)  # saves nothing: rebuilt
        return xp.tri(n, m, self.diagonal, dtype=bool)

    def _keep(self, a):
        """a's triangle, zeros elsewhere: one compiled loop over the rows with numba (float32
        and float64 NumPy arrays), else numpy.where with the mask."""
        if a.size and (loops := compiled.loops(a)) is not None:
            n, m = a.shape[-2:]
            out = numpy.empty(a.shape, a.dtype)
            loops.triangle(a.reshape(-1, n, m), out.reshape(-1, n, m), self.diagonal, self.upper)
            return out
        return get_array_module(a).where(self._mask(a), a, a.dtype.type(0))

    def forward(self, x):
        return self._keep(x)

    def backward(self, g):
        return self._keep(g)

    def backward_graph(self, g):
        return linear_backward_graph(self, g)


def _write_diagonal(out, values, offset, dim1, dim2):
    """out's diagonal (offset, over dim1 and dim2) = values, whose last dim runs along it."""
    xp = get_array_module(out)
    view = xp.moveaxis(out, (dim1, dim2), (-2, -1))  # a view: writes reach out
    n = values.shape[-1]
    steps = xp.arange(n)
    view[..., steps + max(-offset, 0), steps + max(offset, 0)] = values
    return out


class Diagonal(Function):
    """The diagonal over dim1 and dim2 as the last dim (a view); diag_embed is its reverse."""

    offset: int
    dim1: int
    dim2: int

    def forward(self, x):
        self.source = x.shape  # saves the shape only
        return get_array_module(x).diagonal(x, self.offset, self.dim1, self.dim2)

    def backward(self, g):
        out = get_array_module(g).zeros(self.source, g.dtype)
        return _write_diagonal(out, g, self.offset, self.dim1, self.dim2)

    def backward_graph(self, g):
        return linear_backward_graph(self, g)


class DiagEmbed(Function):
    offset: int
    dim1: int
    dim2: int
    shape: tuple

    def forward(self, x):
        out = get_array_module(x).zeros(self.shape, x.dtype)
        return _write_diagonal(out, x, self.offset, self.dim1, self.dim2)

    def backward(self, g):
        return get_array_module(g).diagonal(g, self.offset, self.dim1, self.dim2)

    def backward_graph(self, g):
        return linear_backward_graph(self, g)


def _triangle(x: Tensor, diagonal: int, upper: bool) -> Tensor:
    op = "triu" if upper else "tril"
    if x.ndim < 2:
        raise ValueError(f"{op}: input tensor must have at least 2 dimensions, got {x.ndim}")
    return Triangle.apply(x, upper=upper, diagonal=operator.index(diagonal), op_name=op)


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (j <= i + diagonal), zeros elsewhere."""
    return _triangle(input, diagonal, False)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (j >= i + diagonal), zeros elsewhere."""
    return _triangle(input, diagonal, True)


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal over dim1 and dim2 (offset > 0 above it), appended as the last dim."""
    d1 = normalize_dim(dim1, input.ndim, "diagonal")
    d2 = normalize_dim(dim2, input.ndim, "diagonal")
    if d1 == d2:
        raise ValueError(f"diagonal: dim1 and dim2 must differ, got {dim1} and {dim2}")
    return Diagonal.apply(input, offset=operator.index(offset), dim1=d1, dim2=d2)


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Tensors whose diagonals (over dim1, dim2 of the result) hold x's last dim."""
    d1 = normalize_dim(dim1, input.ndim + 1, "diag_embed")
    d2 = normalize_dim(dim2, input.ndim + 1, "diag_embed")
    if d1 == d2:
        raise ValueError(f"diag_embed: dim1 and dim2 must differ, got {dim1} and {dim2}")
    n = (input.shape[-1] if input.ndim else 1) + abs(offset)
    rest = list(input.shape[:-1])
    shape = []
    for d in range(input.ndim + 1):
        shape.append(n if d in (d1, d2) else rest.pop(0))
    input = input.reshape(1) if input.ndim == 0 else input
    return DiagEmbed.apply(
        input, offset=operator.index(offset), dim1=d1, dim2=d2, shape=tuple(shape)
    )


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-D input as the `diagonal`-th diagonal of a square matrix; a 2-D input's diagonal."""
    if input.ndim == 1:
        return diag_embed(input, diagonal, 0, 1)
    if input.ndim == 2:
        return Diagonal.apply(input, offset=operator.index(diagonal), dim1=0, dim2=1)
    raise ValueError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")


def trace(input: Tensor) -> Tensor:
    """The sum of a matrix's main diagonal."""
    if input.ndim != 2:
        raise ValueError(f"trace: expected a matrix, got a tensor of shape {tuple(input.shape)}")
    return diagonal(input).sum()


def diagonal_index(shape: tuple, wrap: bool, xp) -> tuple:
    """The index of `fill_diagonal_`'s elements: (i, i, ..., i); for a tall matrix with
    wrap=True the diagonal starts again after every (columns + 1) rows, as NumPy's does."""
    if len(shape) < 2:
        raise RuntimeError("fill_diagonal_: dimensions must larger than 1")
    if len(shape) > 2 and len(set(shape)) != 1:
        raise RuntimeError("fill_diagonal_: all dimensions of input must be of equal length")
    rows, cols = shape[0], shape[1]
    n = min(rows, cols)
    if len(shape) > 2 or not wrap or rows <= cols + 1:
        i = xp.arange(n)
        return (i,) * len(shape)
    flat = xp.arange(0, rows * cols, cols + 1)  # NumPy's fill_diagonal(wrap=True) positions
    return flat // cols, flat % cols
