"""Activation checkpointing (torch.utils.checkpoint): a segment's forward keeps no activations;
backward runs it again and backpropagates through the recomputed graph.

``checkpoint(fn, *args)`` returns what ``fn(*args)`` returns, but the graph between the
segment's inputs and outputs is dropped as soon as forward has run: one node stands for the
segment, holding only its inputs. When backward reaches that node it restores the random state
forward saw (so dropout draws the same masks), runs ``fn`` again with gradients enabled on
detached copies of the inputs, and backpropagates the outputs' gradients through that graph to
the inputs and to the parameters ``fn`` used. Memory falls from every activation of the segment
to its inputs, at the cost of one more forward. `checkpoint_sequential` does this for the
segments of a Sequential; the recurrent layers use it for memory-bounded BPTT.

Two mechanisms, as PyTorch's ``use_reentrant``:
- ``use_reentrant=False`` (the default): forward runs ``fn`` with gradients enabled once, to learn
  which parameters the segment uses (the leaves of its graph), then drops that graph; the
  segment's node has the parameters among its inputs, so their gradients travel through the
  engine like any other: ``gradflow.grad`` and ``backward(inputs=...)`` work, nested
  checkpoints work. A tensor that requires grad and reaches ``fn`` other than as an argument
  (a closure over an intermediate result) is refused: pass it as an argument.
- ``use_reentrant=True``: forward runs under no_grad; backward's inner pass accumulates the
  parameters' gradients into their ``.grad`` directly (PyTorch's reentrant behaviour, which
  therefore refuses ``gradflow.grad`` and ``backward(inputs=...)``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy

from gradflow.autograd import engine, grad_mode
from gradflow.autograd import function as _graph
from gradflow.autograd.function import Function
from gradflow.tensor import Tensor

__all__ = ["checkpoint", "checkpoint_sequential"]


def _rng_states(tensors: list[Tensor]) -> list[tuple[Any, Any]]:
    """What replays the draws of the generators the segment may use (cpu's, and each device's
    of its inputs): the cpu generator's state; a GPU generator, whose state CuPy does not
    expose, is re-seeded here from its own stream with a seed kept for the replay (its stream
    then differs from an unchecked run's, its draws in forward and recomputation agree)."""
    from gradflow.random import default_generator

    devices = {"cpu"} | {str(t.device) for t in tensors}
    kept = []
    for device in sorted(devices):
        g = default_generator(device)
        if g.device.type == "cpu":
            kept.append((g, g.get_state()))
        else:
            seed = int(g.rng.integers(0, 2**62))
            g.manual_seed(seed)
            kept.append((g, seed))
    return kept


class _Segment:
    """What a checkpointed segment keeps between forward and backward: the function, its
    inputs (the originals; detached copies are made for each run) and the random state."""

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict, preserve_rng: bool):
        self.fn, self.args, self.kwargs = fn, args, kwargs
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
        self.versions = [(t, t._version) for t in tensors]
        self.rng = _rng_states(tensors) if preserve_rng else None
        self.leaves: list[Tensor] = []  # the parameters fn used (non-reentrant form)
        self.output_slots: list[int] = []  # which of fn's flat outputs the node stands for

    def detached(self) -> tuple[tuple, dict, list[Tensor]]:
        """The arguments with each Tensor replaced by a detached leaf (requiring grad as the
        original did) and those leaves, in argument order."""
        leaves: list[Tensor] = []

        def detach(a: Any) -> Any:
            if not isinstance(a, Tensor):
                return a
            d = a.detach()
            if a.requires_grad:
                d.requires_grad_(True)
            leaves.append(d)
            return d

        args = tuple(detach(a) for a in self.args)
        kwargs = {k: detach(v) for k, v in self.kwargs.items()}
        return args, kwargs, leaves

    def run(self, args: tuple, kwargs: dict) -> Any:
        """fn on the given arguments, with the random state forward saw when kept."""
        if self.rng is None:
            return self.fn(*args, **kwargs)
        now = [(g, g.get_state() if isinstance(kept, dict) else None) for g, kept in self.rng]
        for g, kept in self.rng:
            if isinstance(kept, dict):
                g.set_state(kept)
            else:
                g.manual_seed(kept)
        try:
            return self.fn(*args, **kwargs)
        finally:
            for (g, state), (_, kept) in zip(now, self.rng, strict=True):
                if state is not None:
                    g.set_state(state)
                else:  # move on to a stream of its own, not the replayed one
                    g.manual_seed(int(numpy.random.SeedSequence([kept, 1]).generate_state(1)[0]))

    def check_inputs_unchanged(self) -> None:
        for t, version in self.versions:
            if t._version != version:
                raise RuntimeError(
                    f"checkpoint: an input of the checkpointed function (shape "
                    f"{tuple(t.shape)}) was modified in place after the forward (version "
                    f"{version} -> {t._version}); backward recomputes the segment from its "
                    "inputs and would give wrong gradients. Clone the input before changing it."
                )


class _CheckpointNode(Function):
    """The node standing for a segment: inputs = the segment's Tensor arguments, then the
    parameters it used; outputs = its outputs that require grad (their values computed once,
    in forward)."""

    op_name = "checkpoint"
    segment: Any
    values: Any
    reentrant: bool = False

    def forward(self, *arrays: Any) -> Any:
        return self.values if len(self.values) > 1 else self.values[0]

    def backward(self, *grads: Any) -> tuple:
        if self.reentrant and engine.capturing():
            raise RuntimeError(
                "checkpoint(use_reentrant=True) is not compatible with gradflow.grad() or "
                "backward(inputs=...): use .backward() without inputs, or "
                "use_reentrant=False"
            )
        inputs, roots, root_grads = self._recompute(grads)
        wanted = [t for t in inputs if t.requires_grad]
        if self.reentrant:  # the parameters' gradients accumulate into their .grad here
            if roots:
                engine.run_backward(roots, root_grads)
            found = [None if t.grad is None else t.grad.array for t in wanted]
        else:
            wanted += self.segment.leaves
            found = engine.run_backward(roots, root_grads, inputs=wanted) if roots else None
            found = found or [None] * len(wanted)
        return _per_input(found, inputs)

    def backward_graph(self, *grads: Any) -> tuple:
        """Under create_graph: the segment recomputed on fresh leaves for its Tensor arguments,
        its gradients taken with a graph (the parameters are the real leaves), and the edges
        to those fresh leaves re-linked to this node's own input edges, so the gradients hang
        on the real graph and differentiate again through the recomputed segment."""
        from gradflow.autograd.differentiable import run_backward_graph

        if self.reentrant:
            raise RuntimeError(
                "checkpoint(use_reentrant=True) does not support create_graph=True (its inner "
                "backward accumulates into .grad); use use_reentrant=False"
            )
        inputs, roots, root_grads = self._recompute(grads)
        wanted = [t for t in inputs if t.requires_grad] + self.segment.leaves
        with grad_mode.enable_grad():
            found = run_backward_graph(roots, root_grads, inputs=wanted) if roots else None
        found = found or [None] * len(wanted)
        # the gradients' graph starts at the fresh leaves (and the parameters, real leaves): a
        # walk from the gradients finds every edge to re-link
        swap = {id(t): edge for t, edge in zip(inputs, self._edges) if edge is not None}
        _relink([g for g in found if g is not None], swap)
        return _per_input(found, inputs)

    def _recompute(self, grads: tuple) -> tuple[list[Tensor], list[Tensor], list[Any]]:
        """The segment run again (random state replayed) with grad enabled on fresh leaves for
        its Tensor arguments: (those leaves, the outputs to backpropagate from, their
        gradients)."""
        segment = self.segment
        segment.check_inputs_unchanged()
        args, kwargs, inputs = segment.detached()
        with grad_mode.enable_grad():
            outputs = _flatten(segment.run(args, kwargs))
        roots, root_grads = [], []
        for slot, g in zip(segment.output_slots, grads, strict=True):
            out = outputs[slot] if slot < len(outputs) else None
            if not isinstance(out, Tensor):
                raise RuntimeError(
                    "checkpoint: the recomputed forward returned a different structure than "
                    "the first (the function must compute the same outputs each time it is run)"
                )
            if g is not None and out.requires_grad:
                roots.append(out)
                root_grads.append(g)
        return inputs, roots, root_grads


def _per_input(found: list, inputs: list[Tensor]) -> tuple:
    """One gradient per input of the segment's node: its Tensor arguments (None for those that
    need none), then the parameters; ``found`` holds the computed ones in that order."""
    by_input = iter(found)
    grads_in = [next(by_input) if t.requires_grad else None for t in inputs]
    return (*grads_in, *by_input)


def _relink(tensors: list[Tensor], swap: dict[int, tuple]) -> None:
    """Point every edge to a leaf in ``swap`` (by id) at its replacement edge, in the graph
    behind ``tensors``."""
    seen: set[int] = set()
    stack = [t.grad_fn for t in tensors if t.grad_fn is not None]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        edges = node._edges
        if any(e is not None and e[1] < 0 and id(e[0]) in swap for e in edges):
            node._edges = tuple(
                swap[id(e[0])] if e is not None and e[1] < 0 and id(e[0]) in swap else e
                for e in edges
            )
        stack.extend(e[0] for e in edges if e is not None and e[1] >= 0)


def _flatten(out: Any) -> list:
    """fn's outputs as a flat list: a Tensor, or the items of a tuple or list (one level, as
    PyTorch's checkpoint handles them); anything else is one opaque item."""
    if isinstance(out, tuple | list):
        return list(out)
    return [out]


def _rebuild(out: Any, flat: list) -> Any:
    if isinstance(out, tuple | list):
        return type(out)(flat) if not hasattr(out, "_fields") else type(out)(*flat)
    return flat[0]


def _segment_leaves(outputs: list, made: list, inputs: list[Tensor]) -> list[Tensor]:
    """The leaves (parameters) the segment's graph reaches that are not its own inputs; refuses
    edges into nodes the segment did not make (a closure over an intermediate tensor)."""
    own = {id(node) for node in made}
    input_ids = {id(t) for t in inputs}
    leaves: dict[int, Tensor] = {}
    seen: set[int] = set()
    stack = [t.grad_fn for t in outputs if isinstance(t, Tensor) and t.grad_fn is not None]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if id(node) not in own:
            raise RuntimeError(
                "checkpoint: the function uses a tensor that requires grad and was computed "
                "outside it without being passed as an argument (a closure over an intermediate "
                "result); its gradient could not be recomputed. Pass that tensor as an argument "
                "of the checkpointed function."
            )
        for edge in node._edges:
            if edge is None:
                continue
            target, index = edge
            if index < 0:
                if id(target) not in input_ids:
                    leaves.setdefault(id(target), target)
            else:
                stack.append(target)
    return list(leaves.values())


def checkpoint(
    function: Callable[..., Any],
    *args: Any,
    use_reentrant: bool | None = None,
    context_fn: Any = None,
    determinism_check: str = "default",
    debug: bool = False,
    preserve_rng_state: bool = True,
    early_stop: bool = True,
    **kwargs: Any,
) -> Any:
    """``function(*args, **kwargs)``, keeping only the arguments for backward, which runs the
    function again (see the module docstring). PyTorch's signature: ``use_reentrant`` (default
    False), ``preserve_rng_state`` (restore the random state for the recomputation, so dropout
    matches); ``context_fn``, ``determinism_check``, ``debug`` and ``early_stop`` are accepted
    with their default meaning (a different structure of outputs on recomputation raises).
    Outputs: a Tensor or a tuple/list of them (other items pass through unchanged); outputs
    that don't require grad are returned as computed.
    """
    if not callable(function):
        raise TypeError(f"checkpoint: function must be callable, got {type(function).__name__}")
    if determinism_check not in ("default", "none"):
        raise ValueError(
            f"checkpoint: determinism_check must be 'default' or 'none', got {determinism_check!r}"
        )
    reentrant = bool(use_reentrant)
    if reentrant and kwargs:
        raise ValueError(
            f"Unexpected keyword arguments: {','.join(kwargs)} (use_reentrant=True passes only "
            "positional arguments; use use_reentrant=False)"
        )
    if not grad_mode.is_grad_enabled():
        return function(*args, **kwargs)  # nothing would be recorded: nothing to save
    segment = _Segment(function, args, kwargs, preserve_rng_state)
    dargs, dkwargs, inputs = segment.detached()
    made: list = []
    if reentrant:
        with grad_mode.no_grad():
            out = segment.fn(*dargs, **dkwargs)
    else:
        _graph._recorders.append(made)
        try:
            out = segment.fn(*dargs, **dkwargs)
        finally:
            _graph._recorders.pop()
    flat = _flatten(out)
    originals = {id(d): a for d, a in zip(inputs, _tensor_args(args, kwargs), strict=True)}
    # outputs that are an argument itself are that argument (its own graph carries them)
    flat = [originals.get(id(o), o) if isinstance(o, Tensor) else o for o in flat]
    if not reentrant:
        segment.leaves = _segment_leaves(flat, made, inputs)
        made.clear()
    passed_through = {id(a) for a in originals.values()}
    carried = [
        i for i, o in enumerate(flat)
        if isinstance(o, Tensor) and id(o) not in passed_through
        and (o.requires_grad or reentrant) and o.is_floating_point()
    ]  # fmt: skip
    node_inputs = [*_tensor_args(args, kwargs), *segment.leaves]
    if reentrant and not any(t.requires_grad for t in node_inputs):
        warnings.warn(
            "checkpoint(use_reentrant=True): none of the inputs requires grad, so the "
            "parameters inside get no gradient; use use_reentrant=False",
            UserWarning,
            stacklevel=2,
        )
    if not carried or not any(t.requires_grad for t in node_inputs):
        for i in carried:
            flat[i] = flat[i].detach()
        return _rebuild(out, flat)
    segment.output_slots = carried
    values = tuple(flat[i].detach().array for i in carried)
    made_outputs = _CheckpointNode.apply(*node_inputs, segment=segment, values=values,
                                         reentrant=reentrant)  # fmt: skip
    if not isinstance(made_outputs, tuple):
        made_outputs = (made_outputs,)
    made_outputs[0].grad_fn.values = None  # the outputs hold them; the node must not
    for i, t in zip(carried, made_outputs, strict=True):
        flat[i] = t
    return _rebuild(out, flat)


def _tensor_args(args: tuple, kwargs: dict) -> list[Tensor]:
    return [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]


def checkpoint_sequential(
    functions: Any,
    segments: int,
    input: Any,
    use_reentrant: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Run a Sequential (or a list of modules/callables) in ``segments`` checkpointed pieces:
    every piece but the last keeps only its input for backward (PyTorch's split: equal
    pieces, the last one run normally). ``preserve_rng_state`` may be given as a keyword."""
    if hasattr(functions, "children") and not isinstance(functions, list | tuple):
        functions = list(functions.children())
    functions = list(functions)
    if isinstance(segments, bool) or not isinstance(segments, int) or segments < 1:
        raise ValueError(
            f"checkpoint_sequential: segments must be a positive int, got {segments!r}"
        )
    unknown = set(kwargs) - {"preserve_rng_state"}
    if unknown:
        raise ValueError(f"Unexpected keyword arguments: {','.join(sorted(unknown))}")

    def run(start: int, end: int) -> Callable[[Any], Any]:
        def forward(x: Any) -> Any:
            for fn in functions[start : end + 1]:
                x = fn(x)
            return x

        return forward

    size = len(functions) // segments
    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant, **kwargs)
    return run(end + 1, len(functions) - 1)(input)
