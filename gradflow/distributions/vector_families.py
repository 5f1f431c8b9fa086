"""The vector distribution families, as torch.distributions: OneHotCategorical, Independent,
MultivariateNormal (covariance, precision or scale_tril; samples as one triangular solve), and
the KL divergences torch registers between two of one family. Built as scalar_families.py's."""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow import creation
from gradflow.autograd.grad_mode import no_grad
from gradflow.distributions.distribution import Distribution
from gradflow.distributions.families import Categorical, Normal, _as_tensor
from gradflow.distributions.kl import kl_divergence, register_kl
from gradflow.distributions.scalar_families import (
    _Expandable,
    _shape_of,
    _value,
)
from gradflow.tensor import Tensor


# ---- vector families -----------------------------------------------------------------------------
class OneHotCategorical(_Expandable):
    """Categorical draws as one-hot vectors of length K (event shape (K,))."""

    has_enumerate_support = True

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: Any = None):
        self._categorical = Categorical(probs, logits, validate_args=validate_args)
        self._given = "probs" if probs is not None else "logits"
        super().__init__(
            tuple(self._categorical.batch_shape),
            (self._categorical._num_events,),
            validate_args=False,
        )
        if validate_args is not None:
            self._validate_args = bool(validate_args)
        else:
            self._validate_args = Distribution._validate_args

    def _expand_args(self, batch_shape: tuple) -> dict:
        given = getattr(self._categorical, self._given)
        return {self._given: given.expand(*batch_shape, self._categorical._num_events)}

    def _support_check(self, value: Tensor) -> tuple[Any, str]:
        v = value.array
        return ((v == 0) | (v == 1)).all(-1) & (v.sum(-1) == 1), "OneHot()"

    @property
    def probs(self) -> Tensor:
        return self._categorical.probs

    @property
    def logits(self) -> Tensor:
        return self._categorical.logits

    @property
    def param_shape(self) -> tuple:
        return self._categorical.param_shape

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def mode(self) -> Tensor:
        from gradflow.ops.indexing import one_hot

        k = self._categorical._num_events
        return one_hot(self.probs.argmax(-1), k).to(self.probs.dtype)

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        from gradflow.ops.indexing import one_hot

        with no_grad():
            index = self._categorical.sample(sample_shape)
            return one_hot(index, self._categorical._num_events).to(self.probs.dtype)

    def log_prob(self, value: Any) -> Tensor:
        self._validate_sample(value)
        index = value.argmax(-1)
        return self._categorical.log_prob(index)

    def entropy(self) -> Tensor:
        return self._categorical.entropy()

    def enumerate_support(self, expand: bool = True) -> Tensor:
        k = self._categorical._num_events
        values = creation.eye(k, dtype=self.probs.dtype, device=self.probs.device)
        values = values.reshape(k, *(1,) * len(self.batch_shape), k)
        if expand:
            values = values.expand(k, *self.batch_shape, k)
        return values


def _expand(dist: Distribution, batch_shape: tuple) -> Distribution:
    """dist.expand(batch_shape), also for the families of families.py (which have no expand)."""
    if hasattr(dist, "expand"):
        return dist.expand(batch_shape)
    from gradflow.distributions.families import Bernoulli, Uniform

    if isinstance(dist, Normal):
        new = Normal(dist.loc.expand(*batch_shape), dist.scale.expand(*batch_shape), False)
    elif isinstance(dist, Uniform):
        new = Uniform(dist.low.expand(*batch_shape), dist.high.expand(*batch_shape), False)
    elif isinstance(dist, Bernoulli | Categorical):
        param = getattr(dist, dist._given)
        event = tuple(param.shape[len(dist.batch_shape) :])  # Categorical's K
        given = param.expand(*batch_shape, *event)
        new = type(dist)(**{dist._given: given}, validate_args=False)
    else:
        raise NotImplementedError(f"{type(dist).__name__} has no expand()")
    new._validate_args = dist._validate_args
    return new


class Independent(_Expandable):
    """Reinterprets the rightmost ``reinterpreted_batch_ndims`` batch dims of a distribution as
    event dims: log_prob and entropy sum over them."""

    def __init__(
        self, base_distribution: Distribution, reinterpreted_batch_ndims: int,
        validate_args: Any = None,
    ):  # fmt: skip
        if not isinstance(base_distribution, Distribution):
            raise TypeError(
                "Independent: base_distribution must be a Distribution, got "
                f"{type(base_distribution).__name__}"
            )
        n = int(reinterpreted_batch_ndims)
        batch = tuple(base_distribution.batch_shape)
        if n < 0 or n > len(batch):
            raise ValueError(
                "Expected reinterpreted_batch_ndims <= len(base_distribution.batch_shape), "
                f"actual {n} vs {len(batch)}"
            )
        self.base_dist = base_distribution
        self.reinterpreted_batch_ndims = n
        cut = len(batch) - n
        super().__init__(
            batch[:cut], batch[cut:] + tuple(base_distribution.event_shape), validate_args=False
        )
        if validate_args is not None:
            self._validate_args = bool(validate_args)
        else:
            self._validate_args = getattr(base_distribution, "_validate_args", True)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Distribution:
        batch_shape = tuple(batch_shape)
        extra = tuple(self.event_shape[: self.reinterpreted_batch_ndims])
        base = _expand(self.base_dist, batch_shape + extra)
        return Independent(base, self.reinterpreted_batch_ndims, validate_args=False)

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return self.base_dist.has_rsample

    @property
    def has_enumerate_support(self) -> bool:
        return False if self.reinterpreted_batch_ndims else self.base_dist.has_enumerate_support

    def _sum_rightmost(self, t: Tensor) -> Tensor:
        n = self.reinterpreted_batch_ndims
        return t.sum(tuple(range(-n, 0))) if n else t

    @property
    def mean(self) -> Tensor:
        return self.base_dist.mean

    @property
    def mode(self) -> Tensor:
        return self.base_dist.mode

    @property
    def variance(self) -> Tensor:
        return self.base_dist.variance

    def sample(self, sample_shape: Any = ()) -> Tensor:
        return self.base_dist.sample(sample_shape)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        return self.base_dist.rsample(sample_shape)

    def log_prob(self, value: Any) -> Tensor:
        return self._sum_rightmost(self.base_dist.log_prob(value))

    def entropy(self) -> Tensor:
        return self._sum_rightmost(self.base_dist.entropy())

    def __repr__(self) -> str:
        return f"Independent({self.base_dist!r}, {self.reinterpreted_batch_ndims})"


def _batch_mahalanobis(scale_tril: Tensor, diff: Tensor) -> Tensor:
    """|| L^-1 diff ||^2 over the last dim, batches broadcast. When diff's batch ends with L's
    (samples before the batch, as log_prob's values), its leading rows become the columns of
    one triangular solve per matrix (torch's layout), not one solve per row."""
    from gradflow.ops.triangular import solve_triangular

    n = scale_tril.shape[-1]
    batch = tuple(scale_tril.shape[:-2])
    k = len(batch)
    if diff.ndim - 1 >= k and tuple(diff.shape[diff.ndim - 1 - k : -1]) == batch:
        lead = tuple(diff.shape[: diff.ndim - 1 - k])
        rows = int(numpy.prod(lead, dtype=numpy.int64))
        d = diff.reshape(rows, *batch, n).permute(*range(1, k + 1), k + 1, 0)  # (batch, n, rows)
        x = solve_triangular(scale_tril, d, upper=False)
        q = (x * x).sum(-2)  # (batch, rows)
        return q.permute(k, *range(k)).reshape(*lead, *batch)
    shape = _shape_of(scale_tril[..., 0], diff)
    L = scale_tril.expand(*shape[:-1], shape[-1], shape[-1])
    x = solve_triangular(L, diff.expand(*shape).unsqueeze(-1), upper=False).squeeze(-1)
    return (x * x).sum(-1)


def _precision_to_scale_tril(P: Tensor) -> Tensor:
    """L with L Lᵀ = P⁻¹ (torch's route through the Cholesky factor of the flipped P)."""
    from gradflow.ops.decompositions import cholesky
    from gradflow.ops.triangular import solve_triangular

    Lf = cholesky(P.flip(-2, -1))
    L_inv = Lf.flip(-2, -1).mT
    eye = creation.eye(P.shape[-1], dtype=P.dtype, device=P.device)
    return solve_triangular(L_inv, eye.expand(*L_inv.shape), upper=False)


class MultivariateNormal(_Expandable):
    """Gaussian vectors with mean ``loc`` and one of ``covariance_matrix``,
    ``precision_matrix`` or ``scale_tril`` (lower-triangular with positive diagonal)."""

    has_rsample = True

    def __init__(
        self, loc: Any, covariance_matrix: Any = None, precision_matrix: Any = None,
        scale_tril: Any = None, validate_args: Any = None,
    ):  # fmt: skip
        from gradflow.ops.decompositions import cholesky

        loc = _as_tensor(loc)
        if loc.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        given = [m is not None for m in (covariance_matrix, precision_matrix, scale_tril)]
        if sum(given) != 1:
            raise ValueError(
                "Exactly one of covariance_matrix or precision_matrix or scale_tril may be "
                "specified."
            )
        name, matrix = next(
            (n, m)
            for n, m in zip(
                ("scale_tril", "covariance_matrix", "precision_matrix"),
                (scale_tril, covariance_matrix, precision_matrix),
            )
            if m is not None
        )
        matrix = _as_tensor(matrix)
        if matrix.ndim < 2:
            what = "scale_tril matrix" if name == "scale_tril" else f"{name}"
            raise ValueError(
                f"{what} must be at least two-dimensional, with optional leading batch dimensions"
            )
        if matrix.shape[-1] != matrix.shape[-2] or matrix.shape[-1] != loc.shape[-1]:
            raise ValueError(
                f"{name} must be a batch of square matrices matching loc's last dim "
                f"{loc.shape[-1]}, got shape {tuple(matrix.shape)}"
            )
        batch = _shape_of(loc[..., 0], matrix[..., 0, 0])
        n = loc.shape[-1]
        self.loc = loc.expand(*batch, n)
        self._given = name
        setattr(self, "_" + name, matrix.expand(*batch, n, n))
        super().__init__(batch, (n,), validate_args=validate_args)  # checks before factorizing
        if name == "scale_tril":
            self._unbroadcasted_scale_tril = matrix
        elif name == "covariance_matrix":
            self._unbroadcasted_scale_tril = cholesky(matrix)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(matrix)

    def _parameter_checks(self) -> list:
        loc = self.loc.array
        checks = [("loc", self.loc, (loc == loc).all(-1), "IndependentConstraint(Real(), 1)")]
        m = getattr(self, "_" + self._given)
        a = m.array
        if self._given == "scale_tril":
            lower = (numpy.triu(numpy.asarray(_host(a)), 1) == 0).all((-2, -1))
            diag = (numpy.diagonal(numpy.asarray(_host(a)), 0, -2, -1) > 0).all(-1)
            checks.append(("scale_tril", m, lower & diag, "LowerCholesky()"))
        else:
            h = numpy.asarray(_host(a))
            symmetric = numpy.isclose(h, numpy.swapaxes(h, -1, -2), atol=1e-6).all((-2, -1))
            try:
                positive = numpy.linalg.eigvalsh(h).min(-1) > 0 if h.size else True
            except numpy.linalg.LinAlgError:
                positive = False
            checks.append((self._given, m, symmetric & positive, "PositiveDefinite()"))
        return checks

    def _support_check(self, value: Tensor) -> tuple[Any, str]:
        v = value.array
        return (v == v).all(-1), "IndependentConstraint(Real(), 1)"

    def _expand_args(self, batch_shape: tuple) -> dict:
        n = self.event_shape[0]
        m = getattr(self, "_" + self._given)
        return {"loc": self.loc.expand(*batch_shape, n),
                self._given: m.expand(*batch_shape, n, n)}  # fmt: skip

    @property
    def scale_tril(self) -> Tensor:
        n = self.event_shape[0]
        return self._unbroadcasted_scale_tril.expand(*self.batch_shape, n, n)

    @property
    def covariance_matrix(self) -> Tensor:
        L = self._unbroadcasted_scale_tril
        n = self.event_shape[0]
        return (L @ L.mT).expand(*self.batch_shape, n, n)

    @property
    def precision_matrix(self) -> Tensor:
        from gradflow.ops.tensor_extras import cholesky_inverse

        n = self.event_shape[0]
        return cholesky_inverse(self._unbroadcasted_scale_tril).expand(*self.batch_shape, n, n)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return self._unbroadcasted_scale_tril.pow(2).sum(-1).expand(*self.batch_shape,
                                                                    *self.event_shape)  # fmt: skip

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        eps = creation.randn(*shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + (self._unbroadcasted_scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def _half_log_det(self) -> Tensor:
        return self._unbroadcasted_scale_tril.diagonal(0, -2, -1).log().sum(-1)

    def log_prob(self, value: Any) -> Tensor:
        self._validate_sample(value)
        value = _value(value, self.loc)
        n = self.event_shape[0]
        m = _batch_mahalanobis(self._unbroadcasted_scale_tril, value - self.loc)
        return -0.5 * (n * math.log(2 * math.pi) + m) - self._half_log_det()

    def entropy(self) -> Tensor:
        n = self.event_shape[0]
        h = 0.5 * n * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        return h.expand(*self.batch_shape)


def _host(a: Any) -> Any:
    return a.get() if hasattr(a, "get") else a


# ---- KL(p || q) for the pairs torch registers within these families --------------------------
@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_onehot_onehot(p: OneHotCategorical, q: OneHotCategorical) -> Tensor:
    return kl_divergence(p._categorical, q._categorical)


@register_kl(Independent, Independent)
def _kl_independent_independent(p: Independent, q: Independent) -> Tensor:
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError(
            "kl_divergence(Independent, Independent): the two reinterpret different numbers of "
            f"batch dims ({p.reinterpreted_batch_ndims} and {q.reinterpreted_batch_ndims})"
        )
    return p._sum_rightmost(kl_divergence(p.base_dist, q.base_dist))


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p: MultivariateNormal, q: MultivariateNormal) -> Tensor:
    from gradflow.ops.triangular import solve_triangular

    if p.event_shape != q.event_shape:
        raise ValueError(
            "KL-divergence between two Multivariate Normals with different event shapes cannot "
            "be computed"
        )
    n = p.event_shape[0]
    half_term1 = q._half_log_det() - p._half_log_det()
    shape = _shape_of(
        q._unbroadcasted_scale_tril[..., 0, 0], p._unbroadcasted_scale_tril[..., 0, 0]
    )
    q_tril = q._unbroadcasted_scale_tril.expand(*shape, n, n)
    p_tril = p._unbroadcasted_scale_tril.expand(*shape, n, n)
    term2 = solve_triangular(q_tril, p_tril, upper=False).pow(2).sum((-2, -1))
    term3 = _batch_mahalanobis(q._unbroadcasted_scale_tril, q.loc - p.loc)
    return half_term1 + 0.5 * (term2 + term3 - n)


__all__ = ["Independent", "MultivariateNormal", "OneHotCategorical"]
