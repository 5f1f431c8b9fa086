"""What the stand-in counts: kernel launches, cuBLAS calls, host syncs and copies."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator


@dataclasses.dataclass
class Counts:
    """Events on the stand-in's one device, as CuPy 14.2 would cause them.

    - ``kernels``: kernels CuPy itself launches (elementwise, reduction, copy, fill, scatter):
      one per CuPy call that writes new device memory. A view (reshape of a contiguous array,
      transpose, basic slicing, broadcast_to) launches nothing; ``empty`` launches nothing.
    - ``raw_launches``: launches of our own kernels (``RawModule`` functions).
    - ``cublas``: GEMM-family calls (matmul, dot, tensordot, einsum, inner, vdot).
    - ``syncs``: host waits for the device: ``.get()``, ``item()``, ``float()``/``int()``/
      ``bool()``, ``tolist()``, boolean-mask indexing (CuPy counts the mask on the host),
      ``nonzero``/``unique``/one-argument ``where``, stream and device synchronize.
    - ``h2d`` / ``d2h``: host-to-device and device-to-host copies (a ``.get()`` is one d2h
      and one sync).
    - ``get_function``: ``RawModule.get_function`` calls (each builds a kernel object in CuPy).
    """

    kernels: int = 0
    raw_launches: int = 0
    cublas: int = 0
    syncs: int = 0
    h2d: int = 0
    d2h: int = 0
    get_function: int = 0

    def launches(self) -> int:
        """All kernel launches: CuPy's own, ours, and cuBLAS calls (one each)."""
        return self.kernels + self.raw_launches + self.cublas

    def __sub__(self, other: Counts) -> Counts:
        return Counts(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in _FIELDS})


_FIELDS = dataclasses.fields(Counts)
COUNTS = Counts()  # the running totals since the stand-in was installed


def snapshot() -> Counts:
    """A copy of the running totals."""
    return dataclasses.replace(COUNTS)


class Counting:
    """The counts of a ``with counting() as c:`` block: ``c.counts`` once the block is left
    (and, inside it, what has happened so far)."""

    def __init__(self) -> None:
        self._start = snapshot()
        self._end: Counts | None = None

    @property
    def counts(self) -> Counts:
        return (self._end or snapshot()) - self._start


@contextlib.contextmanager
def counting() -> Iterator[Counting]:
    """Counts what the block does on the stand-in device."""
    block = Counting()
    try:
        yield block
    finally:
        block._end = snapshot()
