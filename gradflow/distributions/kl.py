"""kl_divergence(p, q) and register_kl, as torch.distributions.kl: KL(p || q) for the pairs
of families registered here (Normal, Categorical, Bernoulli, Uniform, each with itself),
differentiable in both distributions' parameters."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from gradflow.distributions.distribution import Distribution
from gradflow.distributions.families import Bernoulli, Categorical, Normal, Uniform
from gradflow.ops import unary
from gradflow.ops.arithmetic import where
from gradflow.tensor import Tensor

_KL_REGISTRY: dict[tuple[type, type], Callable[[Any, Any], Tensor]] = {}


def register_kl(type_p: type, type_q: type) -> Callable:
    """Decorator registering ``fn(p, q)`` as KL(p || q) for instances of the two types."""
    if not (issubclass(type_p, Distribution) and issubclass(type_q, Distribution)):
        raise TypeError("register_kl: expected two Distribution subclasses")

    def decorator(fn: Callable) -> Callable:
        _KL_REGISTRY[type_p, type_q] = fn
        return fn

    return decorator


def _lookup(type_p: type, type_q: type) -> Callable | None:
    """The most specific registered pair (by MRO distance), as PyTorch's dispatch."""
    best, best_rank = None, None
    for (tp, tq), fn in _KL_REGISTRY.items():
        if issubclass(type_p, tp) and issubclass(type_q, tq):
            rank = (type_p.__mro__.index(tp), type_q.__mro__.index(tq))
            if best_rank is None or rank < best_rank:
                best, best_rank = fn, rank
    return best


def kl_divergence(p: Distribution, q: Distribution) -> Tensor:
    """KL(p || q), batched over the distributions' batch shape."""
    fn = _lookup(type(p), type(q))
    if fn is None:
        raise NotImplementedError(
            f"kl_divergence: no KL(p || q) is registered for p {type(p).__name__} and q "
            f"{type(q).__name__}; register one with @register_kl({type(p).__name__}, "
            f"{type(q).__name__})"
        )
    return fn(p, q)


@register_kl(Normal, Normal)
def _kl_normal_normal(p: Normal, q: Normal) -> Tensor:
    var_ratio = (p.scale / q.scale) ** 2
    t1 = ((p.loc - q.loc) / q.scale) ** 2
    return 0.5 * (var_ratio + t1 - 1 - var_ratio.log())


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p: Categorical, q: Categorical) -> Tensor:
    t = where(p.probs == 0, 0.0, p.probs * (p.logits - q.logits))
    t = where((q.probs == 0) & (p.probs > 0), math.inf, t)
    return t.sum(-1)


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p: Bernoulli, q: Bernoulli) -> Tensor:
    t1 = p.probs * (unary.softplus(-q.logits) - unary.softplus(-p.logits))
    t1 = where(p.probs == 0, 0.0, where(q.probs == 0, math.inf, t1))
    t2 = (1 - p.probs) * (unary.softplus(q.logits) - unary.softplus(p.logits))
    t2 = where(p.probs == 1, 0.0, where(q.probs == 1, math.inf, t2))
    return t1 + t2


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p: Uniform, q: Uniform) -> Tensor:
    result = ((q.high - q.low) / (p.high - p.low)).log()
    return where((q.low > p.low) | (q.high < p.high), math.inf, result)
