"""The distributions built on the gamma function, as torch.distributions: Gamma, Chi2, Beta,
Dirichlet, StudentT (reparameterized), Poisson and Binomial (sample only), with their KL pairs.

Reparameterized gamma draws: x ~ Gamma(alpha, 1) is drawn by the generator, and its gradient in
alpha is the implicit one, dx/dalpha = -(dP/dalpha)(alpha, x) / p(x; alpha) for P the
regularized lower incomplete gamma function, by PyTorch's approximation of it
(``_standard_gamma_grad``: series, saddle point and rational pieces), so gradients match
torch's for the same draws."""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow import creation
from gradflow.autograd.function import Function
from gradflow.autograd.grad_mode import no_grad
from gradflow.backend import get_array_module, is_cuda_array
from gradflow.distributions.families import _as_tensor, _not_nan, _one_of
from gradflow.distributions.kl import register_kl
from gradflow.distributions.scalar_families import _Expandable, _params, _shape_of, _value
from gradflow.ops import unary
from gradflow.ops.arithmetic import where
from gradflow.ops.pointwise_math import xlogy
from gradflow.ops.shape import stack
from gradflow.tensor import Tensor

_POSITIVE = "GreaterThan(lower_bound=0.0)"
_NONNEGATIVE = "GreaterThanEq(lower_bound=0.0)"


def _rng(t: Tensor) -> Any:
    from gradflow.random import seed_for

    return seed_for(None, t.device)


def _draw(t: Tensor, method: str, *args: Any) -> Any:
    """rng.<method>(*args) from gradflow's generator of t's device, on that device."""
    rng = _rng(t)
    if is_cuda_array(t.array):
        with t.array.device:
            return getattr(rng, method)(*args)
    return getattr(rng, method)(*args)


_COEF_UV = (
    (0.16009398, -0.094634809, 0.025146376, -0.0030648343, 1.0, 0.32668115, 0.10406089,
     0.0014179084),
    (0.53487893, 0.1298071, 0.065735949, -0.0015649758, 0.16639465, 0.020070113,
     -0.0035938915, -0.00058392623),
    (0.040121004, -0.0065914022, -0.0026286047, -0.0013441777, 0.017050642, -0.0021309326,
     0.00085092367, -1.5247877e-07),
)  # fmt: skip


def _gamma_grad_small_x(alpha: Any, x: Any) -> Any:
    """x < 0.8: the Taylor series of P(alpha, x) and of its alpha-derivative."""
    from gradflow.ops.gamma import digamma_array

    xp = get_array_module(alpha)
    numer = xp.ones_like(x)
    denom = alpha.copy()
    series1 = numer / denom
    series2 = numer / (denom * denom)
    for i in range(1, 6):
        numer = numer * (-x / i)
        denom = denom + 1
        series1 = series1 + numer / denom
        series2 = series2 + numer / (denom * denom)
    pow_x_alpha = x**alpha
    pdf = x ** (alpha - 1) * xp.exp(-x)
    cdf = pow_x_alpha * series1
    cdf_alpha = (xp.log(x) - digamma_array(alpha)) * cdf - pow_x_alpha * series2
    result = -cdf_alpha / pdf
    return xp.where(xp.isnan(result), 0.0, result)


def _gamma_grad_large_alpha(alpha: Any, x: Any) -> Any:
    """alpha > 8: Rice's saddle point expansion."""
    xp = get_array_module(alpha)
    near = (0.9 * alpha <= x) & (x <= 1.1 * alpha)
    numer_1 = 1 + 24 * alpha * (1 + 12 * alpha)
    numer_2 = (1440 * alpha * alpha + 6 * x * (53 - 120 * x) - 65 * x * x / alpha
               + alpha * (107 + 3600 * x))  # fmt: skip
    centre = numer_1 * numer_2 / (1244160 * alpha**4)
    denom = xp.sqrt(8 * alpha)
    far_alpha = xp.where(near, alpha * 2 + 1, alpha)  # keep the unused lanes finite
    term2 = denom / (far_alpha - x)
    term3 = xp.abs(x - far_alpha - far_alpha * xp.log(x / far_alpha)) ** -1.5
    term23 = xp.where(x < far_alpha, term2 - term3, term2 + term3)
    term1 = xp.log(x / far_alpha) * term23 - xp.sqrt(2 / far_alpha) * (far_alpha + x) / (
        (far_alpha - x) ** 2
    )
    stirling = 1 + 1 / (12 * alpha) * (1 + 1 / (24 * alpha))
    tail = -stirling * x * term1 / denom
    return xp.where(near, centre, tail)


def _gamma_grad_rational(alpha: Any, x: Any) -> Any:
    """Otherwise: a bivariate rational approximation in log(x / alpha) and log(alpha)."""
    xp = get_array_module(alpha)
    u = xp.log(x / alpha)
    v = xp.log(alpha)
    c = [c0 + u * (c1 + u * c2) for c0, c1, c2 in zip(*_COEF_UV)]
    p = c[0] + v * (c[1] + v * (c[2] + v * c[3]))
    q = c[4] + v * (c[5] + v * (c[6] + v * c[7]))
    return xp.exp(p / q)


def _standard_gamma_grad(alpha: Any, x: Any) -> Any:
    """dx/dalpha of a Gamma(alpha, 1) draw x at a fixed quantile (float64 arrays): PyTorch's
    approximation (_standard_gamma_grad: a series for x < 0.8, Rice's saddle point expansion for
    alpha > 8, a rational approximation between), each on its own elements."""
    xp = get_array_module(alpha)
    alpha, x = xp.broadcast_arrays(alpha, x)
    out = xp.empty(alpha.shape, dtype=xp.float64)
    small = x < 0.8
    large = ~small & (alpha > 8.0)
    middle = ~small & ~large
    with numpy.errstate(all="ignore"):
        for mask, fn in (
            (small, _gamma_grad_small_x),
            (large, _gamma_grad_large_alpha),
            (middle, _gamma_grad_rational),
        ):
            if bool(mask.any()):
                out[mask] = fn(alpha[mask], x[mask])
    return out


class _GammaDraw(Function):
    """Returns the given Gamma(alpha, 1) draws; backward: the implicit dx/dalpha."""

    draws: Any
    op_name = "_standard_gamma"

    def forward(self, alpha):
        self.save_for_backward(alpha, self.draws)
        return self.draws

    def backward(self, g):
        alpha, x = self.saved_arrays
        xp = get_array_module(alpha)
        d = _standard_gamma_grad(alpha.astype(xp.float64), x.astype(xp.float64))
        return (g * d.astype(g.dtype),)


def _standard_gamma(alpha: Tensor) -> Tensor:
    """Gamma(alpha, 1) draws of alpha's shape (clamped to the dtype's tiny, as torch),
    differentiable in alpha."""
    tiny = float(numpy.finfo(alpha.dtype).tiny)
    xp = get_array_module(alpha.array)
    raw = _draw(alpha, "gamma", alpha.array.astype(xp.float64), 1.0)
    raw = xp.asarray(raw, dtype=alpha.dtype).reshape(alpha.shape)
    raw = xp.maximum(raw, tiny)
    return _GammaDraw.apply(alpha, draws=raw)


# ---- Gamma and Chi2 ------------------------------------------------------------------------------
class Gamma(_Expandable):
    """Gamma with shape ``concentration`` and ``rate`` (mean concentration / rate)."""

    has_rsample = True

    _arg_names = ("concentration", "rate")

    def __init__(self, concentration: Any, rate: Any, validate_args: Any = None):
        self.concentration, self.rate = _params(concentration, rate)
        shape = _shape_of(self.concentration, self.rate)
        super().__init__(shape, validate_args=validate_args)

    def _parameter_checks(self) -> list:
        return [
            ("concentration", self.concentration, self.concentration.array > 0, _POSITIVE),
            ("rate", self.rate, self.rate.array > 0, _POSITIVE),
        ]

    def _support_check(self, value: Tensor) -> tuple[Any, str]:
        return value.array >= 0, _NONNEGATIVE

    @property
    def mean(self) -> Tensor:
        return (self.concentration / self.rate).expand(*self.batch_shape)

    @property
    def mode(self) -> Tensor:
        return ((self.concentration - 1) / self.rate).clamp(min=0).expand(*self.batch_shape)

    @property
    def variance(self) -> Tensor:
        return (self.concentration / self.rate.pow(2)).expand(*self.batch_shape)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        value = _standard_gamma(self.concentration.expand(*shape)) / self.rate.expand(*shape)
        tiny = float(numpy.finfo(value.dtype).tiny)
        return value.clamp(min=tiny)

    def log_prob(self, value: Any) -> Tensor:
        self._validate_sample(value)
        value = _value(value, self.rate)
        a, b = self.concentration, self.rate
        return xlogy(a, b) + xlogy(a - 1, value) - b * value - a.lgamma()

    def entropy(self) -> Tensor:
        a = self.concentration
        return a - self.rate.log() + a.lgamma() + (1.0 - a) * a.digamma()

    def cdf(self, value: Any) -> Tensor:
        self._validate_sample(value)
        from gradflow.ops.gamma import igamma

        x = self.rate * _value(value, self.rate)
        a = self.concentration
        shape = _shape_of(a, x)
        return igamma(a.expand(*shape), x.expand(*shape))


class Chi2(Gamma):
    """Chi-squared with ``df`` degrees of freedom: Gamma(df / 2, 1 / 2)."""

    _arg_names = ("df",)

    def __init__(self, df: Any, validate_args: Any = None):
        (df,) = _params(df)
        super().__init__(0.5 * df, creation.full((), 0.5, dtype=df.dtype, device=df.device),
                         validate_args=validate_args)  # fmt: skip

    @property
    def df(self) -> Tensor:
        return self.concentration * 2


# ---- Dirichlet and Beta --------------------------------------------------------------------------
class Dirichlet(_Expandable):
    """Dirichlet over the simplex of the last dim of ``concentration``."""

    has_rsample = True

    def __init__(self, concentration: Any, validate_args: Any = None):
        concentration = _as_tensor(concentration)
        if concentration.ndim < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        super().__init__(tuple(concentration.shape[:-1]), (concentration.shape[-1],), validate_args)

    def _expand_args(self, batch_shape: tuple) -> dict:
        return {"concentration": self.concentration.expand(*batch_shape, *self.event_shape)}

    def _parameter_checks(self) -> list:
        c = self.concentration
        return [("concentration", c, (c.array > 0).all(-1),
                 "IndependentConstraint(GreaterThan(lower_bound=0.0), 1)")]  # fmt: skip

    def _support_check(self, value: Tensor) -> tuple[Any, str]:
        v = value.array
        xp = get_array_module(v)
        return (v >= 0).all(-1) & (xp.abs(v.sum(-1) - 1) < 1e-6), "Simplex()"

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def mode(self) -> Tensor:
        from gradflow.ops.indexing import one_hot

        cm1 = (self.concentration - 1).clamp(min=0.0)
        mode = cm1 / cm1.sum(-1, keepdim=True)
        k = self.event_shape[-1]
        corner = one_hot(self.concentration.argmax(-1), k).to(mode.dtype)
        below = (self.concentration < 1).all(-1, keepdim=True)
        return where(below, corner, mode)

    @property
    def variance(self) -> Tensor:
        c0 = self.concentration.sum(-1, keepdim=True)
        return self.concentration * (c0 - self.concentration) / (c0.pow(2) * (c0 + 1))

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        g = _standard_gamma(self.concentration.expand(*shape))
        tiny = float(numpy.finfo(g.dtype).tiny)
        eps = float(numpy.finfo(g.dtype).eps)
        return (g / g.sum(-1, keepdim=True)).clamp(tiny, 1 - eps)

    def log_prob(self, value: Any) -> Tensor:
        self._validate_sample(value)
        value = _value(value, self.concentration)
        c = self.concentration
        return xlogy(c - 1.0, value).sum(-1) + c.sum(-1).lgamma() - c.lgamma().sum(-1)

    def entropy(self) -> Tensor:
        c = self.concentration
        k = c.shape[-1]
        a0 = c.sum(-1)
        return (c.lgamma().sum(-1) - a0.lgamma() - (k - a0) * a0.digamma()
                - ((c - 1.0) * c.digamma()).sum(-1))  # fmt: skip


class Beta(_Expandable):
    """Beta on [0, 1] with ``concentration1`` (alpha) and ``concentration0`` (beta)."""

    has_rsample = True

    _arg_names = ("concentration1", "concentration0")

    def __init__(self, concentration1: Any, concentration0: Any, validate_args: Any = None):
        c1, c0 = _params(concentration1, concentration0)
        shape = _shape_of(c1, c0)
        self._dirichlet = Dirichlet(stack([c1.expand(*shape), c0.expand(*shape)], -1),
                                    validate_args=validate_args)  # fmt: skip
        super().__init__(shape, validate_args=False)
        self._validate_args = self._dirichlet._validate_args

    def _support_check(self, value: Tensor) -> tuple[Any, str]:
        v = value.array
        return (v >= 0) & (v <= 1), "Interval(lower_bound=0.0, upper_bound=1.0)"

    @property
    def concentration1(self) -> Tensor:
        return self._dirichlet.concentration[..., 0]

    @property
    def concentration0(self) -> Tensor:
        return self._dirichlet.concentration[..., 1]

    @property
    def mean(self) -> Tensor:
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self) -> Tensor:
        return self._dirichlet.mode[..., 0]

    @property
    def variance(self) -> Tensor:
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total.pow(2) * (total + 1))

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        return self._dirichlet.rsample(sample_shape).select(-1, 0)

    def log_prob(self, value: Any) -> Tensor:
        self._validate_sample(value)
        value = _value(value, self.concentration1)
        shape = _shape_of(value, self.concentration1)
        value = value.expand(*shape)
        return self._dirichlet.log_prob(stack([value, 1.0 - value], -1))

    def entropy(self) -> Tensor:
        return self._dirichlet.entropy()


# ---- StudentT ------------------------------------------------------------------------------------
class StudentT(_Expandable):
    """Student's t with ``df`` degrees of freedom, location ``loc`` and scale ``scale``."""

    has_rsample = True

    _arg_names = ("df", "loc", "scale")

    def __init__(self, df: Any, loc: Any = 0.0, scale: Any = 1.0, validate_args: Any = None):
        self.df, self.loc, self.scale = _params(df, loc, scale)
        super().__init__(_shape_of(self.df, self.loc, self.scale), validate_args=validate_args)

    def _parameter_checks(self) -> list:
        return [
            ("df", self.df, self.df.array > 0, _POSITIVE),
            ("loc", self.loc, _not_nan(self.loc), "Real()"),
            ("scale", self.scale, self.scale.array > 0, _POSITIVE),
        ]

    @property
    def mean(self) -> Tensor:
        m = self.loc.expand(*self.batch_shape)
        return where(self.df <= 1, math.nan, m)

    @property
    def mode(self) -> Tensor:
        return self.loc.expand(*self.batch_shape)

    @property
    def variance(self) -> Tensor:
        df = self.df.expand(*self.batch_shape)
        v = self.scale.pow(2) * df / (df - 2)
        v = where(df <= 2, math.inf, v)
        return where(df <= 1, math.nan, v)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        x = creation.randn(*shape, dtype=self.df.dtype, device=self.df.device)
        z = _standard_gamma(0.5 * self.df.expand(*shape))
        y = x * (z * 2 / self.df).rsqrt()
        return self.loc + self.scale * y

    def log_prob(self, value: Any) -> Tensor:
        self._validate_sample(value)
        y = (_value(value, self.loc) - self.loc) / self.scale
        df = self.df
        z = (self.scale.log() + 0.5 * df.log() + 0.5 * math.log(math.pi)
             + (0.5 * df).lgamma() - (0.5 * (df + 1.0)).lgamma())  # fmt: skip
        return -0.5 * (df + 1.0) * unary.log1p(y.pow(2) / df) - z

    def entropy(self) -> Tensor:
        df = self.df
        lbeta = (0.5 * df).lgamma() + math.lgamma(0.5) - (0.5 * (df + 1)).lgamma()
        h = (self.scale.log() + 0.5 * (df + 1) * ((0.5 * (df + 1)).digamma()
             - (0.5 * df).digamma()) + 0.5 * df.log() + lbeta)  # fmt: skip
        return h.expand(*self.batch_shape)


# ---- Poisson and Binomial ------------------------------------------------------------------------
def _whole(v: Any) -> Any:
    return v == v.astype("int64") if v.dtype.kind == "f" else v == v


class Poisson(_Expandable):
    """Poisson counts with mean ``rate``."""

    _arg_names = ("rate",)

    def __init__(self, rate: Any, validate_args: Any = None):
        (self.rate,) = _params(rate)
        super().__init__(tuple(self.rate.shape), validate_args=validate_args)

    def _parameter_checks(self) -> list:
        return [("rate", self.rate, self.rate.array >= 0, _NONNEGATIVE)]

    def _support_check(self, value: Tensor) -> tuple[Any, str]:
        v = value.array
        return _whole(v) & (v >= 0), "IntegerGreaterThan(lower_bound=0)"

    @property
    def mean(self) -> Tensor:
        return self.rate

    @property
    def mode(self) -> Tensor:
        return self.rate.floor()

    @property
    def variance(self) -> Tensor:
        return self.rate

    def sample(self, sample_shape: Any = ()) -> Tensor:
        with no_grad():
            shape = self._extended_shape(sample_shape)
            xp = get_array_module(self.rate.array)
            lam = xp.broadcast_to(self.rate.array.astype(xp.float64), shape)
            draws = _draw(self.rate, "poisson", lam)
            return Tensor._wrap(xp.asarray(draws).reshape(shape).astype(self.rate.dtype))

    def log_prob(self, value: Any) -> Tensor:
        self._validate_sample(value)
        value = _value(value, self.rate)
        return xlogy(value, self.rate) - self.rate - (value + 1).lgamma()


def _clamp_by_zero(x: Tensor) -> Tensor:
    """max(x, 0) with gradient 1/2 at 0 (torch's Binomial helper)."""
    return (x.clamp(min=0) + x - x.clamp(max=0)) / 2


class Binomial(_Expandable):
    """Successes in ``total_count`` trials of probability ``probs`` (or log-odds ``logits``)."""

    has_enumerate_support = True

    def __init__(
        self, total_count: Any = 1, probs: Any = None, logits: Any = None,
        validate_args: Any = None,
    ):  # fmt: skip
        _one_of(probs, logits, "Binomial")
        self._given = "probs" if probs is not None else "logits"
        given, total_count = _params(probs if probs is not None else logits, total_count)
        shape = _shape_of(given, total_count)
        self.total_count = total_count.to(given.dtype).expand(*shape)
        if probs is not None:
            self.probs = given.expand(*shape)
            eps = float(numpy.finfo(given.dtype).eps)
            p = self.probs.clamp(eps, 1 - eps)
            self.logits = p.log() - unary.log1p(-p)
        else:
            self.logits = given.expand(*shape)
            self.probs = unary.sigmoid(self.logits)
        super().__init__(shape, validate_args=validate_args)

    def _expand_args(self, batch_shape: tuple) -> dict:
        return {
            "total_count": self.total_count.expand(*batch_shape),
            self._given: getattr(self, self._given).expand(*batch_shape),
        }

    def _parameter_checks(self) -> list:
        n = self.total_count.array
        checks = [("total_count", self.total_count, _whole(n) & (n >= 0),
                   "IntegerGreaterThan(lower_bound=0)")]  # fmt: skip
        if self._given == "logits":
            return [*checks, ("logits", self.logits, _not_nan(self.logits), "Real()")]
        p = self.probs.array
        return [*checks, ("probs", self.probs, (p >= 0) & (p <= 1),
                          "Interval(lower_bound=0.0, upper_bound=1.0)")]  # fmt: skip

    def _support_check(self, value: Tensor) -> tuple[Any, str]:
        v = value.array
        return _whole(v) & (v >= 0) & (v <= self.total_count.array), (
            "IntegerInterval(lower_bound=0, upper_bound=total_count)"
        )

    @property
    def mean(self) -> Tensor:
        return self.total_count * self.probs

    @property
    def mode(self) -> Tensor:
        return ((self.total_count + 1) * self.probs).floor().clamp(max=self.total_count)

    @property
    def variance(self) -> Tensor:
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        with no_grad():
            shape = self._extended_shape(sample_shape)
            xp = get_array_module(self.probs.array)
            n = xp.broadcast_to(self.total_count.array.astype(xp.int64), shape)
            p = xp.broadcast_to(self.probs.array.astype(xp.float64), shape)
            draws = _draw(self.probs, "binomial", n, p)
            return Tensor._wrap(xp.asarray(draws).reshape(shape).astype(self.probs.dtype))

    def log_prob(self, value: Any) -> Tensor:
        self._validate_sample(value)
        value = _value(value, self.logits)
        n, x = self.total_count, self.logits
        normalize = (n * _clamp_by_zero(x) + n * unary.log1p(unary.exp(-x.abs()))
                     - (n + 1).lgamma())  # fmt: skip
        return value * x - normalize - (value + 1).lgamma() - (n - value + 1).lgamma()

    def enumerate_support(self, expand: bool = True) -> Tensor:
        n = self.total_count.array
        if n.size and not bool((n == n.reshape(-1)[0]).all()):
            raise NotImplementedError(
                "Inhomogeneous total count not supported by `enumerate_support`."
            )
        count = int(n.reshape(-1)[0]) if n.size else 0
        values = creation.arange(1 + count, dtype=self.probs.dtype, device=self.probs.device)
        values = values.reshape(-1, *(1,) * len(self.batch_shape))
        return values.expand(-1, *self.batch_shape) if expand else values

    def entropy(self) -> Tensor:
        n = self.total_count.array
        if n.size and not bool((n == n.reshape(-1)[0]).all()):
            raise NotImplementedError("Inhomogeneous total count not supported by `entropy`.")
        values = self.enumerate_support(False)
        lp = self.log_prob(values)
        return -(lp.exp() * lp).sum(0)


# ---- KL ------------------------------------------------------------------------------------------
@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p: Gamma, q: Gamma) -> Tensor:
    t1 = q.concentration * (p.rate / q.rate).log()
    t2 = q.concentration.lgamma() - p.concentration.lgamma()
    t3 = (p.concentration - q.concentration) * p.concentration.digamma()
    t4 = (q.rate - p.rate) * (p.concentration / p.rate)
    return t1 + t2 + t3 + t4


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet_dirichlet(p: Dirichlet, q: Dirichlet) -> Tensor:
    sum_p = p.concentration.sum(-1)
    sum_q = q.concentration.sum(-1)
    t1 = sum_p.lgamma() - sum_q.lgamma()
    t2 = (p.concentration.lgamma() - q.concentration.lgamma()).sum(-1)
    t3 = p.concentration - q.concentration
    t4 = p.concentration.digamma() - sum_p.digamma().unsqueeze(-1)
    return t1 - t2 + (t3 * t4).sum(-1)


@register_kl(Beta, Beta)
def _kl_beta_beta(p: Beta, q: Beta) -> Tensor:
    sum_p = p.concentration1 + p.concentration0
    sum_q = q.concentration1 + q.concentration0
    t1 = q.concentration1.lgamma() + q.concentration0.lgamma() + sum_p.lgamma()
    t2 = p.concentration1.lgamma() + p.concentration0.lgamma() + sum_q.lgamma()
    t3 = (p.concentration1 - q.concentration1) * p.concentration1.digamma()
    t4 = (p.concentration0 - q.concentration0) * p.concentration0.digamma()
    t5 = (sum_q - sum_p) * sum_p.digamma()
    return t1 - t2 + t3 + t4 + t5


@register_kl(Poisson, Poisson)
def _kl_poisson_poisson(p: Poisson, q: Poisson) -> Tensor:
    return p.rate * (p.rate.log() - q.rate.log()) - (p.rate - q.rate)


@register_kl(Binomial, Binomial)
def _kl_binomial_binomial(p: Binomial, q: Binomial) -> Tensor:
    if bool((p.total_count.array < q.total_count.array).any()):
        raise NotImplementedError(
            "KL between Binomials where q.total_count > p.total_count is not implemented"
        )
    kl = p.total_count * (p.probs * (p.logits - q.logits) + unary.log1p(-p.probs)
                          - unary.log1p(-q.probs))  # fmt: skip
    return where(p.total_count > q.total_count, math.inf, kl)


__all__ = ["Beta", "Binomial", "Chi2", "Dirichlet", "Gamma", "Poisson", "StudentT"]
