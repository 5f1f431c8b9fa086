"""``gradflow.special``: PyTorch's ``torch.special`` names that gradflow has: the error
function family (erf, erfc, erfcx, erfinv, ndtr, ndtri, log_ndtr), the gamma family (gammaln,
digamma and psi, polygamma, multigammaln, gammainc, gammaincc), the modified Bessel functions
i0, i0e, i1, i1e, entr, sinc, xlog1py and xlogy, logit and expit, exp2, expm1, log1p, round,
softmax, log_softmax and logsumexp (gradflow/ops/gamma.py has the gamma family's and Bessel
functions' methods). Not implemented: zeta, the Bessel functions of other kinds, the
orthogonal polynomials."""

from __future__ import annotations

import math

from gradflow.ops.gamma import digamma, igamma, igammac, lgamma, mvlgamma, polygamma
from gradflow.ops.pointwise_math import logit, xlogy
from gradflow.ops.reduction import logsumexp
from gradflow.ops.rounding import round
from gradflow.ops.softmax import log_softmax, softmax
from gradflow.ops.special import erf, erfc, erfinv
from gradflow.ops.special_functions import entr, erfcx, i0, i0e, i1, i1e, log_ndtr, sinc, xlog1py
from gradflow.ops.unary import exp2, expm1, log1p, sigmoid
from gradflow.tensor import Tensor

expit = sigmoid
gammaln = lgamma
psi = digamma
multigammaln = mvlgamma
gammainc = igamma
gammaincc = igammac

__all__ = [
    "digamma",
    "entr",
    "erf",
    "erfc",
    "erfcx",
    "erfinv",
    "exp2",
    "expit",
    "expm1",
    "gammainc",
    "gammaincc",
    "gammaln",
    "i0",
    "i0e",
    "i1",
    "i1e",
    "log1p",
    "log_ndtr",
    "log_softmax",
    "logit",
    "logsumexp",
    "multigammaln",
    "ndtr",
    "ndtri",
    "polygamma",
    "psi",
    "round",
    "sinc",
    "softmax",
    "xlog1py",
    "xlogy",
]


def ndtr(input: Tensor) -> Tensor:
    """The standard normal CDF: (1 + erf(x / sqrt(2))) / 2."""
    return (1 + erf(input * (1 / math.sqrt(2)))) * 0.5


def ndtri(input: Tensor) -> Tensor:
    """The inverse of the standard normal CDF: sqrt(2) * erfinv(2p - 1)."""
    return erfinv(input * 2 - 1) * math.sqrt(2)
