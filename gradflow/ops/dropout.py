"""Dropout: inverted dropout with a mask drawn from a seeded generator of the input's device.

Memory: the op keeps a bool mask (a quarter of a float32 input), nothing else.
"""

from __future__ import annotations

from typing import Any

import numpy

from gradflow.autograd.differentiable import const
from gradflow.autograd.function import Function
from gradflow.backend import device_of, is_cuda_array
from gradflow.ops._util import float_input
from gradflow.random import Generator, seed_for
from gradflow.tensor import Tensor


class DropoutFunction(Function):
    """Inverted dropout with one draw per element; MaskedDropout draws one per channel."""

    op_name = "dropout"
    generator: Any
    p: float

    def forward(self, x):
        return self._dropout(x, x.shape)

    def _keep_mask(self, x, mask_shape):
        """A bool mask of mask_shape, True with probability 1 - p, kept for backward."""
        rng = seed_for(self.generator, device_of(x))
        draw = x.dtype if x.dtype in (numpy.float32, numpy.float64) else numpy.float32
        if is_cuda_array(x):
            with x.device:
                keep = rng.random(mask_shape, dtype=draw) >= self.p
        else:
            keep = rng.random(mask_shape, dtype=draw) >= self.p
        self.save_for_backward(keep)  # a bool mask: a quarter of a float32 array, or less
        return keep

    def _dropout(self, x, mask_shape):
        keep = self._keep_mask(x, mask_shape)
        self.scale = x.dtype.type(0 if self.p == 1 else 1 / (1 - self.p))
        out = x * keep
        out *= self.scale
        return out

    def backward(self, g):
        (keep,) = self.saved_arrays
        dx = g * keep
        dx *= self.scale
        return dx

    def backward_graph(self, g):
        (keep,) = self.saved_arrays
        return g * const(keep.astype(g.dtype) * self.scale)


def dropout(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    generator: Generator | None = None,
) -> Tensor:
    """Inverted dropout: each element zeroed with probability p, the rest scaled by 1 / (1 - p)
    so the expectation is unchanged. Returns the input itself when p == 0 or not training. The
    mask is drawn from `generator` or the default seeded generator of the input's device.
    `inplace` (PyTorch's) is accepted and computes out of place: use the returned tensor.

    >>> import gradflow
    >>> out = dropout(gradflow.ones(1000), p=0.5)
    >>> sorted(set(out.tolist()))  # each element dropped (0) or scaled by 1 / (1 - p)
    [0.0, 2.0]
    >>> dropout(gradflow.ones(3), p=0.5, training=False)
    tensor([1., 1., 1.])
    """
    x = float_input(input, "dropout")
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p has to be between 0 and 1, but got {p!r}")
    if p == 0 or not training:
        return x
    return DropoutFunction.apply(x, p=float(p), generator=generator)


# ---- channel dropout and alpha dropout ------------------------------------------------------

# SELU's negative saturation, -scale * alpha: alpha dropout sets dropped units to it.
_SELU_SATURATION = 1.7580993408473766


class MaskedDropout(DropoutFunction):
    """Dropout with a mask of `mask_shape` (broadcast over x: one draw per channel for channel
    dropout) and, with `alpha`, PyTorch's alpha dropout: dropped units take SELU's saturation
    value and an affine map restores the mean and variance. Keeps the bool mask only."""

    alpha: bool = False
    mask_shape: tuple

    def forward(self, x):
        if not self.alpha:
            return self._dropout(x, self.mask_shape)
        keep = self._keep_mask(x, self.mask_shape)
        p = self.p
        # PyTorch's: out = a * (x * keep) + a * alpha' * (keep - 1) + a * alpha' * p.
        a = 0.0 if p == 1 else 1 / ((_SELU_SATURATION**2 * p + 1) * (1 - p)) ** 0.5
        self.scale = x.dtype.type(a)
        shift = (keep.astype(x.dtype) - 1) * x.dtype.type(_SELU_SATURATION * a)
        shift += x.dtype.type(_SELU_SATURATION * a * p)
        out = x * keep
        out *= self.scale
        out += shift
        return out


def _check_p(p: Any, op: str) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p!r}")
    return float(p)


def _masked(x: Tensor, p: float, training: bool, op: str, mask_dims: int, alpha: bool,
            generator: Generator | None) -> Tensor:  # fmt: skip
    """x through MaskedDropout with one draw per index of its first `mask_dims` dims (0: one
    per element)."""
    if p == 0 or not training or x.numel() == 0:
        return x
    shape = tuple(x.shape)
    mask_shape = shape if mask_dims == 0 else shape[:mask_dims] + (1,) * (x.ndim - mask_dims)
    return MaskedDropout.apply(x, p=p, generator=generator, mask_shape=mask_shape, alpha=alpha,
                               op_name=op)  # fmt: skip


def _channel_dropout(input: Any, p: float, training: bool, op: str, spatial: int,
                     generator: Generator | None) -> Tensor:  # fmt: skip
    """Channel dropout over (N, C, *spatial) or unbatched (C, *spatial) inputs, PyTorch's rules
    for each rank: dropout1d takes 2-D or 3-D inputs only; dropout2d treats any input of 2 or
    more dims as (N, C, ...); dropout3d treats a 5-D one as batched, any other as unbatched."""
    x = float_input(input, op)
    p = _check_p(p, op)
    if spatial == 1 and x.ndim not in (2, 3):
        raise RuntimeError(
            f"{op}: Expected 2D or 3D input, but received a {x.ndim}D input. Note that {op} "
            "exists to provide channel-wise dropout on inputs with 1 spatial dimension, a "
            "channel dimension, and an optional batch dimension (i.e. 2D or 3D inputs)."
        )
    if x.ndim < 2 and spatial == 2:
        raise RuntimeError(f"{op}: Feature dropout requires at least 2 dimensions in the input")
    if spatial == 2:
        batched = True
    else:
        batched = x.ndim == spatial + 2
    return _masked(x, p, training, op, 2 if batched else 1, False, generator)


def dropout1d(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    generator: Generator | None = None,
) -> Tensor:
    """Channel dropout over (N, C, L) or unbatched (C, L): each whole channel zeroed with
    probability p, the rest scaled by 1 / (1 - p). `inplace` is accepted and computes out of
    place (the result is returned, as PyTorch's is).

    >>> import gradflow
    >>> out = dropout1d(gradflow.ones(2, 3, 4), p=0.5)
    >>> bool((out.max(dim=2).values == out.min(dim=2).values).all())  # whole channels
    True
    """
    return _channel_dropout(input, p, training, "dropout1d", 1, generator)


def dropout2d(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    generator: Generator | None = None,
) -> Tensor:
    """Channel dropout over (N, C, H, W) (any input of 2 or more dims is read as (N, C, ...),
    as PyTorch does): whole channels zeroed with probability p, the rest scaled by
    1 / (1 - p). `inplace` is accepted and computes out of place."""
    return _channel_dropout(input, p, training, "dropout2d", 2, generator)


def dropout3d(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    generator: Generator | None = None,
) -> Tensor:
    """Channel dropout over (N, C, D, H, W) or unbatched (C, D, H, W): whole channels zeroed
    with probability p, the rest scaled by 1 / (1 - p). `inplace` computes out of place."""
    return _channel_dropout(input, p, training, "dropout3d", 3, generator)


def alpha_dropout(
    input: Tensor,
    p: float = 0.5,
    training: bool = False,
    inplace: bool = False,
    generator: Generator | None = None,
) -> Tensor:
    """Alpha dropout (for SELU networks): dropped elements are set to SELU's negative
    saturation value and an affine map keeps the mean and variance of a standard normal input.
    Note PyTorch's default training=False. `inplace` computes out of place.

    >>> import gradflow
    >>> alpha_dropout(gradflow.ones(3), p=0.5) is not None  # training=False: the input
    True
    """
    x = float_input(input, "alpha_dropout")
    p = _check_p(p, "alpha_dropout")
    return _masked(x, p, training, "alpha_dropout", 0, True, generator)


def feature_alpha_dropout(
    input: Tensor,
    p: float = 0.5,
    training: bool = False,
    inplace: bool = False,
    generator: Generator | None = None,
) -> Tensor:
    """Alpha dropout of whole channels of (N, C, ...) inputs (see :func:`alpha_dropout`)."""
    x = float_input(input, "feature_alpha_dropout")
    p = _check_p(p, "feature_alpha_dropout")
    if x.ndim < 2:
        raise RuntimeError(
            "feature_alpha_dropout: Feature dropout requires at least 2 dimensions in the input"
        )
    return _masked(x, p, training, "feature_alpha_dropout", 2, True, generator)
