"""Dropout: inverted dropout with a mask drawn from a seeded generator of the input's device.

Memory: the op keeps a bool mask (a quarter of a float32 input), nothing else.
"""

from __future__ import annotations

from typing import Any

import numpy

from gradflow.autograd.function import Function
from gradflow.backend import device_of, is_cuda_array
from gradflow.ops._util import float_input
from gradflow.random import Generator, seed_for
from gradflow.tensor import Tensor


class DropoutFunction(Function):
    op_name = "dropout"
    generator: Any
    p: float

    def forward(self, x):
        rng = seed_for(self.generator, device_of(x))
        draw = x.dtype if x.dtype in (numpy.float32, numpy.float64) else numpy.float32
        if is_cuda_array(x):
            with x.device:
                keep = rng.random(x.shape, dtype=draw) >= self.p
        else:
            keep = rng.random(x.shape, dtype=draw) >= self.p  # kept with probability 1 - p
        self.save_for_backward(keep)  # a bool mask: a quarter of a float32 array
        self.scale = x.dtype.type(0 if self.p == 1 else 1 / (1 - self.p))
        out = x * keep
        out *= self.scale
        return out

    def backward(self, g):
        (keep,) = self.saved_arrays
        dx = g * keep
        dx *= self.scale
        return dx


def dropout(
    x: Tensor, p: float = 0.5, training: bool = True, generator: Generator | None = None
) -> Tensor:
    """Inverted dropout: each element zeroed with probability p, the rest scaled by 1 / (1 - p)
    so the expectation is unchanged. Returns x itself when p == 0 or not training. The mask is
    drawn from `generator` or the default seeded generator of x's device.

    >>> import gradflow
    >>> out = dropout(gradflow.ones(1000), p=0.5)
    >>> sorted(set(out.tolist()))  # each element dropped (0) or scaled by 1 / (1 - p)
    [0.0, 2.0]
    >>> dropout(gradflow.ones(3), p=0.5, training=False)
    tensor([1., 1., 1.])
    """
    x = float_input(x, "dropout")
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p has to be between 0 and 1, but got {p!r}")
    if p == 0 or not training:
        return x
    return DropoutFunction.apply(x, p=float(p), generator=generator)
