"""The backward engine: iterative (no recursion), dependency-counted, frees as it goes."""

from __future__ import annotations

import functools
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy

from gradflow.autograd import anomaly
from gradflow.autograd import versions as _versions
from gradflow.autograd.function import Function, _freed_message
from gradflow.autograd.grad_mode import no_grad
from gradflow.backend import blas, get_array_module


# End-of-backward callbacks: one list per running backward (a backward started inside a hook or
# a callback gets its own), per thread (backwards on two threads keep theirs apart).
# queue_callback appends to the innermost one.
class _Callbacks(threading.local):
    def __init__(self) -> None:
        self.stack: list[list[Callable[[], Any]]] = []
        self.capturing: list[bool] = []  # per running backward: the gradflow.grad form?


_callbacks = _Callbacks()

# Post-accumulate-grad hooks: id(leaf) -> (weakref to the leaf, {handle id: hook(leaf)}),
# dropped when the leaf dies (keyed by id: Tensor's == is elementwise). Empty in most programs,
# so a backward checks it once and pays nothing more.
_post_accumulate_hooks: dict[int, tuple[Any, dict]] = {}


def queue_callback(callback: Callable[[], Any]) -> None:
    """Run ``callback()`` once the backward now running has finished, before its ``backward()``
    (or ``gradflow.autograd.grad``) returns: PyTorch's
    ``Variable._execution_engine.queue_callback``. Call it from a hook during a backward;
    callbacks run in the order queued, and one may queue another. DistributedDataParallel uses
    it to wait for its last gradient buckets. Outside a backward it is a RuntimeError."""
    stack = _callbacks.stack
    if not stack:
        raise RuntimeError(
            "queue_callback: no backward is running; call it from a hook during backward() "
            "(a tensor hook or a post-accumulate-grad hook)"
        )
    if not callable(callback):
        raise TypeError(f"queue_callback expects a callable, got {type(callback).__name__}")
    stack[-1].append(callback)


def register_post_accumulate_grad_hook(tensor: Any, hook: Callable[[Any], None]) -> Any:
    """Call ``hook(tensor)`` after a backward has accumulated all of its gradient into the leaf
    ``tensor.grad`` (once per backward, after the last contribution): PyTorch's
    ``Tensor.register_post_accumulate_grad_hook``. The hook returns None. Returns a handle whose
    ``remove()`` unregisters it. Not called by ``gradflow.autograd.grad`` (no .grad is written)."""
    from gradflow.tensor import RemovableHandle

    if tensor.grad_fn is not None:
        raise RuntimeError(
            "post accumulate grad hooks cannot be registered on non-leaf tensors; register "
            "them on the leaf (a Parameter, or a tensor made with requires_grad=True)"
        )
    if not tensor.requires_grad:
        raise RuntimeError(
            "cannot register a post accumulate grad hook on a tensor that does not require grad"
        )
    key = id(tensor)
    entry = _post_accumulate_hooks.get(key)
    if entry is None or entry[0]() is not tensor:
        ref = weakref.ref(tensor, functools.partial(_forget_hooks, key, _post_accumulate_hooks))
        entry = _post_accumulate_hooks[key] = (ref, {})
    hooks = entry[1]
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    return handle


def _forget_hooks(key: int, table: dict, ref: Any) -> None:
    """A hooked leaf died: drop its entry (the table is bound at registration, so this works
    while the interpreter shuts down and module globals are gone)."""
    entry = table.get(key)
    if entry is not None and entry[0] is ref:
        del table[key]


def _hooks_of(leaf: Any) -> dict | None:
    entry = _post_accumulate_hooks.get(id(leaf))
    return entry[1] if entry is not None and entry[0]() is leaf and entry[1] else None


def run_backward(
    roots: Sequence[Any],
    root_grads: Sequence[Any],
    retain_graph: bool = False,
    inputs: Sequence[Any] | None = None,
) -> list | None:
    """Propagate `root_grads` (arrays) from the `roots` (Tensors) back through the graph.

    Without `inputs`, leaf gradients accumulate into ``leaf.grad``. With `inputs` (the
    ``gradflow.grad`` form) no ``.grad`` is touched and the gradients of `inputs` are returned,
    None for an input the roots do not depend on. Callbacks queued during it
    (``queue_callback``) run before it returns.
    """
    callbacks: list = []
    stack = _callbacks.stack
    stack.append(callbacks)
    _callbacks.capturing.append(inputs is not None)
    try:
        result = _run_backward(roots, root_grads, retain_graph, inputs)
        while callbacks:  # a callback may queue another: run until none is left
            callbacks.pop(0)()
    finally:
        stack.pop()
        _callbacks.capturing.pop()
    return result


def capturing() -> bool:
    """Whether the backward running now returns its gradients (``gradflow.grad``, or
    ``backward(inputs=...)``) instead of accumulating them into every leaf's ``.grad``."""
    return bool(_callbacks.capturing) and _callbacks.capturing[-1]


def accumulated_outside(leaves: Sequence[Any]) -> None:
    """Run the post-accumulate-grad hooks of `leaves`, whose ``.grad`` was just written outside
    the engine's own delivery (``backward(inputs=...)`` accumulates after the engine returns),
    and the callbacks they queue, as the end of a backward runs them: so that, for one,
    DistributedDataParallel averages the gradients of that form too."""
    hooked = [leaf for leaf in leaves if leaf.grad_fn is None and _hooks_of(leaf) is not None]
    if not hooked:
        return
    callbacks: list = []
    stack = _callbacks.stack
    stack.append(callbacks)
    try:
        for leaf in hooked:
            for hook in list((_hooks_of(leaf) or {}).values()):
                hook(leaf)
        while callbacks:
            callbacks.pop(0)()
    finally:
        stack.pop()


def _run_backward(
    roots: Sequence[Any],
    root_grads: Sequence[Any],
    retain_graph: bool,
    inputs: Sequence[Any] | None,
) -> list | None:
    capture, results = capture_slots(inputs)
    grads: dict[Function, Any] = {}
    owned: set[int] = {id(g) for g in root_grads}  # arrays a leaf may not keep without a copy
    start = []
    for t, g in zip(roots, root_grads):
        if t.grad_fn is None:
            continue
        fn = t.grad_fn
        _add_grad(grads, fn, t._output_nr, g)
        start.append(fn)

    # Leaves with post-accumulate hooks: how many deliveries each awaits (its hook fires after
    # the last), and whether any gradient arrived; counted in the same walk as dependencies.
    post: dict | None = None
    if _post_accumulate_hooks and capture is None:
        post = {}
        for t in roots:
            if t.grad_fn is None:
                _count_hooked_leaf(post, t)
    dependencies = _count_dependencies(start, post)
    for t, g in zip(roots, root_grads):
        if t.grad_fn is None:
            _deliver_leaf(t, g, owned, capture, results)
            if post is not None:
                _leaf_done(post, t, True)
    ready = [fn for fn in dict.fromkeys(start) if dependencies.get(fn, 0) == 0]
    check_anomaly = anomaly.enabled  # read once per backward, not per node
    with no_grad():
        while ready:
            fn = ready.pop()
            grad_out = grads.pop(fn, None)
            grad_in = None
            if grad_out is not None:
                if check_anomaly:
                    grad_in = anomaly.run_checked(
                        _run_node, fn, grad_out, retain_graph, capture, results
                    )
                else:
                    grad_in = _run_node(fn, grad_out, retain_graph, capture, results)
            for k, edge in enumerate(fn._edges):
                if edge is None:
                    continue
                node, index = edge
                g = grad_in[k] if grad_in is not None else None
                if index < 0:
                    if g is not None:
                        _deliver_leaf(node, g, owned, capture, results)
                    if post is not None:
                        _leaf_done(post, node, g is not None)
                    continue
                if g is not None:
                    _add_grad(grads, node, index, g)
                left = dependencies[node] - 1
                dependencies[node] = left
                if left == 0:
                    ready.append(node)
            if not retain_graph:
                fn._saved = None
                fn._freed = True
    return results if capture is not None else None


def _count_dependencies(start: list, post: dict | None = None) -> dict:
    """For every Function reachable from `start`, how many edges lead into it; with `post`,
    also the edges into each leaf that has post-accumulate hooks (_count_hooked_leaf)."""
    counts: dict = {}
    seen = set(start)
    stack = list(seen)
    while stack:
        fn = stack.pop()
        for edge in fn._edges:
            if edge is None:
                continue
            if edge[1] < 0:
                if post is not None:
                    _count_hooked_leaf(post, edge[0])
                continue
            node = edge[0]
            counts[node] = counts.get(node, 0) + 1
            if node not in seen:
                seen.add(node)
                stack.append(node)
    return counts


def _count_hooked_leaf(post: dict, leaf: Any) -> None:
    """One more delivery awaited by `leaf` when it has post-accumulate hooks: post maps
    id(leaf) -> [leaf, deliveries left, got a gradient]."""
    if _hooks_of(leaf) is None:
        return
    entry = post.get(id(leaf))
    if entry is None:
        post[id(leaf)] = [leaf, 1, False]
    else:
        entry[1] += 1


def _leaf_done(post: dict, leaf: Any, got: bool) -> None:
    """One delivery to a hooked leaf is over: after its last, run its post-accumulate hooks
    (when a gradient arrived)."""
    entry = post.get(id(leaf))
    if entry is None:
        return
    entry[1] -= 1
    entry[2] = entry[2] or got
    if entry[1] == 0 and entry[2]:
        for hook in list((_hooks_of(leaf) or {}).values()):
            hook(leaf)


def capture_slots(inputs: Sequence[Any] | None) -> tuple[dict | None, list]:
    """For the gradflow.grad form (`inputs` given): where each input's gradient is found, a
    (node, output) or (leaf, -1) key -> its positions in `inputs`, and the result list; else
    (None, [])."""
    if inputs is None:
        return None, []
    capture: dict = {}
    for k, t in enumerate(inputs):
        key = (t, -1) if t.grad_fn is None else (t.grad_fn, t._output_nr)
        capture.setdefault(key, []).append(k)
    return capture, [None] * len(inputs)


def leaf_gradient_mismatch(leaf: Any, g: Any) -> RuntimeError:
    """The error for a gradient whose shape or dtype is not its leaf's."""
    return RuntimeError(
        f"a backward produced a gradient of shape {tuple(g.shape)} and dtype {g.dtype} for "
        f"a tensor of shape {tuple(leaf.shape)} and dtype {leaf.dtype}"
    )


def _add_grad(grads: dict, fn: Function, index: int, g: Any) -> None:
    if fn._num_outputs == 1:
        prev = grads.get(fn)
        grads[fn] = g if prev is None else prev + g  # out of place: g may be shared
        return
    slots = grads.get(fn)
    if slots is None:
        slots = grads[fn] = [None] * fn._num_outputs
    slots[index] = g if slots[index] is None else slots[index] + g


def _check_saved(fn: Function) -> None:
    """Refuses to run fn's backward when an array it saved (an input, an output, or any view
    of their storage) was written in place after fn recorded it."""
    for i, saved in enumerate(fn._saved):
        if hasattr(saved, "shape") and _versions.modified_since(saved, fn._saved_epoch):
            raise RuntimeError(
                f"{fn.name}: one of the arrays saved for backward (saved array {i}: shape "
                f"{tuple(saved.shape)}, dtype {saved.dtype}) has been modified by an inplace "
                f"operation since {fn.name} recorded it (the storage is now at version "
                f"{_versions.version(saved)}), so its gradient would be wrong. Clone the tensor "
                "before writing to it in place, or write only after backward."
            )


def _run_node(fn: Function, grad_out: Any, retain_graph: bool, capture, results) -> tuple:
    if fn._freed:
        raise RuntimeError(_freed_message(fn))
    if fn._num_outputs == 1:
        grad_outs = [grad_out]
    else:
        grad_outs = list(grad_out)
    if fn._pre_hooks or fn._retained or capture:
        _apply_tensor_hooks(fn, grad_outs, capture, results)
    if fn._num_outputs > 1:
        xp = get_array_module(next(g for g in grad_outs if g is not None))
        grad_outs = [
            xp.zeros(shape, dtype) if g is None else g
            for g, (shape, dtype) in zip(grad_outs, fn._output_meta)
        ]
    if fn._saved_epoch != _versions._epoch[0] and fn._saved:
        _check_saved(fn)
    grad_in = fn.backward(*grad_outs)
    if type(grad_in) is not tuple:
        grad_in = (grad_in,)
    if len(grad_in) != len(fn._edges):
        raise RuntimeError(
            f"{fn.name}.backward returned {len(grad_in)} gradient(s) but forward had "
            f"{len(fn._edges)} input(s); return one per input (None for those needing none)"
        )
    if fn._checked:
        grad_in = _checked_grads(fn, grad_in)
    return grad_in


def _checked_grads(fn: Function, grad_in: tuple) -> tuple:
    """A user Function's gradients: arrays of each input's shape (a float gradient of another
    float dtype is cast, as PyTorch does); anything else is named."""
    out = list(grad_in)
    for i, (g, edge, meta) in enumerate(zip(grad_in, fn._edges, fn._input_meta)):
        if g is None or edge is None or meta is None:
            continue
        shape, dtype = meta
        if not (hasattr(g, "shape") and hasattr(g, "dtype")):
            raise TypeError(
                f"{fn.name}.backward returned a {type(g).__name__} as the gradient of input {i}; "
                f"return an array of shape {tuple(shape)} (or None)"
            )
        if tuple(g.shape) != tuple(shape):
            raise RuntimeError(
                f"{fn.name}.backward returned an invalid gradient for input {i}: shape "
                f"{tuple(g.shape)}, but the input has shape {tuple(shape)}"
            )
        if g.dtype != dtype:
            if g.dtype.kind == "f" and dtype.kind == "f":
                out[i] = g.astype(dtype)
            else:
                raise TypeError(
                    f"{fn.name}.backward returned a {g.dtype} gradient for input {i} of dtype "
                    f"{dtype}; return a floating-point gradient of the input's dtype"
                )
    return tuple(out)


def _apply_tensor_hooks(fn: Function, grad_outs: list, capture, results) -> None:
    """Run hooks registered on non-leaf outputs, keep retained grads, capture grad() inputs."""
    from gradflow.tensor import Tensor

    for index in range(len(grad_outs)):
        g = grad_outs[index]
        if g is None:
            continue
        for hook in list((fn._pre_hooks or {}).get(index, {}).values()):
            replaced = hook(Tensor._wrap(g))
            if replaced is not None:
                g = grad_outs[index] = _hook_result(hook, replaced, g)
        ref = (fn._retained or {}).get(index)
        tensor = ref() if ref is not None else None
        if tensor is not None and capture is None:
            tensor.grad = Tensor._wrap(g.copy() if tensor.grad is None else tensor.grad.array + g)
        if capture is not None:
            for k in capture.get((fn, index), ()):
                results[k] = g


def _hook_result(hook: Any, replaced: Any, g: Any) -> Any:
    """The array of a gradient a hook returned in place of ``g``: a Tensor of g's shape."""
    from gradflow.tensor import Tensor

    name = getattr(hook, "__name__", type(hook).__name__)
    if not isinstance(replaced, Tensor):
        raise TypeError(
            f"gradient hook {name} returned a {type(replaced).__name__}; a hook returns None "
            "or a Tensor to use as the gradient"
        )
    if tuple(replaced.shape) != tuple(g.shape):
        raise RuntimeError(
            f"gradient hook {name} returned a gradient of shape {tuple(replaced.shape)} for a "
            f"gradient of shape {tuple(g.shape)}; return one of the same shape"
        )
    return replaced.array


def _sole_view(g: Any) -> bool:
    """Whether g, a view, is a NumPy array whose base nothing else holds: a backward's reshape or
    crop of an array it made and dropped (conv's dx.reshape(x.shape), avg_pool's frame without
    its padding). A leaf may keep such a view without the copy other views need: a 4 MiB copy
    per step for a (32, 64, 32, 16) float32 input's gradient. The references counted: the
    view's own .base, the local name and getrefcount's argument."""
    base = g.base
    return type(g) is numpy.ndarray and type(base) is numpy.ndarray and sys.getrefcount(base) <= 3


def _deliver_leaf(leaf: Any, g: Any, owned: set, capture, results) -> None:
    from gradflow.tensor import Tensor

    if leaf._hooks:
        for hook in list(leaf._hooks.values()):
            replaced = hook(Tensor._wrap(g))
            if replaced is not None:
                g = _hook_result(hook, replaced, g)
    if g.shape != leaf.array.shape or g.dtype != leaf.array.dtype:
        raise leaf_gradient_mismatch(leaf, g)
    if capture is not None:
        for k in capture.get((leaf, -1), ()):
            results[k] = g if results[k] is None else results[k] + g
        return
    if leaf.grad is None:
        # A leaf keeps its gradient array, so it must own it: copy views (but those that are the
        # only holder of their memory), read-only broadcasts and arrays another leaf (or the
        # caller) already holds.
        shared = g.base is not None and not _sole_view(g)
        if shared or id(g) in owned or not getattr(g.flags, "writeable", True):
            g = blas.copy(g)  # a transposed float32 view through omatcopy
        owned.add(id(g))
        leaf.grad = Tensor._wrap(g)
    else:
        leaf.grad.array += g
