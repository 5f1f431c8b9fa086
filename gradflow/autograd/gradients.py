"""``gradflow.grad`` (gradients of outputs with respect to chosen inputs, without touching .grad)
and ``gradflow.autograd.backward``; ``create_graph=True`` runs differentiable.py's walk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gradflow.autograd.engine import accumulated_outside, run_backward
from gradflow.backend import get_array_module


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    only_inputs: bool = True,
    allow_unused: bool | None = None,
    is_grads_batched: bool = False,
    materialize_grads: bool = False,
) -> tuple:
    """d(outputs)/d(inputs), returned as a tuple of Tensors (one per input); PyTorch's
    signature.

    `grad_outputs` gives d(loss)/d(output) per output (may be omitted for scalar outputs).
    An input the outputs do not depend on raises, unless ``allow_unused=True`` (then None,
    or zeros with ``materialize_grads=True``).
    """
    from gradflow.tensor import Tensor, _root_gradient

    if is_grads_batched:
        raise NotImplementedError(
            "grad: is_grads_batched=True is not supported; loop over the "
            "batch of grad_outputs instead"
        )
    retain_graph = bool(retain_graph)
    allow_unused = bool(allow_unused) or materialize_grads
    outputs = _as_list(outputs, "outputs")
    inputs = _as_list(inputs, "inputs")
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    else:
        grad_outputs = _as_list(grad_outputs, "grad_outputs", allow_none=True)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for k, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {k} does not require grad")
    for k, t in enumerate(outputs):
        if not t.requires_grad:
            raise RuntimeError(
                f"grad: output {k} does not require grad and has no grad_fn (it does not depend "
                "on any tensor that requires grad)"
            )
    if create_graph:
        from gradflow.autograd.differentiable import run_backward_graph

        roots = [_root_tensor(t, g) for t, g in zip(outputs, grad_outputs)]
        results = run_backward_graph(outputs, roots, inputs=inputs)
    else:
        roots = [_root_gradient(t, g) for t, g in zip(outputs, grad_outputs)]
        results = run_backward(outputs, roots, retain_graph=retain_graph, inputs=inputs)
    out = []
    for k, g in enumerate(results):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {k} (shape {tuple(inputs[k].shape)}) was not used to compute the "
                "outputs; pass allow_unused=True to get None for it"
            )
        if g is None and materialize_grads:
            g = get_array_module(inputs[k].array).zeros_like(inputs[k].array)
        out.append(None if g is None else g if isinstance(g, Tensor) else Tensor._wrap(g))
    return tuple(out)


def backward(
    tensors: Any,
    grad_tensors: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Any = None,
) -> None:
    """Accumulate the gradients of `tensors` into the ``.grad`` of the leaves (PyTorch's
    ``torch.autograd.backward``); with `inputs`, into those tensors' ``.grad`` only."""
    from gradflow.tensor import Tensor, _root_gradient

    tensors = _as_list(tensors, "tensors")
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    else:
        grad_tensors = _as_list(grad_tensors, "grad_tensors", allow_none=True)
    for k, t in enumerate(tensors):
        if not t.requires_grad:
            raise RuntimeError(
                f"element {k} of tensors does not require grad and does not have a grad_fn"
            )
    if create_graph:
        _backward_graph(tensors, grad_tensors, inputs)
        return
    roots = [_root_gradient(t, g) for t, g in zip(tensors, grad_tensors)]
    if inputs is None:
        run_backward(tensors, roots, retain_graph=bool(retain_graph))
        return
    inputs = _as_list(inputs, "inputs")
    results = run_backward(tensors, roots, retain_graph=bool(retain_graph), inputs=inputs)
    written = []
    for t, g in zip(inputs, results):
        if g is None:
            continue
        if t.grad is None:
            t.grad = Tensor._wrap(g.copy())
        else:
            t.grad.array += g
        written.append(t)
    accumulated_outside(written)  # their post-accumulate-grad hooks, as a plain backward runs


def _root_tensor(t: Any, gradient: Any) -> Any:
    """The root gradient as a Tensor for create_graph: a Tensor given stays itself (so its own
    graph, if any, is differentiated through), anything else is checked as first order."""
    from gradflow.tensor import Tensor, _root_gradient

    if isinstance(gradient, Tensor):
        _root_gradient(t, gradient)  # shape, dtype, device checks
        return gradient
    return Tensor._wrap(_root_gradient(t, gradient))


def _backward_graph(tensors: list, grad_tensors: list, inputs: Any) -> None:
    """backward(create_graph=True): leaf .grad become Tensors with a graph (the forward graph
    is kept: retain_graph is implied)."""
    from gradflow.autograd.differentiable import run_backward_graph

    roots = [_root_tensor(t, g) for t, g in zip(tensors, grad_tensors)]
    if inputs is None:
        run_backward_graph(tensors, roots)
        return
    inputs = _as_list(inputs, "inputs")
    results = run_backward_graph(tensors, roots, inputs=inputs)
    written = []
    for t, g in zip(inputs, results):
        if g is None:
            continue
        t.grad = g if t.grad is None else t.grad + g
        written.append(t)
    accumulated_outside(written)


def _as_list(x: Any, name: str, allow_none: bool = False) -> list:
    from gradflow.tensor import Tensor

    items = [x] if isinstance(x, Tensor) else list(x) if isinstance(x, Sequence) else [x]
    for item in items:
        if not isinstance(item, Tensor) and not (allow_none and item is None):
            raise TypeError(f"grad: {name} must be Tensors, got {type(item).__name__}")
    return items
