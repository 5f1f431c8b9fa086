"""``gradflow.special``: PyTorch's ``torch.special`` names that gradflow has, plus ``ndtr`` and
``ndtri`` (the standard normal CDF and its inverse, from erf and erfinv). The gamma family,
Bessel functions and ``zeta`` are not implemented."""

from __future__ import annotations

import math

from gradflow.ops.pointwise_math import logit, xlogy
from gradflow.ops.reduction import logsumexp
from gradflow.ops.rounding import round
from gradflow.ops.softmax import log_softmax, softmax
from gradflow.ops.special import erf, erfc, erfinv
from gradflow.ops.unary import exp2, expm1, log1p, sigmoid
from gradflow.tensor import Tensor

expit = sigmoid

__all__ = [
    "erf",
    "erfc",
    "erfinv",
    "exp2",
    "expit",
    "expm1",
    "log1p",
    "log_softmax",
    "logit",
    "logsumexp",
    "ndtr",
    "ndtri",
    "round",
    "softmax",
    "xlogy",
]


def ndtr(input: Tensor) -> Tensor:
    """The standard normal CDF: (1 + erf(x / sqrt(2))) / 2."""
    return (1 + erf(input * (1 / math.sqrt(2)))) * 0.5


def ndtri(input: Tensor) -> Tensor:
    """The inverse of the standard normal CDF: sqrt(2) * erfinv(2p - 1)."""
    return erfinv(input * 2 - 1) * math.sqrt(2)
