"""DistributedDataParallel: one model replica per rank, gradients averaged across ranks while
backward runs (PyTorch's ``torch.nn.parallel.DistributedDataParallel``).

At construction rank 0's parameters and buffers are broadcast to every rank. The parameters
that require grad are grouped into buckets of about ``bucket_cap_mb`` megabytes in reverse
registration order (roughly the order backward produces their gradients), one flat buffer per
bucket. Each parameter has a post-accumulate-grad hook: once backward has accumulated its
gradient, the hook copies it into its bucket; when a bucket's last gradient has arrived, a
non-blocking all_reduce (average) of the bucket starts, while backward goes on with the earlier
layers. Buckets start in index order on every rank (a bucket that is ready waits for the ones
before it), so every rank issues the same collectives in the same order. A callback queued on
the engine (``gradflow.autograd.queue_callback``) runs when backward finishes: it starts the
buckets still waiting (with ``find_unused_parameters``, those holding parameters that got no
gradient, counted as zeros), waits for all of them and writes the averaged gradients back into
``param.grad`` before ``backward()`` returns.

With ``find_unused_parameters=True`` the forward's output graph is walked (as PyTorch does) and
the parameters it does not reach are marked ready when backward starts, so their buckets need
not wait for the end; each bucket also carries one flag per parameter saying whether a rank
produced its gradient, and a parameter no rank used keeps its ``.grad``.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

from gradflow.autograd.engine import queue_callback
from gradflow.autograd.grad_mode import is_grad_enabled
from gradflow.backend import get_array_module
from gradflow.nn.module import Module
from gradflow.tensor import Tensor

_MB = 1024 * 1024
_FIRST_BUCKET_BYTES = _MB  # PyTorch's dist._DEFAULT_FIRST_BUCKET_BYTES


def _dist() -> Any:
    from gradflow import distributed

    return distributed


def _tensors_in(value: Any) -> list:
    """The Tensors in a forward's output (nested tuples, lists and dicts)."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for v in value for t in _tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors_in(v)]
    return []


def _make_hook(this: Any, bucket: _Bucket, slot: int) -> Any:
    """A post-accumulate-grad hook that hands the gradient to the wrapper `this` refers to
    (weakly), and does nothing once that wrapper is gone."""

    def hook(param: Tensor) -> None:
        ddp = this()
        if ddp is not None:
            ddp._on_gradient(bucket, slot, param)

    return hook


def _remove_all(handles: list) -> None:
    for handle in handles:
        handle.remove()


class _Bucket:
    """Parameters whose gradients travel together in one flat buffer."""

    def __init__(self, index: int, params: list, with_flags: bool) -> None:
        self.index = index
        self.params = params
        self.offsets: list[int] = []
        total = 0
        for p in params:
            self.offsets.append(total)
            total += p.array.size
        self.numel = total
        xp = get_array_module(params[0].array)
        # with find_unused_parameters, one more value per parameter: 1 where this rank produced
        # its gradient; averaged with the gradients, > 0 says some rank did.
        self.buffer = xp.zeros(total + (len(params) if with_flags else 0), params[0].array.dtype)
        self.with_flags = with_flags
        self.ready: set[int] = set()
        self.work: Any = None

    def reset(self) -> None:
        self.ready.clear()
        self.work = None
        if self.with_flags:
            self.buffer[self.numel :] = 0

    def put(self, slot: int, p: Tensor) -> None:
        start = self.offsets[slot]
        view = self.buffer[start : start + p.array.size]
        grad = p.grad
        if grad is None:
            view[...] = 0
        else:
            if not (grad.array.base is self.buffer or grad.array is view):
                view[...] = grad.array.reshape(-1)
            if self.with_flags:
                self.buffer[self.numel + slot] = 1
        self.ready.add(slot)

    @property
    def complete(self) -> bool:
        return len(self.ready) == len(self.params)


class DistributedDataParallel(Module):
    """Data parallel training: wrap the model on every rank (after
    ``gradflow.distributed.init_process_group``); each rank runs forward and backward on its own
    shard of the batch and ``backward()`` returns with every parameter's ``.grad`` averaged over
    the ranks, so the same optimizer step keeps the replicas equal. See the module docstring for
    how buckets overlap communication with backward.

    ``no_sync()``: a context in which backward only accumulates local gradients (the next
    backward outside it averages the accumulated ones). ``find_unused_parameters=True``: allow
    parameters that get no gradient in an iteration (their bucket still completes; a parameter
    no rank used keeps ``.grad`` as it was). ``broadcast_buffers``: rank 0's buffers are
    broadcast before each forward that records a graph. ``gradient_as_bucket_view=True``:
    ``.grad`` becomes a view of the bucket's buffer (saves a copy). The wrapped model is
    ``.module``; ``state_dict`` keys carry the ``module.`` prefix, as PyTorch's do.

    ``device_ids`` and ``output_device`` must be None for CPU modules; for a cuda module they
    may name its one device. ``dim``, ``check_reduction`` and ``static_graph`` are accepted for
    PyTorch compatibility.
    """

    def __init__(
        self,
        module: Module,
        device_ids: list | None = None,
        output_device: Any = None,
        dim: int = 0,
        broadcast_buffers: bool = True,
        init_sync: bool = True,
        process_group: Any = None,
        bucket_cap_mb: float | None = None,
        find_unused_parameters: bool = False,
        check_reduction: bool = False,
        gradient_as_bucket_view: bool = False,
        static_graph: bool = False,
    ) -> None:
        super().__init__()
        dist = _dist()
        if not isinstance(module, Module):
            raise TypeError(
                f"DistributedDataParallel wraps a gradflow.nn.Module, got {type(module).__name__}"
            )
        if not dist.is_initialized():
            raise RuntimeError(
                "Default process group has not been initialized, please make sure to call "
                "init_process_group (gradflow.distributed.init_process_group(backend='mpi')) "
                "before wrapping a module in DistributedDataParallel"
            )
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            raise RuntimeError(
                "DistributedDataParallel is not needed when a module doesn't have any parameter "
                "that requires a gradient."
            )
        devices = {str(p.device) for p in module.parameters()}
        if len(devices) > 1:
            raise ValueError(
                "DistributedDataParallel's input module must be on the same type of devices, "
                f"but input module parameters locate in {sorted(devices)}."
            )
        (device,) = devices
        if device == "cpu" and (device_ids is not None or output_device is not None):
            raise ValueError(
                "DistributedDataParallel device_ids and output_device arguments only work with "
                "single-device/multiple-device GPU modules or CPU modules, but got device_ids "
                f"{device_ids}, output_device {output_device}, and module parameters "
                f"{{{device}}}. For a CPU module leave both None."
            )
        if device_ids is not None and len(device_ids) > 1:
            raise ValueError(
                "device_ids can only be None or contain a single element (one device per "
                f"process), got {device_ids}"
            )
        if bucket_cap_mb is None:
            bucket_cap_mb = 25
        if not bucket_cap_mb > 0:
            raise ValueError(f"bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self.module = module
        self.device_ids = device_ids
        self.output_device = output_device
        self.dim = dim
        self.broadcast_buffers = broadcast_buffers
        self.process_group = process_group
        self.bucket_bytes_cap = int(bucket_cap_mb * _MB)
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        self._verify_same_parameters(module)
        if init_sync:
            self._broadcast_coalesced([p for p in module.parameters()], "parameters")
            self._broadcast_coalesced(self._buffers_to_sync(), "buffers")
        self._buckets = self._make_buckets(params)
        self._next_bucket = 0
        self._in_backward = False
        self._expect_hooks = False  # set by a forward that syncs, cleared when backward ends
        self._unused: list | None = None
        self._handles = []
        this = weakref.ref(self)  # the hooks must not keep a dropped wrapper alive
        for bucket in self._buckets:
            for slot, p in enumerate(bucket.params):
                hook = _make_hook(this, bucket, slot)
                self._handles.append(p.register_post_accumulate_grad_hook(hook))
        # A wrapper that is dropped takes its hooks with it (re-wrapping a model is common).
        weakref.finalize(self, _remove_all, list(self._handles))

    # ---- collectives --------------------------------------------------------------------
    def _group_kwargs(self) -> dict:
        return {} if self.process_group is None else {"group": self.process_group}

    def _verify_same_parameters(self, module: Module) -> None:
        """Every rank must wrap the same model: the count of parameters, their total size and
        a checksum of their shapes and dtypes are compared (PyTorch checks the shapes too)."""
        import zlib

        import numpy

        dist = _dist()
        params = list(module.parameters())
        shapes = repr([(tuple(p.shape), str(p.array.dtype)) for p in params]).encode()
        mine = numpy.array([len(params), sum(p.array.size for p in params), zlib.crc32(shapes)])
        low, high = Tensor._wrap(mine.copy()), Tensor._wrap(mine.copy())
        dist.all_reduce(low, op=dist.ReduceOp.MIN, **self._group_kwargs())
        dist.all_reduce(high, op=dist.ReduceOp.MAX, **self._group_kwargs())
        if not (numpy.array_equal(low.array, mine) and numpy.array_equal(high.array, mine)):
            raise RuntimeError(
                "DDP expects same model across all ranks, but the ranks' modules differ: rank "
                f"{dist.get_rank()} has {len(params)} parameters of {int(mine[1])} elements in "
                f"all, while the ranks range from {int(low.array[0])} to {int(high.array[0])} "
                f"parameters and {int(low.array[1])} to {int(high.array[1])} elements (or the "
                "same counts in other shapes or dtypes); build the same model on every rank"
            )

    def _buffers_to_sync(self) -> list:
        return [b for b in self.module.buffers() if b is not None]

    def _broadcast_coalesced(self, tensors: list, what: str) -> None:
        """Rank 0's values into `tensors` on every rank: one broadcast per dtype (and device)
        of the tensors flattened into one buffer."""
        dist = _dist()
        groups: dict = {}
        for t in tensors:
            groups.setdefault((str(t.array.dtype), str(t.device)), []).append(t)
        for group in groups.values():
            xp = get_array_module(group[0].array)
            flat = xp.concatenate([t.array.reshape(-1) for t in group])
            carrier = Tensor._wrap(flat)
            dist.broadcast(carrier, 0, **self._group_kwargs())
            start = 0
            for t in group:
                n = t.array.size
                t.array[...] = carrier.array[start : start + n].reshape(t.array.shape)
                start += n

    def _make_buckets(self, params: list) -> list:
        """Reverse order, a new bucket at each change of dtype or device or past the cap; the
        first bucket is capped at 1 MiB (PyTorch's first-bucket cap) so that communication
        starts early in backward."""
        buckets: list = []
        current: list = []
        size = 0
        for p in reversed(params):
            nbytes = p.array.size * p.array.dtype.itemsize
            cap = min(_FIRST_BUCKET_BYTES, self.bucket_bytes_cap) if not buckets else None
            if current and (
                size + nbytes > (cap or self.bucket_bytes_cap)
                or p.array.dtype != current[0].array.dtype
                or str(p.device) != str(current[0].device)
            ):
                buckets.append(current)
                current, size = [], 0
            current.append(p)
            size += nbytes
        if current:
            buckets.append(current)
        return [_Bucket(i, b, self.find_unused_parameters) for i, b in enumerate(buckets)]

    # ---- backward -----------------------------------------------------------------------
    def _on_gradient(self, bucket: _Bucket, slot: int, param: Tensor) -> None:
        """A parameter's gradient has been accumulated: into its bucket, and the bucket starts
        when full. Only for a backward through this wrapper's forward that syncs (as PyTorch's
        reducer: a backward through ``.module`` alone, a second backward of a retained graph,
        or one whose forward ran under ``no_sync()`` stays local)."""
        if not self._expect_hooks:
            return
        if not self._in_backward:
            self._start_backward()
        if slot in bucket.ready:
            raise RuntimeError(
                "Expected to mark a variable ready only once. This error is caused by one "
                "of the following reasons: 1) Use of a module parameter outside the "
                "`forward` function (a second backward over the same parameters before the "
                "first finished)..."
            )
        bucket.put(slot, param)
        if bucket.complete:
            self._launch_ready()

    def _start_backward(self) -> None:
        self._in_backward = True
        self._next_bucket = 0
        for bucket in self._buckets:
            bucket.reset()
        queue_callback(self._finish_backward)
        # parameters the forward's graph does not reach are ready now (zeros, or the gradient
        # they hold from steps under no_sync), so their buckets can start during backward
        for bucket, slot in self._unused or ():
            bucket.put(slot, bucket.params[slot])
        self._unused = None

    def _launch(self, bucket: _Bucket) -> None:
        dist = _dist()
        carrier = Tensor._wrap(bucket.buffer)
        bucket.work = (carrier, dist.all_reduce(carrier, op=dist.ReduceOp.AVG, async_op=True,
                                                **self._group_kwargs()))  # fmt: skip

    def _launch_ready(self) -> None:
        """Start, in index order, every bucket whose gradients are all in; then let the ones in
        flight progress (MPI moves a non-blocking collective along when it is tested)."""
        while self._next_bucket < len(self._buckets):
            bucket = self._buckets[self._next_bucket]
            if not bucket.complete:
                break
            self._launch(bucket)
            self._next_bucket += 1
        for bucket in self._buckets[: self._next_bucket]:
            bucket.work[1].is_completed()

    def _finish_backward(self) -> None:
        """Runs when backward ends: the waiting buckets start, all are waited for, and the
        averaged gradients are written back."""
        self._in_backward = False
        self._expect_hooks = False  # the next backward syncs only after another forward
        missing = [
            (b, slot) for b in self._buckets for slot in range(len(b.params)) if slot not in b.ready
        ]
        if missing and not self.find_unused_parameters:
            for bucket in self._buckets[: self._next_bucket]:
                bucket.work[1].wait()  # leave no collective of this step in flight
            names = {id(p): n for n, p in self.module.named_parameters()}
            unready = [names.get(id(b.params[s]), "?") for b, s in missing]
            raise RuntimeError(
                "DistributedDataParallel: expected every parameter that requires grad to "
                "receive a gradient in this backward, but these got none: "
                f"{', '.join(unready)}. This error indicates that your module has parameters "
                "that were not used in producing loss. You can enable unused parameter "
                "detection by passing the keyword argument `find_unused_parameters=True` to "
                "`gradflow.nn.parallel.DistributedDataParallel`, and by making sure all "
                "`forward` function outputs participate in calculating loss."
            )
        for bucket, slot in missing:
            bucket.put(slot, bucket.params[slot])  # zeros: this rank used it not
        self._launch_ready()
        for bucket in self._buckets:
            carrier, work = bucket.work
            work.wait()
            if carrier.array is not bucket.buffer:
                bucket.buffer[...] = carrier.array
            self._write_back(bucket)

    def _write_back(self, bucket: _Bucket) -> None:
        buffer = bucket.buffer
        for slot, p in enumerate(bucket.params):
            if bucket.with_flags and not buffer[bucket.numel + slot] > 0:
                continue  # no rank produced this gradient: .grad stays as it was
            start = bucket.offsets[slot]
            values = buffer[start : start + p.array.size].reshape(p.array.shape)
            if self.gradient_as_bucket_view:
                p.grad = Tensor._wrap(values)
            elif p.grad is None:
                p.grad = Tensor._wrap(values.copy())
            else:
                p.grad.array[...] = values

    # ---- forward and the rest -------------------------------------------------------------
    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        # A new iteration: a backward that raised before its end left its state behind.
        self._in_backward = False
        self._unused = None
        sync = is_grad_enabled() and self.require_backward_grad_sync
        self.require_forward_param_sync = sync
        self._expect_hooks = sync  # decided here, at forward, as PyTorch's no_sync documents
        if sync and self.broadcast_buffers:
            buffers = self._buffers_to_sync()
            if buffers:
                self._broadcast_coalesced(buffers, "buffers")
        out = self.module(*inputs, **kwargs)
        if sync and self.find_unused_parameters:
            self._unused = self._find_unused(out)
        return out

    def _find_unused(self, out: Any) -> list:
        """(bucket, slot) of each parameter the graph of `out` does not reach (PyTorch's
        traversal from the outputs): their buckets need not wait for them in backward."""
        reached: set[int] = set()
        seen: set[int] = set()
        stack = [t.grad_fn for t in _tensors_in(out) if t.grad_fn is not None]
        for t in _tensors_in(out):
            if t.grad_fn is None:
                reached.add(id(t))
        while stack:
            fn = stack.pop()
            if id(fn) in seen:
                continue
            seen.add(id(fn))
            for edge in fn._edges:
                if edge is None:
                    continue
                if edge[1] < 0:
                    reached.add(id(edge[0]))
                else:
                    stack.append(edge[0])
        return [
            (bucket, slot)
            for bucket in self._buckets
            for slot, p in enumerate(bucket.params)
            if id(p) not in reached
        ]

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Inside, backward accumulates gradients locally without averaging them; the first
        backward after the context averages the accumulated gradients."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def extra_repr(self) -> str:
        return ""
