"""Normalization: batch_norm, layer_norm and group_norm, each one graph node with a closed-form
backward. PyTorch semantics and defaults (torch.nn.functional).

All three compute xhat = (x - mean) / sqrt(var + eps) over some axes, then y = xhat * w + b with
a per-channel (batch_norm, group_norm) or per-element (layer_norm) affine. The variance is
two-pass (the mean first, then the mean square of x - mean), never E[x^2] - E[x]^2. Reductions
run through einsum or numpy.vecdot (ops/_rows.py picks per layout; a broadcast gradient, as
sum().backward() gives, is summed as value times count): one pass, no temporary for a product,
and faster than ndarray.sum over the (N, L) axes of an (N, C, L) view
(benchmarks/results/2026-12-07-code-figures.md). Per-channel weights on the CPU are (C, L)
blocks, never (C, 1) broadcasts, which cost NumPy up to twice a pass.

Backward, with M elements per statistic and gh = g * w:
    dx = invstd * (gh - mean(gh) - xhat * mean(gh * xhat)),  dw = sum(g * xhat),  db = sum(g).

Memory: batch_norm keeps the input itself (a reference) when backward needs x - mean, plus two
per-channel arrays (mean, invstd); layer_norm and group_norm keep xhat and one invstd per row.

With numba installed (gradflow.backend.compiled), layer_norm and group_norm on float NumPy
arrays run compiled loops instead: forward reads x twice per row (in cache) and writes the
output once, backward reads g and x once for the sums and once for dx; both keep x itself (a
reference) with one mean and one invstd per row, as PyTorch does.

On CuPy every array call is a kernel launch, so the NumPy tricks above cost launches there: an
einsum contracting over (N, L) transposes both operands into copies before its batched GEMM, and
each repeat is a kernel writing a (C, L) block. The cuda routes use what costs one launch each:
ndarray.sum/mean over the reduced axes with the kept axis intact, ufuncs with ``out=``, and
per-channel (C,) arrays broadcast as (C, 1) views. Counted on the CuPy stand-in
(gradflow.testing.standin), BatchNorm2d training forward + backward takes 30 launches there
instead of 41 (tests/nn/test_layer_launches.py).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy

from gradflow.autograd.differentiable import const, graph_input
from gradflow.autograd.function import Function
from gradflow.backend import compiled, get_array_module
from gradflow.ops._rows import channel_sums, column_sums, row_dots, row_sums
from gradflow.ops._util import float_input
from gradflow.tensor import Tensor

# ---- batch_norm -----------------------------------------------------------------------------
# The input is viewed as (N, C, L): L = 1 for (N, C) and H * W for (N, C, H, W). Per-channel
# arrays have shape (C,); _per_channel lays one out as a (C, L) block, since a broadcast whose
# inner loop runs over only L elements costs NumPy up to 1.5x a full pass.

_CHANNEL_DOT = "ncl,ncl->c"


def _ncl(shape):
    """(N, C, L) of an (N, C, ...) shape. Explicit: reshape can't infer a -1 beside a 0 (an
    empty batch)."""
    return shape[0], shape[1], math.prod(shape[2:])


def _per_channel(a, length):
    if length == 1:
        return a[:, None]
    return get_array_module(a).repeat(a, length).reshape(a.shape[0], length)


def _owned(xp, shape, dtype, view_shape):
    """A new array of `shape` and its view as `view_shape`: ops write into the view and return
    the array itself, which owns its memory (the engine would copy a view before keeping it
    as a leaf's .grad)."""
    out = xp.empty(shape, dtype)
    return out, out.reshape(view_shape)


def _channel_mean(v, count):
    """Per-channel mean of (N, C, L): float32 sums over each row of L, then a float64 sum over
    the batch. One float32 sum of all N * L values is off by 3e-3 (N, C, L = 64, 32, 64) to
    1.5e-2 ((4096, 4)) at a mean of 1e4 and unit variance; this route by 1e-4 and 0, for ~1.3x
    the cost of that sum."""
    xp = get_array_module(v)
    rows = v[:, :, 0] if v.shape[2] == 1 else xp.einsum("ncl->nc", v)
    mean = xp.einsum("nc->c", rows.astype(numpy.float64, copy=False))
    mean *= 1 / count
    return mean.astype(v.dtype, copy=False)


class BatchNorm(Function):
    op_name = "batch_norm"
    eps: float
    momentum: float
    running_mean: Any
    running_var: Any
    training: bool

    def forward(self, x, weight, bias):
        xp = get_array_module(x)
        if xp is not numpy:
            return self._forward_device(xp, x, weight, bias)
        v = x.reshape(_ncl(x.shape))
        length = v.shape[2]
        count = v.shape[0] * length
        out, out3 = _owned(xp, x.shape, x.dtype, v.shape)
        if self.training:
            mean = _channel_mean(v, count)
            xp.subtract(v, _per_channel(mean, length), out=out3)  # x - mean, in out's memory
            var = xp.einsum(_CHANNEL_DOT, out3, out3)
            var *= 1 / count
            self._update_running_stats(mean, var, count)
        else:
            mean = self.running_mean.copy()  # a copy: training calls update the buffer in place
            var = self.running_var
        self.running_mean = self.running_var = None  # no references to the buffers stay behind
        invstd = (var + self.eps) ** -0.5
        scale = invstd if weight is None else weight * invstd
        if self.training:
            out3 *= _per_channel(scale, length)
            if bias is not None:
                out3 += _per_channel(bias, length)
        else:
            xp.multiply(v, _per_channel(scale, length), out=out3)
            out3 += _per_channel(-mean * scale if bias is None else bias - mean * scale, length)
        # Memory: the input (a reference, no copy) when backward needs x - mean, two arrays of
        # C values, and the weight. Keeping x - mean instead would save backward one pass but
        # hold a second input-sized array while the input usually stays alive anyway, and it
        # measured no faster (benchmarks/results/2026-12-07-code-figures.md).
        need_x, need_w = self.needs_input_grad[:2]
        need_centered = need_w or (need_x and self.training)
        self.save_for_backward(x if need_centered else None, mean, invstd, weight)
        return out

    def _forward_device(self, xp, x, weight, bias):
        """The CuPy route: 10 launches in training with affine (6 more for the two running
        buffers), 6 in eval; per-channel arrays broadcast as (C, 1) views, never repeated."""
        v = x.reshape(_ncl(x.shape))
        channels, count = v.shape[1], v.shape[0] * v.shape[2]
        out, out3 = _owned(xp, x.shape, x.dtype, v.shape)
        need_x, need_w = self.needs_input_grad[:2]
        if self.training:
            # The sum accumulates in float64 (the reduction casts as it reads), the division
            # writes x's dtype: accurate at a large mean, as _channel_mean is on the CPU.
            mean = xp.empty(channels, x.dtype)
            xp.multiply(v.sum(axis=(0, 2), dtype=numpy.float64), 1 / count, out=mean)
            xp.subtract(v, mean[:, None], out=out3)  # x - mean, in out's memory
            var = xp.square(out3).mean(axis=(0, 2))
            self._update_running_stats(mean, var, count)
        else:
            mean, var = self.running_mean, self.running_var
            xp.subtract(v, mean[:, None], out=out3)
            # backward reads the mean only for dw, after training calls may change the buffer
            mean = mean.copy() if need_w else None
        self.running_mean = self.running_var = None  # no references to the buffers stay behind
        invstd = (var + self.eps) ** -0.5
        out3 *= (invstd if weight is None else weight * invstd)[:, None]
        if bias is not None:
            out3 += bias[:, None]
        need_centered = need_w or (need_x and self.training)
        self.save_for_backward(x if need_centered else None, mean, invstd, weight)
        return out

    def _update_running_stats(self, mean, var, count):
        """PyTorch's rule: r = (1 - momentum) r + momentum * batch, with the unbiased variance."""
        m = self.momentum
        if self.running_mean is not None:
            self.running_mean *= 1 - m
            self.running_mean += m * mean
        if self.running_var is not None:
            self.running_var *= 1 - m
            self.running_var += (m * count / (count - 1)) * var

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        x, mean, invstd, weight = self.saved_arrays
        xp = get_array_module(g)
        if xp is not numpy:
            return self._backward_device(xp, g, x, mean, invstd, weight)
        g3 = g.reshape(_ncl(g.shape))
        length = g3.shape[2]
        count = g3.shape[0] * length
        scale = invstd if weight is None else weight * invstd
        gx = gw = gb = None
        if need_b or (need_x and self.training):
            gb = channel_sums(g3)
        if need_x:
            gx, gx3 = _owned(xp, g.shape, g.dtype, g3.shape)
        if need_w or (need_x and self.training):
            # x - mean, written where dx will go when dx is wanted (training)
            xc = gx3 if need_x and self.training else xp.empty(g3.shape, g.dtype)
            xp.subtract(x.reshape(g3.shape), _per_channel(mean, length), out=xc)
            dot = xp.einsum(_CHANNEL_DOT, g3, xc)  # sum g * (x - mean), per channel
            if need_w:
                gw = dot * invstd
        if need_x and not self.training:  # the statistics are constants: dx = g * scale
            xp.multiply(g3, _per_channel(scale, length), out=gx3)
        elif need_x:
            # dx = w invstd (g - mean(g) - (x - mean) invstd^2 mean(g (x - mean)))
            gx3 *= _per_channel(dot * (-invstd * invstd / count), length)
            gx3 += g3
            gx3 -= _per_channel(gb / count, length)
            gx3 *= _per_channel(scale, length)
        return gx, gw, gb if need_b else None

    def _backward_device(self, xp, g, x, mean, invstd, weight):
        """The CuPy route of backward: 13 launches for all three gradients in training, the
        same formulas as the NumPy route with (C, 1) views for the per-channel factors."""
        need_x, need_w, need_b = self.needs_input_grad
        g3 = g.reshape(_ncl(g.shape))
        count = g3.shape[0] * g3.shape[2]
        train_x = need_x and self.training
        gx = gw = gb = None
        if need_b or train_x:
            gb = g3.sum(axis=(0, 2))
        if need_x:
            gx, gx3 = _owned(xp, g.shape, g.dtype, g3.shape)
        if need_w or train_x:
            # x - mean, written where dx will go when dx is wanted (training)
            xc = xp.subtract(x.reshape(g3.shape), mean[:, None], out=gx3 if train_x else None)
            gw = xp.multiply(g3, xc).sum(axis=(0, 2))  # sum g * (x - mean), per channel
            gw *= invstd  # = sum g * xhat
        if need_x:
            scale = invstd if weight is None else weight * invstd
            if not self.training:  # the statistics are constants: dx = g * scale
                xp.multiply(g3, scale[:, None], out=gx3)
            else:
                # dx = w invstd (g - mean(g) - (x - mean) invstd mean(g xhat))
                gx3 *= (gw * (invstd * (-1 / count)))[:, None]
                gx3 += g3
                gx3 -= (gb * (1 / count))[:, None]
                gx3 *= scale[:, None]
        return gx, gw if need_w else None, gb if need_b else None

    def backward_graph(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        x_a, mean_a, invstd_a, weight = self.saved_arrays
        shape = _ncl(g.shape)
        per = (1, shape[1], 1)  # a per-channel array, broadcast over (N, C, L)
        g3 = g.reshape(shape)
        w = None if weight is None else graph_input(self, 1, weight).reshape(per)
        gx = gw = gb = None
        if need_b:
            gb = g3.sum(dim=(0, 2))
        if x_a is not None and (need_w or (need_x and self.training)):
            x = graph_input(self, 0, x_a).reshape(shape)
            if self.training:  # the statistics depend on x
                xc = x - x.mean(dim=(0, 2), keepdim=True)
                inv = ((xc * xc).mean(dim=(0, 2), keepdim=True) + self.eps) ** -0.5
            else:
                xc = x - const(mean_a.reshape(per))
                inv = const(invstd_a.reshape(per))
            xhat = xc * inv
            if need_w:
                gw = (g3 * xhat).sum(dim=(0, 2))
        if need_x:
            gh = g3 if w is None else g3 * w
            if self.training:
                mean_gh = gh.mean(dim=(0, 2), keepdim=True)
                mean_ghx = (gh * xhat).mean(dim=(0, 2), keepdim=True)
                gx = inv * (gh - mean_gh - xhat * mean_ghx)
            else:
                gx = gh * const(invstd_a.reshape(per))
            gx = gx.reshape(g.shape)
        return gx, gw, gb


# ---- layer_norm, group_norm -----------------------------------------------------------------
# Statistics per row of an (R, K) view of the input.


def _normalize_rows(v, eps, out):
    """Write xhat for the rows of the 2-D array v into out (v's shape); return invstd (R,)."""
    xp = get_array_module(v)
    if xp is numpy:
        k = max(v.shape[1], 1)  # empty rows (K = 0): mean and variance 0, not a ZeroDivisionError
        mean = row_sums(v)
        mean *= 1 / k
        xp.subtract(v, mean[:, None], out=out)
        invstd = (row_dots(out, out) * (1 / k) + eps) ** -0.5
    else:  # CuPy: ndarray.mean divides in the reduction's own launch; no einsum
        mean = _row_mean(v)
        xp.subtract(v, mean[:, None], out=out)
        invstd = (_row_mean(xp.square(out)) + eps) ** -0.5
    out *= invstd[:, None]
    return invstd


def _row_mean(a):
    """The mean of each row of a 2-D CuPy array; 0 for empty rows (K = 0), as on the CPU."""
    return a.mean(axis=1) if a.shape[1] else a.sum(axis=1)


def _rows_backward(gh, xhat, invstd, out):
    """Write dx for the rows into out: invstd (gh - mean(gh) - xhat mean(gh xhat)), where gh is
    g * w on the (R, K) view; out may be gh itself."""
    xp = get_array_module(gh)
    if xp is numpy:
        k = max(gh.shape[1], 1)
        dot = row_dots(gh, xhat)
        dot *= 1 / k
        mean = row_sums(gh)
        mean *= 1 / k
    else:
        dot = _row_mean(xp.multiply(gh, xhat))
        mean = _row_mean(gh)
    xp.subtract(gh, mean[:, None], out=out)
    out -= xhat * dot[:, None]
    out *= invstd[:, None]


class LayerNormFunction(Function):
    """Statistics and affine both on the (R, K) view: K = prod(normalized_shape)."""

    op_name = "layer_norm"

    eps: float
    shape: tuple
    size: int

    def forward(self, x, weight, bias):
        xp = get_array_module(x)
        params = [p for p in (weight, bias) if p is not None]
        self.fused = x.size > 0 and compiled.loops(x, *params) is not None
        if self.fused:
            return self._forward_fused(x, weight, bias)
        v = x.reshape(self._rows(x.shape))
        xhat, xhat2 = _owned(xp, x.shape, x.dtype, v.shape)
        invstd = _normalize_rows(v, self.eps, xhat2)
        need_x, need_w = self.needs_input_grad[:2]
        # Memory: xhat (a new array; the output itself when there is no affine), invstd, weight.
        self.save_for_backward(xhat2 if need_x or need_w else None, invstd, weight)
        if weight is None and bias is None:
            return xhat
        return _affine(xhat2, weight, bias, (-1,), x.shape)

    def _forward_fused(self, x, weight, bias):
        """The compiled loop (gradflow.backend.compiled): x, mean and invstd (float64) kept."""
        rows = self._rows(x.shape)
        out, out2 = _owned(numpy, x.shape, x.dtype, rows)
        mean = numpy.empty(rows[0], numpy.float64)
        invstd = numpy.empty(rows[0], numpy.float64)
        w, b = _row_params(weight, rows[1], x.dtype, 1), _row_params(bias, rows[1], x.dtype, 0)
        v = numpy.ascontiguousarray(x).reshape(rows)
        compiled.loops(x).layer_norm(v, w, b, self.eps, out2, mean, invstd)
        need_x, need_w = self.needs_input_grad[:2]
        self.save_for_backward(x if need_x or need_w else None, mean, invstd, weight)
        return out

    def _backward_fused(self, g, need_x, need_w, need_b):
        x, mean, invstd, weight = self.saved_arrays
        rows = self._rows(g.shape)
        k = rows[1]
        g2 = numpy.ascontiguousarray(g).reshape(rows)
        if x is None:  # only the bias needs a gradient
            return None, None, _as_shape(column_sums(g2), self.shape)
        gw = numpy.zeros(k, g.dtype)
        gb = numpy.zeros(k, g.dtype)
        gx, gx2 = _owned(numpy, g.shape, g.dtype, rows)
        w = _row_params(weight, k, g.dtype, 1)
        v = numpy.ascontiguousarray(x).reshape(rows)
        compiled.loops(g).layer_norm_backward(g2, v, mean, invstd, w, gx2, gw, gb, need_x)
        return (
            gx if need_x else None,
            _as_shape(gw, self.shape) if need_w else None,
            _as_shape(gb, self.shape) if need_b else None,
        )

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        if self.fused:
            if compiled.loops(g, *[a for a in self.saved_arrays[:1] if a is not None]) is not None:
                return self._backward_fused(g, need_x, need_w, need_b)
            self._unfuse()
        xhat, invstd, weight = self.saved_arrays
        xp = get_array_module(g)
        g2 = g.reshape(self._rows(g.shape))  # xhat is None when only the bias needs a gradient
        gw = gb = gx = None
        cpu = xp is numpy
        if need_w:
            gw = xp.einsum("rk,rk->k", g2, xhat) if cpu else xp.multiply(g2, xhat).sum(axis=0)
            gw = _as_shape(gw, self.shape)
        if need_b:
            gb = _as_shape(column_sums(g2) if cpu else g2.sum(axis=0), self.shape)
        if need_x:
            gx, gx2 = _owned(xp, g.shape, g.dtype, g2.shape)
            gh = g2 if weight is None else xp.multiply(g2, weight.reshape(-1), out=gx2)
            _rows_backward(gh, xhat, invstd, gx2)
        return gx, gw, gb

    def _unfuse(self):
        """Turn the fused forward's saved (x, mean, invstd, weight) into the NumPy route's
        (xhat, invstd, weight), for a backward the loops can't run (GRADFLOW_NUMBA turned off
        in between, or a gradient of another dtype)."""
        x, mean, invstd, weight = self.saved_arrays
        xhat = None
        if x is not None:
            rows = self._rows(x.shape)
            xhat = (x.reshape(rows) - mean[:, None]) * invstd[:, None]
            xhat = xhat.astype(x.dtype, copy=False)
        invstd = invstd.astype(x.dtype if x is not None else invstd.dtype, copy=False)
        self.fused = False
        self._saved = (xhat, invstd, weight)

    def _rows(self, shape):
        """(R, K): one row per index of the leading dims (explicit: K may be 0)."""
        return math.prod(shape[: len(shape) - len(self.shape)]), self.size

    def backward_graph(self, g):
        # The closed-form gradient as Tensor ops. x itself is not saved by the NumPy route, but
        # every term is invariant to shifting a row, so the graph input is rebuilt around
        # x - mean = xhat / invstd (its graph is x's: the gradient flows to x's producer).
        need_x, need_w, need_b = self.needs_input_grad
        if self.fused:
            x_a, _, _, weight = self.saved_arrays
        else:
            xhat_a, invstd, weight = self.saved_arrays
        rows = self._rows(g.shape)
        g2 = g.reshape(rows)
        gx = gw = gb = None
        if need_x or need_w:
            if self.fused:
                centered = x_a.reshape(rows)
            else:
                centered = xhat_a.reshape(rows) / invstd.reshape(-1, 1)
            x = graph_input(self, 0, centered.reshape(g.shape)).reshape(rows)
            xc = x - x.mean(dim=1, keepdim=True)
            inv = ((xc * xc).mean(dim=1, keepdim=True) + self.eps) ** -0.5
            xhat = xc * inv
        if need_w:
            gw = (g2 * xhat).sum(dim=0).reshape(self.shape)
        if need_b:
            gb = g2.sum(dim=0).reshape(self.shape)
        if need_x:
            gh = g2 if weight is None else g2 * graph_input(self, 1, weight).reshape(1, -1)
            mean_gh = gh.mean(dim=1, keepdim=True)
            mean_ghx = (gh * xhat).mean(dim=1, keepdim=True)
            gx = (inv * (gh - mean_gh - xhat * mean_ghx)).reshape(g.shape)
        return gx, gw, gb


class GroupNormFunction(Function):
    """Statistics per (sample, group) on an (N * G, K) view; affine per channel on (N, C, L)."""

    op_name = "group_norm"

    eps: float
    groups: int

    def forward(self, x, weight, bias):
        xp = get_array_module(x)
        self.from_x = xp is numpy and x.size > 0
        if self.from_x:
            return self._forward_from_x(x, weight, bias)
        n, c, length = _ncl(x.shape)
        v = x.reshape(self._rows(x.shape))
        xhat, xhat2 = _owned(xp, x.shape, x.dtype, v.shape)
        invstd = _normalize_rows(v, self.eps, xhat2)
        need_x, need_w = self.needs_input_grad[:2]
        # Memory: xhat (a new array; the output itself when there is no affine), invstd, weight.
        self.save_for_backward(xhat if need_x or need_w else None, invstd, weight)
        if weight is None and bias is None:
            return xhat
        return _affine(xhat.reshape(n, c, length), weight, bias, (-1, 1), x.shape)

    def _forward_from_x(self, x, weight, bias):
        """NumPy: the output written once, y = (x - mean) (invstd w) + b, in the array that held
        x - mean for the variance; x itself, the mean and invstd kept for backward (a reference
        to the input, no array of its size), as torch keeps them."""
        n, c, length = _ncl(x.shape)
        rows = self._rows(x.shape)
        out, out2 = _owned(numpy, x.shape, x.dtype, rows)
        need_x, need_w = self.needs_input_grad[:2]
        params = [p for p in (weight, bias) if p is not None]
        if (loops := compiled.loops(x, *params)) is not None:  # compiled: one write of the output
            v = numpy.ascontiguousarray(x).reshape(rows)
            mean = numpy.empty(rows[0], numpy.float64)
            invstd = numpy.empty(rows[0], numpy.float64)
            loops.row_moments(v, self.eps, mean, invstd)
            self.save_for_backward(x if need_x or need_w else None, mean, invstd, weight)
            per_group = c // self.groups
            center = numpy.repeat(mean.reshape(n, self.groups), per_group, axis=1)
            scale = numpy.repeat(invstd.reshape(n, self.groups), per_group, axis=1)
            if weight is not None:
                scale *= weight
            shift = numpy.zeros((n, c)) if bias is None else numpy.broadcast_to(bias, (n, c))
            shift = numpy.ascontiguousarray(shift)
            ncl = (n, c, length)
            loops.channel_normalize(v.reshape(ncl), center, scale, shift, out.reshape(ncl))
            return out
        v = x.reshape(rows)
        k = max(rows[1], 1)
        mean = row_sums(v)
        mean *= 1 / k
        numpy.subtract(v, mean[:, None], out=out2)
        invstd = (row_dots(out2, out2) * (1 / k) + self.eps) ** -0.5
        self.save_for_backward(x if need_x or need_w else None, mean, invstd, weight)
        if weight is None:
            out2 *= invstd[:, None]
        else:
            scale = numpy.repeat(invstd.reshape(n, self.groups), c // self.groups, axis=1)
            scale *= weight
            out.reshape(n * c, length)[...] *= scale.reshape(-1, 1)
        if bias is not None:  # (C, L) blocks: a (C, 1) broadcast costs NumPy up to twice a pass
            out.reshape(n, c, length)[...] += _per_channel(bias, length)
        return out

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        if self.from_x:
            return self._backward_from_x(g, need_x, need_w, need_b)
        xhat, invstd, weight = self.saved_arrays
        xp = get_array_module(g)
        g3 = g.reshape(_ncl(g.shape))
        gw = gb = gx = None
        cpu = xp is numpy
        if need_w:
            xhat3 = xhat.reshape(g3.shape)
            gw = (
                xp.einsum(_CHANNEL_DOT, g3, xhat3)
                if cpu
                else xp.multiply(g3, xhat3).sum(axis=(0, 2))
            )
        if need_b:
            gb = channel_sums(g3) if cpu else g3.sum(axis=(0, 2))
        if need_x:
            gx, gx3 = _owned(xp, g.shape, g.dtype, g3.shape)
            gh = g3
            if weight is not None:
                w = _per_channel(weight, g3.shape[2]) if cpu else weight[:, None]
                gh = xp.multiply(g3, w, out=gx3)
            rows = self._rows(g.shape)
            _rows_backward(gh.reshape(rows), xhat.reshape(rows), invstd, gx.reshape(rows))
        return gx, gw, gb

    def _backward_from_x(self, g, need_x, need_w, need_b):
        """NumPy: (dx, dw, db) from two per-(sample, channel) sums, P = sum_L g x and
        S = sum_L g (torch's ds and db): sum_L g xhat = invstd (P - mean S) gives dw and each
        group's mean(g w xhat), S gives db and mean(g w); then dx = invstd (g w - mean(g w) -
        xhat mean(g w xhat)) as g (w invstd) + x a + b, with a and b per (sample, group): the
        arrays read three times for the statistics and four passes for dx. A gradient that is
        one value per (sample, channel) (a broadcast, as sum().backward() gives) is summed as
        the value times the sum of x."""
        x, mean, invstd, weight = self.saved_arrays
        n, c, length = _ncl(g.shape)
        groups, per_group = self.groups, c // self.groups
        g3, x3 = g.reshape(n, c, length), x.reshape(n, c, length)
        loops = compiled.loops(g, x)
        if loops is not None:  # compiled: one pass for both sums
            g3, x3 = numpy.ascontiguousarray(g3), numpy.ascontiguousarray(x3)
            p = numpy.empty((n, c), numpy.float64)
            s = numpy.empty((n, c), numpy.float64)
            loops.channel_dots(g3, x3, p, s)
        elif length and g3.strides[2] == 0:
            s = g3[:, :, 0] * g.dtype.type(length)
            p = g3[:, :, 0] * numpy.einsum("ncl->nc", x3)
        else:
            p = numpy.einsum("ncl,ncl->nc", g3, x3)
            s = row_sums(g3.reshape(n * c, length)).reshape(n, c)
        by_group = (n, groups, per_group)
        inv = invstd.reshape(n, groups)
        m = mean.reshape(n, groups)
        p_hat = p.reshape(by_group) - m[:, :, None] * s.reshape(by_group)
        p_hat *= inv[:, :, None]  # sum_L g xhat per (sample, channel)
        gw = p_hat.reshape(n, c).sum(axis=0).astype(g.dtype, copy=False) if need_w else None
        gb = s.sum(axis=0).astype(g.dtype, copy=False) if need_b else None
        if not need_x:
            return None, gw, gb
        if weight is not None:
            p_hat *= weight.reshape(groups, per_group)
            s = s * weight
        count = per_group * length
        dot = p_hat.sum(axis=2) * (1 / count)  # mean(g w xhat) per (sample, group)
        mean_g = s.reshape(by_group).sum(axis=2) * (1 / count)  # mean(g w)
        gx, gx3 = _owned(numpy, g.shape, g.dtype, (n, c, length))
        if loops is not None:  # dx in one compiled pass
            w = numpy.ones(c, g.dtype) if weight is None else weight.astype(g.dtype, copy=False)
            per = lambda v: numpy.repeat(v, per_group, axis=1)  # noqa: E731 (per channel)
            loops.channel_normalize_backward(g3, x3, w, per(m), per(inv), per(mean_g),
                                             per(dot * inv), gx3)  # fmt: skip
            return gx, gw, gb
        a = -dot * inv * inv  # dx's coefficient of x, per (sample, group)
        b = (dot * inv * m - mean_g) * inv
        scale = numpy.repeat(inv, per_group, axis=1)  # invstd per (sample, channel)
        if weight is not None:
            scale *= weight
        numpy.multiply(g3, scale.astype(g.dtype, copy=False)[:, :, None], out=gx3)
        gx2 = gx.reshape(n * groups, count)
        gx2 += x.reshape(n * groups, count) * a.reshape(-1, 1).astype(g.dtype, copy=False)
        gx2 += b.reshape(-1, 1).astype(g.dtype, copy=False)
        return gx, gw, gb

    def _rows(self, shape):
        """(N * G, K): one row per (sample, group)."""
        n, c, length = _ncl(shape)
        return n * self.groups, c // self.groups * length

    def backward_graph(self, g):
        # As layer_norm's: statistics per (sample, group) row, recomputed from x (or, when only
        # xhat was kept, from x - mean = xhat / invstd: every term is invariant to a row's shift).
        need_x, need_w, need_b = self.needs_input_grad
        saved = self.saved_arrays
        weight = saved[-1]
        ncl = _ncl(g.shape)
        rows = self._rows(g.shape)
        per = (1, ncl[1], 1)
        g3 = g.reshape(ncl)
        gx = gw = gb = None
        if need_b:
            gb = g3.sum(dim=(0, 2))
        if need_x or need_w:
            if self.from_x:
                x_a = saved[0]
            else:
                x_a = (saved[0].reshape(rows) / saved[1].reshape(-1, 1)).reshape(g.shape)
            x = graph_input(self, 0, x_a).reshape(rows)
            xc = x - x.mean(dim=1, keepdim=True)
            inv = ((xc * xc).mean(dim=1, keepdim=True) + self.eps) ** -0.5
            xhat = xc * inv
            if need_w:
                gw = (g3 * xhat.reshape(ncl)).sum(dim=(0, 2))
            if need_x:
                gh = g3 if weight is None else g3 * graph_input(self, 1, weight).reshape(per)
                gh = gh.reshape(rows)
                mean_gh = gh.mean(dim=1, keepdim=True)
                mean_ghx = (gh * xhat).mean(dim=1, keepdim=True)
                gx = (inv * (gh - mean_gh - xhat * mean_ghx)).reshape(g.shape)
        return gx, gw, gb


def _affine(xhat, weight, bias, param_shape, out_shape):
    """xhat * weight + bias (either may be None, not both) in a new array of out_shape; the
    parameters are viewed as param_shape to broadcast against xhat, a view of the output."""
    xp = get_array_module(xhat)
    out, out_view = _owned(xp, out_shape, xhat.dtype, xhat.shape)
    if weight is None:
        xp.add(xhat, bias.reshape(param_shape), out=out_view)
    else:
        xp.multiply(xhat, weight.reshape(param_shape), out=out_view)
        if bias is not None:
            out_view += bias.reshape(param_shape)
    return out


def _as_shape(a, shape):
    return a if a.shape == shape else a.reshape(shape)


def _row_params(p, k, dtype, fill):
    """A per-column parameter as the compiled loops take it: (K,) contiguous of dtype; `fill`
    (1 for a weight, 0 for a bias) where the op has none."""
    if p is None:
        return numpy.full(k, fill, dtype)
    return numpy.ascontiguousarray(p, dtype=dtype).reshape(-1)


# ---- argument checks ------------------------------------------------------------------------


def _check_input(input: object, op: str, min_ndim: int, expected: str) -> Tensor:
    float_input(input, op)
    if input.ndim < min_ndim:
        raise ValueError(
            f"{op}: argument 'input' has shape {tuple(input.shape)}; expected {expected}"
        )
    return input


def _check_param(
    param: object, name: str, shape: tuple, input: Tensor, op: str, meaning: str
) -> None:
    """A weight, bias or running buffer: None, or a Tensor of `shape` like the input."""
    if param is None:
        return
    if not isinstance(param, Tensor):
        raise TypeError(
            f"{op}: argument '{name}' must be a Tensor or None, got {type(param).__name__}"
        )
    p, a = param.array, input.array
    if p.shape != shape:
        raise ValueError(
            f"{op}: argument '{name}' has shape {tuple(param.shape)}; expected {shape} "
            f"({meaning}) for input of shape {tuple(input.shape)}"
        )
    if (
        p.dtype != a.dtype
        or type(p) is not type(a)
        or (type(a) is not numpy.ndarray and p.device != a.device)
    ):
        raise TypeError(
            f"{op}: argument '{name}' is {param.dtype} on {param.device} but input is "
            f"{input.dtype} on {input.device}; convert it with .to(input.device) and "
            ".float() or .double() to match"
        )


# ---- public functions -----------------------------------------------------------------------


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize each channel of a batch: y = (x - mean) / sqrt(var + eps) * weight + bias.

    input is (N, C), (N, C, L) or (N, C, H, W) (any (N, C, ...)); statistics are per channel
    over every other dim. training=True uses the batch's mean and biased variance and updates
    running_mean and running_var in place (when given): r = (1 - momentum) r + momentum * s,
    with the unbiased batch variance for running_var. training=False uses the running stats.
    weight and bias are (C,). momentum is a float here; a cumulative average (PyTorch's
    momentum=None) is the module's job: pass momentum = 1 / num_batches_tracked.

    >>> x = gradflow.randn(8, 3, 4, 4)
    >>> y = batch_norm(x, gradflow.zeros(3), gradflow.ones(3), training=True)
    """
    op = "batch_norm"
    input = _check_input(input, op, 2, "(N, C) or (N, C, ...) with a channel dim 1")
    channels = input.shape[1]
    per_channel = f"one value per channel, C = {channels}"
    _check_param(running_mean, "running_mean", (channels,), input, op, per_channel)
    _check_param(running_var, "running_var", (channels,), input, op, per_channel)
    _check_param(weight, "weight", (channels,), input, op, per_channel)
    _check_param(bias, "bias", (channels,), input, op, per_channel)
    if training:
        if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
            raise TypeError(
                f"batch_norm: momentum must be a float, got {momentum!r}; for a cumulative "
                "average pass momentum = 1 / num_batches_tracked (BatchNorm modules do this)"
            )
        if input.numel() // channels <= 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, got input "
                f"of shape {tuple(input.shape)}; use a larger batch or training=False"
            )
    elif running_mean is None or running_var is None:
        raise ValueError(
            "batch_norm: training=False normalizes with running_mean and running_var, but "
            f"{'running_mean' if running_mean is None else 'running_var'} is None; pass both "
            "buffers, or training=True to use the batch's statistics"
        )
    out = BatchNorm.apply(
        input,
        weight,
        bias,
        running_mean=None if running_mean is None else running_mean.array,
        running_var=None if running_var is None else running_var.array,
        training=bool(training),
        momentum=float(momentum) if training else 0.0,
        eps=float(eps),
    )
    if training:  # the buffers changed in place: anything that saved them must know
        for buffer in (running_mean, running_var):
            if buffer is not None:
                buffer._version += 1
    return out


def layer_norm(
    input: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize over the trailing dims given by normalized_shape, per leading index:
    y = (x - mean) / sqrt(var + eps) * weight + bias, with weight and bias of normalized_shape.

    >>> x = gradflow.randn(4, 10, 32)
    >>> y = layer_norm(x, (32,))          # mean 0, variance 1 over the last dim
    """
    op = "layer_norm"
    shape = _normalized_shape(normalized_shape)
    input = _check_input(input, op, len(shape), f"at least {len(shape)} dims")
    if tuple(input.shape[input.ndim - len(shape) :]) != shape:
        expected = "(*, " + ", ".join(str(n) for n in shape) + ")"
        raise ValueError(
            f"layer_norm: normalized_shape {shape} must match the trailing dims of input, got "
            f"input of shape {tuple(input.shape)} (expected {expected}); pass the last dims' "
            "sizes as normalized_shape"
        )
    meaning = "the same as normalized_shape"
    _check_param(weight, "weight", shape, input, op, meaning)
    _check_param(bias, "bias", shape, input, op, meaning)
    return LayerNormFunction.apply(
        input, weight, bias, size=math.prod(shape), shape=shape, eps=float(eps)
    )


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize each sample's channels in num_groups groups: statistics per (sample, group)
    over the group's channels and all spatial dims, then a per-channel weight and bias (C,).

    >>> x = gradflow.randn(2, 6, 4, 4)
    >>> y = group_norm(x, 3)              # groups of 2 channels
    """
    op = "group_norm"
    input = _check_input(input, op, 2, "(N, C) or (N, C, ...) with a channel dim 1")
    channels = input.shape[1]
    if isinstance(num_groups, bool) or not isinstance(num_groups, int | numpy.integer):
        raise TypeError(f"group_norm: num_groups must be an int, got {num_groups!r}")
    if num_groups <= 0 or channels % num_groups:
        raise ValueError(
            f"group_norm: num_groups={num_groups} must be positive and divide the {channels} "
            f"channels of input of shape {tuple(input.shape)}"
        )
    per_channel = f"one value per channel, C = {channels}"
    _check_param(weight, "weight", (channels,), input, op, per_channel)
    _check_param(bias, "bias", (channels,), input, op, per_channel)
    return GroupNormFunction.apply(input, weight, bias, groups=int(num_groups), eps=float(eps))


def _normalized_shape(normalized_shape: object) -> tuple:
    if isinstance(normalized_shape, int | numpy.integer) and not isinstance(normalized_shape, bool):
        return (int(normalized_shape),)
    if isinstance(normalized_shape, Sequence) and all(
        isinstance(n, int | numpy.integer) and not isinstance(n, bool) for n in normalized_shape
    ):
        if len(normalized_shape) == 0:
            raise ValueError(
                "layer_norm: normalized_shape is empty; pass the sizes of the trailing dims to "
                "normalize over, e.g. x.shape[-1:]"
            )
        return tuple(int(n) for n in normalized_shape)
    raise TypeError(
        f"layer_norm: normalized_shape must be an int or a sequence of ints, got "
        f"{normalized_shape!r}"
    )


# ---- instance_norm, rms_norm, local_response_norm (composites of the ops above) -------------


def instance_norm(
    input: Tensor,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize each (sample, channel) of (N, C, ...) over its spatial dims, then a
    per-channel weight and bias (C,). use_input_stats=True: the instance's own statistics
    (group_norm with one group per channel), and running_mean/running_var, when given, move
    towards their mean over the batch (unbiased variance), as PyTorch's do;
    use_input_stats=False: the running statistics (batch_norm in eval mode).

    >>> x = gradflow.randn(2, 3, 8)
    >>> y = instance_norm(x)              # mean 0, variance 1 per (sample, channel)
    """
    op = "instance_norm"
    input = _check_input(input, op, 3, "(N, C, ...) with at least one spatial dim")
    channels = input.shape[1]
    per_channel = f"one value per channel, C = {channels}"
    for param, name in ((running_mean, "running_mean"), (running_var, "running_var"),
                        (weight, "weight"), (bias, "bias")):  # fmt: skip
        _check_param(param, name, (channels,), input, op, per_channel)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError(
                "instance_norm: Expected running_mean and running_var to be defined when "
                "use_input_stats is false"
            )
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    spatial = math.prod(input.shape[2:])
    if spatial <= 1:
        raise ValueError(
            "Expected more than 1 spatial element when training, got input size "
            f"{tuple(input.shape)}"
        )
    out = group_norm(input, channels, weight, bias, eps)
    if running_mean is not None or running_var is not None:
        a = input.array.reshape(*input.shape[:2], -1)
        xp = get_array_module(a)
        m = float(momentum)
        if running_mean is not None:
            mean = a.mean(axis=2).mean(axis=0).astype(a.dtype)
            running_mean.array *= running_mean.array.dtype.type(1 - m)
            running_mean.array += mean * a.dtype.type(m)
            running_mean._version += 1
        if running_var is not None:
            var = xp.var(a, axis=2, ddof=1).mean(axis=0).astype(a.dtype)
            running_var.array *= running_var.array.dtype.type(1 - m)
            running_var.array += var * a.dtype.type(m)
            running_var._version += 1
    return out


def rms_norm(
    input: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    eps: float | None = None,
) -> Tensor:
    """Root-mean-square normalization over the trailing normalized_shape dims:
    ``y = x / sqrt(mean(x^2) + eps) * weight``; eps=None uses the dtype's machine epsilon, as
    PyTorch does. A composite of differentiable ops.

    >>> x = gradflow.tensor([[3.0, 4.0]])
    >>> [round(v, 4) for v in rms_norm(x, (2,)).tolist()[0]]
    [0.8485, 1.1314]
    """
    op = "rms_norm"
    shape = _normalized_shape(normalized_shape)
    input = _check_input(input, op, len(shape), f"at least {len(shape)} dims")
    if tuple(input.shape[input.ndim - len(shape) :]) != shape:
        raise RuntimeError(
            f"rms_norm: Given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(map(str, shape))}], but got input of size {tuple(input.shape)}"
        )
    _check_param(weight, "weight", shape, input, op, "the same as normalized_shape")
    if eps is None:
        eps = float(numpy.finfo(input.dtype).eps)
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    out = input * ((input * input).mean(dim=dims, keepdim=True) + eps).rsqrt()
    return out if weight is None else out * weight


def local_response_norm(
    input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> Tensor:
    """Local response normalization across channels of (N, C, ...) inputs:
    ``y = x / (k + alpha * mean of x^2 over `size` neighbouring channels) ** beta`` (zero
    padded; PyTorch's definition, alpha divided by size). A composite of differentiable ops.

    >>> local_response_norm(gradflow.ones(1, 4, 2, 2), 2).shape
    gradflow.Size([1, 4, 2, 2])
    """
    from gradflow.ops.padding import pad
    from gradflow.ops.pooling import avg_pool2d

    input = float_input(input, "local_response_norm")
    if input.ndim < 3:
        raise ValueError(
            "local_response_norm: Expected 3D or higher dimensionality input (got "
            f"{input.ndim} dimensions)"
        )
    if isinstance(size, bool) or not isinstance(size, int | numpy.integer) or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive int, got {size!r}")
    if input.numel() == 0:
        return input
    n, c = input.shape[:2]
    square = (input * input).reshape(n, 1, c, -1)
    square = pad(square, (0, 0, size // 2, (size - 1) // 2))
    div = avg_pool2d(square, (size, 1), stride=1).reshape(input.shape)
    return input / (div * alpha + k) ** beta
