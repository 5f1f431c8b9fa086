"""PyTorch's legacy typed constructors: ``LongTensor([1, 2])``, ``FloatTensor(3)``, ...

Each builds a plain Tensor of its dtype with ``torch.Tensor``'s call forms (sizes, or one
sequence of data), and ``isinstance(x, FloatTensor)`` is true for a cpu float32 tensor, as in
PyTorch (``gradflow.cuda.FloatTensor`` for cuda ones)."""

from __future__ import annotations

from typing import Any

from gradflow import dtypes
from gradflow.tensor import Tensor


class _TypedTensorMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return (
            isinstance(obj, Tensor)
            and obj.dtype == cls.dtype
            and (obj.device.type == "cuda") == (cls.device == "cuda")
        )

    def __call__(cls, *args: Any, device: Any = None) -> Tensor:
        return Tensor(*args, dtype=cls.dtype, device=device or cls.device)


def _typed(name: str, dtype: Any, device: str) -> type:
    return _TypedTensorMeta(name, (), {"dtype": dtype, "device": device, "__doc__": __doc__})


def _family(device: str) -> dict[str, type]:
    return {
        dtypes.tensor_type_name(d): _typed(dtypes.tensor_type_name(d), d, device)
        for d in dtypes._TYPE_NAMES
    }


_cpu = _family("cpu")
_cuda = _family("cuda")
HalfTensor = _cpu["HalfTensor"]
FloatTensor = _cpu["FloatTensor"]
DoubleTensor = _cpu["DoubleTensor"]
CharTensor = _cpu["CharTensor"]
ShortTensor = _cpu["ShortTensor"]
IntTensor = _cpu["IntTensor"]
LongTensor = _cpu["LongTensor"]
ByteTensor = _cpu["ByteTensor"]
BoolTensor = _cpu["BoolTensor"]
