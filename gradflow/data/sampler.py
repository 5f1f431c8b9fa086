"""Samplers: the order in which a DataLoader visits a dataset's indices (PyTorch's names).

Every sampler here draws its random numbers from a cpu ``gradflow.Generator`` (its own, or
the default one that ``gradflow.manual_seed`` seeds). Each builds its whole epoch's indices as
one NumPy array (``_indices``), which the DataLoader slices into batches without a Python loop;
``iter(sampler)`` yields them as Python ints, as PyTorch's samplers do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence, Sized
from typing import Any, Generic, TypeVar

import numpy

from gradflow.backend import CPU
from gradflow.data.dataset import check_cpu_generator
from gradflow.random import Generator, seed_for
from gradflow.tensor import Tensor

T_co = TypeVar("T_co", covariant=True)


class Sampler(Generic[T_co]):
    """The base of samplers: ``__iter__`` yields dataset indices (or, for a batch sampler,
    lists of them); ``__len__`` is optional."""

    def __init__(self, data_source: Sized | None = None) -> None:
        pass

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1, every epoch."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def _indices(self) -> numpy.ndarray:
        return numpy.arange(len(self.data_source))

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random order of the dataset's indices, new every epoch.

    Without replacement each epoch is a permutation (``num_samples`` larger than the dataset
    chains whole permutations, then part of one); with replacement ``num_samples`` indices are
    drawn uniformly. Numbers come from `generator`, or the default cpu generator.
    """

    def __init__(
        self,
        data_source: Sized,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: Generator | None = None,
    ) -> None:
        if not isinstance(replacement, bool):
            raise TypeError(
                f"replacement should be a boolean value, but got replacement={replacement}"
            )
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = check_cpu_generator(generator, "RandomSampler")
        if not _positive_int(self.num_samples):
            raise ValueError(
                "num_samples should be a positive integer value, but got "
                f"num_samples={self.num_samples}"
            )

    @property
    def num_samples(self) -> int:
        # Read the dataset's size each time: it may change between epochs.
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def _indices(self) -> numpy.ndarray:
        n, count = len(self.data_source), self.num_samples
        rng = seed_for(self.generator, CPU)
        if self.replacement:
            return rng.integers(0, n, size=count, dtype=numpy.int64)
        if count == n:
            return rng.permutation(n)
        rounds = [rng.permutation(n) for _ in range(count // n)]
        rounds.append(rng.permutation(n)[: count % n])
        return numpy.concatenate(rounds)

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices().tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given `indices` in a random order, new every epoch."""

    def __init__(self, indices: Sequence[int], generator: Generator | None = None) -> None:
        self.indices = indices
        self.generator = check_cpu_generator(generator, "SubsetRandomSampler")

    def _indices(self) -> numpy.ndarray:
        order = seed_for(self.generator, CPU).permutation(len(self.indices))
        return numpy.asarray(self.indices, dtype=numpy.int64)[order]

    def __iter__(self) -> Iterator[int]:
        order = seed_for(self.generator, CPU).permutation(len(self.indices))
        return (self.indices[i] for i in order.tolist())

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """`num_samples` indices in [0, len(weights)), index i drawn with probability
    proportional to ``weights[i]`` (with or without replacement)."""

    def __init__(
        self,
        weights: Sequence[float],
        num_samples: int,
        replacement: bool = True,
        generator: Generator | None = None,
    ) -> None:
        if not _positive_int(num_samples):
            raise ValueError(
                f"num_samples should be a positive integer value, but got num_samples={num_samples}"
            )
        if not isinstance(replacement, bool):
            raise ValueError(
                f"replacement should be a boolean value, but got replacement={replacement}"
            )
        array = numpy.asarray(weights.array if isinstance(weights, Tensor) else weights)
        array = numpy.asarray(array.get() if hasattr(array, "get") else array, numpy.float64)
        if array.ndim != 1:
            raise ValueError(
                f"weights should be a 1d sequence but given weights have shape {tuple(array.shape)}"
            )
        if (array < 0).any() or not numpy.isfinite(array).all() or array.sum() <= 0:
            raise RuntimeError(
                "WeightedRandomSampler: weights must be finite and non-negative with a positive sum"
            )
        if not replacement and num_samples > numpy.count_nonzero(array):
            raise RuntimeError(
                f"WeightedRandomSampler: cannot draw {num_samples} samples without replacement "
                f"from {numpy.count_nonzero(array)} indices of non-zero weight"
            )
        self.weights = array
        self.num_samples = int(num_samples)
        self.replacement = replacement
        self.generator = check_cpu_generator(generator, "WeightedRandomSampler")

    def _indices(self) -> numpy.ndarray:
        rng = seed_for(self.generator, CPU)
        p = self.weights / self.weights.sum()
        return rng.choice(len(p), size=self.num_samples, replace=self.replacement, p=p)

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices().tolist())

    def __len__(self) -> int:
        return self.num_samples


class InfiniteConstantSampler(Sampler):
    """None forever: the "indices" of an IterableDataset, which a BatchSampler groups into
    batches of `batch_size` (the stream decides where the epoch ends)."""

    def __iter__(self) -> Iterator[None]:
        while True:
            yield None


class BatchSampler(Sampler):
    """Groups the indices of `sampler` into lists of `batch_size` (the last one shorter
    unless `drop_last`).

    >>> list(BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=False))
    [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    """

    def __init__(self, sampler: Sampler | Iterable[int], batch_size: int, drop_last: bool) -> None:
        if not _positive_int(batch_size):
            raise ValueError(
                f"batch_size should be a positive integer value, but got batch_size={batch_size}"
            )
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = drop_last

    def _index_batches(self) -> Iterator[numpy.ndarray | list[int]]:
        """The batches as NumPy slices when the sampler makes an index array, else lists."""
        make = getattr(self.sampler, "_indices", None)
        if make is None:
            yield from self._grouped()
            return
        order, size = make(), self.batch_size
        stop = len(order) - len(order) % size if self.drop_last else len(order)
        for start in range(0, stop, size):
            yield order[start : start + size]

    def _grouped(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._index_batches():
            yield batch.tolist() if isinstance(batch, numpy.ndarray) else batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


class DistributedSampler(Sampler):
    """The share of the dataset that replica `rank` of `num_replicas` sees each epoch.

    Every replica draws the same permutation (seeded by ``seed + epoch``: call ``set_epoch``
    at the start of each epoch for a new order) and takes every num_replicas-th index from
    position `rank`. Without `drop_last` the order is padded with its own first indices so
    that each replica gets ``ceil(len / num_replicas)`` samples; with it, the tail is cut.
    `num_replicas` and `rank` default to the world size and rank of the process group
    (``gradflow.distributed.init_process_group``). The order comes from gradflow's generator,
    so a shuffled order differs from PyTorch's; the padding and the split are PyTorch's.
    """

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if num_replicas is None or rank is None:
            from gradflow import distributed

            if not distributed.is_initialized():
                raise RuntimeError(
                    "DistributedSampler: pass num_replicas and rank; gradflow has no process "
                    "group to read them from (call gradflow.distributed.init_process_group() "
                    "first, under mpiexec)"
                )
            num_replicas = distributed.get_world_size() if num_replicas is None else num_replicas
            rank = distributed.get_rank() if rank is None else rank
        if not _positive_int(num_replicas):
            raise ValueError(f"num_replicas should be a positive integer, got {num_replicas}")
        if rank >= num_replicas or rank < 0:
            raise ValueError(
                f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]"
            )
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose order the next ``iter`` gives (all replicas must agree on it)."""
        self.epoch = epoch

    def _indices(self) -> numpy.ndarray:
        n = len(self.dataset)
        if self.shuffle:
            order = Generator(seed=self.seed + self.epoch).rng.permutation(n)
        else:
            order = numpy.arange(n)
        if not self.drop_last:
            padding = self.total_size - n
            if padding:
                order = numpy.concatenate([order, numpy.resize(order, padding)])
        else:
            order = order[: self.total_size]
        return order[self.rank : self.total_size : self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices().tolist())

    def __len__(self) -> int:
        return self.num_samples


def _positive_int(value: Any) -> bool:
    return isinstance(value, int | numpy.integer) and not isinstance(value, bool) and value > 0
