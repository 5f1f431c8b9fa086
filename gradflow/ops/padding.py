"""Padding: pad, with PyTorch's (before, after) pairs from the last dim, in the modes
constant (negative widths crop), reflect, replicate and circular.

The forward result is a new array; the op saves no array for backward, only the widths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gradflow.autograd.differentiable import linear_backward_graph
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops.shape import _ints
from gradflow.tensor import Tensor


class Pad(Function):
    """Constant padding (cropping for negative widths), or reflect/replicate/circular."""

    mode: str
    value: float
    widths: tuple

    def forward(self, x):
        xp = get_array_module(x)
        self.shape = x.shape  # saves the shape only
        if self.mode == "constant":
            grow = [(max(a, 0), max(b, 0)) for a, b in self.widths]
            out = xp.pad(x, grow, mode="constant", constant_values=self.value)
            return out[self._crop(out.shape)]
        # The input goes into the middle of the result, then each padded dim's borders are
        # copied by slices from the result itself (dims before it at full extent, so corners
        # come out as sequential per-dim padding gives them); backward folds them back.
        out = xp.empty(tuple(n + a + b for n, (a, b) in zip(x.shape, self.widths)), x.dtype)
        out[_interior(self.widths, out.shape)] = x
        for d, (a, b) in enumerate(self.widths):
            if not (a or b):
                continue
            n = x.shape[d]
            region = [slice(None)] * d + [None] + list(_interior(self.widths, out.shape))[d + 1 :]
            last = d == x.ndim - 1
            for target, source in _border_copies(self.mode, a, b, n):
                if self.mode == "replicate" and last and target.stop - target.start <= _NARROW:
                    # the last dim: a copy per border column (a strided 1-D copy each); a
                    # broadcast copy runs NumPy's inner loop once per row, 2-3x slower
                    region[d] = source
                    edge = out[tuple(region)]
                    for i in range(target.start, target.stop):
                        region[d] = slice(i, i + 1)
                        out[tuple(region)] = edge
                    continue
                region[d] = target
                into = tuple(region)
                region[d] = source
                out[into] = out[tuple(region)]
        return out

    def _crop(self, padded: tuple) -> tuple:
        return tuple(slice(-min(a, 0), n + min(b, 0)) for (a, b), n in zip(self.widths, padded))

    def backward(self, g):
        xp = get_array_module(g)
        if self.mode == "constant":
            grow = [(max(a, 0), max(b, 0)) for a, b in self.widths]
            inside = tuple(slice(a, a + n) for (a, _), n in zip(grow, self.shape))
            if all(a >= 0 and b >= 0 for a, b in self.widths):
                return g[inside]  # no cropping: the input's region of g, a view
            padded = [n + a + b for n, (a, b) in zip(self.shape, grow)]
            full = xp.zeros(padded, g.dtype)
            full[self._crop(padded)] = g
            return full[inside]
        return _fold(g, self.widths, self.mode)

    def backward_graph(self, g):
        return linear_backward_graph(self, g, value=0.0)


_NARROW = 16  # replicate borders up to this wide: copied (last dim) and folded slice by slice

_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0) -> Tensor:
    """Pad with PyTorch's convention: `pad` lists (before, after) pairs from the LAST dim
    backwards, e.g. (1, 1, 2, 0) pads the last dim by 1 on both sides and the one before it by
    2 at the start. Modes: constant (with `value`; negative widths crop), reflect (mirror
    without the edge), replicate (repeat the edge), circular (wrap around)."""
    pad = _ints(pad, "pad", "widths")
    if len(pad) % 2 or len(pad) > 2 * input.ndim:
        raise ValueError(
            f"pad: expects an even number of widths, at most 2 per dim ({2 * input.ndim} for shape "
            f"{tuple(input.shape)}), got {pad}"
        )
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {_PAD_MODES}, got {mode!r}")
    if input.ndim == 0:
        return input  # no widths to apply (checked above), and NumPy can't pad a 0-d array
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)]
    widths = [(0, 0)] * (input.ndim - len(pairs)) + pairs[::-1]
    limit = {"reflect": "size - 1", "circular": "size", "replicate": "any size"}.get(mode)
    for d, (a, b) in enumerate(widths):
        n = input.shape[d]
        if limit and (a or b):
            most = {"reflect": n - 1, "circular": n}.get(mode, max(a, b))
            if min(a, b) < 0 or max(a, b) > most or n == 0:
                raise ValueError(
                    f"pad: {mode} padding ({a}, {b}) doesn't fit dim {d} of size {n}: widths "
                    f"must be >= 0 and at most {limit}, on a non-empty dim"
                )
        if n + a + b < 0:
            raise ValueError(f"pad: widths ({a}, {b}) crop more than dim {d} of size {n}")
    return Pad.apply(input, widths=widths, mode=mode, value=value)


def _interior(widths: Sequence[tuple[int, int]], shape: tuple) -> tuple:
    """The input's region of a padded array (widths all >= 0)."""
    return tuple(slice(a, n - b) for (a, b), n in zip(widths, shape))


def _border_copies(mode: str, a: int, b: int, n: int) -> list[tuple[slice, slice]]:
    """(border, source) slice pairs along one padded dim of size a + n + b whose input sits
    at [a, a + n): out[border] = out[source] pads it in ``mode``."""
    copies = []
    if mode == "reflect":  # position i < a mirrors input a - i; a + n + j mirrors n - 2 - j
        if a:
            copies.append((slice(0, a), slice(2 * a, a, -1)))
        if b:
            stop = a + n - 2 - b
            copies.append(
                (slice(a + n, a + n + b), slice(a + n - 2, stop if stop >= 0 else None, -1))
            )
    elif mode == "replicate":  # the edges, broadcast
        if a:
            copies.append((slice(0, a), slice(a, a + 1)))
        if b:
            copies.append((slice(a + n, a + n + b), slice(a + n - 1, a + n)))
    else:  # circular: i < a wraps to input n - a + i, a + n + j to input j
        if a:
            copies.append((slice(0, a), slice(n, n + a)))
        if b:
            copies.append((slice(a + n, a + n + b), slice(a, a + b)))
    return copies


def _fold(g: Any, widths: Sequence[tuple[int, int]], mode: str) -> Any:
    """Backward of a reflect/replicate/circular pad: g's middle (a copy) plus each border
    added back onto the input positions it copied. An element of g belongs to the first dim
    along which it lies in a border: the slab of g along dim d takes the middle of the dims
    before d and the full extent of those after, which are folded first (recursively; the
    slabs are border-thin, so this costs little next to the one copy of the middle)."""
    out = g[_interior(widths, g.shape)].copy()
    for d, (a, b) in enumerate(widths):
        if not (a or b):
            continue
        n = out.shape[d]
        after = [(0, 0)] * (d + 1) + list(widths[d + 1 :])
        select = list(_interior(widths, g.shape))
        select[d + 1 :] = [slice(None)] * (len(widths) - d - 1)
        for side, width in ((0, a), (1, b)):
            if not width:
                continue
            select[d] = slice(0, a) if side == 0 else slice(a + n, a + n + b)
            slab = g[tuple(select)]
            if any(w != (0, 0) for w in after):
                slab = _fold(slab, after, mode)
            target = [slice(None)] * len(widths)
            if mode == "reflect":
                if side == 0:  # slab position i goes to input a - i
                    target[d] = slice(a, 0, -1)
                else:  # position j goes to input n - 2 - j
                    stop = n - 2 - b
                    target[d] = slice(n - 2, stop if stop >= 0 else None, -1)
            elif mode == "replicate" and width > _NARROW:
                slab = slab.sum(axis=d, keepdims=True)
                target[d] = slice(0, 1) if side == 0 else slice(n - 1, n)
            elif mode == "replicate":
                # the border's slices added one at a time onto the edge slice: a sum over the
                # thin axis runs NumPy's inner loop per element (per row for the last dim)
                target[d] = slice(0, 1) if side == 0 else slice(n - 1, n)
                edge = out[tuple(target)]
                part = [slice(None)] * len(widths)
                for i in range(width):
                    part[d] = slice(i, i + 1)
                    edge += slab[tuple(part)]
                continue
            else:  # circular
                target[d] = slice(n - a, n) if side == 0 else slice(0, b)
            out[tuple(target)] += slab
    return out
