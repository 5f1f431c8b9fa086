"""``convert_conv{2,3}d_weight_memory_format``: PyTorch reorders convolution weights in
memory. gradflow keeps every array row-major (see gradflow.layout), so these check their
arguments and return the module with its values unchanged."""

from __future__ import annotations

from typing import TypeVar

from gradflow.layout import memory_format as _memory_format
from gradflow.nn.module import Module

__all__ = ["convert_conv2d_weight_memory_format", "convert_conv3d_weight_memory_format"]

_M = TypeVar("_M", bound=Module)


def _check(op: str, module: Module, memory_format: object) -> None:
    if not isinstance(module, Module):
        raise TypeError(f"{op}: expected an nn.Module, got {type(module).__name__}")
    if not isinstance(memory_format, _memory_format):
        raise TypeError(
            f"{op}: memory_format must be a gradflow.memory_format (e.g. "
            f"gradflow.channels_last), got {memory_format!r}"
        )


def convert_conv2d_weight_memory_format(module: _M, memory_format: _memory_format) -> _M:
    """Returns `module`, its Conv2d/ConvTranspose2d weights unchanged (one layout here)."""
    _check("convert_conv2d_weight_memory_format", module, memory_format)
    return module


def convert_conv3d_weight_memory_format(module: _M, memory_format: _memory_format) -> _M:
    """Returns `module`, its Conv3d/ConvTranspose3d weights unchanged (one layout here)."""
    _check("convert_conv3d_weight_memory_format", module, memory_format)
    return module
