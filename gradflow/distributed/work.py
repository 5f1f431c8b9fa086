"""Work: the handle of a collective started with ``async_op=True`` (PyTorch's ``Work``).

An operation is a generator that yields lists of MPI requests (or objects with ``Test()``)
and, once they complete, does the rest (writes results into the tensors, posts the next
step). ``wait`` polls with a deadline instead of blocking in MPI, so a rank that never comes
raises naming the operation rather than hanging the job.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from datetime import timedelta
from typing import Any

_SPINS_BEFORE_SLEEP = 2000
_SLEEP_S = 5e-5


class Work:
    """A started operation: ``wait()`` until it is done, ``is_completed()`` to ask.

    Keep it until then: it holds the buffers MPI reads and writes (and, for a staged tensor,
    the copy whose values reach the tensor only when the operation completes)."""

    def __init__(
        self,
        op: str,
        steps: Generator[list[Any], None, None],
        timeout_s: float,
        result: list[Any] | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.op = op
        self._info = info if info is not None else {}
        self._steps = steps
        self._requests: list[Any] | None = []
        self._timeout_s = timeout_s
        self._result = result if result is not None else []
        self._advance()

    def _advance(self) -> bool:
        """Moves past every finished step; True when the whole operation is done."""
        while self._requests is not None:
            if self._requests and not all(request.Test() for request in self._requests):
                return False
            try:
                self._requests = list(next(self._steps))
            except StopIteration:
                self._requests = None
        return True

    def is_completed(self) -> bool:
        return self._advance()

    def wait(self, timeout: timedelta | float | None = None) -> bool:
        """Blocks until the operation is done (results are in the tensors when it returns).

        Raises RuntimeError naming the operation when `timeout` (default: the group's, from
        ``init_process_group(timeout=...)``) passes first."""
        limit = self._timeout_s if timeout is None else _seconds(timeout)
        deadline = time.monotonic() + limit
        spins = 0
        while not self._advance():
            spins += 1
            if spins > _SPINS_BEFORE_SLEEP:
                if time.monotonic() > deadline:
                    message = (
                        f"{self.op} timed out after {limit:g} s waiting for the other ranks "
                        "(one may have failed, or is calling a different operation); raise "
                        "init_process_group(timeout=...) if it only needs longer"
                    )
                    _break_the_group(message)
                    raise RuntimeError(message)
                time.sleep(_SLEEP_S)
        return True

    def result(self) -> list[Any]:
        """The operation's output tensors (after ``wait``)."""
        return self._result

    def _source_rank(self) -> int | None:
        """The rank a completed ``irecv`` received from (PyTorch's ``Work._source_rank``)."""
        return self._info.get("source_rank")

    def get_future(self) -> Any:
        raise NotImplementedError("gradflow's Work has no futures: call wait()")


def _break_the_group(reason: str) -> None:
    """After a timeout the operation's MPI requests stay posted and the ranks no longer agree
    on what comes next: later calls on the group raise (as PyTorch's NCCL aborts its
    communicator) instead of pairing with the abandoned one."""
    from gradflow.distributed import process_group

    if process_group._world is not None:
        process_group._world.broken = reason


def _seconds(timeout: timedelta | float) -> float:
    return timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)


def run(work: Work, async_op: bool) -> Work | None:
    """What a collective returns: the handle, or None after waiting for it."""
    if async_op:
        return work
    work.wait()
    return None
