"""Distribution: the base class (batch shape, sample shapes, argument checks)."""

from __future__ import annotations

from typing import Any

import numpy

from gradflow.autograd.grad_mode import no_grad
from gradflow.tensor import Size, Tensor


class Distribution:
    """A batch of distributions of one family; ``batch_shape`` is the shape of the batch,
    ``event_shape`` that of one draw (() for scalar families).

    Argument validation is on by default, as in PyTorch: the parameters are checked against
    their constraints when the distribution is made, and ``log_prob``'s value against the
    support; ``validate_args=False`` (or ``Distribution.set_default_validate_args(False)``)
    skips both. A family lists its checks in ``_parameter_checks`` and ``_support_check``."""

    has_rsample = False
    _validate_args = True

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Whether distributions made from now on validate their arguments by default."""
        if value not in (True, False):
            raise ValueError(f"set_default_validate_args expects True or False, got {value!r}")
        Distribution._validate_args = value

    def __init__(
        self, batch_shape: tuple = (), event_shape: tuple = (), validate_args: bool | None = None
    ):
        self._batch_shape = Size(batch_shape)
        self._event_shape = Size(event_shape)
        if validate_args is not None:
            self._validate_args = bool(validate_args)
        if self._validate_args:
            for name, value, valid, constraint in self._parameter_checks():
                _require(valid, f"parameter {name} {_described(value)} of distribution {self!r}",
                         constraint)  # fmt: skip

    def _parameter_checks(self) -> list:
        """(name, value, bool array of valid entries, constraint's name) per parameter."""
        return []

    def _support_check(self, value: Tensor) -> tuple[Any, str]:
        """(bool array of entries of value inside the support, the support's name)."""
        return value.array == value.array, "Real()"  # anything but NaN

    def _validate_sample(self, value: Tensor) -> None:
        """PyTorch's check of log_prob's argument: a ValueError outside the support."""
        if not self._validate_args:
            return
        if not isinstance(value, Tensor):
            raise ValueError(f"The value argument to log_prob must be a Tensor, got {value!r}")
        valid, support = self._support_check(value)
        _require(valid, f"value argument {_described(value)}", f"within the support ({support})",
                 f" of the distribution {self!r}")  # fmt: skip

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


def _described(value: Tensor) -> str:
    return f"(Tensor of shape {tuple(value.shape)})"


def _require(valid: Any, what: str, constraint: str, where: str = "") -> None:
    """PyTorch's ValueError for values outside a constraint: which, and the bad values."""
    valid = numpy.asarray(valid.get() if hasattr(valid, "get") else valid)
    if valid.all():
        return
    verb = "be" if constraint.startswith("within") else "satisfy the constraint"
    raise ValueError(
        f"Expected {what}{where} to {verb} {constraint}, but found invalid values at "
        f"{int((~valid).sum())} of {valid.size} positions; pass validate_args=False to skip "
        "this check"
    )
