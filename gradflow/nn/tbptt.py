"""Truncated backpropagation through time: train a recurrent model on a long sequence in
chunks of k steps, carrying the state forward but cutting the graph between chunks.

Full BPTT over T steps keeps every step's activations until the one backward at the end, so
memory grows with T. Truncated BPTT runs the sequence in chunks of k steps: forward through a
chunk, backward, optimizer step, then go on from the chunk's final state *detached*, so the
next chunk's graph starts at that state and the memory held is that of k steps, whatever T is.
Gradients then flow at most k steps back.

By hand, the pattern is (detach before each chunk, not after, so the first chunk may start
from a state that does require grad)::

    hidden = None
    for x, y in zip(inputs.split(k), targets.split(k)):    # chunks along time (dim 0)
        if hidden is not None:
            hidden = tuple(h.detach() for h in hidden)      # LSTM: (h, c); GRU/RNN: h.detach()
        optimizer.zero_grad()
        output, hidden = model(x, hidden)
        loss = loss_fn(output, y)
        loss.backward()
        optimizer.step()

:func:`truncated_bptt` is that loop (plus gradient clipping and a mean loss).

**Memory-bounded full BPTT** (``checkpoint_every=s``): within each chunk, the steps run in
segments of s, each through ``gradflow.utils.checkpoint``: forward keeps only the state at each
segment boundary, and backward recomputes one segment at a time. With k = T (no truncation)
and s about sqrt(T) the memory grows as sqrt(T) (Chen et al. 2016) instead of T, for the same
gradients as full BPTT and one more forward. The chunk's loss is then the step-weighted mean
of the segments' losses: the same value as one ``loss_fn`` call over the chunk for losses that
average over the time steps (mean-reduced MSE, cross-entropy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradflow.nn.utils.clip_grad import clip_grad_norm_
from gradflow.tensor import Tensor


def detach_state(state: Any) -> Any:
    """The recurrent state cut from its graph: a Tensor, or a tuple/list of them (LSTM's
    (h, c)), nested any depth; None stays None."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, tuple | list):
        return type(state)(detach_state(s) for s in state)
    raise TypeError(
        f"detach_state: expected a Tensor, a tuple/list of Tensors or None, got "
        f"{type(state).__name__}"
    )


def _time_slice(x: Tensor, dim: int, start: int, stop: int) -> Tensor:
    return x[(slice(None),) * dim + (slice(start, stop),)]


def truncated_bptt(
    model: Callable[..., Any],
    inputs: Tensor,
    targets: Tensor,
    loss_fn: Callable[[Any, Any], Tensor],
    optimizer: Any,
    k: int,
    hidden: Any = None,
    clip: float | None = None,
    *,
    time_dim: int | None = None,
    checkpoint_every: int | None = None,
) -> tuple[float, Any]:
    """Train `model` over one long sequence by k-step truncated BPTT; returns (mean loss,
    final state).

    model(x_chunk, hidden) -> (output, hidden), as nn.LSTM/GRU/RNN or a model built around
    one. inputs and targets share the time axis `time_dim` (default: 1 when the model has
    ``batch_first=True``, else 0). For each chunk of k steps (the last may be shorter):
    detach the state, zero the gradients, forward, ``loss_fn(output, target_chunk)``,
    backward, clip the gradient norm to `clip` when given, ``optimizer.step()``. The mean loss
    weighs each chunk's loss by its number of steps; the final state comes back detached.
    ``checkpoint_every=s`` runs each chunk in checkpointed segments of s steps (see the module
    docstring): the same gradients, memory of about k/s states plus one segment.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ValueError(f"truncated_bptt: k must be a positive int (steps per chunk), got {k!r}")
    if time_dim is None:
        time_dim = 1 if getattr(model, "batch_first", False) else 0
    steps = inputs.shape[time_dim]
    if targets.shape[time_dim] != steps:
        raise ValueError(
            f"truncated_bptt: inputs of shape {tuple(inputs.shape)} and targets of shape "
            f"{tuple(targets.shape)} differ in length along the time dim {time_dim}"
        )
    if checkpoint_every is not None and (
        isinstance(checkpoint_every, bool)
        or not isinstance(checkpoint_every, int)
        or checkpoint_every <= 0
    ):
        raise ValueError(
            f"truncated_bptt: checkpoint_every must be a positive int (steps per recomputed "
            f"segment) or None, got {checkpoint_every!r}"
        )
    parameters = list(model.parameters()) if clip is not None else []
    total = 0.0
    for start in range(0, steps, k):
        stop = min(start + k, steps)
        hidden = detach_state(hidden)
        optimizer.zero_grad()
        if checkpoint_every is None:
            output, hidden = model(_time_slice(inputs, time_dim, start, stop), hidden)
            loss = loss_fn(output, _time_slice(targets, time_dim, start, stop))
        else:
            loss, hidden = _checkpointed_chunk(
                model, inputs, targets, loss_fn, hidden, start, stop, checkpoint_every, time_dim
            )
        loss.backward()
        if clip is not None:
            clip_grad_norm_(parameters, clip)
        optimizer.step()
        total += float(loss.item()) * (stop - start)
    return total / max(steps, 1), detach_state(hidden)


def _checkpointed_chunk(
    model: Callable[..., Any],
    inputs: Tensor,
    targets: Tensor,
    loss_fn: Callable[[Any, Any], Tensor],
    hidden: Any,
    start: int,
    stop: int,
    every: int,
    time_dim: int,
) -> tuple[Tensor, Any]:
    """The chunk start..stop as checkpointed segments of `every` steps: (the chunk's loss, the
    final state). Each segment returns its weighted loss and the state (flattened to Tensors,
    so gradients flow between segments through checkpoint's arguments)."""
    from gradflow.utils.checkpoint import checkpoint

    pair = isinstance(hidden, tuple | list)
    total = None
    for first in range(start, stop, every):
        last = min(first + every, stop)
        weight = (last - first) / (stop - start)

        def segment(
            x: Tensor, y: Tensor, *state: Tensor, weight: float = weight, pair: bool = pair
        ) -> tuple:
            carried = None if not state else (tuple(state) if pair else state[0])
            output, new = model(x, carried)
            news = tuple(new) if isinstance(new, tuple | list) else (new,)
            return (loss_fn(output, y) * weight, *news)

        state = () if hidden is None else (tuple(hidden) if pair else (hidden,))
        part, *news = checkpoint(
            segment,
            _time_slice(inputs, time_dim, first, last),
            _time_slice(targets, time_dim, first, last),
            *state,
        )
        pair = len(news) > 1
        hidden = tuple(news) if pair else news[0]
        total = part if total is None else total + part
    return total, hidden
