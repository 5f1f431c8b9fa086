"""Double backward by recomputation, for the fused ops whose array backward is long and
hand-written (the recurrent layers and cells, scaled dot-product attention, embedding_bag).

Under ``create_graph=True`` such an op's ``backward_graph`` does not transcribe its backward
sweep: it calls ``backward_graph_by_recompute``, which reruns the op's function as a
*reference forward* written with gradflow ops that have their own ``backward_graph`` (matmul,
sigmoid, tanh, relu, where, softmax, stack, getitem, ...) on the forward's saved input arrays,
takes the gradients of that small graph with create_graph (``decomposed_backward_graph`` in
differentiable.py: fresh leaves, then the nodes made re-linked to the op's own input edges),
and returns them. They equal the fused backward's and carry a graph to any order. The cost is
one more forward as separate ops, paid only under create_graph; the first-order path, and the
op's saved memory, are the fused op's (the op keeps references to its inputs for it).

The references here compute exactly the fused forward (the tests compare them):
- ``recurrent_reference``: one layer, one direction of LSTM / GRU / RNN tanh / relu over T
  steps, PyTorch's gate formulas, with or without biases, ``reverse``, and variable lengths
  (a finished sequence keeps its state and outputs 0, as ops/rnn.py);
- ``attention_reference``: softmax(scale Q K^T + additive mask) V with a bool or causal mask
  (masked places -inf, a row with no key left gives 0), batch dims broadcast, and dropout
  replayed from the keep-mask the forward drew and saved;
- ``embedding_bag_reference``: the bags' sums, means (empty bags 0, padding left out) and
  maxima (the elements forward chose), with per_sample_weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gradflow.autograd.differentiable import const, decomposed_backward_graph
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module


def backward_graph_by_recompute(
    fn: Function, grads: Any, reference: Callable, arrays: Sequence
) -> tuple:
    """``fn.backward_graph`` from a reference forward: ``reference(*inputs)`` recomputes fn's
    output(s) (a Tensor, or a tuple in fn's output order) with differentiable gradflow ops,
    from Tensors around ``arrays`` (fn's forward inputs, one per input edge, in order; None
    for an input that was None). ``grads`` is the incoming gradient (a tuple for several
    outputs). Returns one gradient per input, with a graph (None where none is needed)."""
    return decomposed_backward_graph(fn, grads, reference, arrays)


# ---- the recurrent layer -----------------------------------------------------------------------


def recurrent_reference(mode: str, reverse: bool, lengths: Any) -> Callable:
    """The function of ops/rnn.py's RecurrentLayer for (x, h0, c0, w_ih, w_hh, b_ih, b_hh),
    step by step with gradflow ops; returns (output, h_n) or, for LSTM, (output, h_n, c_n).
    ``lengths``: None, or the (B,) int array on x's device."""
    from gradflow.ops import unary
    from gradflow.ops.arithmetic import where
    from gradflow.ops.shape import chunk, stack, unbind

    def forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        steps = x.shape[0]
        xw = x @ w_ih.transpose(0, 1)  # (T, B, G*H)
        if b_ih is not None:
            xw = xw + b_ih
        if b_hh is not None and mode != "gru":  # GRU: b_hn sits inside r * (...)
            xw = xw + b_hh
        # One node splits the steps apart and one the gates (unbind, chunk): their gradients
        # are one stack or concatenation, where indexing would scatter each piece into zeros
        # of the whole (quadratic in T).
        xw = unbind(xw, 0)
        w_hh_t = w_hh.transpose(0, 1)
        h, c = h0, c0
        outputs: list = [None] * steps
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        for t in order:
            hw = h @ w_hh_t
            if mode == "lstm":
                i, f, g, o = chunk(xw[t] + hw, 4, 1)
                i, f, g, o = unary.sigmoid(i), unary.sigmoid(f), unary.tanh(g), unary.sigmoid(o)
                c_new = f * c + i * g
                h_new = o * unary.tanh(c_new)
            elif mode == "gru":
                if b_hh is not None:
                    hw = hw + b_hh
                x_r, x_z, x_n = chunk(xw[t], 3, 1)
                h_r, h_z, h_n = chunk(hw, 3, 1)
                r = unary.sigmoid(x_r + h_r)
                z = unary.sigmoid(x_z + h_z)
                n = unary.tanh(x_n + r * h_n)
                h_new = n + z * (h - n)
            else:
                pre = xw[t] + hw
                h_new = unary.relu(pre) if mode == "rnn_relu" else unary.tanh(pre)
            if lengths is None:
                outputs[t] = h_new
                h = h_new
                if mode == "lstm":
                    c = c_new
                continue
            active = (lengths > t)[:, None]  # (B, 1): step t still runs for sequence b
            outputs[t] = h_new * const(active.astype(h_new.dtype))
            keep = const(active)
            h = where(keep, h_new, h)
            if mode == "lstm":
                c = where(keep, c_new, c)
        out = stack(outputs, 0)
        return (out, h, c) if mode == "lstm" else (out, h)

    return forward


# ---- attention -------------------------------------------------------------------------------


def attention_reference(scale: float, keep: Any, causal: bool, dropped: Any = None) -> Callable:
    """The function of ops/attention.py's ScaledDotProductAttention for (q, k, v[, additive
    mask]) with gradflow ops. ``keep``: the bool mask's array (True takes part) or None;
    ``causal``: keys after each query masked out; ``dropped``: None, or the keep-mask the
    forward drew already multiplied by 1 / (1 - p) (an array of P's shape), replayed."""
    from gradflow.ops.arithmetic import where
    from gradflow.ops.softmax import softmax

    def forward(q, k, v, mask=None):
        s = (q @ k.transpose(-2, -1)) * scale
        if mask is not None:
            s = s + mask
        xp = get_array_module(s.array)
        allowed = keep
        if causal:
            allowed = xp.tri(s.shape[-2], s.shape[-1], dtype=bool)
        if allowed is not None:
            s = where(const(allowed), s, float("-inf"))
        top = s.array.max(axis=-1, keepdims=True)
        empty = ~xp.isfinite(top)  # a row with every key masked out: all 0, as the op
        if empty.any():
            s = where(const(empty), 0.0, s)
            p = softmax(s, -1) * const((~empty).astype(s.dtype))
        else:
            p = softmax(s, -1)
        if dropped is not None:
            p = p * const(dropped)
        return p @ v

    return forward


# ---- embedding_bag -----------------------------------------------------------------------------


def embedding_bag_reference(fn: Any) -> Callable:
    """The function of ops/embedding.py's EmbeddingBagFunction ``fn`` for (weight[,
    per_sample_weights]) with gradflow ops: the kept rows picked by indexing, scaled by their
    per-sample weights (sum) or 1 / count (mean), summed per bag as differences of a
    cumulative sum at the bags' ends (the bags are runs of consecutive rows); max: each output
    element is the weight element forward chose."""
    from gradflow.ops.shape import cat

    def forward(weight, per_sample_weights=None):
        xp = get_array_module(weight.array)
        width = weight.shape[1]
        if fn.mode == "max":
            if fn.chosen is None:  # every bag empty: zeros whatever the weight
                return weight[:0].sum() * 0 + const(xp.zeros((fn.num_bags, width), weight.dtype))
            columns = xp.arange(width)
            positions = xp.maximum(fn.chosen, 0) * width + columns
            picked = weight.reshape(-1)[positions]
            return picked * const(fn.nonempty[:, None].astype(weight.dtype))
        values = weight[fn.rows]
        if per_sample_weights is not None:
            values = values * per_sample_weights[fn.keep][:, None]
        counts = fn.counts.astype(xp.int64)
        if fn.mode == "mean":
            share = (1 / xp.maximum(fn.counts, 1)).astype(weight.dtype)
            values = values * const(share[fn.bags][:, None])
        ends = xp.cumsum(counts)
        running = cat([const(xp.zeros((1, width), weight.dtype)), values.cumsum(0)], 0)
        return running[ends] - running[ends - counts]

    return forward
