"""DataLoader: batches of a dataset, in the main process or in worker processes (PyTorch's API)."""

from __future__ import annotations

import multiprocessing
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import numpy

from gradflow.backend import CPU, Device, move_array
from gradflow.data.collate import default_collate, default_convert
from gradflow.data.dataset import Dataset, IterableDataset, check_cpu_generator, tensor_source
from gradflow.data.fetch import IterableFetcher, MapFetcher, batch_seed
from gradflow.data.sampler import (
    BatchSampler,
    InfiniteConstantSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
)
from gradflow.random import Generator, seed_for
from gradflow.tensor import Tensor

__all__ = ["DataLoader", "default_collate", "default_convert"]


class _LoaderParts:
    """What a DataLoader and its iterators' view of it (`_LoaderView`) both compute."""

    dataset: Any
    batch_size: int | None
    drop_last: bool
    sampler: Any
    batch_sampler: Any
    collate_fn: Callable[[Any], Any]
    _default_collation: bool
    pin_memory: bool
    device: Device | None

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self) -> Any:
        return self.batch_sampler if self._auto_collation else self.sampler

    def _index_batches(self) -> Iterator[Any]:
        """The epoch's batches of indices (NumPy slices where the sampler allows)."""
        if isinstance(self.batch_sampler, BatchSampler):
            return self.batch_sampler._index_batches()
        return iter(self._index_sampler)

    def __len__(self) -> int:
        if isinstance(self.dataset, IterableDataset):
            length = len(self.dataset)
            if self.batch_size is not None:
                whole, rest = divmod(length, self.batch_size)
                length = whole if self.drop_last or rest == 0 else whole + 1
            return length
        return len(self._index_sampler)

    def make_fetcher(self) -> MapFetcher | IterableFetcher:
        """The fetcher of this loader's batches (built in the main process or a worker)."""
        kind = IterableFetcher if isinstance(self.dataset, IterableDataset) else MapFetcher
        return kind(self.dataset, self._auto_collation, self._fetch_collate, self.drop_last)

    @property
    def _fetch_collate(self) -> Callable[[Any], Any]:
        # MapFetcher recognizes `default_collate` itself as "the default collation" (the fast
        # path); an explicit collate_fn=default_collate is collated sample by sample.
        if self._default_collation or self.collate_fn is not default_collate:
            return self.collate_fn
        return _collate_each

    def _finish(self, batch: Any) -> Any:
        """A batch as the user gets it: pinned and moved as asked."""
        if self.pin_memory:
            batch = pin(batch)
        if self.device is not None:
            batch = _move(batch, self.device)
        return batch


class _LoaderView(_LoaderParts):
    """A copy of a DataLoader's settings for its iterators: they hold this, not the loader,
    so a loader and its persistent iterator make no reference cycle (deleting the loader
    stops its workers at once) and an iterator outlives a loader it was made from."""

    def __init__(self, loader: DataLoader) -> None:
        self.__dict__.update(
            (key, value) for key, value in vars(loader).items() if key != "_iterator"
        )


T_co = TypeVar("T_co", covariant=True)


class DataLoader(_LoaderParts, Generic[T_co]):
    """Iterate over `dataset` in batches, as ``torch.utils.data.DataLoader`` does.

    - batch_size, drop_last: samples per batch (None: no batching, each sample goes through
      `collate_fn`, by default `default_convert`); leave out a last, smaller batch.
    - shuffle, sampler, batch_sampler, generator: the order of the indices (see
      gradflow/data/sampler.py). A shuffled loader draws a new order every epoch (every
      ``iter(loader)``) from `generator` or the default cpu generator (``gradflow.manual_seed``).
    - collate_fn: a list of samples into a batch; `default_collate` stacks them.
    - num_workers > 0: batches are fetched by that many worker processes ('fork' where the
      system has it, or `multiprocessing_context`), each with `prefetch_factor` batches in
      flight, and come back in the sampler's order. Each epoch draws one base seed from
      `generator` (or the default generator); worker i seeds gradflow's, NumPy's and Python's
      generators with base seed + i before `worker_init_fn(i)`, and every map-style batch is
      fetched under a seed drawn from (base seed, batch number), in the main process as well,
      so a dataset that draws random numbers gives the same batches for any `num_workers`.
      `persistent_workers` keeps the workers between epochs; `timeout` (seconds) bounds the
      wait for one batch. A worker's exception is raised again here with its traceback.
    - pin_memory: batches in page-locked host memory when CUDA is available (a warning and
      nothing otherwise), so that copying them to the GPU can be asynchronous.
    - device (gradflow's, keyword-only): where the batch's tensors go; None leaves them where
      the samples are.

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
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Sampler | Iterable[Any] | None = None,
        batch_sampler: Sampler | Iterable[list[Any]] | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[Any], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context: str | Any = None,
        generator: Generator | None = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
        device: str | Device | None = None,
    ):
        if num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; use num_workers=0 to disable "
                "multiprocessing."
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "prefetch_factor option could only be specified in multiprocessing.let "
                "num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None."
            )
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if batch_size is not None:
            _check_batch_size(batch_size)
        iterable = isinstance(dataset, IterableDataset)
        if iterable:
            if shuffle not in (None, False):
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified shuffle option, but "
                    f"got shuffle={shuffle}"
                )
            if sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified sampler option, but "
                    f"got sampler={sampler}"
                )
            if batch_sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified batch_sampler "
                    f"option, but got batch_sampler={batch_sampler}"
                )
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, "
                    "sampler, and drop_last"
                )
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError(
                "batch_size=None option disables auto-batching and is mutually exclusive with "
                "drop_last"
            )
        self.generator = check_cpu_generator(generator, "DataLoader")
        if sampler is None:
            if iterable:
                sampler = InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=self.generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, int(batch_size), bool(drop_last))
        self.dataset = dataset
        self.batch_size = None if batch_size is None else int(batch_size)
        self.drop_last = bool(drop_last)
        self.shuffle = shuffle
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = int(num_workers)
        self.prefetch_factor = prefetch_factor
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = _context(multiprocessing_context, self.num_workers)
        self.persistent_workers = bool(persistent_workers)
        self.pin_memory = bool(pin_memory)
        self.pin_memory_device = pin_memory_device
        self.in_order = in_order
        self.device = Device(device) if device is not None else None
        self._default_collation = collate_fn is None
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self._iterator: Any = None
        self._initialized = True

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FIXED and getattr(self, "_initialized", False):
            raise ValueError(
                f"{name} attribute should not be set after {type(self).__name__} is initialized"
            )
        super().__setattr__(name, value)

    def __iter__(self) -> Iterator[Any]:
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        from gradflow.data.worker_pool import WorkerPoolIter

        if not self.persistent_workers:
            return WorkerPoolIter(self)
        if self._iterator is None or self._iterator.closed:
            self._iterator = WorkerPoolIter(self)
        else:
            self._iterator.reset()
        return self._iterator


# What the index order and the workers were built from: fixed once the loader exists.
_FIXED = frozenset(
    ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers")
)


class _BaseIter:
    """What both iterators share: the epoch's base seed and its batches of indices."""

    def __init__(self, loader: DataLoader | _LoaderView) -> None:
        self.loader = loader if isinstance(loader, _LoaderView) else _LoaderView(loader)
        # Batches are fetched under a seed unless no user code runs (the TensorDataset fast
        # path) or the dataset is a stream (gradflow/data/fetch.py says why).
        self.seeded = not isinstance(self.loader.dataset, IterableDataset) and not (
            self.loader._auto_collation
            and self.loader._fetch_collate is default_collate
            and tensor_source(self.loader.dataset) is not None
        )
        self.start_epoch()

    def start_epoch(self) -> None:
        # The base seed is drawn before the sampler's order, as in PyTorch.
        self.base_seed = int(seed_for(self.loader.generator, CPU).integers(0, 2**63 - 1))
        self.index_iter = self.loader._index_batches()
        self.batch_number = 0

    def next_task(self) -> tuple[int, Any, int | None]:
        """(batch number, indices, batch seed) of the next batch; StopIteration at the end."""
        indices = next(self.index_iter)
        number = self.batch_number
        self.batch_number += 1
        return number, indices, batch_seed(self.base_seed, number) if self.seeded else None

    def __iter__(self) -> Iterator[Any]:
        return self

    def __len__(self) -> int:
        return len(self.loader)


class _SingleProcessIter(_BaseIter):
    """Batches fetched in the main process (num_workers=0)."""

    def __init__(self, loader: DataLoader) -> None:
        super().__init__(loader)
        self.fetcher = self.loader.make_fetcher()
        if loader.pin_memory:
            warn_if_cannot_pin()

    def __next__(self) -> Any:
        _, indices, seed = self.next_task()
        return self.loader._finish(self.fetcher.fetch(indices, seed))


def _collate_each(samples: Any) -> Any:
    """default_collate, called on the samples one batch at a time (no fast path)."""
    return default_collate(samples)


def _check_batch_size(batch_size: Any) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | numpy.integer):
        raise TypeError(f"batch_size must be a positive int, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size}")


def default_context() -> Any:
    """The workers' multiprocessing context when none is given: 'fork' where the system has
    it (PyTorch's default on Linux, also under Python 3.14, whose own default is not fork),
    else the system's default."""
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _context(context: Any, num_workers: int) -> Any:
    """The `multiprocessing_context` argument checked: None, or a start method's name (made
    a context) or a context, and only with workers."""
    if context is None:
        return None
    if num_workers == 0:
        raise ValueError(
            "multiprocessing_context can only be used with multi-process loading "
            f"(num_workers > 0), but got num_workers={num_workers}"
        )
    if isinstance(context, str):
        methods = multiprocessing.get_all_start_methods()
        if context not in methods:
            raise ValueError(
                f"multiprocessing_context option should specify a valid start method in "
                f"{methods!r}, but got multiprocessing_context={context!r}"
            )
        return multiprocessing.get_context(context)
    if not isinstance(context, multiprocessing.context.BaseContext):
        raise TypeError(
            "multiprocessing_context option should be a valid context object or a string "
            f"specifying the start method, but got multiprocessing_context={context}"
        )
    return context


# ---- pinned memory and devices ---------------------------------------------------------------
def _cuda_available() -> bool:
    from gradflow import cuda

    return cuda.is_available()


def warn_if_cannot_pin() -> None:
    if not _cuda_available():
        warnings.warn(
            "'pin_memory' argument is set as true but no accelerator is found, then device "
            "pinned memory won't be used.",
            stacklevel=3,
        )


def pin(batch: Any) -> Any:
    """The batch with every cpu Tensor copied into page-locked host memory (CuPy's
    ``cupyx.empty_pinned``), when CUDA is available; unchanged otherwise."""
    if not _cuda_available():
        return batch
    import cupyx

    def pinned(array: Any) -> Any:
        if not isinstance(array, numpy.ndarray):
            return array  # already on a GPU
        try:
            buffer = cupyx.empty_pinned(array.shape, array.dtype)
        except AttributeError:  # the CuPy stand-in (no GPU) has no pinned memory
            return array
        buffer[...] = array
        return buffer

    return _map_tensors(batch, lambda t: Tensor._wrap(pinned(t.array)))


def _move(batch: Any, device: Device) -> Any:
    """The batch with every Tensor in it moved to `device`."""
    return _map_tensors(batch, lambda t: Tensor._wrap(move_array(t.array, device)))


def _map_tensors(batch: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    if isinstance(batch, Tensor):
        return fn(batch)
    if isinstance(batch, Mapping):
        return {key: _map_tensors(value, fn) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_map_tensors(value, fn) for value in batch))
    if isinstance(batch, tuple | list):
        return type(batch)(_map_tensors(value, fn) for value in batch)
    return batch
