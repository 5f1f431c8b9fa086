"""DataLoader: batches of a Dataset, shuffled through a seeded generator, on a chosen device."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy

from gradflow import dtypes
from gradflow.backend import CPU, Device, device_of, get_array_module, move_array
from gradflow.data.dataset import Dataset, check_cpu_generator, tensor_source
from gradflow.random import Generator, seed_for
from gradflow.tensor import Tensor


class DataLoader:
    """Iterate over `dataset` in batches of `batch_size` samples.

    - shuffle: a new order every epoch (every ``iter(loader)``), drawn from `generator` or the
      default cpu generator, so the same ``gradflow.manual_seed`` gives the same orders.
    - drop_last: leave out the last batch when it is smaller than `batch_size`.
    - device: where the batch's tensors go ("cpu", "cuda", ...); None leaves them where the
      samples are.
    - collate_fn: turns a list of samples into a batch; `default_collate` stacks them.

    A TensorDataset (or a Subset of one) with the default collation is batched by indexing its
    whole tensors once per batch instead of collating one sample at a time.

    >>> from gradflow.data import DataLoader, TensorDataset
    >>> x, y = gradflow.randn(100, 3), gradflow.arange(100)
    >>> loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    >>> [tuple(xb.shape) for xb, yb in loader]
    [(64, 3), (36, 3)]
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: Generator | None = None,
        device: str | Device | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | numpy.integer):
            raise TypeError(f"batch_size must be a positive int, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = check_cpu_generator(generator, "DataLoader")
        self.device = Device(device) if device is not None else None
        self.collate_fn = collate_fn

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        n = len(self.dataset)
        order = seed_for(self.generator, CPU).permutation(n) if self.shuffle else numpy.arange(n)
        source = tensor_source(self.dataset) if self.collate_fn is None else None
        collate = self.collate_fn or default_collate
        stop = len(self) * self.batch_size
        for start in range(0, min(stop, n), self.batch_size):
            indices = order[start : start + self.batch_size]
            if source is not None:
                batch = _take_rows(source, indices, self.device)
            else:
                batch = collate([self.dataset[int(i)] for i in indices])
                if self.device is not None:
                    batch = _move(batch, self.device)
            yield batch


def _take_rows(
    source: tuple[tuple[Tensor, ...], numpy.ndarray | None],
    indices: numpy.ndarray,
    device: Device | None,
) -> tuple[Tensor, ...]:
    """One batch of a TensorDataset: each whole array fancy-indexed once (a copy), then moved."""
    tensors, rows = source
    if rows is not None:
        indices = rows[indices]
    batch = []
    for t in tensors:
        xp = get_array_module(t.array)
        array = t.array[indices if xp is numpy else xp.asarray(indices)]
        batch.append(Tensor._wrap(array if device is None else move_array(array, device)))
    return tuple(batch)


def default_collate(samples: Sequence[Any]) -> Any:
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
    if not samples:
        raise ValueError("default_collate: got an empty list of samples")
    return _collate(samples, "")


_NUMBER = bool | int | float | numpy.bool_ | numpy.integer | numpy.floating
_ARRAY = numpy.ndarray | numpy.generic


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
        return list(samples)
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
            _collate(list(column), f"field {i} of {field}")
            for i, column in enumerate(zip(*samples))
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


def _move(batch: Any, device: Device) -> Any:
    """The batch with every Tensor in it moved to `device`."""
    if isinstance(batch, Tensor):
        return Tensor._wrap(move_array(batch.array, device))
    if isinstance(batch, Mapping):
        return {key: _move(value, device) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_move(value, device) for value in batch))
    if isinstance(batch, tuple | list):
        return type(batch)(_move(value, device) for value in batch)
    return batch
