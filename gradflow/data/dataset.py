"""Datasets: Dataset, IterableDataset, TensorDataset, Subset, Concat/Chain/Stack, random_split.

Map-style datasets index samples (``dataset[i]``); iterable ones stream them (``iter(dataset)``).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import numpy

from gradflow.backend import CPU
from gradflow.random import Generator, seed_for
from gradflow.tensor import Tensor

T_co = TypeVar("T_co", covariant=True)


class Dataset(Generic[T_co]):
    """A map-style dataset: ``dataset[i]`` is sample i and ``len(dataset)`` the number of
    samples. Subclasses implement ``__getitem__`` and ``__len__``."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co]):
    """A dataset read as a stream: subclasses implement ``__iter__``.

    With ``num_workers > 0`` every worker process iterates its own copy of the whole dataset,
    so each sample comes once per worker unless ``__iter__`` shards the stream itself with
    ``gradflow.utils.data.get_worker_info()`` (its ``id`` and ``num_workers``), as in PyTorch.
    """

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __add__(self, other: Dataset) -> ChainDataset:  # type: ignore[override]
        return ChainDataset([self, other])


class ConcatDataset(Dataset):
    """The samples of several map-style datasets one after another.

    >>> both = ConcatDataset([TensorDataset(gradflow.zeros(3)), TensorDataset(gradflow.ones(2))])
    >>> len(both), both[3][0].item(), both.cumulative_sizes
    (5, 1.0, [3, 5])
    """

    def __init__(self, datasets: Iterable[Dataset]):
        self.datasets = list(datasets)
        if not self.datasets:
            raise AssertionError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise AssertionError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int) -> Any:
        if index < 0:
            if -index > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            index = len(self) + index
        which = bisect.bisect_right(self.cumulative_sizes, index)
        offset = self.cumulative_sizes[which - 1] if which > 0 else 0
        return self.datasets[which][index - offset]


class ChainDataset(IterableDataset):
    """The streams of several IterableDatasets one after another (chained on the fly)."""

    def __init__(self, datasets: Iterable[Dataset]):
        self.datasets = datasets

    def __iter__(self) -> Iterator[Any]:
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            yield from d

    def __len__(self) -> int:
        total = 0
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            total += len(d)
        return total


class StackDataset(Dataset):
    """Sample i is ``(d[i] for d in args)`` or ``{key: d[i] for key, d in kwargs}``: several
    datasets of one length read side by side (inputs and targets kept apart, say)."""

    def __init__(self, *args: Dataset, **kwargs: Dataset):
        if args and kwargs:
            raise ValueError(
                "Supported either ``tuple``- (via ``args``) or``dict``- (via ``kwargs``) like "
                "input/output, but both types are given."
            )
        datasets: Any = args or kwargs
        if not datasets:
            raise ValueError("At least one dataset should be passed")
        members = list(datasets.values()) if kwargs else list(args)
        self._length = len(members[0])
        if any(len(d) != self._length for d in members):
            raise ValueError("Size mismatch between datasets")
        self.datasets = datasets

    def __getitem__(self, index: int) -> Any:
        if isinstance(self.datasets, dict):
            return {key: d[index] for key, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self) -> int:
        return self._length


class TensorDataset(Dataset):
    """Samples are rows of tensors of the same length: ``dataset[i]`` is
    ``(t[i] for t in tensors)``. A DataLoader batches it by indexing the whole tensors once
    per batch (no per-sample collation).

    >>> ds = TensorDataset(gradflow.zeros(10, 3), gradflow.arange(10))
    >>> x, y = ds[2]
    >>> tuple(x.shape), y.item()
    ((3,), 2)
    """

    def __init__(self, *tensors: Tensor):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        for position, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"TensorDataset takes Tensors; argument {position} is {type(t).__name__}"
                )
            if t.ndim == 0:
                raise ValueError(
                    f"TensorDataset: argument {position} is a 0-d tensor; every tensor needs a "
                    "first dimension that indexes the samples"
                )
        sizes = [t.shape[0] for t in tensors]
        if any(size != sizes[0] for size in sizes):
            shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
            raise ValueError(
                f"TensorDataset: all tensors must have the same first dimension (the number of "
                f"samples), got shapes {shapes}"
            )
        self.tensors = tuple(tensors)

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        # Samples are new tensors outside any graph, like the batches the fast path makes.
        return tuple(Tensor._wrap(_row(t.array, index)) for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


def _row(array: Any, index: Any) -> Any:
    row = array[index]
    return numpy.asarray(row) if isinstance(row, numpy.generic) else row  # keep 0-d an array


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = numpy.asarray(indices, dtype=numpy.int64).reshape(-1)

    def __getitem__(self, index: int) -> Any:
        if isinstance(index, list | numpy.ndarray):
            return [self.dataset[int(i)] for i in self.indices[index]]
        return self.dataset[int(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)


def tensor_source(dataset: Dataset) -> tuple[tuple[Tensor, ...], numpy.ndarray | None] | None:
    """(tensors, row indices or None for all rows) when `dataset` is a TensorDataset, or
    Subsets of one, so a loader can index whole arrays; None for any other dataset."""
    if isinstance(dataset, TensorDataset) and type(dataset).__getitem__ is (
        TensorDataset.__getitem__
    ):
        return dataset.tensors, None
    if isinstance(dataset, Subset) and type(dataset).__getitem__ is Subset.__getitem__:
        inner = tensor_source(dataset.dataset)
        if inner is None:
            return None
        tensors, rows = inner
        return tensors, dataset.indices if rows is None else rows[dataset.indices]
    return None


def random_split(
    dataset: Dataset, lengths: Sequence[int | float], generator: Generator | None = None
) -> list[Subset]:
    """Split `dataset` into non-overlapping random Subsets of the given lengths.

    `lengths` are counts that sum to ``len(dataset)``, or fractions that sum to 1 (the
    remainder of flooring is handed out one by one from the first split on). The permutation
    comes from `generator`, or the default cpu generator (``gradflow.manual_seed``).

    >>> dataset = TensorDataset(gradflow.arange(10))
    >>> train, val = random_split(dataset, [0.8, 0.2], generator=gradflow.Generator(seed=0))
    >>> len(train), len(val)
    (8, 2)
    """
    total = len(dataset)
    counts = _split_counts(lengths, total)
    order = seed_for(check_cpu_generator(generator, "random_split"), CPU).permutation(total)
    splits, start = [], 0
    for count in counts:
        splits.append(Subset(dataset, order[start : start + count]))
        start += count
    return splits


def _split_counts(lengths: Sequence[int | float], total: int) -> list[int]:
    values = list(lengths)
    if values and all(isinstance(v, float) for v in values):
        if any(not 0.0 <= v <= 1.0 for v in values) or not math.isclose(sum(values), 1.0):
            raise ValueError(
                f"random_split: fractions must lie in [0, 1] and sum to 1, got {values}"
            )
        counts = [math.floor(total * v) for v in values]
        for i in range(total - sum(counts)):
            counts[i % len(counts)] += 1
        return counts
    if any(not isinstance(v, int | numpy.integer) or v < 0 for v in values):
        raise ValueError(
            f"random_split: lengths must be non-negative ints (or fractions summing to 1), "
            f"got {values}"
        )
    if sum(values) != total:
        raise ValueError(
            f"random_split: lengths sum to {sum(values)} but the dataset has {total} samples"
        )
    return [int(v) for v in values]


def check_cpu_generator(generator: Generator | None, who: str) -> Generator | None:
    """`generator` itself, checked to be a cpu Generator (or None)."""
    if generator is not None and (
        not isinstance(generator, Generator) or generator.device.type != "cpu"
    ):
        raise TypeError(
            f"{who}: generator must be a cpu gradflow.Generator (the sample order is drawn on "
            f"the cpu), got {_describe(generator)}"
        )
    return generator


def _describe(generator: Any) -> str:
    if isinstance(generator, Generator):
        return f"a Generator on {generator.device}"
    return type(generator).__name__
