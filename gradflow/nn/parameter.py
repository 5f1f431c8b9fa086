"""Parameter: a Tensor that a Module registers as one of its learnable weights."""

from __future__ import annotations

from typing import Any

from gradflow.tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that requires grad by default and that ``Module`` collects.

    ``Parameter(t)`` shares t's array (no copy), like ``torch.nn.Parameter``.
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True):
        from gradflow.creation import _to_array

        if data is None:
            self._init_array(_to_array([], None, None))
        elif isinstance(data, Tensor):
            self._init_array(data.array)
        else:
            self._init_array(_to_array(data, None, None))
        self.requires_grad = requires_grad

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
