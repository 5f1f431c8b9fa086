"""default_collate and default_convert: samples into batches, NumPy data into Tensors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy

from gradflow import dtypes
from gradflow.backend import device_of, get_array_module
from gradflow.tensor import Tensor


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch.

    Tensors and NumPy arrays are stacked along a new first dimension; they must have one shape
    (a ValueError names the first sample that differs, and both shapes), and mixed dtypes are
    promoted as PyTorch's stack does (bool < integer < float, then NumPy's rule within the
    kind). Python numbers become one tensor whose dtype depends on the whole batch, not its
    first sample: bool when every one is a bool, the default float dtype when any is a float,
    else int64 (so ``[3, 2.7, 1.2]`` stays float and ``[True, 2, 0]`` int64, as in PyTorch);
    NumPy scalars keep their (promoted) dtype. Tuples, lists, named tuples and dicts are
    collated field by field; strings are kept as a list.
    """
    if not batch:
        raise ValueError("default_collate: got an empty list of samples")
    return _collate(batch, "")


_NUMBER = bool | int | float | numpy.bool_ | numpy.integer | numpy.floating
_ARRAY = numpy.ndarray | numpy.generic
_NOT_NUMERIC = "SaUOV"  # NumPy string, object and void dtypes: no Tensor holds them


def _collate(samples: Sequence[Any], field: str) -> Any:
    """default_collate of one field; `field` names it in errors ("field 'x' of ", or "")."""
    first = samples[0]
    if isinstance(first, Tensor):
        _check_same_type(samples, Tensor)
        arrays = [s.array for s in samples]
        devices = {str(device_of(a)) for a in arrays}
        if len(devices) > 1:
            raise RuntimeError(
                f"default_collate: samples are on different devices {sorted(devices)}; put "
                "them on one device"
            )
        _check_same_shape(arrays, field)
        dtype = _promoted([a.dtype for a in arrays])
        arrays = [a if a.dtype == dtype else a.astype(dtype) for a in arrays]
        return Tensor._wrap(get_array_module(arrays[0]).stack(arrays))
    if isinstance(first, numpy.ndarray) and first.dtype.kind in _NOT_NUMERIC:
        raise TypeError(
            "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
            f"found arrays of dtype {first.dtype}"
        )
    if isinstance(first, _ARRAY) and all(isinstance(s, _ARRAY) for s in samples):
        _check_same_shape(samples, field)
        dtype = _promoted([s.dtype for s in samples])
        return Tensor._wrap(numpy.stack(samples, dtype=dtype, casting="unsafe"))
    if isinstance(first, _NUMBER):
        _check_same_type(samples, _NUMBER)
        return Tensor._wrap(numpy.array(samples, dtype=_number_dtype(samples)))
    if isinstance(first, _ARRAY):
        _check_same_type(samples, _ARRAY)
    if isinstance(first, str | bytes):
        # As PyTorch: the column as it came, a tuple inside tuples, a list otherwise.
        return samples if isinstance(samples, tuple) else list(samples)
    if isinstance(first, Mapping):
        return {
            key: _collate([s[key] for s in samples], f"field {key!r} of {field}") for key in first
        }
    if isinstance(first, tuple | list):
        if any(len(s) != len(first) for s in samples):
            lengths = sorted({len(s) for s in samples})
            raise ValueError(
                f"default_collate: samples have different numbers of fields {lengths}; every "
                "sample must have the same structure"
            )
        columns = [
            _collate(column, f"field {i} of {field}") for i, column in enumerate(zip(*samples))
        ]
        if hasattr(first, "_fields"):  # a named tuple
            return type(first)(*columns)
        return tuple(columns) if isinstance(first, tuple) else columns
    raise TypeError(
        f"default_collate: can't batch samples of type {type(first).__name__}; samples must "
        "be Tensors, NumPy arrays, numbers, strings, or tuples/lists/dicts of them (or pass "
        "collate_fn)"
    )


def _number_dtype(samples: Sequence[Any]) -> numpy.dtype:
    """The dtype of a batch of Python (or NumPy scalar) numbers, from all of them."""
    if all(isinstance(s, bool | numpy.bool_) for s in samples):
        return dtypes.bool
    if any(isinstance(s, float | numpy.floating) for s in samples):
        return dtypes.get_default_dtype()
    return dtypes.int64


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}


def _promoted(kinds: list[numpy.dtype]) -> numpy.dtype:
    """PyTorch's promotion of stacked tensors: the highest category (bool < integer < float)
    wins, and NumPy's result_type decides among the dtypes of that category (so int64 with
    float32 is float32, not NumPy's float64)."""
    first = kinds[0]
    if all(d == first for d in kinds):
        return dtypes.as_dtype(first)
    top = max(_CATEGORY.get(d.kind, 3) for d in kinds)
    return dtypes.as_dtype(
        numpy.result_type(*(d for d in kinds if _CATEGORY.get(d.kind, 3) == top))
    )


def _check_same_shape(arrays: Sequence[Any], field: str) -> None:
    shape = tuple(arrays[0].shape)
    for i, a in enumerate(arrays):
        if tuple(a.shape) != shape:
            raise ValueError(
                f"default_collate: {field}sample {i} has shape {tuple(a.shape)} but {field}"
                f"sample 0 has shape {shape}; samples must have one shape to be stacked into a "
                "batch (resize or pad them, or pass collate_fn)"
            )


def _check_same_type(samples: Sequence[Any], kind: Any) -> None:
    for s in samples:
        if not isinstance(s, kind):
            raise TypeError(
                f"default_collate: samples mix {type(samples[0]).__name__} and "
                f"{type(s).__name__}; every sample must have the same structure"
            )


def default_convert(data: Any) -> Any:
    """NumPy arrays and NumPy scalars in `data` become Tensors (sharing the array's memory),
    inside dicts, lists, tuples and named tuples too; everything else is returned as it is.
    The DataLoader's collation when ``batch_size=None`` (no automatic batching). As in
    PyTorch, a plain tuple comes back as a list.
    """
    if isinstance(data, Tensor):
        return data
    if isinstance(data, numpy.ndarray | numpy.generic):
        if data.dtype.kind in _NOT_NUMERIC:  # strings stay as they are, as in PyTorch
            return data
        return Tensor._wrap(numpy.asarray(data))
    if isinstance(data, Mapping):
        converted = {key: default_convert(value) for key, value in data.items()}
        try:
            return type(data)(converted)  # type: ignore[call-arg]
        except TypeError:  # a Mapping whose constructor takes something else
            return converted
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # a named tuple
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        try:
            return type(data)([default_convert(d) for d in data])  # type: ignore[call-arg]
        except TypeError:
            return [default_convert(d) for d in data]
    return data
