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
        xp = get_array_module(t.data)
        array = t.data[indices if xp is numpy else xp.asarray(indices)]
        batch.append(Tensor._wrap(array if device is None else move_array(array, device)))
    return tuple(batch)


def default_collate(samples: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch.

    Tensors and NumPy arrays are stacked along a new first dimension (dtype kept); Python ints
    become int64, Python floats the default float dtype, bools bool, NumPy scalars keep their
    dtype; tuples, lists, named tuples and dicts are collated field by field; strings are kept
    as a list.
    """
    if not samples:
        raise ValueError("default_collate: got an empty list of samples")
    first = samples[0]
    if isinstance(first, Tensor):
        _check_same_type(samples, Tensor)
        arrays = [s.data for s in samples]
        devices = {str(device_of(a)) for a in arrays}
        if len(devices) > 1:
            raise RuntimeError(
                f"default_collate: samples are on different devices {sorted(devices)}; put "
                "them on one device"
            )
        return Tensor._wrap(get_array_module(arrays[0]).stack(arrays))
    if isinstance(first, numpy.ndarray | numpy.generic):
        _check_same_type(samples, numpy.ndarray | numpy.generic)
        return Tensor._wrap(numpy.stack(samples).astype(dtypes.as_dtype(first.dtype), copy=False))
    if isinstance(first, bool):
        return Tensor._wrap(numpy.array(samples, dtype=dtypes.bool))
    if isinstance(first, int):
        return Tensor._wrap(numpy.array(samples, dtype=dtypes.int64))
    if isinstance(first, float):
        return Tensor._wrap(numpy.array(samples, dtype=dtypes.get_default_dtype()))
    if isinstance(first, str | bytes):
        return list(samples)
    if isinstance(first, Mapping):
        return {key: default_collate([s[key] for s in samples]) for key in first}
    if isinstance(first, tuple | list):
        if any(len(s) != len(first) for s in samples):
            lengths = sorted({len(s) for s in samples})
            raise ValueError(
                f"default_collate: samples have different numbers of fields {lengths}; every "
                "sample must have the same structure"
            )
        columns = [default_collate(list(column)) for column in zip(*samples)]
        if hasattr(first, "_fields"):  # a named tuple
            return type(first)(*columns)
        return tuple(columns) if isinstance(first, tuple) else columns
    raise TypeError(
        f"default_collate: can't batch samples of type {type(first).__name__}; samples must "
        "be Tensors, NumPy arrays, numbers, strings, or tuples/lists/dicts of them (or pass "
        "collate_fn)"
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
        return Tensor._wrap(move_array(batch.data, device))
    if isinstance(batch, Mapping):
        return {key: _move(value, device) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_move(value, device) for value in batch))
    if isinstance(batch, tuple | list):
        return type(batch)(_move(value, device) for value in batch)
    return batch
