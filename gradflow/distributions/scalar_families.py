"""The scalar distribution families beyond Normal and Bernoulli, as torch.distributions:
Exponential, Laplace, Cauchy, HalfNormal, HalfCauchy, LogNormal, Gumbel, Geometric, and the KL
divergences torch registers between two of one family; with _Expandable, the base these and
vector_families.py / gamma_family.py share (expand, the batch shape, sampling helpers).

PyTorch's parameterizations and formulas (mean, mode, variance, log_prob, entropy, cdf, icdf
where torch has them), reparameterized ``rsample`` where torch has one, drawn from gradflow's
seeded generator (``gradflow.manual_seed``), and ``expand``. Everything is differentiable Tensor
math, so gradients (and double backward) follow from the ops."""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow import creation
from gradflow.autograd.grad_mode import no_grad
from gradflow.distributions.distribution import Distribution
from gradflow.distributions.families import Normal, _as_tensor, _not_nan, _one_of
from gradflow.distributions.kl import kl_divergence, register_kl
from gradflow.ops import unary
from gradflow.ops.arithmetic import where
from gradflow.tensor import Tensor

_EULER_GAMMA = 0.57721566490153286060
_LOG_2 = math.log(2.0)
_POSITIVE = "GreaterThan(lower_bound=0.0)"
_NONNEGATIVE = "GreaterThanEq(lower_bound=0.0)"


def _params(*values: Any) -> list[Tensor]:
    """The parameters as tensors: numbers take the dtype and device of the first tensor (the
    default dtype when none is a tensor), as torch's broadcast_all."""
    like = next((v for v in values if isinstance(v, Tensor)), None)
    return [_as_tensor(v, like) for v in values]


def _shape_of(*tensors: Tensor) -> tuple:
    return tuple(numpy.broadcast_shapes(*(tuple(t.shape) for t in tensors)))


def _value(value: Any, like: Tensor) -> Tensor:
    return _as_tensor(value, like)


def _uniform(shape: tuple, like: Tensor, low: float = 0.0, high: float = 1.0) -> Tensor:
    """Uniform draws in [low, high) of like's dtype and device, from gradflow's generator."""
    u = creation.rand(*shape, dtype=like.dtype, device=like.device)
    if (low, high) != (0.0, 1.0):
        u = u * (high - low) + low
    return u


class _Expandable(Distribution):
    """``expand(batch_shape)``: the same distribution with its parameters expanded (views)."""

    _arg_names: tuple[str, ...] = ()  # the tensor parameters expand() expands, as __init__ names

    def _expand_args(self, batch_shape: tuple) -> dict:
        if not self._arg_names:
            raise NotImplementedError
        return {name: getattr(self, name).expand(*batch_shape) for name in self._arg_names}

    def expand(self, batch_shape: Any, _instance: Any = None) -> Distribution:
        batch_shape = tuple(batch_shape)
        try:
            numpy.broadcast_shapes(tuple(self.batch_shape), batch_shape)
            if len(batch_shape) < len(self.batch_shape):
                raise ValueError
            numpy.broadcast_to(numpy.empty(tuple(self.batch_shape)), batch_shape)
        except ValueError:
            raise RuntimeError(
                f"{type(self).__name__}.expand: batch shape {tuple(self.batch_shape)} can't be "
                f"expanded to {batch_shape}"
            ) from None
        new = type(self)(**self._expand_args(batch_shape), validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()


def _full_like(t: Tensor, value: float, shape: tuple) -> Tensor:
    return creation.full(shape, value, dtype=t.dtype, device=t.device)


# ---- scalar families -----------------------------------------------------------------------------
class Exponential(_Expandable):
    """Exponential with rate ``rate`` (mean 1/rate) on [0, inf)."""

    has_rsample = True

    _arg_names = ("rate",)

    def __init__(self, rate: Any, validate_args: Any = None):
        (self.rate,) = _params(rate)
        super().__init__(tuple(self.rate.shape), validate_args=validate_args)

    def _parameter_checks(self) -> list:
        return [("rate", self.rate, self.rate.array > 0, _POSITIVE)]

    def _support_check(self, value: Tensor) -> tuple[Any, str]:
        return value.array >= 0, _NONNEGATIVE

    @property
    def mean(self) -> Tensor:
        return self.rate.reciprocal()

    @property
    def mode(self) -> Tensor:
        return creation.zeros_like(self.rate)

    @property
    def stddev(self) -> Tensor:
        return self.rate.reciprocal()

    @property
    def variance(self) -> Tensor:
        return self.rate.pow(-2)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        e = -unary.log1p(-_uniform(shape, self.rate))  # standard exponential draws
        return e / self.rate

    def log_prob(self, value: Any) -> Tensor:
        self._validate_sample(value)
        value = _value(value, self.rate)
        return self.rate.log() - self.rate * value

    def cdf(self, value: Any) -> Tensor:
        self._validate_sample(value)
        return 1 - unary.exp(-self.rate * _value(value, self.rate))

    def icdf(self, value: Any) -> Tensor:
        return -unary.log1p(-_value(value, self.rate)) / self.rate

    def entropy(self) -> Tensor:
        return 1.0 - self.rate.log()


class _LocScale(_Expandable):
    """The families with a real ``loc`` and a positive ``scale`` (Laplace, Cauchy, LogNormal,
    Gumbel): their constructor and parameter checks."""

    has_rsample = True

    _arg_names = ("loc", "scale")

    def __init__(self, loc: Any, scale: Any, validate_args: Any = None):
        self.loc, self.scale = _params(loc, scale)
        super().__init__(_shape_of(self.loc, self.scale), validate_args=validate_args)

    def _parameter_checks(self) -> list:
        return [
            ("loc", self.loc, _not_nan(self.loc), "Real()"),
            ("scale", self.scale, self.scale.array > 0, _POSITIVE),
        ]


class Laplace(_LocScale):
    """Laplace with location ``loc`` and scale ``scale``."""

    @property
    def mean(self) -> Tensor:
        return self.loc.expand(*self.batch_shape)

    @property
    def mode(self) -> Tensor:
        return self.loc.expand(*self.batch_shape)

    @property
    def variance(self) -> Tensor:
        return (2 * self.scale.pow(2)).expand(*self.batch_shape)

    @property
    def stddev(self) -> Tensor:
        return (math.sqrt(2) * self.scale).expand(*self.batch_shape)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        eps = float(numpy.finfo(self.loc.dtype).eps)
        u = _uniform(shape, self.loc, eps - 1, 1)
        return self.loc - self.scale * u.sign() * unary.log1p(-u.abs())

    def log_prob(self, value: Any) -> Tensor:
        self._validate_sample(value)
        value = _value(value, self.loc)
        return -(2 * self.scale).log() - (value - self.loc).abs() / self.scale

    def cdf(self, value: Any) -> Tensor:
        self._validate_sample(value)
        d = _value(value, self.loc) - self.loc
        return 0.5 - 0.5 * d.sign() * unary.expm1(-d.abs() / self.scale)

    def icdf(self, value: Any) -> Tensor:
        term = _value(value, self.loc) - 0.5
        return self.loc - self.scale * term.sign() * unary.log1p(-2 * term.abs())

    def entropy(self) -> Tensor:
        return (1 + (2 * self.scale).log()).expand(*self.batch_shape)


class Cauchy(_LocScale):
    """Cauchy (Lorentz) with location ``loc`` and scale ``scale``; mean NaN, variance inf."""

    @property
    def mean(self) -> Tensor:
        return _full_like(self.loc, math.nan, tuple(self.batch_shape))

    @property
    def mode(self) -> Tensor:
        return self.loc.expand(*self.batch_shape)

    @property
    def variance(self) -> Tensor:
        return _full_like(self.loc, math.inf, tuple(self.batch_shape))

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        eps = (math.pi * (_uniform(shape, self.loc) - 0.5)).tan()
        return self.loc + eps * self.scale

    def log_prob(self, value: Any) -> Tensor:
        self._validate_sample(value)
        z = (_value(value, self.loc) - self.loc) / self.scale
        return -math.log(math.pi) - self.scale.log() - unary.log1p(z * z)

    def cdf(self, value: Any) -> Tensor:
        self._validate_sample(value)
        return ((_value(value, self.loc) - self.loc) / self.scale).atan() / math.pi + 0.5

    def icdf(self, value: Any) -> Tensor:
        return (math.pi * (_value(value, self.loc) - 0.5)).tan() * self.scale + self.loc

    def entropy(self) -> Tensor:
        return (math.log(4 * math.pi) + self.scale.log()).expand(*self.batch_shape)


class _HalfFamily(_Expandable):
    """|X| for X ~ a symmetric family with loc 0 (HalfNormal, HalfCauchy): the scale-only
    constructor, checks and mode they share."""

    has_rsample = True

    _arg_names = ("scale",)

    def __init__(self, scale: Any, validate_args: Any = None):
        (self.scale,) = _params(scale)
        super().__init__(tuple(self.scale.shape), validate_args=validate_args)

    def _parameter_checks(self) -> list:
        return [("scale", self.scale, self.scale.array > 0, _POSITIVE)]

    def _support_check(self, value: Tensor) -> tuple[Any, str]:
        return value.array >= 0, _NONNEGATIVE

    @property
    def mode(self) -> Tensor:
        return creation.zeros_like(self.scale)

    def _log_density(self, value: Tensor) -> Tensor:  # the density on value >= 0
        raise NotImplementedError

    def log_prob(self, value: Any) -> Tensor:
        self._validate_sample(value)
        value = _value(value, self.scale)
        return where(value >= 0, self._log_density(value), -math.inf)


class HalfNormal(_HalfFamily):
    """|X| for X ~ Normal(0, scale)."""

    @property
    def base_dist(self) -> Normal:
        return Normal(0.0 * self.scale, self.scale, validate_args=False)

    @property
    def mean(self) -> Tensor:
        return self.scale * math.sqrt(2 / math.pi)

    @property
    def variance(self) -> Tensor:
        return self.scale.pow(2) * (1 - 2 / math.pi)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        return (creation.randn(*shape, dtype=self.scale.dtype, device=self.scale.device)
                * self.scale).abs()  # fmt: skip

    def _log_density(self, value: Tensor) -> Tensor:
        return (-(value * value) / (2 * self.scale * self.scale) - self.scale.log()
                - 0.5 * math.log(2 * math.pi) + _LOG_2)  # fmt: skip

    def cdf(self, value: Any) -> Tensor:
        self._validate_sample(value)
        return (_value(value, self.scale) / (self.scale * math.sqrt(2))).erf()

    def icdf(self, value: Any) -> Tensor:
        return _value(value, self.scale).erfinv() * math.sqrt(2) * self.scale

    def entropy(self) -> Tensor:
        return 0.5 * math.log(math.pi / 2) + 0.5 + self.scale.log()


class HalfCauchy(_HalfFamily):
    """|X| for X ~ Cauchy(0, scale); mean and variance inf."""

    @property
    def base_dist(self) -> Cauchy:
        return Cauchy(0.0 * self.scale, self.scale, validate_args=False)

    @property
    def mean(self) -> Tensor:
        return _full_like(self.scale, math.inf, tuple(self.batch_shape))

    @property
    def variance(self) -> Tensor:
        return _full_like(self.scale, math.inf, tuple(self.batch_shape))

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        eps = (math.pi * (_uniform(shape, self.scale) - 0.5)).tan()
        return (eps * self.scale).abs()

    def _log_density(self, value: Tensor) -> Tensor:
        z = value / self.scale
        return -math.log(math.pi) - self.scale.log() - unary.log1p(z * z) + _LOG_2

    def cdf(self, value: Any) -> Tensor:
        self._validate_sample(value)
        return (_value(value, self.scale) / self.scale).atan() * (2 / math.pi)

    def icdf(self, value: Any) -> Tensor:
        return (_value(value, self.scale) * (math.pi / 2)).tan() * self.scale

    def entropy(self) -> Tensor:
        return math.log(4 * math.pi) - _LOG_2 + self.scale.log()


class LogNormal(_LocScale):
    """exp(X) for X ~ Normal(loc, scale)."""

    def _support_check(self, value: Tensor) -> tuple[Any, str]:
        return value.array > 0, _POSITIVE

    @property
    def base_dist(self) -> Normal:
        return Normal(self.loc, self.scale, validate_args=False)

    @property
    def mean(self) -> Tensor:
        return (self.loc + self.scale.pow(2) / 2).exp()

    @property
    def mode(self) -> Tensor:
        return (self.loc - self.scale.pow(2)).exp()

    @property
    def variance(self) -> Tensor:
        s2 = self.scale.pow(2)
        return unary.expm1(s2) * (2 * self.loc + s2).exp()

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        return self.base_dist.rsample(sample_shape).exp()

    def log_prob(self, value: Any) -> Tensor:
        self._validate_sample(value)
        log_value = _value(value, self.loc).log()
        return self.base_dist.log_prob(log_value) - log_value

    def cdf(self, value: Any) -> Tensor:
        self._validate_sample(value)
        z = (_value(value, self.loc).log() - self.loc) / (self.scale * math.sqrt(2))
        return 0.5 * (1 + z.erf())

    def icdf(self, value: Any) -> Tensor:
        z = (2 * _value(value, self.loc) - 1).erfinv()
        return (self.loc + self.scale * z * math.sqrt(2)).exp()

    def entropy(self) -> Tensor:
        return self.base_dist.entropy() + self.loc


class Gumbel(_LocScale):
    """Gumbel (type-I extreme value) with location ``loc`` and scale ``scale``."""

    @property
    def mean(self) -> Tensor:
        return (self.loc + self.scale * _EULER_GAMMA).expand(*self.batch_shape)

    @property
    def mode(self) -> Tensor:
        return self.loc.expand(*self.batch_shape)

    @property
    def stddev(self) -> Tensor:
        return ((math.pi / math.sqrt(6)) * self.scale).expand(*self.batch_shape)

    @property
    def variance(self) -> Tensor:
        return self.stddev.pow(2)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        finfo = numpy.finfo(self.loc.dtype)
        u = _uniform(shape, self.loc).clamp(float(finfo.tiny), 1 - float(finfo.eps))
        return self.loc - self.scale * (-u.log()).log()

    def log_prob(self, value: Any) -> Tensor:
        self._validate_sample(value)
        y = (self.loc - _value(value, self.loc)) / self.scale
        return (y - y.exp()) - self.scale.log()

    def cdf(self, value: Any) -> Tensor:
        self._validate_sample(value)
        return (-((self.loc - _value(value, self.loc)) / self.scale).exp()).exp()

    def icdf(self, value: Any) -> Tensor:
        return self.loc - self.scale * (-_value(value, self.loc).log()).log()

    def entropy(self) -> Tensor:
        return (self.scale.log() + (1 + _EULER_GAMMA)).expand(*self.batch_shape)


class Geometric(_Expandable):
    """The number of failures before the first success, each trial a success with
    probability ``probs`` (or log-odds ``logits``)."""

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: Any = None):
        _one_of(probs, logits, "Geometric")
        if probs is not None:
            (self.probs,) = _params(probs)
            eps = float(numpy.finfo(self.probs.dtype).eps)
            p = self.probs.clamp(eps, 1 - eps)
            self.logits = p.log() - unary.log1p(-p)
        else:
            (self.logits,) = _params(logits)
            self.probs = unary.sigmoid(self.logits)
        self._given = "probs" if probs is not None else "logits"
        super().__init__(tuple(self.probs.shape), validate_args=validate_args)

    def _expand_args(self, batch_shape: tuple) -> dict:
        return {self._given: getattr(self, self._given).expand(*batch_shape)}

    def _parameter_checks(self) -> list:
        if self._given == "logits":
            return [("logits", self.logits, _not_nan(self.logits), "Real()")]
        p = self.probs.array
        return [
            ("probs", self.probs, (p > 0) & (p <= 1),
             "HalfOpenInterval(lower_bound=0.0, upper_bound=1.0)"),
        ]  # fmt: skip

    def _support_check(self, value: Tensor) -> tuple[Any, str]:
        v = value.array
        whole = v == v.astype("int64") if v.dtype.kind == "f" else True
        return whole & (v >= 0), "IntegerGreaterThan(lower_bound=0)"

    @property
    def mean(self) -> Tensor:
        return self.probs.reciprocal() - 1

    @property
    def mode(self) -> Tensor:
        return creation.zeros_like(self.probs)

    @property
    def variance(self) -> Tensor:
        return (self.probs.reciprocal() - 1) / self.probs

    def sample(self, sample_shape: Any = ()) -> Tensor:
        with no_grad():
            shape = self._extended_shape(sample_shape)
            tiny = float(numpy.finfo(self.probs.dtype).tiny)
            u = _uniform(shape, self.probs).clamp(min=tiny)
            return (u.log() / unary.log1p(-self.probs)).floor()

    def log_prob(self, value: Any) -> Tensor:
        self._validate_sample(value)
        value = _value(value, self.probs)
        probs = where((self.probs == 1) & (value == 0), 0.0, self.probs)
        return value * unary.log1p(-probs) + self.probs.log()

    def entropy(self) -> Tensor:
        x, p = self.logits, self.probs
        return (unary.softplus(x) - x * p) / p  # binary cross-entropy with logits, over p


# ---- KL(p || q) for the pairs torch registers within these families --------------------------
@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p: Exponential, q: Exponential) -> Tensor:
    rate_ratio = q.rate / p.rate
    return rate_ratio - rate_ratio.log() - 1


@register_kl(Laplace, Laplace)
def _kl_laplace_laplace(p: Laplace, q: Laplace) -> Tensor:
    scale_ratio = p.scale / q.scale
    loc_abs_diff = (p.loc - q.loc).abs()
    t1 = -scale_ratio.log()
    t2 = loc_abs_diff / q.scale
    t3 = scale_ratio * (-loc_abs_diff / p.scale).exp()
    return t1 + t2 + t3 - 1


@register_kl(Cauchy, Cauchy)
def _kl_cauchy_cauchy(p: Cauchy, q: Cauchy) -> Tensor:
    t1 = ((p.scale + q.scale).pow(2) + (p.loc - q.loc).pow(2)).log()
    return t1 - (4 * p.scale * q.scale).log()


@register_kl(HalfNormal, HalfNormal)
def _kl_halfnormal_halfnormal(p: HalfNormal, q: HalfNormal) -> Tensor:
    return kl_divergence(p.base_dist, q.base_dist)


@register_kl(HalfCauchy, HalfCauchy)
def _kl_halfcauchy_halfcauchy(p: HalfCauchy, q: HalfCauchy) -> Tensor:
    return kl_divergence(p.base_dist, q.base_dist)


@register_kl(LogNormal, LogNormal)
def _kl_lognormal_lognormal(p: LogNormal, q: LogNormal) -> Tensor:
    return kl_divergence(p.base_dist, q.base_dist)


@register_kl(Gumbel, Gumbel)
def _kl_gumbel_gumbel(p: Gumbel, q: Gumbel) -> Tensor:
    ct1 = p.scale / q.scale
    ct2 = q.loc / q.scale
    ct3 = p.loc / q.scale
    t1 = -ct1.log() - ct2 + ct3
    t2 = ct1 * _EULER_GAMMA
    t3 = (ct2 + (1 + ct1).lgamma() - ct3).exp()
    return t1 + t2 + t3 - (1 + _EULER_GAMMA)


@register_kl(Geometric, Geometric)
def _kl_geometric_geometric(p: Geometric, q: Geometric) -> Tensor:
    return -p.entropy() - unary.log1p(-q.probs) / p.probs - q.logits


__all__ = [
    "Cauchy",
    "Exponential",
    "Geometric",
    "Gumbel",
    "HalfCauchy",
    "HalfNormal",
    "Laplace",
    "LogNormal",
]
