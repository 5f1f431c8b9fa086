"""Fetching one batch, the same code in the main process and in worker processes.

Seeding (why batches do not depend on ``num_workers``): each epoch draws one base seed in the
main process. Before a map-style batch is fetched, gradflow's cpu generator, NumPy's global
RNG and Python's ``random`` are seeded from (base seed, batch number), in a worker or, with
``num_workers=0``, in the main process (whose generators are restored afterwards). So a
``__getitem__`` that draws random numbers gives the same batches whichever process fetches
them. Iterable datasets are not reseeded per batch (which worker yields what is theirs to say).
"""

from __future__ import annotations

import contextlib
import io
import pickle
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy

from gradflow.backend import get_array_module
from gradflow.data.collate import default_collate
from gradflow.data.dataset import tensor_source
from gradflow.random import default_generator
from gradflow.tensor import Tensor


class MapFetcher:
    """Batches of a map-style dataset by index: ``fetch(indices, seed)``."""

    def __init__(
        self, dataset: Any, auto_collation: bool, collate_fn: Callable[..., Any], drop_last: bool
    ) -> None:
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.restore = True  # a worker sets False: its generators need not be put back
        # A TensorDataset (or Subsets of one) with the default collation: index whole arrays.
        self.source = (
            tensor_source(dataset) if auto_collation and collate_fn is default_collate else None
        )

    def fetch(self, indices: Any, seed: int | None) -> Any:
        if self.source is not None:  # no user code runs, so nothing to seed
            return take_rows(self.source, indices)
        with seeded(seed, self.restore):
            if not self.auto_collation:
                return self.collate_fn(self.dataset[indices])
            if isinstance(indices, numpy.ndarray):
                indices = indices.tolist()
            getitems = getattr(self.dataset, "__getitems__", None)
            samples = getitems(indices) if getitems else [self.dataset[i] for i in indices]
            return self.collate_fn(samples)


class IterableFetcher:
    """Batches of an IterableDataset: the next ``len(indices)`` items of its stream."""

    def __init__(
        self, dataset: Any, auto_collation: bool, collate_fn: Callable[..., Any], drop_last: bool
    ) -> None:
        self.iterator: Iterator[Any] = iter(dataset)
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.ended = False

    def fetch(self, indices: Any, seed: int | None) -> Any:
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            return self.collate_fn(next(self.iterator))
        samples = []
        for _ in indices:
            try:
                samples.append(next(self.iterator))
            except StopIteration:
                self.ended = True
                break
        if not samples or (self.drop_last and len(samples) < len(indices)):
            raise StopIteration
        return self.collate_fn(samples)


def take_rows(
    source: tuple[tuple[Tensor, ...], numpy.ndarray | None], indices: Any
) -> tuple[Tensor, ...]:
    """One batch of a TensorDataset: each whole array fancy-indexed once (a copy)."""
    tensors, rows = source
    indices = numpy.asarray(indices, dtype=numpy.int64)
    if rows is not None:
        indices = rows[indices]
    batch = []
    for t in tensors:
        xp = get_array_module(t.array)
        batch.append(Tensor._wrap(t.array[indices if xp is numpy else xp.asarray(indices)]))
    return tuple(batch)


# ---- seeding -------------------------------------------------------------------------------
_MASK64 = (1 << 64) - 1


def batch_seed(base_seed: int, batch_index: int) -> int:
    """The seed of batch `batch_index` of the epoch whose base seed is `base_seed`: both
    mixed by SplitMix64's finalizer (a few Python int operations; NumPy's SeedSequence would
    cost more than many a batch), 63 bits so that it is a valid seed everywhere."""
    z = (base_seed + (batch_index + 1) * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 1


def seed_all(seed: int) -> None:
    """Seed gradflow's cpu generator, NumPy's global RNG and Python's random from `seed`
    (NumPy's legacy seed takes 32 bits: it gets the low 32 bits of `seed`)."""
    default_generator("cpu").manual_seed(seed)
    numpy.random.seed(seed & 0xFFFFFFFF)
    random.seed(seed)


@contextlib.contextmanager
def seeded(seed: int | None, restore: bool = True) -> Iterator[None]:
    """Run the block with every generator seeded from `seed`, then (with `restore`) put them
    back as they were, so loading data in the main process leaves the program's random
    streams alone. Worker processes do not restore: between batches nothing else draws."""
    if seed is None:
        yield
        return
    if not restore:
        seed_all(seed)
        yield
        return
    cpu = default_generator("cpu")
    # The cpu generator's stream object is set aside and put back whole (cheaper than
    # copying its state and re-seeding it to keep its initial_seed()).
    saved = (cpu._rng, cpu._seed, numpy.random.get_state(), random.getstate())
    seed_all(seed)
    try:
        yield
    finally:
        cpu._rng, cpu._seed = saved[0], saved[1]
        numpy.random.set_state(saved[2])
        random.setstate(saved[3])


# ---- sending data between processes ----------------------------------------------------------
CUDA_IN_WORKER = (
    "worker processes produce CPU arrays only (CUDA cannot be used in a forked worker): keep "
    "the dataset on the cpu and pass device='cuda' to the DataLoader (or move each batch with "
    ".to('cuda')), or use num_workers=0"
)


def _tensor_from_array(array: numpy.ndarray) -> Tensor:
    return Tensor._wrap(array)


class _Pickler(pickle.Pickler):
    """A pickler that sends a cpu Tensor as its NumPy array (Tensors refuse plain pickling,
    which would run code on load from untrusted files; between our own processes it is fine)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Tensor):
            if not isinstance(obj.array, numpy.ndarray):
                raise TypeError(f"DataLoader: a batch holds a cuda tensor; {CUDA_IN_WORKER}")
            return _tensor_from_array, (obj.array,)
        return NotImplemented


def dumps(obj: Any) -> bytes:
    """`obj` pickled for another of our processes, Tensors included."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()
