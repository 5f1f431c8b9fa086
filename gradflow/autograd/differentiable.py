"""Double backward: the engine's ``create_graph=True`` mode, and the helpers an op's
differentiable backward (``Function.backward_graph``) is written with.

The first-order backward (engine.py) runs every node's ``backward`` on raw arrays and records
nothing: it is the fast path and this module leaves it alone. Under ``create_graph=True``
(``Tensor.backward``, ``gradflow.grad``, ``gradflow.autograd.backward``) the walk here runs
instead: gradients are Tensors, summed with Tensor ops, and each node runs its
``backward_graph(*grad_outputs)``, its backward formula written with gradflow Tensor ops under
enable_grad, so the gradients it returns carry a graph and can be differentiated again (to any
order: the ops it uses have their own ``backward_graph``).

Inside ``backward_graph`` an op reaches its forward's inputs and outputs as Tensors of the
graph (not copies, not constants):
- ``graph_input(fn, i, array)``: input ``i`` around ``array`` (the array forward saw, which the
  op saved): the leaf Tensor itself for a leaf edge, a Tensor with ``grad_fn`` the producing
  node for an inner edge, a constant for an input that needs no gradient;
- ``graph_output(fn, array, k)``: the op's own output ``k`` as a Tensor whose ``grad_fn`` is
  ``fn`` (so ``tanh``'s ``g * (1 - y * y)`` differentiates through ``y = tanh(x)``).
The graph of the backward therefore reuses the forward's nodes, which is why create_graph keeps
the forward graph (its saved arrays are not freed; ``retain_graph`` is implied).

An op with no ``backward_graph`` does not fail the create_graph backward: its array backward
runs and its gradients come out of a node (``DoubleBackwardMissing``) that raises, naming the
op, when a gradient reaches it in a later backward: an error where the missing derivative is
needed, never a silent zero, and no error where it is not (PyTorch's ``once_differentiable``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy

from gradflow.autograd import anomaly
from gradflow.autograd import versions as _versions
from gradflow.autograd.function import Function, _freed_message, _recorders, record
from gradflow.autograd.grad_mode import enable_grad


def graph_input(fn: Function, i: int, array: Any) -> Any:
    """Forward input ``i`` of ``fn`` as a Tensor of the graph around ``array`` (see the module
    docstring); a Python number stays a number."""
    if not hasattr(array, "shape"):
        return array
    edges = fn._edges
    edge = edges[i] if i < len(edges) else None
    if edge is None:
        return _make(array, None, False, 0)
    node, k = edge
    if k < 0:
        return node  # the leaf Tensor itself
    return _make(_as_array(array), node, True, k)


def graph_output(fn: Function, array: Any, k: int = 0) -> Any:
    """Output ``k`` of ``fn`` (``array``, as forward returned it) as a Tensor whose grad_fn is
    ``fn``."""
    return _make(_as_array(array), fn, True, k)


def graph_node(cls: type, fn: Function, array: Any, **attrs: Any) -> Any:
    """An intermediate of fn's forward (``array``, e.g. mse_loss's x - y) as a Tensor of the
    graph: the output of a new ``cls`` node on fn's own edges (``cls``'s backward reads only
    ``attrs`` and needs_input_grad, not saved arrays: Sub with its shapes)."""
    node = cls.__new__(cls)
    node.__dict__.update(attrs)
    node._edges = fn._edges
    node.needs_input_grad = fn.needs_input_grad
    if _recorders:
        record(node)
    return _make(array, node, True, 0)


def const(array: Any) -> Any:
    """An array (a mask, a saved index) as a constant Tensor on its own device."""
    return _make(_as_array(array), None, False, 0)


def _as_array(array: Any) -> Any:
    """A NumPy scalar (what some forwards return and save, e.g. det of one matrix) as the 0-d
    array apply made the output from."""
    return numpy.asarray(array) if isinstance(array, numpy.generic) else array


def unbroadcast(g: Any, shape: tuple) -> Any:
    """ops/_util.unbroadcast on a Tensor: sum a broadcast gradient down to ``shape``, as Tensor
    ops (so the sum is itself differentiated)."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1
    )
    if axes:
        g = g.sum(dim=axes, keepdim=True)
    return g.reshape(shape)


def linear_backward_graph(fn: Function, g: Any, **overrides: Any) -> Any:
    """backward_graph of a one-input op that is linear in its input (padding, pooling by
    averages, im2col): its backward is the adjoint map, applied to ``g`` as a node
    (``LinearAdjoint``) whose own gradient is the op's forward again, with fn's parameters
    (and ``overrides``, e.g. a zero padding value)."""
    return LinearAdjoint.apply(g, op=fn, overrides=overrides, op_name=f"{fn.name}_backward")


class LinearAdjoint(Function):
    """The backward of a linear one-input op ``op`` as a node: forward is op.backward, its
    backward (and backward_graph) a fresh op of the same kind and parameters."""

    op: Any
    overrides: dict

    def forward(self, g):
        return self.op.backward(g)

    def _again(self, gg: Any) -> Any:
        op = self.op
        params = {k: op.__dict__[k] for k in type(op)._params if k in op.__dict__}
        params.update(self.overrides)
        return type(op).apply(gg, **params)

    def backward(self, gg):
        from gradflow.autograd.grad_mode import no_grad

        with no_grad():
            return self._again(const(gg)).array

    def backward_graph(self, gg):
        return self._again(gg)


def input_array(fn: Function, i: int, saved: Any) -> Any:
    """The array of fn's input ``i``: ``saved`` (what the op kept) when there, else the leaf's
    own array when that input is a leaf; None when neither (its value is gone)."""
    if saved is not None:
        return saved
    edges = fn._edges
    edge = edges[i] if i < len(edges) else None
    if edge is not None and edge[1] < 0:
        return edge[0].array
    return None


def decomposed_backward_graph(fn: Function, grads: Any, forward: Any, arrays: Sequence) -> tuple:
    """backward_graph from a decomposition: ``forward(*inputs)`` recomputes fn's output(s)
    with gradflow Tensor ops from its forward's input ``arrays`` (None where not saved: such
    an input must need no gradient). It runs on fresh leaves, its gradients are taken there
    with create_graph (a walk over that small graph only), and then every node made for them
    is re-linked from those leaves to fn's own input edges, so the gradients hang on the
    real graph. ``grads`` is the incoming gradient (a tuple for several outputs)."""
    from gradflow.autograd.function import _recorders

    leaves = []
    wanted = []
    edges = fn._edges
    for i, a in enumerate(arrays):
        if not hasattr(a, "shape"):
            leaves.append(a)  # None or a Python number
            continue
        if i < len(edges) and edges[i] is not None and a.dtype.kind in "fc":
            leaf = _make(a, None, True, 0)
            wanted.append((i, leaf))
        else:
            leaf = const(a)
        leaves.append(leaf)
    recorded: list = []
    _recorders.append(recorded)
    try:
        with enable_grad():
            out = forward(*leaves)
            outs = list(out) if type(out) is tuple else [out]
            gs = list(grads) if type(grads) is tuple else [grads]
            pairs = [(o, g) for o, g in zip(outs, gs) if o.requires_grad and g is not None]
            got = run_backward_graph(
                [o for o, _ in pairs], [g for _, g in pairs], inputs=[t for _, t in wanted]
            )
    finally:
        _recorders.pop()
    swap = {id(t): edges[i] for i, t in wanted}
    for node in recorded:
        if any(e is not None and e[1] < 0 and id(e[0]) in swap for e in node._edges):
            node._edges = tuple(
                swap[id(e[0])] if e is not None and e[1] < 0 and id(e[0]) in swap else e
                for e in node._edges
            )
    result: list = [None] * len(edges)
    for (i, _), g in zip(wanted, got):
        result[i] = g
    return tuple(result)


def pick_backward_graph(fn: Function, g: Any, flat: Any, dims: int) -> Any:
    """backward_graph of an op whose backward adds each output's gradient at one position of
    its input (max pooling: the maxima): ``flat`` holds, per output element, that position in
    the flattened last ``dims`` dims of the input (shape: the output's). The backward becomes a
    ``PickBackward`` node whose gradient picks at those positions again."""
    return PickBackward.apply(g, item=fn, flat=flat, dims=dims)


class PickBackward(Function):
    """The backward of ``item`` (gradients added at the positions ``flat``) as a node; its
    gradient gathers the gradient at those positions (an indexing op, itself differentiable)."""

    op_name = "pick_backward"
    item: Any
    flat: Any
    dims: int

    def forward(self, g):
        out = self.item.backward(g)
        return out[0] if type(out) is tuple else out

    def _index(self) -> tuple:
        flat = self.flat
        lead = flat.ndim - self.dims  # the input's leading (batch, channel) dims
        rows = math.prod(flat.shape[:lead])
        xp = _xp(flat)
        return xp.arange(rows)[:, None], flat.reshape(rows, -1), rows

    def _pick(self, gg: Any) -> Any:
        rows_index, cols, rows = self._index()
        return gg.reshape(rows, -1)[rows_index, cols].reshape(self.flat.shape)

    def backward(self, gg):
        return self._pick(gg)

    def backward_graph(self, gg):
        return self._pick(gg)


def missing_message(fn: Function) -> str:
    return (
        f"{fn.name}: double backward (create_graph=True) is not implemented for this op yet, "
        f"so the gradient it produced cannot be differentiated again. Compute this part without "
        f"create_graph, or express {fn.name} with ops that support it (see docs/DESIGN.md §3, "
        "'Double backward')."
    )


class DoubleBackwardMissing(Function):
    """The node the gradients of an op without ``backward_graph`` come out of under
    create_graph: its backward raises naming the op (``op_name`` is that op's)."""

    def backward(self, *grads: Any) -> Any:
        raise RuntimeError(missing_message(self))


def _missing_node(fn: Function, grad_outs: list, grad_in: tuple) -> tuple:
    """The array gradients ``grad_in`` of ``fn`` (no backward_graph) as Tensors; when anything
    they depend on requires grad (fn's inputs, the incoming gradients), their grad_fn is a
    DoubleBackwardMissing node that raises if differentiated."""
    edges = [e for e in fn._edges if e is not None]
    for g in grad_outs:
        if g is not None and g._requires_grad:
            edges.append((g, -1) if g.grad_fn is None else (g.grad_fn, g._output_nr))
    if not edges:
        return tuple(None if g is None else const(g) for g in grad_in)
    node = DoubleBackwardMissing.__new__(DoubleBackwardMissing)
    node.op_name = fn.name
    node._edges = tuple(edges)
    node._num_outputs = len(grad_in)
    node._output_meta = tuple(((), None) if g is None else (g.shape, g.dtype) for g in grad_in)
    node.needs_input_grad = (True,) * len(edges)
    if _recorders:
        record(node)
    return tuple(None if g is None else _make(g, node, True, k) for k, g in enumerate(grad_in))


def run_backward_graph(
    roots: Sequence[Any],
    root_grads: Sequence[Any],
    inputs: Sequence[Any] | None = None,
) -> list | None:
    """engine.run_backward's walk with Tensor gradients that record a graph (create_graph).
    `root_grads` are Tensors. Without `inputs`, leaf ``.grad`` accumulate (Tensors with a
    grad_fn where the gradient depends on something that requires grad); with `inputs`, their
    gradients are returned. The graph is kept (retain_graph)."""
    from gradflow.autograd.engine import (
        _callbacks,
        _count_dependencies,
        _hooks_of,
        _post_accumulate_hooks,
    )

    callbacks: list = []
    _callbacks.stack.append(callbacks)
    _callbacks.capturing.append(inputs is not None)
    try:
        with enable_grad():
            result = _walk(roots, root_grads, inputs, _count_dependencies)
            if inputs is None and _post_accumulate_hooks:
                done = {id(t): t for t in result}
                for leaf in done.values():
                    for hook in list((_hooks_of(leaf) or {}).values()):
                        hook(leaf)
        while callbacks:
            callbacks.pop(0)()
    finally:
        _callbacks.stack.pop()
        _callbacks.capturing.pop()
    return result if inputs is not None else None


def _walk(roots, root_grads, inputs, count_dependencies) -> list:
    from gradflow.autograd.engine import _add_grad, capture_slots

    capture, results = capture_slots(inputs)
    delivered: list = []  # the leaves given a .grad (for their post-accumulate hooks)

    grads: dict = {}
    start = []
    for t, g in zip(roots, root_grads):
        if t.grad_fn is None:
            continue
        _add_grad(grads, t.grad_fn, t._output_nr, g)
        start.append(t.grad_fn)
    dependencies = count_dependencies(start)
    for t, g in zip(roots, root_grads):
        if t.grad_fn is None:
            _deliver(t, g, capture, results, delivered)
    ready = [fn for fn in dict.fromkeys(start) if dependencies.get(fn, 0) == 0]
    while ready:
        fn = ready.pop()
        grad_out = grads.pop(fn, None)
        grad_in = None
        if grad_out is not None:
            if anomaly.enabled:
                grad_in = _run_node_checked(fn, grad_out, capture, results)
            else:
                grad_in = _run_node(fn, grad_out, capture, results)
        for k, edge in enumerate(fn._edges):
            if edge is None:
                continue
            node, index = edge
            g = grad_in[k] if grad_in is not None else None
            if index < 0:
                if g is not None:
                    _deliver(node, g, capture, results, delivered)
                continue
            if g is not None:
                _add_grad(grads, node, index, g)
            left = dependencies[node] - 1
            dependencies[node] = left
            if left == 0:
                ready.append(node)
    return results if capture is not None else delivered


def _run_node_checked(fn: Function, grad_out: Any, capture, results) -> tuple:
    """_run_node in anomaly mode: the gradients' arrays checked for NaN and Inf, and the op's
    forward frames added to an error, as the first-order engine does."""
    got: list = []

    def run(node: Function, *args: Any) -> tuple:
        got.append(_run_node(node, *args))
        return tuple(None if t is None else t.array for t in got[0])

    anomaly.run_checked(run, fn, grad_out, capture, results)
    return got[0]


def _run_node(fn: Function, grad_out: Any, capture, results) -> tuple:
    from gradflow.autograd.engine import _check_saved

    if fn._freed:
        raise RuntimeError(_freed_message(fn))
    grad_outs = [grad_out] if fn._num_outputs == 1 else list(grad_out)
    if fn._pre_hooks or fn._retained or capture:
        _tensor_hooks(fn, grad_outs, capture, results)
    if fn._num_outputs > 1:
        for k, (shape, dtype) in enumerate(fn._output_meta):
            if grad_outs[k] is None:
                like = next(g for g in grad_outs if g is not None)
                xp = _xp(like.array)
                grad_outs[k] = const(xp.zeros(shape, dtype))
    if fn._saved_epoch != _versions._epoch[0] and fn._saved:
        _check_saved(fn)
    method = getattr(type(fn), "backward_graph", None)
    if type(fn) is _CtxNode:
        grad_in = _ctx_backward_graph(fn, grad_outs)
    elif _is_hook_identity(fn):
        grad_in = _hooks_backward_graph(fn, grad_outs)
    elif method is None or method is Function.backward_graph:
        grad_in = _missing_node(fn, grad_outs, _array_backward(fn, grad_outs))
    else:
        grad_in = fn.backward_graph(*grad_outs)
        if grad_in is NotImplemented:  # not for these arguments: as if it had none
            grad_in = _missing_node(fn, grad_outs, _array_backward(fn, grad_outs))
        elif type(grad_in) is not tuple:
            grad_in = (grad_in,)
    if len(grad_in) != len(fn._edges):
        raise RuntimeError(
            f"{fn.name}.backward_graph returned {len(grad_in)} gradient(s) but forward had "
            f"{len(fn._edges)} input(s); return one per input (None for those needing none)"
        )
    return grad_in


def _is_hook_identity(fn: Any) -> bool:
    """Whether fn is a module's backward-hook identity node (gradflow/nn/backward_hooks.py;
    matched by name: autograd does not import nn)."""
    cls = type(fn)
    return cls.__name__ == "_HookIdentity" and cls.__module__ == "gradflow.nn.backward_hooks"


def _hooks_backward_graph(fn: Any, grad_outs: list) -> tuple:
    """A module's backward hooks (nn/module.py's identity node) under create_graph: the hooks
    see the gradients' values; when none returns a replacement, the node is the identity on
    the graph-carrying gradients; a replaced gradient (an array) raises, naming the node, if
    differentiated again."""
    arrays = tuple(g.array for g in grad_outs)
    returned = tuple(fn.on_grads(arrays))
    if all(r is a for r, a in zip(returned, arrays)):
        return tuple(grad_outs)
    return _missing_node(fn, grad_outs, returned)


def _ctx_backward_graph(fn: Any, grad_outs: list) -> tuple:
    """A PyTorch-style custom Function (ctx_function._CtxNode) under create_graph: the user's
    backward, written on Tensors, runs with grad mode on, as PyTorch runs it, so its result
    carries a graph when it is written with gradflow ops. ctx.saved_tensors gives the inputs
    themselves (with their graph) and, for a saved output, that output in the graph; other
    tensors saved in forward (made under no_grad) are constants, as in PyTorch."""
    ctx = fn.ctx
    outputs = {id(a): k for k, a in enumerate(fn.outputs)}
    saved = ctx._saved
    ctx._saved = tuple(
        graph_output(fn, t.array, outputs[id(t.array)])
        if isinstance(t, Tensor) and t.grad_fn is None and id(t.array) in outputs
        else t
        for t in saved
    )
    try:
        result = fn.checked(fn.user.backward(ctx, *grad_outs))
    finally:
        ctx._saved = saved
    return tuple(
        (r if isinstance(r, Tensor) else None) if needed else None
        for needed, r in zip(fn.needs_input_grad, result)
    )


def _array_backward(fn: Function, grad_outs: list) -> tuple:
    """fn's first-order backward on the gradients' arrays (for an op without backward_graph)."""
    from gradflow.autograd.engine import _checked_grads
    from gradflow.autograd.grad_mode import no_grad

    with no_grad():
        grad_in = fn.backward(*[g.array for g in grad_outs])
    if type(grad_in) is not tuple:
        grad_in = (grad_in,)
    if fn._checked and len(grad_in) == len(fn._edges):
        grad_in = _checked_grads(fn, grad_in)
    return grad_in


def _tensor_hooks(fn: Function, grad_outs: list, capture, results) -> None:
    """Tensor hooks of non-leaf outputs (they get and may return the graph-carrying
    gradient), retained grads, captured grad() inputs."""
    for index in range(len(grad_outs)):
        g = grad_outs[index]
        if g is None:
            continue
        for hook in list((fn._pre_hooks or {}).get(index, {}).values()):
            replaced = hook(g)
            if replaced is not None:
                g = grad_outs[index] = _checked_hook(hook, replaced, g)
        ref = (fn._retained or {}).get(index)
        tensor = ref() if ref is not None else None
        if tensor is not None and capture is None:
            tensor.grad = g if tensor.grad is None else tensor.grad + g
        if capture is not None:
            for k in capture.get((fn, index), ()):
                results[k] = g


def _checked_hook(hook: Any, replaced: Any, g: Any) -> Any:
    from gradflow.autograd.engine import _hook_result

    _hook_result(hook, replaced, g.array)  # the same checks and messages as first order
    return replaced


def _deliver(leaf: Any, g: Any, capture, results, delivered: list) -> None:
    if leaf._hooks:
        for hook in list(leaf._hooks.values()):
            replaced = hook(g)
            if replaced is not None:
                g = _checked_hook(hook, replaced, g)
    if tuple(g.shape) != tuple(leaf.shape) or g.dtype != leaf.dtype:
        from gradflow.autograd.engine import leaf_gradient_mismatch

        raise leaf_gradient_mismatch(leaf, g)
    if capture is not None:
        for k in capture.get((leaf, -1), ()):
            results[k] = g if results[k] is None else results[k] + g
        return
    # The leaf's .grad is a Tensor of its own (PyTorch: with a grad_fn when it depends on
    # something that requires grad); an existing .grad is added to out of place, in the graph.
    if leaf.grad is None:
        leaf.grad = g if g._requires_grad else const(g.array.copy())
        if leaf.grad is g and g.grad_fn is None:  # a leaf gradient: keep it apart from g
            leaf.grad = g.clone()
    else:
        leaf.grad = leaf.grad + g
    delivered.append(leaf)


def _xp(array: Any) -> Any:
    from gradflow.backend import get_array_module

    return get_array_module(array)


from gradflow.autograd.ctx_function import _CtxNode  # noqa: E402
from gradflow.tensor import Tensor  # noqa: E402
from gradflow.tensor import _make_tensor as _make  # noqa: E402
