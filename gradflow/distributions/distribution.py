"""Distribution: the base class (batch shape, sample shapes, argument checks)."""

from __future__ import annotations

from typing import Any

from gradflow.autograd.grad_mode import no_grad
from gradflow.tensor import Size, Tensor


class Distribution:
    """A batch of distributions of one family; ``batch_shape`` is the shape of the batch,
    ``event_shape`` that of one draw (() for scalar families)."""

    has_rsample = False

    def __init__(self, batch_shape: tuple = (), event_shape: tuple = ()):
        self._batch_shape = Size(batch_shape)
        self._event_shape = Size(event_shape)

    @property
    def batch_shape(self) -> Size:
        return self._batch_shape

    @property
    def event_shape(self) -> Size:
        return self._event_shape

    def _extended_shape(self, sample_shape: Any = ()) -> tuple:
        return tuple(sample_shape) + tuple(self._batch_shape) + tuple(self._event_shape)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        """A draw without gradient (``rsample`` under no_grad where the family has one)."""
        with no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} has no reparameterized sample; use sample() (no gradient) "
            "and the score function (log_prob) instead"
        )

    def log_prob(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def entropy(self) -> Tensor:
        raise NotImplementedError

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_shape={tuple(self._batch_shape)})"
