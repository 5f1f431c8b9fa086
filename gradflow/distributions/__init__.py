"""``gradflow.distributions``: the probability distributions PyTorch programs reach for most
(policy gradients, VAEs, noise): Categorical, Normal, Bernoulli, Uniform, with ``sample``,
``rsample`` (reparameterized, differentiable) where it exists, ``log_prob`` and ``entropy``
differentiable in the parameters, and ``kl_divergence``/``register_kl``, as PyTorch's
``torch.distributions``."""

from gradflow.distributions.distribution import Distribution
from gradflow.distributions.families import Bernoulli, Categorical, Normal, Uniform
from gradflow.distributions.kl import kl_divergence, register_kl

__all__ = [
    "Bernoulli",
    "Categorical",
    "Distribution",
    "Normal",
    "Uniform",
    "kl_divergence",
    "register_kl",
]
