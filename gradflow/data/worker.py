"""DataLoader worker processes: the loop each worker runs, and get_worker_info().

A worker gets ``(batch number, indices)`` tasks on its own index queue, fetches and collates
the batch (gradflow/data/fetch.py), and puts ``(batch number, pickled batch)`` on the result
queue that all workers share. ``None`` on its index queue ends it; a ``Resume`` starts a new
epoch (persistent workers). A worker also ends when the main process is gone.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import sys
import traceback
from dataclasses import dataclass
from typing import Any

from gradflow.data.fetch import IterableFetcher, MapFetcher, dumps, seed_all

# How often a waiting worker checks that the main process is still there (seconds).
POLL_INTERVAL = 1.0


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker process knows of itself: ``id`` in [0, num_workers), ``num_workers``,
    ``seed`` (its generators' seed: the epoch's base seed + id) and ``dataset`` (its copy)."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """This worker's WorkerInfo inside a DataLoader worker process; None in the main process.

    An IterableDataset uses it to give each worker its own share of the stream:

    >>> get_worker_info() is None
    True
    """
    return _worker_info


@dataclass(frozen=True)
class Resume:
    """Start a new epoch of a persistent worker."""


@dataclass(frozen=True)
class IterableEnd:
    """A worker's IterableDataset stream is exhausted."""

    worker_id: int


@dataclass(frozen=True)
class ExceptionWrapper:
    """An exception raised in a worker: its type and a message with the worker's traceback."""

    exc_type: type
    message: str

    @classmethod
    def current(cls, where: str) -> ExceptionWrapper:
        """The exception being handled, as PyTorch reports it."""
        exc = sys.exc_info()[1]
        text = "".join(traceback.format_exception(exc))
        exc_type: type = type(exc)
        try:
            pickle.dumps(exc_type)
        except Exception:  # a class the main process can't import (defined in a function)
            exc_type = RuntimeError
        return cls(exc_type, f"Caught {type(exc).__name__} {where}.\nOriginal {text}")

    def reraise(self) -> None:
        """Raise the worker's exception type with the traceback text (RuntimeError when that
        type cannot be built from one message)."""
        message = self.message
        if self.exc_type is KeyError:
            message = _KeyErrorMessage(message)  # KeyError's str() is the repr of its key
        try:
            exception = self.exc_type(message)
        except Exception:
            raise RuntimeError(message) from None
        raise exception


class _KeyErrorMessage(str):
    """A message whose repr is itself, so ``str(KeyError(message))`` shows it as it is."""

    def __repr__(self) -> str:
        return self


def worker_loop(
    iterable: bool,
    payload: Any,
    index_queue: Any,
    result_queue: Any,
    done_event: Any,
    auto_collation: bool,
    drop_last: bool,
    base_seed: int,
    worker_id: int,
    num_workers: int,
) -> None:
    """The body of worker `worker_id`. `payload` is ``(dataset, collate_fn, worker_init_fn)``,
    or those pickled to bytes (spawned workers: Tensors travel as arrays)."""
    global _worker_info
    # Ctrl-C reaches the whole process group; the main process shuts the workers down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    if isinstance(payload, bytes):
        payload = pickle.loads(payload)
    dataset, collate_fn, init_fn = payload
    where = f"in DataLoader worker process {worker_id}"
    fetcher_type = IterableFetcher if iterable else MapFetcher

    def make_fetcher() -> Any:
        fetcher = fetcher_type(dataset, auto_collation, collate_fn, drop_last)
        fetcher.restore = False  # nothing else in a worker draws between batches
        return fetcher

    failure = fetcher = None
    try:
        seed_all(base_seed + worker_id)
        _worker_info = WorkerInfo(worker_id, num_workers, base_seed + worker_id, dataset)
        if init_fn is not None:
            init_fn(worker_id)
        fetcher = make_fetcher()
    except Exception:
        failure = ExceptionWrapper.current(where)
    ended = False
    while os.getppid() == parent:
        try:
            task = index_queue.get(timeout=POLL_INTERVAL)
        except queue.Empty:
            continue
        if task is None:
            break
        if isinstance(task, Resume):
            # A new epoch of a persistent worker: a fresh stream of an IterableDataset (the
            # worker's generators go on, as in PyTorch; batch seeds come with each task).
            ended = False
            if failure is None:
                try:
                    fetcher = make_fetcher()
                except Exception:
                    failure = ExceptionWrapper.current(where)
            result_queue.put((task, None))
            continue
        if done_event.is_set() or ended:
            continue
        batch_index, indices, seed = task
        if failure is not None:
            data: Any = failure
            failure = None
        else:
            try:
                data = dumps(fetcher.fetch(indices, seed))
            except StopIteration:
                data, ended = IterableEnd(worker_id), True
            except Exception:
                data = ExceptionWrapper.current(where)
        result_queue.put((batch_index, data))
    if done_event.is_set():
        # Nobody reads what is still queued: don't wait at exit to flush it.
        result_queue.cancel_join_thread()
        result_queue.close()
