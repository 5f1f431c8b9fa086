"""PyTorch's layout and memory-format names (``gradflow.strided``, ``gradflow.channels_last``).

gradflow keeps every array in NumPy/CuPy's row-major layout. The names exist so PyTorch code
that passes them runs: ``memory_format=`` is a performance hint in PyTorch (results are the same
in any format), so every format is accepted and the tensor stays row-major; ``layout=`` accepts
only ``strided`` (sparse layouts are not supported)."""

from __future__ import annotations

from typing import Any


class memory_format:
    """A memory-format tag; only its name matters here."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"gradflow.{self.name}"


class layout:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"gradflow.{self.name}"


preserve_format = memory_format("preserve_format")
contiguous_format = memory_format("contiguous_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
strided = layout("strided")

_FACTORY_OPTIONS = ("layout", "memory_format", "pin_memory", "out", "non_blocking")


def check_factory_options(op: str, options: dict[str, Any]) -> None:
    """Accepts PyTorch's factory keywords that change nothing here (layout=strided,
    memory_format=..., pin_memory=..., out=None); anything else is an error naming it."""
    for key, value in options.items():
        if key not in _FACTORY_OPTIONS:
            raise TypeError(f"{op}() got an unexpected keyword argument {key!r}")
        if key == "layout" and value not in (None, strided):
            raise NotImplementedError(
                f"{op}: layout={value!r} is not supported; gradflow tensors are strided (dense)"
            )
        if key == "memory_format" and value is not None and not isinstance(value, memory_format):
            raise TypeError(f"{op}: memory_format must be a gradflow.memory_format, got {value!r}")
        if key == "out" and value is not None:
            raise NotImplementedError(
                f"{op}: out= is not supported; assign the result instead (x = {op}(...)) or "
                f"copy it into the target with target.copy_({op}(...))"
            )
