"""Differences and integrals along a dim, in PyTorch's names and argument order: diff,
gradient, trapezoid/trapz, cumulative_trapezoid.

diff is a Function of its own (Diff: one pass forward, one backward, instead of two slices, a
subtraction and two padded slice gradients); the others are compositions of differentiable
gradflow ops (so they have double backward and run on CuPy unchanged).

Memory: diff keeps nothing (only the size of its dim); the compositions keep what their parts
keep.
"""

from __future__ import annotations

import builtins
from typing import Any

from gradflow.autograd.differentiable import const
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops import arithmetic as _arith
from gradflow.ops._util import normalize_dim
from gradflow.ops.pointwise_extras import _along, _as, _float, _result_dtype, _tensor
from gradflow.tensor import Tensor


# ---- diff ------------------------------------------------------------------------------------
class Diff(Function):
    """x[1:] - x[:-1] along `dim` (x[1:] != x[:-1] for bool). The gradient is g[i-1] - g[i]
    with g zero outside: one subtraction pass."""

    op_name = "diff"
    dim: int

    def forward(self, x):
        xp = get_array_module(x)
        d, n = self.dim, x.ndim
        self.size = x.shape[d]
        hi, lo = x[_along(d, n, slice(1, None))], x[_along(d, n, slice(None, -1))]
        return xp.not_equal(hi, lo) if x.dtype.kind == "b" else xp.subtract(hi, lo)

    def backward(self, g):
        xp = get_array_module(g)
        d, n = self.dim, g.ndim
        shape = list(g.shape)
        shape[d] = self.size
        if g.shape[d] == 0:
            return xp.zeros(shape, g.dtype)
        gx = xp.empty(shape, g.dtype)
        xp.negative(g[_along(d, n, slice(0, 1))], out=gx[_along(d, n, slice(0, 1))])
        xp.subtract(
            g[_along(d, n, slice(None, -1))],
            g[_along(d, n, slice(1, None))],
            out=gx[_along(d, n, slice(1, -1))],
        )
        gx[_along(d, n, slice(-1, None))] = g[_along(d, n, slice(-1, None))]
        return gx

    def backward_graph(self, g):
        from gradflow.ops.shape import cat

        xp = get_array_module(g.array)
        shape = list(g.shape)
        shape[self.dim] = 1
        zero = const(xp.zeros(shape, g.dtype))
        return -Diff.apply(cat([zero, g, zero], self.dim), dim=self.dim)


def diff(
    input: Tensor, n: int = 1, dim: int = -1, prepend: Any = None, append: Any = None
) -> Tensor:
    """The n-th forward difference along dim (for bool tensors, whether neighbours differ);
    prepend and append are tensors joined to input along dim first (same ndim, same sizes
    except in dim)."""
    from gradflow.ops.shape import cat

    input = _tensor(input, "diff")
    if input.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"diff(): argument 'n' must be int, not {type(n).__name__}")
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    d = normalize_dim(dim, input.ndim, "diff")
    if prepend is not None or append is not None:
        parts = []
        for name, extra in (("prepend", prepend), ("append", append)):
            if extra is None:
                continue
            extra = _tensor(extra, "diff", name)
            if extra.ndim != input.ndim:
                raise RuntimeError(
                    "diff expects prepend or append to be the same dimension as input"
                )
            if any(a != b for k, (a, b) in enumerate(zip(extra.shape, input.shape)) if k != d):
                raise RuntimeError(
                    f"diff: {name} of shape {tuple(extra.shape)} must match input's shape "
                    f"{tuple(input.shape)} except in dim {d}"
                )
            parts.append((name, extra))
        pieces = [p for name, p in parts if name == "prepend"]
        pieces += [input] + [p for name, p in parts if name == "append"]
        target = _result_dtype([p.array for p in pieces])
        input = cat([_as(p, target) for p in pieces], d)
    for _ in builtins.range(n):
        input = Diff.apply(input, dim=d)
    return input


# ---- integrals and gradients -------------------------------------------------------------------
def _narrow(x: Tensor, d: int, start: int, length: int) -> Tensor:
    return x[_along(d, x.ndim, slice(start, start + length))]


def _coordinates_along(x: Any, y: Tensor, d: int, op: str) -> Tensor:
    """x as coordinates of y's samples along d: a 1-D x viewed along d, else x as given."""
    x = _tensor(x, op, "x")
    if x.ndim == 1:
        if x.shape[0] != y.shape[d]:
            raise RuntimeError(f"{op}: There must be one `x` value for each sample point")
        shape = [1] * y.ndim
        shape[d] = -1
        return x.reshape(shape)
    return x


def _integrand(y: Any, x: Any, dx: Any, dim: int, op: str) -> tuple[Tensor, int]:
    """trapezoid's and cumulative_trapezoid's checks: y a non-bool tensor with a dim, x or dx
    (not both); returns y and dim normalized."""
    y = _tensor(y, op, "y")
    if y.dtype.kind == "b":
        raise RuntimeError(f"{op}: received a bool input for `y`, but bool is not supported")
    if x is not None and dx is not None:
        raise TypeError(f"{op}() takes x or dx, not both")
    if y.ndim == 0:
        raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
    return y, normalize_dim(dim, y.ndim, op)


def trapezoid(y: Tensor, x: Any = None, *, dx: Any = None, dim: int = -1) -> Tensor:
    """The trapezoidal rule along dim: samples y at coordinates x (a tensor) or spaced dx
    apart (1 by default)."""
    y, d = _integrand(y, x, dx, dim, "trapezoid")
    n = y.shape[d]
    if x is not None:
        xs = _coordinates_along(x, y, d, "trapezoid")
        if n == 0:
            return y.sum(d) * 0
        step = _arith.sub(_narrow(xs, d, 1, n - 1), _narrow(xs, d, 0, n - 1))
        pairs = _arith.add(_narrow(y, d, 1, n - 1), _narrow(y, d, 0, n - 1))
        return _arith.div(_arith.mul(pairs, step).sum(d), 2.0)
    dx = 1 if dx is None else dx
    if n == 0:
        return y.sum(d) * 0
    ends = _arith.add(_narrow(y, d, 0, 1), _narrow(y, d, n - 1, 1)).squeeze(d)
    return _arith.mul(_arith.sub(y.sum(d), _arith.mul(ends, 0.5)), dx)


def trapz(y: Tensor, x: Any = None, *, dx: Any = None, dim: int = -1) -> Tensor:
    """trapezoid under its older name."""
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y: Tensor, x: Any = None, *, dx: Any = None, dim: int = -1) -> Tensor:
    """The running trapezoidal rule along dim (one value fewer than y along dim)."""
    from gradflow.ops.reduction import cumsum

    y, d = _integrand(y, x, dx, dim, "cumulative_trapezoid")
    n = y.shape[d]
    m = builtins.max(n - 1, 0)
    pairs = _arith.add(_narrow(y, d, 0, m), _narrow(y, d, 1, m))
    if x is not None:
        xs = _coordinates_along(x, y, d, "cumulative_trapezoid")
        step = _arith.sub(_narrow(xs, d, 1, m), _narrow(xs, d, 0, m))
        return cumsum(_arith.div(_arith.mul(step, pairs), 2.0), d)
    dx = 1 if dx is None else dx
    return cumsum(_arith.mul(pairs, dx / 2.0), d)


def gradient(input: Tensor, *, spacing: Any = 1, dim: Any = None, edge_order: int = 1) -> tuple:
    """The derivative along each of dim (every dim by default) by central differences inside
    and one-sided ones of order edge_order (1 or 2) at the edges, as NumPy's gradient. spacing:
    a number (the step of every dim), one number per dim, or one 1-D coordinate tensor per
    dim."""
    from gradflow.ops.shape import cat

    input = _tensor(input, "gradient")
    if input.dtype.kind in "bu":
        raise RuntimeError(f"torch.gradient does not support {input.dtype} input.")
    if edge_order not in (1, 2):
        raise RuntimeError("torch.gradient only supports edge_order=1 and edge_order=2.")
    if dim is None:
        dims = list(builtins.range(input.ndim))
    elif isinstance(dim, int):
        dims = [normalize_dim(dim, input.ndim, "gradient")]
    else:
        dims = [normalize_dim(k, input.ndim, "gradient") for k in dim]
    if isinstance(spacing, list | tuple):
        if len(spacing) != len(dims):
            raise RuntimeError(
                "torch.gradient expected spacing to be unspecified, a scalar or it's spacing "
                "and dim arguments to have the same length, but got a spacing argument of "
                f"length {len(spacing)} and a dim argument of length {len(dims)}."
            )
        steps = list(spacing)
    else:
        steps = [spacing] * len(dims)
    for d in dims:
        if input.shape[d] < edge_order + 1:
            raise RuntimeError(
                "torch.gradient expected each dimension size to be at least edge_order+1"
            )
    f = _float(input)
    results = []
    for d, h in zip(dims, steps, strict=True):
        n = f.shape[d]
        first, mid, last = _narrow(f, d, 0, 1), _narrow(f, d, 1, n - 2), _narrow(f, d, n - 1, 1)
        if isinstance(h, Tensor):
            if h.ndim != 1 or h.shape[0] != n:
                raise RuntimeError(
                    f"torch.gradient expected spacing tensor {tuple(h.shape)} to be 1-D with "
                    f"the size of dim {d}, {n}"
                )
            shape = [1] * f.ndim
            shape[d] = -1
            step = diff(_as(h, f.dtype)).reshape(shape)
            s1, s2 = _narrow(step, d, 0, n - 2), _narrow(step, d, 1, n - 2)
            a = _arith.div(_arith.neg(s2), _arith.mul(s1, _arith.add(s1, s2)))
            b = _arith.div(_arith.sub(s2, s1), _arith.mul(s1, s2))
            c = _arith.div(s1, _arith.mul(s2, _arith.add(s1, s2)))
            inner = (_narrow(f, d, 0, n - 2) * a) + (mid * b) + (_narrow(f, d, 2, n - 2) * c)
            if edge_order == 1:
                start = _arith.div(_narrow(f, d, 1, 1) - first, _narrow(step, d, 0, 1))
                end = _arith.div(last - _narrow(f, d, n - 2, 1), _narrow(step, d, n - 2, 1))
            else:
                d1, d2 = _narrow(step, d, 0, 1), _narrow(step, d, 1, 1)
                a = -(2.0 * d1 + d2) / (d1 * (d1 + d2))
                b = (d1 + d2) / (d1 * d2)
                c = -d1 / (d2 * (d1 + d2))
                start = first * a + _narrow(f, d, 1, 1) * b + _narrow(f, d, 2, 1) * c
                d1, d2 = _narrow(step, d, n - 3, 1), _narrow(step, d, n - 2, 1)
                a = d2 / (d1 * (d1 + d2))
                b = -(d2 + d1) / (d1 * d2)
                c = (2.0 * d2 + d1) / (d2 * (d1 + d2))
                start_end = _narrow(f, d, n - 3, 1) * a + _narrow(f, d, n - 2, 1) * b
                end = start_end + last * c
        else:
            h = float(h)
            inner = (_narrow(f, d, 2, n - 2) - _narrow(f, d, 0, n - 2)) / (2.0 * h)
            if edge_order == 1:
                start = (_narrow(f, d, 1, 1) - first) / h
                end = (last - _narrow(f, d, n - 2, 1)) / h
            else:
                start = (first * -3.0 + _narrow(f, d, 1, 1) * 4.0 - _narrow(f, d, 2, 1)) / (2.0 * h)
                end = (last * 3.0 - _narrow(f, d, n - 2, 1) * 4.0 + _narrow(f, d, n - 3, 1)) / (
                    2.0 * h
                )
        results.append(cat([start, inner, end], d))
    return tuple(results)
