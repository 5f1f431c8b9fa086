"""``gradflow.distributions``: the probability distributions PyTorch programs reach for most
(policy gradients, VAEs, noise): Categorical, Normal, Bernoulli, Uniform, with ``sample``,
``rsample`` (reparameterized, differentiable) where it exists, ``log_prob`` and ``entropy``
differentiable in the parameters, as PyTorch's ``torch.distributions``."""

from gradflow.distributions.distribution import Distribution
from gradflow.distributions.families import Bernoulli, Categorical, Normal, Uniform

__all__ = ["Bernoulli", "Categorical", "Distribution", "Normal", "Uniform"]
