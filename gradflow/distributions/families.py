"""The distribution families: Categorical, Bernoulli, Normal, Uniform (PyTorch's
parameterizations and formulas; log_prob and entropy are differentiable Tensor math)."""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow import creation
from gradflow.autograd.grad_mode import no_grad
from gradflow.backend import get_array_module
from gradflow.distributions.distribution import Distribution
from gradflow.ops import unary
from gradflow.ops.softmax import log_softmax, softmax
from gradflow.tensor import Tensor


def _as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if like is not None:
        return creation.full((), float(value), dtype=like.dtype, device=like.device)
    return creation.tensor(float(value))


def _not_nan(t: Tensor) -> Any:
    return t.array == t.array


def _one_of(probs: Any, logits: Any, family: str) -> None:
    if (probs is None) == (logits is None):
        raise ValueError(f"{family}: pass either probs or logits, not both (and not neither)")


class Categorical(Distribution):
    """K categories per batch element; ``probs`` (normalized along the last dim) or
    ``logits`` (unnormalized log-probabilities)."""

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: Any = None):
        _one_of(probs, logits, "Categorical")
        if probs is not None:
            probs = _as_tensor(probs)
            if probs.ndim < 1:
                raise ValueError("Categorical: probs must have at least one dimension")
            self.probs = probs / probs.sum(-1, keepdim=True)
            tiny = numpy.finfo(probs.dtype).tiny
            self.logits = self.probs.clamp(min=tiny).log()
        else:
            logits = _as_tensor(logits)
            if logits.ndim < 1:
                raise ValueError("Categorical: logits must have at least one dimension")
            self.logits = log_softmax(logits, -1)
            self.probs = softmax(logits, -1)
        self._num_events = self.probs.shape[-1]
        self._given = "probs" if probs is not None else "logits"
        super().__init__(tuple(self.probs.shape[:-1]), validate_args=validate_args)

    def _parameter_checks(self) -> list:
        if self._given == "logits":  # logits: real (no NaN)
            return [
                ("logits", self.logits, _not_nan(self.logits), "IndependentConstraint(Real(), 1)")
            ]
        p = self.probs.array
        xp = get_array_module(p)
        simplex = (p >= 0).all(-1) & (xp.abs(p.sum(-1) - 1) < 1e-6)
        return [("probs", self.probs, simplex, "Simplex()")]

    def _support_check(self, value: Tensor) -> tuple[Any, str]:
        v = value.array
        whole = v == v.astype("int64") if v.dtype.kind == "f" else True
        return whole & (v >= 0) & (v <= self._num_events - 1), (
            f"IntegerInterval(lower_bound=0, upper_bound={self._num_events - 1})"
        )

    def sample(self, sample_shape: Any = ()) -> Tensor:
        with no_grad():
            shape = tuple(sample_shape) + tuple(self.batch_shape)
            cdf = self.probs.array.cumsum(-1)
            u = creation.rand(*shape, 1, dtype=self.probs.dtype, device=self.probs.device).array
            index = (u > cdf).sum(-1)
            return Tensor._wrap(index.clip(0, self._num_events - 1).astype("int64"))

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        value = value.long() if isinstance(value, Tensor) else creation.tensor(value)
        shape = tuple(numpy.broadcast_shapes(tuple(value.shape), tuple(self.batch_shape)))
        logits = self.logits.expand(*shape, self._num_events)
        index = value.expand(*shape).unsqueeze(-1)
        return logits.gather(-1, index).squeeze(-1)

    def entropy(self) -> Tensor:
        return -(self.probs * self.logits).sum(-1)

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError("Categorical has no mean (its values are labels)")

    @property
    def param_shape(self) -> tuple:
        return tuple(self.probs.shape)


class Bernoulli(Distribution):
    """0/1 draws with probability ``probs`` of a 1 (or ``logits``, its log-odds)."""

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: Any = None):
        _one_of(probs, logits, "Bernoulli")
        if probs is not None:
            self.probs = _as_tensor(probs)
            eps = float(numpy.finfo(self.probs.dtype).eps)
            p = self.probs.clamp(eps, 1 - eps)
            self.logits = p.log() - (1 - p).log()
        else:
            self.logits = _as_tensor(logits)
            self.probs = unary.sigmoid(self.logits)
        self._given = "probs" if probs is not None else "logits"
        super().__init__(tuple(self.probs.shape), validate_args=validate_args)

    def _parameter_checks(self) -> list:
        if self._given == "logits":
            return [("logits", self.logits, _not_nan(self.logits), "Real()")]
        p = self.probs.array
        return [
            ("probs", self.probs, (p >= 0) & (p <= 1), "Interval(lower_bound=0.0, upper_bound=1.0)")
        ]

    def _support_check(self, value: Tensor) -> tuple[Any, str]:
        v = value.array
        return (v == 0) | (v == 1), "Boolean()"

    def sample(self, sample_shape: Any = ()) -> Tensor:
        with no_grad():
            shape = self._extended_shape(sample_shape)
            u = creation.rand(*shape, dtype=self.probs.dtype, device=self.probs.device)
            return Tensor._wrap((u.array < self.probs.array).astype(self.probs.dtype))

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        value = _as_tensor(value, self.logits)
        # -BCE with logits, in the stable form max(x,0) - x*v + log1p(exp(-|x|))
        x = self.logits
        return -(x.clamp(min=0) - x * value + unary.log1p(unary.exp(-x.abs())))

    def entropy(self) -> Tensor:
        x = self.logits
        return x.clamp(min=0) - x * self.probs + unary.log1p(unary.exp(-x.abs()))

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)


class Normal(Distribution):
    """Gaussian with mean ``loc`` and standard deviation ``scale`` (broadcast together)."""

    has_rsample = True

    def __init__(self, loc: Any, scale: Any, validate_args: Any = None):
        like = loc if isinstance(loc, Tensor) else scale if isinstance(scale, Tensor) else None
        self.loc = _as_tensor(loc, like)
        self.scale = _as_tensor(scale, like)
        shape = numpy.broadcast_shapes(tuple(self.loc.shape), tuple(self.scale.shape))
        super().__init__(tuple(shape), validate_args=validate_args)

    def _parameter_checks(self) -> list:
        return [
            ("loc", self.loc, _not_nan(self.loc), "Real()"),
            ("scale", self.scale, self.scale.array > 0, "GreaterThan(lower_bound=0.0)"),
        ]

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        eps = creation.randn(*shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + eps * self.scale

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        value = _as_tensor(value, self.loc)
        var = self.scale * self.scale
        return (
            -((value - self.loc) ** 2) / (2 * var)
            - self.scale.log()
            - math.log(math.sqrt(2 * math.pi))
        )

    def entropy(self) -> Tensor:
        return 0.5 + 0.5 * math.log(2 * math.pi) + self.scale.log().expand(*self.batch_shape)

    @property
    def mean(self) -> Tensor:
        return self.loc.expand(*self.batch_shape)

    @property
    def stddev(self) -> Tensor:
        return self.scale.expand(*self.batch_shape)

    @property
    def variance(self) -> Tensor:
        return (self.scale * self.scale).expand(*self.batch_shape)


class Uniform(Distribution):
    """Uniform on [low, high)."""

    has_rsample = True

    def __init__(self, low: Any, high: Any, validate_args: Any = None):
        like = low if isinstance(low, Tensor) else high if isinstance(high, Tensor) else None
        self.low = _as_tensor(low, like)
        self.high = _as_tensor(high, like)
        shape = numpy.broadcast_shapes(tuple(self.low.shape), tuple(self.high.shape))
        super().__init__(tuple(shape), validate_args=validate_args)

    def _parameter_checks(self) -> list:
        below = self.low.array < self.high.array
        return [
            ("low", self.low, below, "LessThan(upper_bound=high)"),
            ("high", self.high, below, "GreaterThan(lower_bound=low)"),
        ]

    def _support_check(self, value: Tensor) -> tuple[Any, str]:
        v = value.array
        return (v >= self.low.array) & (v <= self.high.array), "Interval(low, high)"

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        u = creation.rand(*shape, dtype=self.low.dtype, device=self.low.device)
        return self.low + u * (self.high - self.low)

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        value = _as_tensor(value, self.low)
        inside = ((value >= self.low) & (value < self.high)).to(self.low.dtype)
        return inside.log() - (self.high - self.low).log()

    def entropy(self) -> Tensor:
        return (self.high - self.low).log()

    @property
    def mean(self) -> Tensor:
        return (self.high + self.low) / 2

    @property
    def variance(self) -> Tensor:
        return (self.high - self.low) ** 2 / 12
