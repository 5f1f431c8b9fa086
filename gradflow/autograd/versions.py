"""Version counters per storage: every in-place write is seen by every node that saved it.

PyTorch keeps one version counter per storage, shared by a tensor, its views and its
``detach()``: a node records the versions of what it saved, and backward refuses to run when
one changed. gradflow keys the counter by the storage itself, the root of an array's ``base``
chain (NumPy and CuPy both point a view's ``base`` at the array that owns the memory), so a
write through any alias — a slice, ``view(-1)``, ``detach()``, an op's saved output changed
under ``no_grad`` — is seen without each view op having to pass a counter along.

Cost on the hot path: a node remembers the global write epoch when it is recorded (one int);
its backward compares it with the current epoch and looks at its saved arrays only when some
in-place write happened in between (rare inside one forward/backward).
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

_epoch = [0]  # bumped by every in-place write
# id(storage root) -> [version count, epoch of its last write]; an entry lives as long as
# its root array (removed by a finalizer), so a reused id never inherits a count.
_written: dict[int, list[int]] = {}


def current_epoch() -> int:
    return _epoch[0]


def storage_root(array: Any) -> Any:
    """The array that owns ``array``'s memory (itself when it owns it)."""
    base = getattr(array, "base", None)
    while base is not None and hasattr(base, "shape"):
        array, base = base, getattr(base, "base", None)
    return array


def version(array: Any) -> int:
    """How many in-place writes the storage under ``array`` has had."""
    entry = _written.get(id(storage_root(array)))
    return 0 if entry is None else entry[0]


def bump(array: Any, by: int = 1) -> None:
    """Records an in-place write to the storage under ``array``."""
    root = storage_root(array)
    key = id(root)
    _epoch[0] += 1
    entry = _written.get(key)
    if entry is None:
        _written[key] = [by, _epoch[0]]
        with contextlib.suppress(TypeError):  # no weak references: the entry stays
            weakref.finalize(root, _written.pop, key, None)
    else:
        entry[0] += by
        entry[1] = _epoch[0]


# id(storage root) -> (epoch of the last write recorded in the graph, whether it was written
# through a view). A rebase makes the written tensor the output of a new node. _any_rebase[0]
# is False until the first, so the per-op check below costs one read until a program records
# an in-place write.
_rebased: dict[int, tuple[int, bool]] = {}
_any_rebase = [False]


def rebased(array: Any) -> None:
    """Records that the storage under ``array`` got a new history (a recorded write), written
    through ``array`` itself: the owner of the memory, or a view of it (``x.view(-1).relu_()``,
    an op's output that views a buffer)."""
    root = storage_root(array)
    key = id(root)
    if key not in _rebased:
        with contextlib.suppress(TypeError):
            weakref.finalize(root, _rebased.pop, key, None)
    _rebased[key] = (_epoch[0], root is not array)
    _any_rebase[0] = True


def stale_view(array: Any, made_at: int) -> bool:
    """True when the tensor over ``array``, made at epoch ``made_at``, shows values that a
    later recorded write gave a history it does not have: a view of a storage whose owner was
    written, or, after a write through a view, any other tensor over that storage (the owner
    included; PyTorch would rebase the owner, gradflow refuses to use it instead)."""
    root = storage_root(array)
    entry = _rebased.get(id(root))
    if entry is None or (root is array and not entry[1]):
        return False
    return entry[0] > made_at


def modified_since(array: Any, epoch: int) -> bool:
    """True when the storage under ``array`` was written in place after ``epoch``."""
    entry = _written.get(id(storage_root(array)))
    return entry is not None and entry[1] > epoch
