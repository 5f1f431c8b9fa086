"""``gradflow.distributions``: the probability distributions PyTorch programs reach for most
(policy gradients, VAEs, noise): Categorical, Normal, Bernoulli, Uniform (families.py) and
Exponential, Laplace, Cauchy, HalfNormal, HalfCauchy, LogNormal, Gumbel, Geometric
(scalar_families.py), OneHotCategorical, Independent, MultivariateNormal
(vector_families.py), Gamma, Chi2, Beta, Dirichlet, StudentT, Poisson, Binomial
(gamma_family.py), with ``sample``, ``rsample`` (reparameterized, differentiable) where it
exists, ``log_prob`` and ``entropy`` differentiable in the parameters, and
``kl_divergence``/``register_kl``, as PyTorch's ``torch.distributions``."""

from gradflow.distributions.distribution import Distribution
from gradflow.distributions.families import Bernoulli, Categorical, Normal, Uniform
from gradflow.distributions.gamma_family import (
    Beta,
    Binomial,
    Chi2,
    Dirichlet,
    Gamma,
    Poisson,
    StudentT,
)
from gradflow.distributions.kl import kl_divergence, register_kl
from gradflow.distributions.scalar_families import (
    Cauchy,
    Exponential,
    Geometric,
    Gumbel,
    HalfCauchy,
    HalfNormal,
    Laplace,
    LogNormal,
)
from gradflow.distributions.vector_families import (
    Independent,
    MultivariateNormal,
    OneHotCategorical,
)

__all__ = [
    "Bernoulli",
    "Beta",
    "Binomial",
    "Categorical",
    "Cauchy",
    "Chi2",
    "Dirichlet",
    "Distribution",
    "Exponential",
    "Gamma",
    "Geometric",
    "Gumbel",
    "HalfCauchy",
    "HalfNormal",
    "Independent",
    "Laplace",
    "LogNormal",
    "MultivariateNormal",
    "Normal",
    "OneHotCategorical",
    "Poisson",
    "StudentT",
    "Uniform",
    "kl_divergence",
    "register_kl",
]
