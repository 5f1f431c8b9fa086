"""The main process's side of DataLoader workers: start them, hand out tasks, reorder results.

Tasks go round-robin to the workers' index queues, at most ``prefetch_factor * num_workers``
in flight; results come back on one queue in any order and are handed out in the sampler's
order. The workers are always shut down and joined (terminated if they do not stop): at the
end of an epoch (unless persistent), on an error, on ``close()``, on KeyboardInterrupt, and
when the iterator is garbage-collected (a ``break`` out of the loop).
"""

from __future__ import annotations

import contextlib
import itertools
import pickle
import queue
from typing import Any

import numpy

from gradflow.data.dataset import IterableDataset, tensor_source
from gradflow.data.fetch import CUDA_IN_WORKER, dumps
from gradflow.data.worker import ExceptionWrapper, IterableEnd, Resume, worker_loop

# How often a wait without a timeout checks that the workers are alive (seconds).
STATUS_INTERVAL = 1.0
# How long shutting down waits for a worker to exit before terminating it (seconds).
JOIN_TIMEOUT = 5.0


class WorkerPoolIter:
    """An epoch of batches fetched by `loader.num_workers` worker processes."""

    def __init__(self, loader: Any) -> None:
        from gradflow.data.dataloader import _BaseIter, default_context, warn_if_cannot_pin

        self.closed = True  # until the workers exist, nothing to shut down
        self.epoch = _BaseIter(loader)  # base seed and batches of indices
        self.loader = loader = self.epoch.loader  # a view: no reference to the loader itself
        self.iterable = isinstance(loader.dataset, IterableDataset)
        source = tensor_source(loader.dataset)
        if source is not None and any(not isinstance(t.array, numpy.ndarray) for t in source[0]):
            raise RuntimeError(f"DataLoader: the dataset holds cuda tensors; {CUDA_IN_WORKER}")
        if loader.pin_memory:
            warn_if_cannot_pin()
        context = loader.multiprocessing_context or default_context()
        payload: Any = (loader.dataset, loader._fetch_collate, loader.worker_init_fn)
        if context.get_start_method() != "fork":
            # Spawned workers get the dataset pickled; ours sends Tensors as arrays.
            try:
                payload = dumps(payload)
            except Exception as exc:
                raise RuntimeError(
                    f"DataLoader: the dataset, collate_fn or worker_init_fn can't be sent to "
                    f"'{context.get_start_method()}' worker processes ({exc}); define them at "
                    "module level so they can be pickled, or use multiprocessing_context='fork'"
                ) from exc
        n = loader.num_workers
        self.results = context.Queue()
        self.done = context.Event()
        self.index_queues: list[Any] = []
        self.workers: list[Any] = []
        self.closed = False
        try:
            for worker_id in range(n):
                index_queue = context.Queue()
                index_queue.cancel_join_thread()  # tasks left unread at shutdown are dropped
                worker = context.Process(
                    target=worker_loop,
                    args=(
                        self.iterable,
                        payload,
                        index_queue,
                        self.results,
                        self.done,
                        loader._auto_collation,
                        loader.drop_last,
                        self.epoch.base_seed,
                        worker_id,
                        n,
                    ),
                    daemon=True,
                )
                worker.start()
                self.index_queues.append(index_queue)
                self.workers.append(worker)
            self._prefetch()
        except BaseException:
            self.close()
            raise

    # ---- the epoch ------------------------------------------------------------------------
    def _prefetch(self) -> None:
        self.sent = self.received = 0  # batches handed to workers, and to the user
        self.pending: dict[int, tuple[Any, ...]] = {}  # number -> (worker,) or (worker, data)
        self.active = [True] * len(self.workers)
        self.cycle = itertools.cycle(range(len(self.workers)))
        self.outstanding = 0
        for _ in range(self.loader.prefetch_factor * len(self.workers)):
            self._send_task()

    def reset(self) -> None:
        """Start a new epoch on the same (persistent) workers."""
        self.epoch.start_epoch()
        for index_queue in self.index_queues:
            index_queue.put(Resume())
        # Results of an unfinished epoch come before each worker's Resume: drop them.
        waiting = len(self.workers)
        while waiting:
            number, _ = self._get()
            if isinstance(number, Resume):
                waiting -= 1
        self._prefetch()

    def _send_task(self) -> None:
        try:
            number, indices, seed = self.epoch.next_task()
        except StopIteration:
            return
        for _ in range(len(self.workers)):
            worker_id = next(self.cycle)
            if self.active[worker_id]:
                break
        else:
            return
        self.index_queues[worker_id].put((number, indices, seed))
        self.pending[number] = (worker_id,)
        self.outstanding += 1
        self.sent += 1

    def __iter__(self) -> WorkerPoolIter:
        return self

    def __len__(self) -> int:
        return len(self.loader)

    def __next__(self) -> Any:
        try:
            return self._next()
        except StopIteration:
            if not self.loader.persistent_workers:
                self.close()
            raise
        except BaseException:  # a worker's error, a timeout, KeyboardInterrupt
            self.close()
            raise

    def _next(self) -> Any:
        if self.closed:
            raise StopIteration
        while True:
            # Skip batches that went to an IterableDataset worker whose stream has ended.
            while self.received < self.sent:
                entry = self.pending[self.received]
                if len(entry) == 2 or self.active[entry[0]]:
                    break
                del self.pending[self.received]
                self.received += 1
            else:
                raise StopIteration
            entry = self.pending[self.received]
            if len(entry) == 2:
                del self.pending[self.received]
                return self._deliver(entry[1])
            number, data = self._get()
            self.outstanding -= 1
            if isinstance(data, IterableEnd):
                self.active[data.worker_id] = False
                self._send_task()
                continue
            if number != self.received:
                self.pending[number] += (data,)
                continue
            del self.pending[number]
            return self._deliver(data)

    def _deliver(self, data: Any) -> Any:
        self.received += 1
        self._send_task()
        if isinstance(data, ExceptionWrapper):
            data.reraise()
        return self.loader._finish(pickle.loads(data))

    def _get(self) -> tuple[Any, Any]:
        """The next result of any worker; raises when waiting longer than the timeout, or
        when a worker died without a word."""
        timeout = self.loader.timeout
        if timeout > 0:
            try:
                return self.results.get(timeout=timeout)
            except queue.Empty:
                raise RuntimeError(f"DataLoader timed out after {timeout} seconds") from None
        while True:
            try:
                return self.results.get(timeout=STATUS_INTERVAL)
            except queue.Empty:
                dead = [w.pid for w in self.workers if not w.is_alive()]
                if dead:
                    pids = ", ".join(str(pid) for pid in dead)
                    raise RuntimeError(
                        f"DataLoader worker (pid(s) {pids}) exited unexpectedly"
                    ) from None

    # ---- shutting down ----------------------------------------------------------------------
    def close(self) -> None:
        """Stop and join every worker (terminating any that does not exit)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.done.set()
            for index_queue in self.index_queues:
                with contextlib.suppress(OSError, ValueError):  # a queue already closed
                    index_queue.put(None)
            for worker in self.workers:
                worker.join(timeout=JOIN_TIMEOUT)
        finally:
            for worker in self.workers:
                if worker.is_alive():
                    worker.terminate()
                    worker.join()
            for q in [*self.index_queues, self.results]:
                q.cancel_join_thread()
                q.close()

    def __del__(self) -> None:
        if not getattr(self, "closed", True):
            # At interpreter exit the modules close() needs may be gone; multiprocessing then
            # terminates the (daemonic) workers itself.
            with contextlib.suppress(Exception):
                self.close()
