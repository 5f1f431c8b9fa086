"""ctc_loss: Connectionist Temporal Classification (PyTorch's), one Function running the
forward-backward (alpha-beta) dynamic program in log space, vectorized over the batch.

Memory: the node keeps log_probs (a reference), the (T, N, 2S + 1) alpha table of the forward
recursion, the per-sequence loss and the extended targets with their masks; backward builds
beta and the (T, N, C) gradient.
"""

from __future__ import annotations

from typing import Any

import numpy

from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops._util import float_input
from gradflow.ops.indexing import _add_at
from gradflow.ops.loss_arguments import check_reduction
from gradflow.tensor import Tensor


def _logsumexp3(a: Any, b: Any, c: Any) -> Any:
    """log(exp(a) + exp(b) + exp(c)) elementwise, -inf where all three are -inf."""
    xp = get_array_module(a)
    m = xp.maximum(xp.maximum(a, b), c)
    safe = xp.where(xp.isfinite(m), m, a.dtype.type(0))
    with numpy.errstate(divide="ignore"):
        out = xp.log(xp.exp(a - safe) + xp.exp(b - safe) + xp.exp(c - safe)) + safe
    return xp.where(m == -numpy.inf, m, out)


class CTCLossFunction(Function):
    """-log p(target | log_probs) per sequence by the forward-backward (alpha-beta) recursion
    in log space over the extended target (blanks between and around the labels), vectorized
    over the batch with a Python loop over time.

    The gradient is PyTorch's: exp(lp) - exp(log sum_{s: l'_s = c} alpha_t(s) beta_t(s) + nll -
    lp) for t < input_length, 0 after; it is the true gradient once log_probs come from a
    log_softmax (what ctc_loss expects), which is how the tests check it.
    """

    op_name = "ctc_loss"
    blank: int
    zero_infinity: bool

    def forward(self, lp, labels, input_lengths, target_lengths):
        # lp (T, N, C); labels (N, S) int64 padded; lengths (N,) int64 on lp's device
        xp = get_array_module(lp)
        T, N, _ = lp.shape
        S = labels.shape[1]
        L = 2 * S + 1
        ninf = lp.dtype.type(-numpy.inf)
        ext = xp.full((N, L), self.blank, dtype=numpy.int64)  # l': blank, l1, blank, l2, ...
        ext[:, 1::2] = labels
        ext_len = 2 * target_lengths + 1  # (N,)
        pos = xp.arange(L)
        valid = pos[None, :] < ext_len[:, None]  # (N, L)
        skip = xp.zeros((N, L), dtype=bool)  # s-2 -> s allowed: a label unlike the one before
        skip[:, 2:] = (ext[:, 2:] != self.blank) & (ext[:, 2:] != ext[:, :-2])
        rows = xp.arange(N)[:, None]
        emit = lambda t: lp[t][rows, ext]  # noqa: E731  (N, L): log p of l'_s at time t
        alpha = xp.full((T, N, L), ninf, dtype=lp.dtype)
        first = emit(0)
        alpha[0, :, 0] = first[:, 0]
        alpha[0, :, 1] = xp.where(target_lengths > 0, first[:, 1], ninf) if L > 1 else ninf
        for t in range(1, T):
            prev = alpha[t - 1]
            a1 = xp.concatenate([xp.full((N, 1), ninf, lp.dtype), prev[:, :-1]], axis=1)
            a2 = xp.concatenate([xp.full((N, 2), ninf, lp.dtype), prev[:, :-2]], axis=1)[:, :L]
            new = _logsumexp3(prev, a1, xp.where(skip, a2, ninf)) + emit(t)
            new = xp.where(valid, new, ninf)
            alpha[t] = xp.where((t < input_lengths)[:, None], new, prev)  # frozen after T_n
        # nll = -log(alpha_{T_n-1}(L_n - 1) + alpha_{T_n-1}(L_n - 2))
        last_t = xp.maximum(input_lengths - 1, 0)
        final = alpha[last_t, xp.arange(N)]  # (N, L)
        n = xp.arange(N)
        end1 = final[n, ext_len - 1]
        end2 = xp.where(ext_len >= 2, final[n, xp.maximum(ext_len - 2, 0)], ninf)
        ll = xp.logaddexp(end1, end2)
        ll = xp.where(input_lengths > 0, ll, xp.where(target_lengths == 0, 0, ninf))
        nll = -ll
        self.save_for_backward(lp, alpha, nll, ext, valid, skip, input_lengths, ext_len)
        if self.zero_infinity:
            nll = xp.where(xp.isinf(nll), lp.dtype.type(0), nll)
        return nll

    def backward(self, g):
        lp, alpha, nll, ext, valid, skip, input_lengths, ext_len = self.saved_arrays
        xp = get_array_module(lp)
        T, N, C = lp.shape
        L = ext.shape[1]
        ninf = lp.dtype.type(-numpy.inf)
        rows = xp.arange(N)[:, None]
        # beta_t(s): log p of emitting l'_s..end from time t on, lp at t included (PyTorch's)
        beta = xp.full((T, N, L), ninf, dtype=lp.dtype)
        ends = valid & (
            (xp.arange(L)[None, :] == (ext_len - 1)[:, None])
            | (xp.arange(L)[None, :] == (ext_len - 2)[:, None])
        )
        skip_next = xp.zeros((N, L), dtype=bool)  # s+2 -> s allowed
        skip_next[:, :-2] = skip[:, 2:]
        nxt = xp.full((N, L), ninf, dtype=lp.dtype)
        for t in range(T - 1, -1, -1):
            e = lp[t][rows, ext]
            b1 = xp.concatenate([nxt[:, 1:], xp.full((N, 1), ninf, lp.dtype)], axis=1)
            b2 = xp.concatenate([nxt[:, 2:], xp.full((N, 2), ninf, lp.dtype)], axis=1)[:, :L]
            rec = _logsumexp3(nxt, b1, xp.where(skip_next, b2, ninf)) + e
            init = xp.where(ends, e, ninf)
            cur = xp.where((t == input_lengths - 1)[:, None], init, rec)
            cur = xp.where(valid & (t < input_lengths)[:, None], cur, ninf)
            beta[t] = cur
            nxt = cur
        # sum over s with l'_s = c of alpha beta, in log space: a max-shifted exp, then a
        # scatter-add of the (T, N, L) terms into their (t, n, l'_s) slots of (T, N, C)
        ab = alpha + beta  # (T, N, L)
        m = ab.max(axis=2, keepdims=True)
        m = xp.where(xp.isfinite(m), m, lp.dtype.type(0))
        rows_tn = xp.arange(T * N, dtype=numpy.intp).reshape(T, N, 1) * C
        positions = (rows_tn + ext.astype(numpy.intp)[None]).reshape(-1)
        grouped = xp.zeros((T, N, C), dtype=lp.dtype)
        _add_at(grouped.reshape(-1), positions, xp.exp(ab - m).reshape(-1))
        with numpy.errstate(divide="ignore", invalid="ignore", over="ignore"):
            lcab = xp.log(grouped) + m  # (T, N, C)
            grad = xp.exp(lp) - xp.exp(lcab + nll[None, :, None] - lp)
        active = (xp.arange(T)[:, None] < input_lengths[None, :])[:, :, None]
        grad = xp.where(active, grad, lp.dtype.type(0))
        if self.zero_infinity:
            grad = xp.where(xp.isinf(nll)[None, :, None], lp.dtype.type(0), grad)
        grad *= g[None, :, None]
        return grad, None, None, None


def _lengths(x: Any, n: int, op: str, name: str) -> numpy.ndarray:
    """Lengths given as a Tensor or a sequence of ints, as an (n,) int64 NumPy array."""
    if isinstance(x, Tensor):
        a = numpy.asarray(x.detach().cpu().numpy())
        if a.dtype.kind not in "iu":
            raise TypeError(f"{op}: '{name}' must hold integers, got dtype {a.dtype}")
    else:
        a = numpy.asarray(list(x) if not isinstance(x, int) else [x])
    a = a.astype(numpy.int64).reshape(-1)
    if a.shape != (n,):
        raise RuntimeError(f"{op}: expected '{name}' to hold {n} lengths, got {a.size}")
    if (a < 0).any():
        raise RuntimeError(f"{op}: '{name}' holds a negative length: {a.tolist()}")
    return a


def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Any,
    target_lengths: Any,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    """Connectionist Temporal Classification loss (PyTorch's): -log p(target | log_probs),
    summed over all alignments. log_probs (T, N, C) (or (T, C)) from log_softmax; targets (N,
    S) padded or 1-D concatenated; lengths as Tensors or int sequences. 'mean' divides each loss
    by its target length (at least 1), then averages over the batch; zero_infinity turns
    impossible alignments' infinite losses (and their gradients) into 0.

    >>> import gradflow
    >>> lp = gradflow.tensor([[[0.0, -100.0]], [[-100.0, 0.0]]])
    >>> ctc_loss(lp, gradflow.tensor([[1]]), [2], [1], reduction="sum")
    tensor(0.)
    """
    op = "ctc_loss"
    check_reduction(reduction, op)
    lp = float_input(log_probs, op, "log_probs")
    unbatched = lp.ndim == 2
    if unbatched:
        lp = lp.unsqueeze(1)
    if lp.ndim != 3:
        raise RuntimeError(
            f"{op}: expected 'log_probs' of shape (T, N, C) or (T, C), got {tuple(log_probs.shape)}"
        )
    T, N, C = lp.shape
    if not 0 <= blank < C:
        raise RuntimeError(f"{op}: blank must be in label range [0, {C}), got {blank}")
    if not isinstance(targets, Tensor):
        raise TypeError(f"{op}: argument 'targets' must be a Tensor, got {type(targets).__name__}")
    in_len = _lengths(input_lengths, N, op, "input_lengths")
    tgt_len = _lengths(target_lengths, N, op, "target_lengths")
    if (in_len > T).any():
        raise RuntimeError(
            f"{op}: expected input_lengths to have value at most {T}, but got value "
            f"{int(in_len.max())}"
        )
    tg = numpy.asarray(targets.detach().cpu().numpy()).astype(numpy.int64)
    if unbatched and tg.ndim == 1 and tg.size == tgt_len.sum() and tg.size != 0:
        tg = tg.reshape(1, -1)
    S = int(tgt_len.max()) if N else 0
    if tg.ndim == 2:
        if tg.shape[0] != N or tg.shape[1] < S:
            raise RuntimeError(
                f"{op}: padded targets of shape {tg.shape} for batch {N} and longest target "
                f"{S}; expected (N, S) with S >= max(target_lengths)"
            )
        labels = tg[:, :S]
    elif tg.ndim == 1:
        if tg.size != tgt_len.sum():
            raise RuntimeError(
                f"{op}: concatenated targets hold {tg.size} labels but target_lengths sum to "
                f"{int(tgt_len.sum())}"
            )
        labels = numpy.full((N, S), blank, dtype=numpy.int64)
        starts = numpy.concatenate([[0], numpy.cumsum(tgt_len)[:-1]])
        for i, (start, k) in enumerate(zip(starts, tgt_len)):
            labels[i, :k] = tg[start : start + k]
    else:
        raise RuntimeError(f"{op}: targets must be 1-D or 2-D, got shape {tg.shape}")
    kept = numpy.arange(S)[None, :] < tgt_len[:, None]
    if ((labels < 0) | (labels >= C) | (labels == blank))[kept].any():
        raise RuntimeError(
            f"{op}: targets must be class indices in [0, {C}) other than blank={blank}"
        )
    labels = numpy.where(kept, labels, blank)
    xp = get_array_module(lp.array)
    device_arrays = [xp.asarray(a) for a in (labels, in_len, tgt_len)]
    nll = CTCLossFunction.apply(
        lp, *device_arrays, blank=int(blank), zero_infinity=bool(zero_infinity)
    )
    if reduction == "mean":
        out = (nll / Tensor._wrap(xp.asarray(numpy.maximum(tgt_len, 1).astype(lp.dtype)))).mean()
    elif reduction == "sum":
        out = nll.sum()
    else:
        out = nll
    return out.reshape(()) if unbatched and reduction == "none" else out
