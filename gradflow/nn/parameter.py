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


_UNINITIALIZED_SHAPE = (
    "Can't access the shape of an uninitialized parameter or buffer. This error usually happens "
    "in `load_state_dict` when trying to load an uninitialized parameter into an initialized "
    "one. "
    "Call `forward` to initialize the parameters before accessing their attributes."
)


class UninitializedTensorMixin:
    """What UninitializedParameter and UninitializedBuffer share (torch.nn.parameter's): a
    placeholder without a shape that keeps its dtype and device (an empty array) until
    ``materialize(shape)`` gives it data and turns it, in place, into ``cls_to_become``."""

    __slots__ = ()
    cls_to_become: type

    def materialize(self, shape: Any, device: Any = None, dtype: Any = None) -> None:
        """Give the tensor uninitialized data of `shape` (on `device`, of `dtype`: its own by
        default) and turn it into ``cls_to_become`` (the same object, so references such as an
        optimizer's see the data)."""
        from gradflow import creation

        if isinstance(shape, int):
            shape = (shape,)
        array = creation.empty(
            *tuple(shape), device=device or self.device, dtype=dtype or self.dtype
        ).array
        object.__setattr__(self, "array", array)
        self.__class__ = self.cls_to_become

    @property
    def shape(self) -> Any:
        raise RuntimeError(_UNINITIALIZED_SHAPE)

    def size(self, dim: Any = None) -> Any:
        raise RuntimeError(_UNINITIALIZED_SHAPE)

    def numel(self) -> int:
        raise RuntimeError(_UNINITIALIZED_SHAPE)

    def detach(self) -> Any:
        """Itself, as PyTorch's state_dict holds an uninitialized tensor as it is."""
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def _placeholder(self, requires_grad: bool, device: Any, dtype: Any) -> None:
        from gradflow import creation

        self._init_array(creation.empty(0, device=device, dtype=dtype).array)
        self.requires_grad = requires_grad


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    """A Parameter whose shape is not known yet (lazy modules hold these until their first
    forward), as torch.nn.parameter.UninitializedParameter; ``materialize(shape)`` turns it
    into a Parameter in place."""

    __slots__ = ()
    cls_to_become = Parameter

    def __init__(self, requires_grad: bool = True, device: Any = None, dtype: Any = None):
        self._placeholder(requires_grad, device, dtype)


class UninitializedBuffer(UninitializedTensorMixin, Tensor):
    """A buffer whose shape is not known yet, as torch.nn.parameter.UninitializedBuffer;
    ``materialize(shape)`` turns it into a Tensor in place."""

    __slots__ = ()
    cls_to_become = Tensor

    def __init__(self, requires_grad: bool = False, device: Any = None, dtype: Any = None):
        self._placeholder(requires_grad, device, dtype)


def is_lazy(param: Any) -> bool:
    """Whether `param` is an uninitialized parameter or buffer (a lazy module's placeholder)."""
    return isinstance(param, UninitializedTensorMixin)
