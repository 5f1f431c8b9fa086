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
        if data is None:
            Tensor.__init__(self, [], requires_grad=False)
        elif isinstance(data, Tensor):
            Tensor.__init__(self, 0.0)
            self.array = data.array
        else:
            Tensor.__init__(self, data)
        self.requires_grad = requires_grad

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
