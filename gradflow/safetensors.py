"""safetensors files for gradflow: the names of ``safetensors.torch``, on gradflow Tensors.

A PyTorch program that writes ``from safetensors.torch import save_file, load_file`` changes
that line to ``from gradflow.safetensors import save_file, load_file``; the calls stay the
same. The files are the safetensors format itself (a JSON header and raw little-endian
arrays, no pickle), so torch reads what gradflow writes and the other way round::

    from gradflow.safetensors import load_file, save_file

    save_file(model.state_dict(), "model.safetensors")
    model.load_state_dict(load_file("model.safetensors"))

``safe_open`` reads tensors one at a time (``from safetensors import safe_open`` becomes
``from gradflow.safetensors import safe_open``; ``framework="pt"`` is accepted).

Built on the safetensors package's NumPy API, an optional dependency: ``pip install
'gradflow[safetensors]'``. Without it this module still imports; each function raises
ModuleNotFoundError naming that command. Differences from ``safetensors.torch``: a
non-contiguous tensor is saved as a contiguous copy (torch refuses it), tensors sharing
memory are each saved whole (torch refuses them too), and bfloat16 files can't be read
(NumPy has no bfloat16; the error says how to convert them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy

from gradflow.backend import CPU, Device, move_array
from gradflow.tensor import Tensor

__all__ = ["load", "load_file", "load_model", "safe_open", "save", "save_file", "save_model"]

_INSTALL = "pip install 'gradflow[safetensors]'"


def _library() -> Any:
    """The safetensors package (imported on first use), or an error naming the install."""
    try:
        import safetensors
        import safetensors.numpy
    except ImportError as exc:
        raise ModuleNotFoundError(
            "gradflow.safetensors needs the safetensors package, which is not installed; "
            f"install it with: {_INSTALL} (original error: {exc!r})",
            name="safetensors",
        ) from exc
    return safetensors


def _arrays(tensors: Any) -> dict[str, numpy.ndarray]:
    """The NumPy arrays to write: each value a Tensor, each key a str, as safetensors.torch
    requires; arrays moved to the cpu and made contiguous (the writer copies raw memory)."""
    if not isinstance(tensors, Mapping):
        raise TypeError(
            f"expected a dict of str to Tensor (such as model.state_dict()), got "
            f"{type(tensors).__name__}"
        )
    arrays = {}
    for key, value in tensors.items():
        if not isinstance(key, str):
            raise TypeError(f"safetensors keys must be str, got {type(key).__name__} ({key!r})")
        if not isinstance(value, Tensor):
            raise ValueError(
                f"Key `{key}` is invalid, expected gradflow.Tensor but received {type(value)}"
            )
        array = move_array(value.array, CPU)
        # not ascontiguousarray, which turns a 0-d array into a 1-d one
        arrays[key] = array if array.flags.c_contiguous else array.copy(order="C")
    return arrays


def _tensors(read: Any, keys: list[str], device: Any, label: str) -> dict[str, Tensor]:
    target = Device(device)
    out = {}
    for key in keys:
        try:
            array = read(key)
        except TypeError as exc:  # NumPy has no such dtype: bfloat16, float8
            raise TypeError(
                f"{label}: tensor {key!r} has a dtype NumPy can't hold ({exc}); convert it in "
                "PyTorch first, e.g. save_file({k: v.float() for k, v in "
                "load_file(path).items()}, path)"
            ) from exc
        out[key] = Tensor._wrap(move_array(array, target))
    return out


def save(tensors: Mapping[str, Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """The safetensors bytes of a dict of tensors, as ``safetensors.torch.save``.

    metadata: optional str-to-str pairs stored in the header (informative only).
    """
    library = _library()
    return library.numpy.save(_arrays(tensors), metadata=metadata)


def save_file(
    tensors: Mapping[str, Tensor],
    filename: str | os.PathLike,
    metadata: dict[str, str] | None = None,
) -> None:
    """Write a dict of tensors to a .safetensors file, as ``safetensors.torch.save_file``.
    metadata: optional str-to-str pairs stored in the header.

    Example (no doctest: the package is optional)::

        save_file({"weight": gradflow.ones(2, 3)}, "model.safetensors", metadata={"a": "b"})
    """
    library = _library()
    library.numpy.save_file(_arrays(tensors), os.fspath(filename), metadata=metadata)


def load(data: bytes) -> dict[str, Tensor]:
    """The tensors (on the cpu) of safetensors bytes, as ``safetensors.torch.load``."""
    library = _library()
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(
            f"load() takes the file's bytes, got {type(data).__name__}; use load_file(path) "
            "for a path"
        )
    try:
        arrays = library.numpy.load(bytes(data))
    except (TypeError, KeyError) as exc:  # NumPy has no such dtype: bfloat16, float8
        raise TypeError(
            f"a tensor has a dtype NumPy can't hold ({exc}); convert it in PyTorch first, "
            "e.g. {k: v.float() for k, v in tensors.items()}"
        ) from exc
    return {key: Tensor._wrap(array) for key, array in arrays.items()}


def load_file(filename: str | os.PathLike, device: str | Device | int = "cpu") -> dict[str, Tensor]:
    """Read a .safetensors file into a dict of tensors on `device`, as
    ``safetensors.torch.load_file`` (an int device means that cuda device)."""
    library = _library()
    if isinstance(device, int) and not isinstance(device, bool):
        device = f"cuda:{device}"
    label = os.fspath(filename)
    with library.safe_open(label, framework="np") as handle:
        return _tensors(handle.get_tensor, list(handle.keys()), device, label)


class safe_open:  # lower case, as the safetensors package names it
    """A .safetensors file opened for reading tensors one at a time, as the package's
    ``safe_open(filename, framework="pt", device="cpu")``: ``keys()``, ``metadata()``,
    ``get_tensor(name)``, ``get_slice(name)[...]``. framework may be "pt" (what PyTorch code
    passes), "gradflow" or "np"; tensors come back as gradflow Tensors on `device`.

    Example (no doctest: the package is optional)::

        with safe_open("model.safetensors", framework="pt") as f:
            weights = {name: f.get_tensor(name) for name in f.keys()}
    """

    def __init__(self, filename: str | os.PathLike, framework: str = "pt", device: Any = "cpu"):
        if framework not in ("pt", "torch", "gradflow", "np", "numpy"):
            raise ValueError(
                f"framework={framework!r} is not one gradflow.safetensors.safe_open reads; "
                "pass 'pt' (tensors come back as gradflow Tensors)"
            )
        if isinstance(device, int) and not isinstance(device, bool):
            device = f"cuda:{device}"
        self.label = os.fspath(filename)
        self.device = Device(device)
        self._handle = _library().safe_open(self.label, framework="np")

    def __enter__(self) -> safe_open:
        self._handle.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._handle.__exit__(*exc_info)

    def keys(self) -> list[str]:
        return list(self._handle.keys())

    def metadata(self) -> dict[str, str] | None:
        return self._handle.metadata()

    def get_tensor(self, name: str) -> Tensor:
        return _tensors(self._handle.get_tensor, [name], self.device, self.label)[name]

    def get_slice(self, name: str) -> _Slice:
        return _Slice(self._handle.get_slice(name), self.device)


class _Slice:
    """Part of one tensor, read without reading the rest: ``f.get_slice(name)[0:2]``."""

    def __init__(self, handle: Any, device: Device):
        self._handle = handle
        self._device = device

    def get_shape(self) -> list[int]:
        return list(self._handle.get_shape())

    def get_dtype(self) -> str:
        return self._handle.get_dtype()

    def __getitem__(self, index: Any) -> Tensor:
        return Tensor._wrap(move_array(numpy.asarray(self._handle[index]), self._device))


def save_model(
    model: Any,
    filename: str | os.PathLike,
    metadata: dict[str, str] | None = None,
    force_contiguous: bool = False,
) -> None:
    """Write a module's state dict to a .safetensors file, as ``safetensors.torch.save_model``
    (force_contiguous is accepted: gradflow always saves contiguous copies)."""
    save_file(model.state_dict(), filename, metadata=metadata)


def load_model(
    model: Any, filename: str | os.PathLike, strict: bool = True, device: str | Device = "cpu"
) -> tuple[list[str], list[str]]:
    """Load a .safetensors file into a module, as ``safetensors.torch.load_model``: returns
    the (missing, unexpected) keys; with `strict`, either raises RuntimeError."""
    result = model.load_state_dict(load_file(filename, device=device), strict=False)
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if strict and (missing or unexpected):  # safetensors.torch's error, word for word
        error = f"Error(s) in loading state_dict for {model.__class__.__name__}:"
        if missing:
            listed = ", ".join(f'"{k}"' for k in sorted(missing))
            error += f"\n    Missing key(s) in state_dict: {listed}"
        if unexpected:
            listed = ", ".join(f'"{k}"' for k in sorted(unexpected))
            error += f"\n    Unexpected key(s) in state_dict: {listed}"
        raise RuntimeError(error)
    return missing, unexpected
