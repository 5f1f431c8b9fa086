"""Padding: pad, with PyTorch's (before, after) pairs from the last dim, in the modes
constant (negative widths crop), reflect, replicate and circular.

The forward result is a new array; the op saves no array for backward, only the widths.
"""

from __future__ import annotations

from collections.abc import Sequence

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
        self.shape = x.shape  # saves the shape (and, for copied modes, small index maps)
        if self.mode == "constant":
            grow = [(max(a, 0), max(b, 0)) for a, b in self.widths]
            out = xp.pad(x, grow, mode="constant", constant_values=self.value)
            return out[self._crop(out.shape)]
        # Each padded dim gathers along itself through a 1-D source-index map, so backward
        # is a scatter-add of 1-D indices per dim, whatever the mode.
        self.maps = {}
        out = x
        numpy_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[self.mode]
        for d, (a, b) in enumerate(self.widths):
            if a or b:
                source = xp.pad(xp.arange(x.shape[d]), (a, b), mode=numpy_mode)
                self.maps[d] = source
                out = xp.take(out, source, axis=d)
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
        for d in sorted(self.maps, reverse=True):
            source = self.maps[d]
            moved = xp.moveaxis(g, d, 0)
            out = xp.zeros((self.shape[d],) + moved.shape[1:], g.dtype)
            xp.add.at(out, source, moved)
            g = xp.moveaxis(out, 0, d)
        return g

    def backward_graph(self, g):
        return linear_backward_graph(self, g, value=0.0)


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
