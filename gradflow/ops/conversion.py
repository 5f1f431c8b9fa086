"""Differentiable copies, dtype casts and device moves (the ops behind Tensor.clone and .to)."""

from __future__ import annotations

from typing import Any

from gradflow.autograd.function import Function
from gradflow.backend import Device, device_of, move_array
from gradflow.tensor import Tensor


class Cast(Function):
    dtype: Any

    def forward(self, x):
        self.source = x.dtype  # saves the dtype only
        return x.astype(self.dtype)

    def backward(self, g):
        return g.astype(self.source)

    def backward_graph(self, g):
        return Cast.apply(g, dtype=self.source)


class ToDevice(Function):
    device: Device

    def forward(self, x):
        self.source = device_of(x)  # saves the device only
        return move_array(x, self.device)

    def backward(self, g):
        return move_array(g, self.source)

    def backward_graph(self, g):
        return ToDevice.apply(g, device=self.source)


class Clone(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g

    def backward_graph(self, g):
        return g


def clone(input: Tensor, *, memory_format: Any = None) -> Tensor:
    """A copy of input with its own memory, in the graph (the gradient passes through unchanged),
    as PyTorch's clone. memory_format= is accepted and changes nothing (see gradflow/layout.py)."""
    if memory_format is not None:
        from gradflow.layout import check_factory_options

        check_factory_options("clone", {"memory_format": memory_format})
    return Clone.apply(input)


def cast(x: Tensor, dtype: Any) -> Tensor:
    """x converted to `dtype` (differentiable between float dtypes); x itself if unchanged."""
    if x.dtype == dtype:
        return x
    if x.requires_grad and dtype.kind != "f":
        return Tensor._wrap(x.array.astype(dtype))  # integer results carry no gradient
    return Cast.apply(x, dtype=dtype)


def to_device(x: Tensor, device: Device) -> Tensor:
    """x copied to `device` (differentiable); x itself if it is already there."""
    if x.device == device:
        return x
    return ToDevice.apply(x, device=device)
