"""Launchers for kernels/optim.cu: one launch updates every tensor of a parameter group.

A launch describes its group to the kernel by a table in device memory (the layout is in
kernels/optim.cu): the tensors' size offsets, then a section of device addresses per array
list. The host packs the tables of all the launches of a :class:`KernelLaunches` batch (an
optimizer step: every group, dtype and step count) into one buffer and uploads it in one copy
per device. With a :class:`TableCache` (each optimizer keeps one), a step whose arrays all sit
where they sat on an earlier step reuses that step's tables and uploads nothing: a table holds
only sizes and addresses, never a hyperparameter or anything that changes per step (the step
count, the bias corrections and ``first_step`` are scalar kernel arguments).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from gradflow.kernels._common import (
    BLOCK,
    KernelBackend,
    check_contiguous,
    check_float_arrays,
    check_shape,
    grid_1d,
    resolve_backend,
    scalar,
)


class TableCache:
    """Device tables already uploaded, keyed by what they were built from.

    A table holds nothing but its tensors' sizes and device addresses, so the key is the
    backend, the device, and every launch's sizes and addresses: a table found under a key is
    exactly what a fresh build would upload. That keeps it right when a parameter's array is
    replaced: an array at a new address makes a new key (the old table is not found again), and
    one at the old address with the old size makes the very same table. The ``capacity`` most
    recently used entries are kept; older ones are dropped (their device memory goes back to
    the pool). Safe to share between threads.
    """

    def __init__(self, capacity: int = 16) -> None:
        if capacity < 1:
            raise ValueError(f"TableCache: capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        """The entry stored under ``key`` (now the most recently used), or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: Hashable, entry: Any) -> None:
        """Keeps ``entry`` under ``key``, dropping the least recently used beyond capacity."""
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drops every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class _Launch:
    """One queued launch: its group (sizes, addresses) and its kernel's scalar arguments.

    It holds the group's arrays too: a table holds bare addresses, and an array that only the
    caller referenced (a contiguous copy of a gradient) must outlive the launch.
    """

    __slots__ = ("addresses", "args", "arrays", "backend", "device", "dtype", "kernel", "sizes")

    def __init__(
        self,
        backend: KernelBackend,
        dtype: Any,
        device: Hashable,
        sizes: tuple[int, ...],
        addresses: tuple[int, ...],
        kernel: str,
        args: tuple[Any, ...],
        arrays: tuple[Any, ...],
    ) -> None:
        self.backend, self.dtype, self.device = backend, dtype, device
        self.sizes, self.addresses = sizes, addresses
        self.kernel, self.args, self.arrays = kernel, args, arrays

    def words(self) -> int:
        return len(self.sizes) + 1 + len(self.addresses)

    def pack(self, out: np.ndarray) -> None:
        """Writes this launch's table (kernels/optim.cu's layout) into ``out``."""
        count = len(self.sizes)
        out[0] = 0
        out[1 : count + 1] = np.cumsum(self.sizes, dtype=np.int64)
        out[count + 1 :] = np.fromiter(self.addresses, dtype=np.uint64, count=len(self.addresses))


class KernelLaunches:
    """Fused optimizer launches run together: tables in one upload per device, then kernels.

    Pass it as ``launches=`` to the ``*_step_multi`` launchers: each checks its arguments at
    once and queues its launch; :meth:`run` packs the queued launches' tables back to back into
    one host buffer per (backend, device), uploads each buffer in one copy (or takes it from
    ``tables`` when an earlier batch had the same sizes and addresses: no copy), and launches
    the kernels in the order they were queued. The arrays change only when :meth:`run`
    launches: between queueing a launch and running it, nothing may read or write them.
    """

    def __init__(self, tables: TableCache | None = None) -> None:
        self.tables = tables
        self._queued: list[_Launch] = []

    def __len__(self) -> int:
        return len(self._queued)

    def queue(self, launch: _Launch) -> None:
        self._queued.append(launch)

    def run(self) -> None:
        """Uploads the queued launches' tables (one copy per device at most) and launches."""
        queued, self._queued = self._queued, []
        places: dict[tuple[int, Hashable], list[_Launch]] = {}
        for launch in queued:
            places.setdefault((id(launch.backend), launch.device), []).append(launch)
        views: dict[int, Any] = {}
        for launches in places.values():
            for launch, view in zip(launches, self._tables_of(launches)):
                views[id(launch)] = view
        for launch in queued:
            backend, device = launch.backend, launch.device
            grid = (grid_1d(backend, device, sum(launch.sizes)), 1, 1)
            args = (views[id(launch)], np.int32(len(launch.sizes)), *launch.args)
            backend.launch("optim", launch.dtype, launch.kernel, grid, (BLOCK, 1, 1), args, device)

    def _tables_of(self, launches: list[_Launch]) -> tuple[Any, ...]:
        """The device tables of launches on one backend and device: views into one buffer."""
        backend, device = launches[0].backend, launches[0].device
        key = (backend.name, device, tuple((x.sizes, x.addresses) for x in launches))
        tables = self.tables
        entry = None if tables is None else tables.get(key)
        if entry is None:
            host = np.empty(sum(x.words() for x in launches), dtype=np.uint64)
            bounds = []
            start = 0
            for launch in launches:
                stop = start + launch.words()
                launch.pack(host[start:stop])
                bounds.append((start, stop))
                start = stop
            table = backend.upload(host, device)
            entry = (table,) if len(launches) == 1 else tuple(table[a:b] for a, b in bounds)
            if tables is not None:
                tables.put(key, entry)
        return entry


def _queue(
    launcher: str,
    kernel: str,
    launches: KernelLaunches | None,
    tables: TableCache | None,
    backend: KernelBackend | None,
    params: Sequence[Any],
    lists: dict[str, Sequence[Any] | None],
    scalars: tuple[float | bool, ...],
) -> None:
    """Checks a group and queues its launch on ``launches`` (or runs it now, alone).

    The table's address sections follow the order (params, *lists); a list given as None gets
    a section of zeros (null pointers), which the kernel must not read. ``scalars`` are the
    kernel's arguments after the table and T: floats become scalar_t, bools int.
    """
    if launches is not None and tables is not None:
        raise ValueError(
            f"{launcher}: pass 'tables' to the KernelLaunches given as 'launches', not to the "
            "launcher"
        )
    backend = resolve_backend(backend)
    params = list(params)
    for name, arrays in lists.items():
        if arrays is not None and len(arrays) != len(params):
            raise ValueError(
                f"{launcher}: '{name}' has {len(arrays)} arrays but 'params' has {len(params)}; "
                "pass one per parameter"
            )
    if not params:
        return
    named = {f"params[{i}]": p for i, p in enumerate(params)}
    for name, arrays in lists.items():
        named.update({f"{name}[{i}]": a for i, a in enumerate(arrays or ())})
    dtype, device = check_float_arrays(launcher, backend, **named)
    for name, x in named.items():
        index = int(name[name.index("[") + 1 : -1])
        check_shape(launcher, name, x, params[index].shape, f"the shape of 'params[{index}]'")
        check_contiguous(launcher, name, x)
    sizes = tuple(int(p.size) for p in params)
    if not sum(sizes):
        return
    addresses: list[int] = []
    for arrays in (params, *lists.values()):
        if arrays is None:
            addresses.extend([0] * len(params))
        else:
            addresses.extend(backend.address(a) for a in arrays)
    args = tuple(np.int32(v) if isinstance(v, bool) else scalar(dtype, v) for v in scalars)
    arrays = tuple(named.values())
    launch = _Launch(backend, dtype, device, sizes, tuple(addresses), kernel, args, arrays)
    if launches is None:
        alone = KernelLaunches(tables)
        alone.queue(launch)
        alone.run()
    else:
        launches.queue(launch)


def sgd_step_multi(
    params: Sequence[Any],
    grads: Sequence[Any],
    bufs: Sequence[Any] | None,
    *,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    first_step: bool = False,
    tables: TableCache | None = None,
    launches: KernelLaunches | None = None,
    backend: KernelBackend | None = None,
) -> None:
    """One torch.optim.SGD step over a group, in place (params, and bufs when momentum != 0).

    bufs are the momentum buffers (contiguous, shaped like params; None when momentum == 0);
    pass first_step=True on the step that creates them: the kernel then sets buf = d, as
    PyTorch does, so they may start uninitialized. The launch runs now, its table kept in
    ``tables`` when given, or joins ``launches`` and runs with it (see KernelLaunches).
    """
    launcher = "sgd_step_multi"
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(f"{launcher}: nesterov needs momentum > 0 and dampening == 0")
    if momentum != 0 and bufs is None:
        raise ValueError(f"{launcher}: momentum={momentum} needs momentum buffers in 'bufs'")
    lists = {"grads": grads, "bufs": bufs if momentum != 0 else None}
    scalars = (lr, momentum, dampening, weight_decay, bool(nesterov), bool(first_step))
    _queue(launcher, "sgd_step", launches, tables, backend, params, lists, scalars)


def adam_step_multi(
    params: Sequence[Any],
    grads: Sequence[Any],
    exp_avgs: Sequence[Any],
    exp_avg_sqs: Sequence[Any],
    *,
    lr: float,
    step: int,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    tables: TableCache | None = None,
    launches: KernelLaunches | None = None,
    backend: KernelBackend | None = None,
) -> None:
    """One torch.optim.Adam (decoupled=False) or AdamW (decoupled=True) step, in place.

    ``step`` is the group's step count after this update (1 on the first call); every tensor
    of one launch shares it, so tensors whose counts differ go in separate calls. exp_avgs and
    exp_avg_sqs start as zeros, as in PyTorch. The launch runs now, its table kept in
    ``tables`` when given, or joins ``launches`` and runs with it (see KernelLaunches).
    """
    launcher = "adam_step_multi"
    if step < 1:
        raise ValueError(f"{launcher}: step must be >= 1 (counting this step), got {step}")
    step_size = lr / (1 - beta1**step)
    bias_correction2_sqrt = math.sqrt(1 - beta2**step)
    lists = {"grads": grads, "exp_avgs": exp_avgs, "exp_avg_sqs": exp_avg_sqs}
    scalars = (lr, beta1, beta2, eps, weight_decay, bool(decoupled), step_size,
               bias_correction2_sqrt)  # fmt: skip
    _queue(launcher, "adam_step", launches, tables, backend, params, lists, scalars)


def rmsprop_step_multi(
    params: Sequence[Any],
    grads: Sequence[Any],
    square_avgs: Sequence[Any],
    grad_avgs: Sequence[Any] | None = None,
    bufs: Sequence[Any] | None = None,
    *,
    lr: float,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    maximize: bool = False,
    tables: TableCache | None = None,
    launches: KernelLaunches | None = None,
    backend: KernelBackend | None = None,
) -> None:
    """One torch.optim.RMSprop step over a group, in place.

    square_avgs (and grad_avgs, bufs) start as zeros, as in PyTorch; pass grad_avgs for the
    centered variant (None otherwise) and bufs when momentum != 0 (None when momentum == 0).
    The launch runs now, its table kept in ``tables`` when given, or joins ``launches`` and
    runs with it (see KernelLaunches).
    """
    launcher = "rmsprop_step_multi"
    if momentum != 0 and bufs is None:
        raise ValueError(f"{launcher}: momentum={momentum} needs momentum buffers in 'bufs'")
    lists = {
        "grads": grads,
        "square_avgs": square_avgs,
        "grad_avgs": grad_avgs,
        "bufs": bufs if momentum != 0 else None,
    }
    scalars = (lr, alpha, eps, weight_decay, momentum, grad_avgs is not None, bool(maximize))
    _queue(launcher, "rmsprop_step", launches, tables, backend, params, lists, scalars)
