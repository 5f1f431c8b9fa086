"""Checkpoints: ``save(obj, path)`` / ``load(path)`` for nested dicts, lists and Tensors in an
open zip format, written atomically and loaded without unpickling.

The file is a zip archive (readable by ``numpy.load`` as an ``.npz``) holding one ``.npy``
entry per array, named ``arrays/<n>.npy``, and ``checkpoint.json``, which describes the saved
object::

    {"format": "gradflow-checkpoint", "version": 1, "root": <node>}

where a node is one of
``{"type": "none"}``, ``{"type": "bool" | "int" | "str", "value": ...}``,
``{"type": "float", "value": 0.5}`` (``"nan"``, ``"inf"``, ``"-inf"`` as strings),
``{"type": "list" | "tuple", "items": [<node>, ...]}``,
``{"type": "dict", "keys": [str or int, ...], "values": [<node>, ...]}``,
``{"type": "tensor", "array": name, "dtype": "float32", "shape": [...], "device": "cpu",
"requires_grad": false}`` and
``{"type": "ndarray", "array": name, "dtype": "<f8", "shape": [...], "scalar": false}`` (NumPy
arrays and scalars). Arrays shared by several tensors are stored once. Containers nest at most
MAX_DEPTH levels deep.

Loading trusts nothing in the file: only a regular file is opened (a FIFO, or a device such
as /dev/zero that never ends, is refused unopened); every entry must be stored uncompressed
(no zip bombs), unencrypted, once, within the file's size, and named by the manifest, and
an array named twice must be named with one dtype and shape; each ``.npy`` header is checked
against the manifest and against the entry's size before any memory is allocated for the
array, so nothing is read or allocated beyond the file's own size.
"""

from __future__ import annotations

import functools
import json
import math
import os
import pickle
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Mapping
from typing import IO, Any

import numpy
from numpy.lib import format as npy_format

from gradflow import _files, dtypes
from gradflow.backend import CPU, CudaUnavailableError, Device, get_array_module, move_array
from gradflow.tensor import Tensor

FORMAT_NAME = "gradflow-checkpoint"
FORMAT_VERSION = 1
MANIFEST_NAME = "checkpoint.json"
_SUPPORTED = (
    "dict (str or int keys), list, tuple, Tensor, NumPy array or scalar, int, float, bool, "
    "str and None"
)
_ARRAY_KINDS = "biufc"  # numbers and bools: never Python objects
# Containers inside containers, at most: the encoder and decoder recurse once per level and
# JSON parsing twice, which stays well inside Python's recursion limit.
MAX_DEPTH = 100
# What zipfile raises on a damaged archive or entry: besides BadZipFile, a flipped header byte
# gives NotImplementedError (version, compression method), RuntimeError (the encryption flag),
# ValueError (a negative seek) or a decompressor's error.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    zlib.error,
    OverflowError,
)
_READ_CHUNK = 1 << 20  # array data is read in pieces of this many bytes


class CheckpointError(ValueError):
    """A checkpoint can't be saved (an unsupported object) or loaded (missing, truncated,
    corrupt, or disagreeing with its own description)."""


# ---- save --------------------------------------------------------------------------------
def save(
    obj: Any,
    f: str | os.PathLike | IO[bytes],
    pickle_module: Any = None,
    pickle_protocol: int = 2,
    _use_new_zipfile_serialization: bool = True,
    _disable_byteorder_record: bool = False,
) -> None:
    """Save `obj` (nested dicts, lists, tuples, Tensors, numbers, strings, None) to `f`, a
    path or a binary file object, as ``torch.save(obj, f)`` is called.

    torch.save pickles; gradflow never does, so a whole Module or Optimizer is refused with
    the two lines to use instead (save its ``state_dict()``, ``load_state_dict`` it back).
    `pickle_protocol` and torch's private flags are accepted and ignored (nothing is pickled);
    a `pickle_module` other than the standard ``pickle`` is refused.

    The checkpoint is written to a temporary file in the same directory, flushed to disk and
    renamed over `path`, so a crash mid-write leaves any previous checkpoint at `path` whole.
    Tensors keep dtype, shape, device and requires_grad (not grad or graph).

    What is at `path` is never destroyed: a symlink is followed (the file it points to is
    replaced, the link stays); a directory is refused with IsADirectoryError, and a device,
    FIFO or socket with CheckpointError, before anything is written; a read-only file with
    PermissionError, as open() would. The new file keeps the old one's permission bits (and
    owner and group where allowed). A hard-linked file is replaced, not written into: its
    other links keep the previous checkpoint (unlike torch.save, which writes in place; see
    gradflow._files for why). Temporary files that killed saves left beside `path` are
    removed once their process is gone.

    >>> import io
    >>> model, buffer = gradflow.nn.Linear(3, 2), io.BytesIO()
    >>> gradflow.save({"model": model.state_dict(), "epoch": 3}, buffer)
    >>> _ = buffer.seek(0)
    >>> checkpoint = gradflow.load(buffer)
    >>> sorted(checkpoint["model"]), checkpoint["epoch"]
    (['bias', 'weight'], 3)
    """
    _refuse_pickle_module(pickle_module, "save")
    manifest, arrays = _Encoder().encode(obj)
    text = json.dumps(manifest, indent=1)  # before any file is touched
    if hasattr(f, "write"):
        _write_zip(f, text, arrays)
        return
    target = os.fspath(f)
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    with _files.replacing(target, CheckpointError) as file:
        _write_zip(file, text, arrays)


def _write_zip(file: IO[bytes], manifest: str, arrays: list[tuple[str, Any]]) -> None:
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(MANIFEST_NAME, manifest)
        for name, array in arrays:
            _write_array(archive, name, array)


def _write_array(archive: zipfile.ZipFile, name: str, array: numpy.ndarray) -> None:
    with archive.open(name, "w", force_zip64=True) as member:
        npy_format.write_array(member, array, allow_pickle=False)


class _Encoder:
    """Turns an object into a JSON manifest and a list of (entry name, NumPy array)."""

    def __init__(self) -> None:
        self.arrays: list[tuple[str, Any]] = []
        self.names: dict[int, str] = {}  # id(array) -> entry name, so shared arrays go once
        self.open: set[int] = set()  # containers being encoded, to refuse cycles

    def encode(self, obj: Any) -> tuple[dict, list[tuple[str, Any]]]:
        root = self.node(obj, ())
        return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "root": root}, self.arrays

    def node(self, obj: Any, keys: tuple) -> dict:
        if obj is None:
            return {"type": "none"}
        if isinstance(obj, Tensor):
            return {
                "type": "tensor",
                "array": self.store(obj.array, keys),
                "dtype": obj.dtype.name,
                "shape": list(obj.shape),
                "device": str(obj.device),
                "requires_grad": obj.requires_grad,
            }
        if isinstance(obj, numpy.ndarray | numpy.generic):
            array = numpy.asarray(obj)
            return {
                "type": "ndarray",
                "array": self.store(obj if isinstance(obj, numpy.ndarray) else array, keys),
                "dtype": array.dtype.str,
                "shape": list(array.shape),
                "scalar": isinstance(obj, numpy.generic),
            }
        if isinstance(obj, bool):
            return {"type": "bool", "value": obj}
        if isinstance(obj, int):
            return {"type": "int", "value": _checked_int(int(obj), keys)}
        if isinstance(obj, float):
            value = float(obj)
            return {"type": "float", "value": value if math.isfinite(value) else repr(value)}
        if isinstance(obj, str):
            return {"type": "str", "value": str(obj)}
        if isinstance(obj, Mapping | list | tuple):
            return self.container(obj, keys)
        if hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict"):
            raise CheckpointError(_whole_object_message(obj, keys))
        raise CheckpointError(
            f"can't save an object of type {type(obj).__name__} at {_where(keys)}; supported "
            f"types are {_SUPPORTED}"
        )

    def container(self, obj: Any, keys: tuple) -> dict:
        if id(obj) in self.open:
            raise CheckpointError(f"can't save {_where(keys)}: it contains itself (a cycle)")
        if len(keys) >= MAX_DEPTH:
            raise CheckpointError(f"can't save {_where(keys)}: {_too_deep()}")
        self.open.add(id(obj))
        try:
            if isinstance(obj, Mapping):
                for key in obj:
                    if not isinstance(key, str | int | numpy.integer):
                        raise CheckpointError(
                            f"can't save a dict key of type {type(key).__name__} ({key!r}) at "
                            f"{_where(keys)}; dict keys must be str or int"
                        )
                return {
                    "type": "dict",
                    "keys": [
                        k if isinstance(k, str | bool) else _checked_int(int(k), keys, "a dict key")
                        for k in obj
                    ],
                    "values": [self.node(v, (*keys, k)) for k, v in obj.items()],
                }
            kind = "tuple" if isinstance(obj, tuple) else "list"
            return {"type": kind, "items": [self.node(v, (*keys, i)) for i, v in enumerate(obj)]}
        finally:
            self.open.discard(id(obj))

    def store(self, array: Any, keys: tuple) -> str:
        if array.dtype.kind not in _ARRAY_KINDS:
            raise CheckpointError(
                f"can't save an array of dtype {array.dtype} at {_where(keys)}; only numeric "
                "and bool arrays are saved (never Python objects)"
            )
        name = self.names.get(id(array))
        if name is None:
            name = self.names[id(array)] = f"arrays/{len(self.arrays)}.npy"
            self.arrays.append((name, move_array(array, CPU)))
        return name


def _refuse_pickle_module(pickle_module: Any, what: str) -> None:
    # None and the standard pickle module are what torch code passes; anything else (dill,
    # cloudpickle) asks for pickling that gradflow checkpoints can't hold.
    if pickle_module is None or pickle_module is pickle:
        return
    name = getattr(pickle_module, "__name__", type(pickle_module).__name__)
    raise CheckpointError(
        f"gradflow.{what} got pickle_module={name}: gradflow checkpoints never contain "
        "pickles (only tensors, numbers, strings, None and dicts, lists and tuples of them); "
        "leave pickle_module out"
    )


def _whole_object_message(obj: Any, keys: tuple) -> str:
    """Why a Module, Optimizer or scheduler can't be saved whole, and the two lines to use."""
    kinds = [klass.__name__ for klass in type(obj).__mro__]
    if "Module" in kinds:
        kind, name = "Module", "model"
    elif "Optimizer" in kinds:
        kind, name = "Optimizer", "optimizer"
    else:
        kind, name = "object with a state_dict", "scheduler"
    return (
        f"can't save a whole {type(obj).__name__} ({kind}) at {_where(keys)}: torch.save "
        "pickles the object and gradflow never pickles. Save its state dict instead:\n"
        f"    gradflow.save({name}.state_dict(), path)\n"
        "and load it into a freshly built one with:\n"
        f"    {name}.load_state_dict(gradflow.load(path))"
    )


def _checked_int(value: int, keys: tuple, what: str = "the int") -> int:
    """`value`, if JSON can carry it: Python converts ints of more than 4,300 digits (its
    default limit, sys.get_int_max_str_digits()) to and from text only when the limit is
    raised, so a checkpoint holding one would not load elsewhere."""
    if -_LARGEST_INT <= value <= _LARGEST_INT:
        return value
    digits = _int_digit_limit()
    if abs(value) < _power_of_ten(digits):
        return value
    raise CheckpointError(
        f"can't save {what} at {_where(keys)}: an int of more than {digits} digits, more "
        "than Python converts to text by default (sys.get_int_max_str_digits()); save it as "
        "a str (str(n), with the limit raised) or as an array of smaller ints"
    )


_LARGEST_INT = 10**600 - 1  # every limit Python allows is at least 640 digits


def _int_digit_limit() -> int:
    default = getattr(sys.int_info, "default_max_str_digits", 4300)
    current = getattr(sys, "get_int_max_str_digits", lambda: default)()
    return min(default, current) if current else default


@functools.lru_cache(maxsize=4)
def _power_of_ten(digits: int) -> int:
    return 10**digits


def _where(keys: tuple) -> str:
    return repr(".".join(_key_text(k) for k in keys)) if keys else "the top level"


def _key_text(key: Any) -> str:
    try:
        return str(key)
    except ValueError:  # an int too long to convert to text
        return f"<int of {key.bit_length()} bits>"


def _too_deep() -> str:
    return f"containers are nested more than {MAX_DEPTH} levels deep"


# ---- load --------------------------------------------------------------------------------
def load(
    f: str | os.PathLike | IO[bytes],
    map_location: str | Device | Mapping[str, str] | Callable[[Tensor, str], Any] | None = None,
    pickle_module: Any = None,
    *,
    weights_only: bool | None = None,
    mmap: bool | None = None,
    **pickle_load_args: Any,
) -> Any:
    """Load an object saved by `save` from a path or a binary file object, as ``torch.load``
    is called. Never unpickles and never runs code from the file.

    map_location: None puts each tensor on the device it was saved from (a cuda tensor
    needs a GPU; pass "cpu" otherwise); "cpu", "cuda", "cuda:N" or a Device puts every tensor
    there; a dict such as ``{"cuda:1": "cuda:0"}`` maps saved devices to new ones; a callable
    is called as ``map_location(tensor, location)`` with each tensor loaded on the cpu and
    the device it was saved from (torch passes a storage), and returns the tensor to use
    (``lambda storage, loc: storage`` keeps it on the cpu) or None for the saved device.
    Tensors come back as leaves with their saved requires_grad. A path that is not a regular
    file (a directory, a FIFO, a device) is refused with CheckpointError without being opened.

    weights_only (True, False or None) changes nothing: torch uses it to choose how far to
    trust the pickle, and a gradflow checkpoint holds no pickle, so both load the same data.
    mmap=True maps each cpu array from the file copy-on-write, as torch does (changes stay in
    memory, the file is untouched; `f` must then be a path, else ValueError as in torch);
    tensors bound for cuda are read and copied as usual. `pickle_load_args` (such as
    ``encoding``) are accepted and unused. A file torch.save wrote is refused with the way to
    convert it (gradflow can't read pickles).
    """
    _refuse_pickle_module(pickle_module, "load")
    if hasattr(f, "read"):
        if mmap:
            raise ValueError("f must be a file path in order to use the mmap argument")
        return _load_from(f, "<file object>", map_location)
    label = os.fspath(f)
    if isinstance(label, bytes):
        label = os.fsdecode(label)
    with _open_checkpoint(label) as file:
        return _load_from(file, label, map_location, label if mmap else None)


def _open_checkpoint(label: str) -> IO[bytes]:
    """The file at `label`, if it is a regular file: a directory, a device (reading
    /dev/zero never ends) or a FIFO (opening one waits for a writer) is refused unopened."""

    def refuse(kind: str) -> CheckpointError:
        return CheckpointError(
            f"{label}: not a readable checkpoint: it is {kind}, not a regular file"
        )

    try:
        return _files.open_regular(label, refuse)
    except FileNotFoundError:
        raise CheckpointError(f"{label}: no such checkpoint file") from None
    except OSError as exc:
        raise CheckpointError(f"{label}: not a readable checkpoint ({exc})") from exc


def _load_from(file: IO[bytes], label: str, map_location: Any, mmap_path: str | None = None) -> Any:
    try:
        archive = zipfile.ZipFile(file)
    except _ZIP_ERRORS as exc:
        if _starts_with_pickle(file):
            raise CheckpointError(_torch_file_message(label, "legacy")) from None
        raise CheckpointError(
            f"{label}: not a readable checkpoint: the zip archive is truncated or corrupt ({exc})"
        ) from exc
    with archive:
        entries = _check_entries(archive, label)
        manifest = _read_manifest(archive, entries[MANIFEST_NAME], label)
        decoder = _Decoder(archive, entries, label, map_location, mmap_path)
        obj = decoder.node(manifest["root"], ())
        decoder.check_all_named()
        return obj


def _starts_with_pickle(file: IO[bytes]) -> bool:
    """Whether the file starts as a pickle does (protocol 2 or later: byte 0x80, then the
    protocol number), as torch.save's legacy format and pickle.dump files do."""
    try:
        file.seek(0)
        head = file.read(2)
    except (OSError, ValueError):
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _torch_file_message(label: str, kind: str) -> str:
    what = (
        "torch.save's zip format" if kind == "zip" else "torch.save's legacy format or pickle.dump"
    )
    return (
        f"{label}: not a readable checkpoint: written by torch.save or pickle ({what}); "
        "gradflow never unpickles, so it can't read it. Convert it once with PyTorch to "
        "safetensors:\n"
        "    from safetensors.torch import save_file\n"
        "    save_file(torch.load(path), 'model.safetensors')\n"
        "then load it here with gradflow.safetensors.load_file('model.safetensors') (pip "
        "install 'gradflow[safetensors]'), or save it with gradflow.save from gradflow"
    )


def _check_entries(archive: zipfile.ZipFile, label: str) -> dict[str, zipfile.ZipInfo]:
    """The archive's entries by name, once each checked to be what gradflow.save writes:
    stored uncompressed (so no entry can inflate beyond the file: no zip bombs), unencrypted,
    named once, and lying within the file."""
    try:
        size = archive.fp.seek(0, os.SEEK_END)
        infos = archive.infolist()
    except _ZIP_ERRORS as exc:
        raise CheckpointError(f"{label}: not a readable checkpoint ({exc})") from exc
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        problem = None
        if name in entries:
            problem = f"holds {name!r} twice"
        elif info.flag_bits & 0x1:
            problem = f"entry {name!r} is encrypted"
        elif info.compress_type != zipfile.ZIP_STORED:
            problem = f"entry {name!r} is compressed (zip method {info.compress_type})"
        elif info.compress_size != info.file_size or info.header_offset + info.file_size > size:
            problem = (
                f"entry {name!r} declares {info.file_size} bytes, which the {size}-byte file "
                "can't hold"
            )
        if problem:
            raise CheckpointError(
                f"{label}: not a checkpoint gradflow.save wrote, or a corrupt one: the archive "
                f"{problem} (gradflow writes each entry once, uncompressed and unencrypted)"
            )
        entries[name] = info
    if MANIFEST_NAME not in entries:
        if any(name == "data.pkl" or name.endswith("/data.pkl") for name in entries):
            raise CheckpointError(_torch_file_message(label, "zip"))
        raise CheckpointError(
            f"{label}: no {MANIFEST_NAME} in the archive; it is not a checkpoint written by "
            "gradflow.save"
        )
    return entries


def _read_manifest(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> dict:
    try:
        with archive.open(info) as member:
            raw = member.read()
    except _ZIP_ERRORS as exc:
        raise CheckpointError(f"{label}: {MANIFEST_NAME} is corrupt ({exc})") from exc
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except RecursionError as exc:
        raise CheckpointError(f"{label}: {MANIFEST_NAME} is nested too deeply to read") from exc
    except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError, an int of 5,000 digits
        raise CheckpointError(f"{label}: {MANIFEST_NAME} is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{label}: {MANIFEST_NAME} does not describe a {FORMAT_NAME} (no matching "
            "'format' field)"
        )
    version = manifest.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{label}: {MANIFEST_NAME} has no valid 'version' ({version!r})")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{label}: checkpoint format version {version} is newer than this gradflow reads "
            f"({FORMAT_VERSION}); upgrade gradflow"
        )
    if "root" not in manifest:
        raise CheckpointError(f"{label}: {MANIFEST_NAME} has no 'root' entry")
    return manifest


class _Decoder:
    """Rebuilds the object a manifest describes, reading and checking each array it names."""

    def __init__(
        self,
        archive: zipfile.ZipFile,
        entries: dict[str, zipfile.ZipInfo],
        label: str,
        map_location: Any,
        mmap_path: str | None = None,
    ):
        self.archive = archive
        self.mmap_path = mmap_path  # map arrays bound for the cpu from this file
        self.entries = entries
        self.label = label
        self.map_location = map_location
        self.arrays: dict[tuple[str, str], Any] = {}  # (entry, device) -> array, for sharing
        self.described: dict[str, tuple] = {}  # entry -> (dtype, shape, keys) first named with
        self.named = {MANIFEST_NAME}  # entries the manifest has named so far

    def check_all_named(self) -> None:
        """Refuse entries the manifest never named: gradflow.save writes none."""
        unnamed = [name for name in self.entries if name not in self.named]
        if unnamed:
            shown = ", ".join(repr(name) for name in unnamed[:5])
            more = f" and {len(unnamed) - 5} more" if len(unnamed) > 5 else ""
            raise CheckpointError(
                f"{self.label}: the archive holds {shown}{more}, not named by {MANIFEST_NAME}; "
                "the checkpoint was altered or not written by gradflow.save"
            )

    def fail(self, keys: tuple, message: str) -> CheckpointError:
        return CheckpointError(f"{self.label}: {message} (at {_where(keys)})")

    def node(self, node: Any, keys: tuple) -> Any:
        kind = node.get("type") if isinstance(node, dict) else None
        if kind == "none":
            return None
        if kind in ("bool", "int", "str"):
            value = node.get("value")
            expected = {"bool": bool, "int": int, "str": str}[kind]
            if type(value) is not expected:
                raise self.fail(keys, f"malformed manifest: {kind} node holds {value!r}")
            return value
        if kind == "float":
            value = node.get("value")
            if value in ("nan", "inf", "-inf"):
                return float(value)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise self.fail(keys, f"malformed manifest: float node holds {value!r}")
            return float(value)
        if kind in ("list", "tuple", "dict") and len(keys) >= MAX_DEPTH:
            raise self.fail(keys, f"malformed manifest: {_too_deep()}")
        if kind in ("list", "tuple"):
            items = node.get("items")
            if not isinstance(items, list):
                raise self.fail(keys, f"malformed manifest: {kind} node without 'items'")
            values = [self.node(item, (*keys, i)) for i, item in enumerate(items)]
            return values if kind == "list" else tuple(values)
        if kind == "dict":
            return self.mapping(node, keys)
        if kind == "tensor":
            return self.tensor(node, keys)
        if kind == "ndarray":
            array = self.array(node, keys, numpy.dtype)
            return array[()] if node.get("scalar") is True else array
        raise self.fail(keys, f"malformed manifest: unknown node {node!r:.80}")

    def mapping(self, node: dict, keys: tuple) -> dict:
        names, values = node.get("keys"), node.get("values")
        if not isinstance(names, list) or not isinstance(values, list) or len(names) != len(values):
            raise self.fail(keys, "malformed manifest: dict node needs equal 'keys' and 'values'")
        out = {}
        for name, value in zip(names, values):
            if not isinstance(name, str | int):
                raise self.fail(keys, f"malformed manifest: dict key {name!r} is not str or int")
            if name in out:
                raise self.fail(keys, f"malformed manifest: dict key {name!r} twice")
            out[name] = self.node(value, (*keys, name))
        return out

    def tensor(self, node: dict, keys: tuple) -> Tensor:
        saved = node.get("device")
        requires_grad = node.get("requires_grad")
        if not isinstance(saved, str) or not isinstance(requires_grad, bool):
            raise self.fail(keys, "malformed manifest: tensor node needs 'device', 'requires_grad'")
        device = self.target_device(saved, keys)
        array = self.array(node, keys, dtypes.as_dtype, device)
        tensor = Tensor._wrap(array)
        if requires_grad:
            if array.dtype.kind != "f":
                raise self.fail(keys, f"malformed manifest: a {array.dtype} tensor requires grad")
            tensor.requires_grad = True
        if callable(self.map_location) and not isinstance(self.map_location, Device):
            return self.mapped(tensor, saved, keys)
        return tensor

    def mapped(self, tensor: Tensor, saved: str, keys: tuple) -> Tensor:
        """torch's callable map_location: f(storage, location) -> storage, or None for the
        saved location; gradflow passes the cpu tensor in place of the storage."""
        result = self.map_location(tensor, saved)
        if result is None:
            device = self.target_device_of(saved, keys)
            return tensor if device == CPU else tensor.to(device)
        if not isinstance(result, Tensor):
            raise TypeError(
                f"map_location returned a {type(result).__name__} for the tensor at "
                f"{_where(keys)}; it must return the tensor it was given (moved, e.g. with "
                ".cuda()) or None"
            )
        return result

    def target_device_of(self, saved: str, keys: tuple) -> Device:
        choice, self.map_location = self.map_location, None
        try:
            return self.target_device(saved, keys)
        finally:
            self.map_location = choice

    def target_device(self, saved: str, keys: tuple) -> Device:
        choice = self.map_location
        if callable(choice) and not isinstance(choice, Device):
            return CPU  # the callable moves it afterwards (tensor())
        if isinstance(choice, Mapping):
            choice = choice.get(saved, saved)
        try:
            device = Device(choice if choice is not None else saved)
        except (TypeError, ValueError) as exc:
            raise self.fail(keys, f"bad device ({exc})") from exc
        if device.type == "cuda":
            try:
                get_array_module(device)  # checks that CuPy and this GPU are there
            except CudaUnavailableError as exc:
                raise self.fail(
                    keys,
                    f"the tensor was saved on {saved} and would load on {device}, but CUDA is "
                    f"not available here ({exc}); pass map_location='cpu' to load it on the cpu",
                ) from exc
        return device

    def array(self, node: dict, keys: tuple, parse_dtype: Any, device: Device = CPU) -> Any:
        name, shape = node.get("array"), node.get("shape")
        if not isinstance(name, str) or not isinstance(shape, list):
            raise self.fail(keys, "malformed manifest: array node needs 'array' and 'shape'")
        if not isinstance(node.get("dtype"), str):
            raise self.fail(keys, "malformed manifest: array node needs a 'dtype' string")
        try:
            dtype = parse_dtype(node["dtype"])
        except (TypeError, ValueError) as exc:
            raise self.fail(keys, f"malformed manifest: bad dtype ({exc})") from exc
        if dtype.kind not in _ARRAY_KINDS:
            raise self.fail(keys, f"refusing to load an array of dtype {dtype} (not numeric)")
        first = self.described.setdefault(name, (dtype, shape, keys))
        if (first[0], first[1]) != (dtype, shape):
            raise self.fail(
                keys,
                f"malformed manifest: array {name} is named twice with different dtypes or "
                f"shapes: dtype {first[0]} and shape {first[1]} at {_where(first[2])}, dtype "
                f"{dtype} and shape {shape} here (gradflow.save names a shared array with the "
                "same dtype and shape each time)",
            )
        cached = self.arrays.get((name, str(device)))
        if cached is None:
            array = self.read(name, dtype, shape, keys, mapped=device == CPU)
            cached = self.arrays[(name, str(device))] = move_array(array, device)
        return cached

    def read(
        self, name: str, dtype: numpy.dtype, shape: list, keys: tuple, mapped: bool = False
    ) -> numpy.ndarray:
        """The array of entry `name`, checked to have the manifest's dtype and shape (mapped
        from the file when `mapped` and load(mmap=True))."""
        info = self.entries.get(name)
        if info is None:
            raise self.fail(keys, f"array {name} is missing from the archive")
        self.named.add(name)
        try:
            with self.archive.open(info) as member:
                return self.read_npy(member, info, dtype, shape, keys, mapped)
        except CheckpointError:
            raise
        except _ZIP_ERRORS as exc:
            raise self.fail(keys, f"array {name} is truncated or corrupt ({exc})") from exc

    def read_npy(
        self,
        member: IO[bytes],
        info: zipfile.ZipInfo,
        dtype: numpy.dtype,
        shape: list,
        keys: tuple,
        mapped: bool = False,
    ) -> numpy.ndarray:
        """Read a .npy entry, checking its header before allocating: the dtype must be
        numeric (an object array would need unpickling), and dtype, shape and the entry's
        size must agree with the manifest."""
        name = info.filename
        try:
            version = npy_format.read_magic(member)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f".npy format version {version} is not one gradflow writes")
            read_header = npy_format.read_array_header_1_0
            if version == (2, 0):
                read_header = npy_format.read_array_header_2_0
            saved_shape, fortran_order, saved_dtype = read_header(member)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error):
            raise  # the zip layer: read() reports it as truncated or corrupt
        except Exception as exc:
            # numpy parses the header's text: ValueError, SyntaxError, TypeError and (found by
            # fuzzing) tokenize.TokenError all mean a corrupt header
            raise self.fail(keys, f"array {name} is corrupt: a bad .npy header ({exc})") from exc
        if saved_dtype.hasobject:
            raise self.fail(
                keys,
                f"array {name} holds pickled Python objects; refusing to load it (gradflow "
                "checkpoints never contain pickles)",
            )
        if saved_dtype != dtype or list(saved_shape) != shape:
            raise self.fail(
                keys,
                f"array {name} has dtype {saved_dtype} and shape {list(saved_shape)} but "
                f"{MANIFEST_NAME} says dtype {dtype} and shape {shape}",
            )
        nbytes = math.prod(saved_shape) * saved_dtype.itemsize
        stored = info.file_size - member.tell()
        if nbytes != stored:
            raise self.fail(
                keys,
                f"array {name} is corrupt: its header declares {nbytes} bytes of data "
                f"({saved_dtype}, shape {list(saved_shape)}) but the entry holds {stored}",
            )
        if mapped and self.mmap_path is not None and nbytes > 0:
            return self.map_npy(info, member.tell(), saved_dtype, saved_shape, fortran_order)
        raw = numpy.empty(nbytes, numpy.uint8)
        done = 0
        while done < nbytes:
            chunk = member.read(min(_READ_CHUNK, nbytes - done))
            if not chunk:
                raise EOFError(f"the entry ends after {done} of {nbytes} bytes")
            raw[done : done + len(chunk)] = numpy.frombuffer(chunk, numpy.uint8)
            done += len(chunk)
        if member.read(1):  # also reads to the end, where zipfile checks the CRC
            raise ValueError("extra bytes after the array data")
        array = raw.view(saved_dtype)
        if fortran_order:
            return array.reshape(saved_shape[::-1]).transpose()
        return array.reshape(saved_shape)

    def map_npy(
        self,
        info: zipfile.ZipInfo,
        header_size: int,
        dtype: numpy.dtype,
        shape: tuple,
        fortran_order: bool,
    ) -> numpy.ndarray:
        """The array data of an entry (already checked by read_npy), mapped copy-on-write:
        the entry is stored uncompressed, so its bytes lie in the file after the zip's local
        header (30 bytes, the name, the extra field) and the .npy header. No CRC check, as
        torch's mmap loads don't check one."""
        with open(self.mmap_path, "rb") as file:
            file.seek(info.header_offset)
            local = file.read(30)
            size = file.seek(0, os.SEEK_END)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"no local header for {info.filename}")
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        offset = info.header_offset + 30 + name_length + extra_length + header_size
        if offset + math.prod(shape) * dtype.itemsize > size:
            raise zipfile.BadZipFile(f"{info.filename} runs past the end of the file")
        mapped = numpy.memmap(
            self.mmap_path, dtype, mode="c", offset=offset, shape=tuple(shape),
            order="F" if fortran_order else "C",
        )  # fmt: skip
        return mapped.view(numpy.ndarray)  # a plain array; its base keeps the map open
