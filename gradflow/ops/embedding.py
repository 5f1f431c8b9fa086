"""Embedding lookup: rows of a weight matrix picked by integer indices (PyTorch's F.embedding).

Memory: backward keeps only the indices (the input's own array, a reference, no copy). The
weight gradient is dense, (num_embeddings, embedding_dim): zeros plus a scatter-add of the
output gradient's rows, so repeated indices add up; the row at padding_idx gets none.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy

from gradflow.autograd import versions as _versions
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module, is_cuda_array
from gradflow.ops.indexing import _add_at
from gradflow.ops.indexing import _add_rows as _scatter_add_rows  # shared with x[idx], gather
from gradflow.tensor import Tensor


def _row_counts(rows, num_rows, dtype):
    """How often each of the num_rows rows occurs in rows (indices already in range), as dtype.

    On cuda a scatter-add of ones into zeros: CuPy's bincount synchronizes twice (it checks
    for negative values and reads the max to size its output on the host)."""
    if is_cuda_array(rows):
        import cupyx

        counts = get_array_module(rows).zeros(num_rows, dtype)
        cupyx.scatter_add(counts, rows, 1)
        return counts
    return numpy.bincount(rows, minlength=num_rows).astype(dtype)


class EmbeddingFunction(Function):
    op_name = "embedding"
    padding_idx: int | None
    scale_grad_by_freq: bool

    def forward(self, indices, weight):
        self.weight_shape = weight.shape
        self.save_for_backward(indices)  # Memory: the integer indices only
        return get_array_module(weight).take(weight, indices, axis=0)

    def backward(self, g):
        (indices,) = self.saved_arrays
        xp = get_array_module(g)
        rows = indices.reshape(-1)
        g2 = g.reshape(-1, self.weight_shape[1])
        if self.scale_grad_by_freq:
            g2 = g2 / _row_counts(rows, self.weight_shape[0], g.dtype)[rows][:, None]
        gw = xp.zeros(self.weight_shape, g.dtype)
        _scatter_add_rows(gw, rows, g2)  # numba's add_rows where it runs: add.at's bits
        if self.padding_idx is not None:
            gw[self.padding_idx] = 0
        return None, gw

    def backward_graph(self, g):
        return None, EmbeddingBackward.apply(g, item=self)


class EmbeddingBackward(Function):
    """embedding's weight gradient (rows of g added into zeros of the weight's shape) as an op,
    for double backward: its own gradient picks the rows again (embedding forward), zero at
    padding_idx and divided by the row counts as backward divides."""

    op_name = "embedding_backward"
    item: Any  # the EmbeddingFunction node

    def forward(self, g):
        return self.item.backward(g)[1]

    def _scale(self, xp: Any, dtype: Any) -> Any:
        """The factor per looked-up position (None: all ones)."""
        item = self.item
        (indices,) = item.saved_arrays
        rows = indices.reshape(-1)
        scale = None
        if item.scale_grad_by_freq:
            scale = 1 / _row_counts(rows, item.weight_shape[0], dtype)[rows]
        if item.padding_idx is not None:
            keep = (rows != item.padding_idx % item.weight_shape[0]).astype(dtype)
            scale = keep if scale is None else scale * keep
        return None if scale is None else scale.reshape(indices.shape + (1,))

    def backward(self, gg):
        (indices,) = self.item.saved_arrays
        xp = get_array_module(gg)
        out = xp.take(gg, indices, axis=0)
        scale = self._scale(xp, gg.dtype)
        return out if scale is None else out * scale

    def backward_graph(self, gg):
        from gradflow.autograd.differentiable import const

        (indices,) = self.item.saved_arrays
        out = EmbeddingFunction.apply(const(indices), gg, padding_idx=None,
                                      scale_grad_by_freq=False)  # fmt: skip
        scale = self._scale(get_array_module(indices), gg.dtype)
        return out if scale is None else out * const(scale)


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Look up rows of `weight` (num_embeddings, embedding_dim) by integer indices of any shape:
    the result has shape input.shape + (embedding_dim,).

    The weight gradient adds up the output gradient of every position that picked a row;
    the row at padding_idx (negative counts from the end) gets a zero gradient, and
    scale_grad_by_freq divides each row's gradient by how often the row occurs in input.
    max_norm rescales, in place and outside the graph, each row input picks whose norm_type
    norm exceeds it to that norm (embedding_renorm_). Sparse gradients are not supported.

    >>> weight = gradflow.randn(10, 3, requires_grad=True)
    >>> tuple(embedding(gradflow.tensor([[1, 2], [4, 1]]), weight).shape)
    (2, 2, 3)
    """
    if sparse:
        raise NotImplementedError(
            "embedding: sparse=True is not supported (gradflow has no sparse gradients); pass "
            "sparse=False to get a dense weight gradient"
        )
    if not isinstance(weight, Tensor):
        raise TypeError(
            f"embedding: argument 'weight' must be a Tensor, got {type(weight).__name__}"
        )
    if weight.ndim != 2 or weight.dtype.kind != "f":
        raise ValueError(
            f"embedding: argument 'weight' has shape {tuple(weight.shape)} and dtype "
            f"{weight.dtype}; expected a 2-D floating-point tensor (num_embeddings, embedding_dim)"
        )
    if not isinstance(input, Tensor):
        raise TypeError(
            f"embedding: argument 'input' must be a Tensor of integer indices, got "
            f"{type(input).__name__}; wrap it with gradflow.tensor(...)"
        )
    if input.dtype.kind not in "iu":
        raise TypeError(
            f"embedding: argument 'input' has dtype {input.dtype} and shape "
            f"{tuple(input.shape)}; expected integer indices (int64 or int32), convert with "
            ".long()"
        )
    if input.device != weight.device:
        raise RuntimeError(
            f"embedding: indices are on {input.device} but weight is on {weight.device}; move "
            "them to one device first, e.g. indices.to(weight.device)"
        )
    num_rows = weight.shape[0]
    _check_range(input, num_rows)
    if padding_idx is not None:
        if not -num_rows <= padding_idx < num_rows:
            raise ValueError(
                f"embedding: padding_idx={padding_idx} is out of range for weight with "
                f"{num_rows} rows; expected in [{-num_rows}, {num_rows})"
            )
        padding_idx = int(padding_idx) % num_rows
    if max_norm is not None:
        embedding_renorm_(weight, input, max_norm, norm_type)
    return EmbeddingFunction.apply(
        input, weight, padding_idx=padding_idx, scale_grad_by_freq=bool(scale_grad_by_freq)
    )


def embedding_renorm_(weight: Tensor, input: Tensor, max_norm: float, norm_type: float) -> Tensor:
    """Rescale in place each row of weight that input picks and whose norm_type norm exceeds
    max_norm, to max_norm / (norm + 1e-7) times itself (torch.embedding_renorm_: outside the
    graph, the weight's version bumped, so a graph that saved the old rows refuses to run
    backward). Returns weight."""
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real):
        raise TypeError(f"embedding: max_norm must be a number, got {type(max_norm).__name__}")
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real):
        raise TypeError(f"embedding: norm_type must be a number, got {type(norm_type).__name__}")
    if input.numel() == 0:
        return weight
    xp = get_array_module(weight.array)
    w = weight.array
    rows = xp.unique(input.array.reshape(-1))
    picked = w[rows].astype(xp.float64) if w.dtype != xp.float64 else w[rows]
    p = float(norm_type)
    size = xp.abs(picked)
    if p == math.inf:
        norms = size.max(axis=1)
    elif p == 1:
        norms = size.sum(axis=1)
    elif p == 2:
        norms = xp.sqrt((picked * picked).sum(axis=1))
    else:
        norms = (size**p).sum(axis=1) ** (1 / p)
    over = norms > max_norm
    if bool(over.any()):
        rows, norms = rows[over], norms[over]
        scale = (max_norm / (norms + 1e-7)).astype(w.dtype)
        w[rows] *= scale[:, None]
        _versions.bump(w)
    return weight


def _check_range(input: Tensor, num_rows: int) -> None:
    """Indices must lie in [0, num_rows) (one host synchronization on cuda)."""
    if input.numel() == 0:
        return
    data = input.array
    low, high = get_array_module(data).stack([data.min(), data.max()]).tolist()
    if low < 0 or high >= num_rows:
        bad = low if low < 0 else high
        raise IndexError(
            f"embedding: index {bad} is out of range for weight with {num_rows} rows; indices "
            f"must be in [0, {num_rows})"
        )


# ---- embedding_bag ---------------------------------------------------------------------------


def _scatter_add_flat(out, positions, values):
    """out.reshape(-1)[positions[i]] += values[i] for every i (repeats add up)."""
    _add_at(out.reshape(-1), positions, values)


def _bag_sums(values, bags, counts, keep, size, num_bags):
    """NumPy: the (num_bags, D) sums of values' rows by bag, added in index order from zero as
    the scatter-add (numpy.add.at) does, to the bit. Bags of one length L over the flat input
    (a 2-D input, or evenly spaced offsets; position p in bag p // L): a sum over the middle
    axis of (bags, L, D), which numpy adds row after row (add.reduceat does not); counts are
    the bags' sizes, keep the kept positions in the flat input of that size; with zero
    rows standing in for dropped positions (padding_idx): from zero, adding 0.0 changes no
    bits. Otherwise None (the caller scatter-adds)."""
    length = size // num_bags if num_bags else 0
    if not length or size != num_bags * length or bags.shape[0] == 0 or values.shape[1] < 2:
        return None  # (width 1: the middle axis is the inner one, which numpy adds pairwise)
    if bags.shape[0] == size:  # nothing dropped: the runs (sorted bags) all of length L?
        if not bool((counts == length).all()):
            return None
    else:
        if not numpy.array_equal(bags, keep // length):
            return None
        full = numpy.zeros((size, values.shape[1]), values.dtype)
        full[keep] = values
        values = full
    out = values.reshape(num_bags, length, values.shape[1]).sum(axis=1)
    out += 0  # -0.0 to 0.0, as zeros plus the terms gives
    return out


_MAX_ROUNDS = 16  # more repeats of one weight row than this: numpy.add.at instead


def _occurrence_ranks(rows, num_rows):
    """(positions, ranks): the positions 0..n-1 stably sorted by rows[position], and each
    one's rank among the positions of its row (0 for a row's first position, 1 for its
    second, ...). Sorting the keys row * n + position (unique, so any sort is stable) is much
    faster than a stable argsort."""
    n = rows.shape[0]
    if num_rows * n < 1 << 62:
        keys = rows.astype(numpy.int64) * n + numpy.arange(n, dtype=numpy.int64)
        keys.sort()
        positions = keys % n
        keys //= n
        sorted_rows = keys
    else:
        positions = numpy.argsort(rows, kind="stable")
        sorted_rows = rows[positions]
    first = numpy.empty(n, bool)
    first[0] = True
    numpy.not_equal(sorted_rows[1:], sorted_rows[:-1], out=first[1:])
    index = numpy.arange(n)
    starts = numpy.maximum.accumulate(numpy.where(first, index, 0))
    return positions, index - starts


class EmbeddingBagFunction(Function):
    """Sums, means or maxima of bags of weight rows. The caller resolves the bags: `rows`
    are the weight rows that count (padding and positions after the last offset dropped),
    `bags` the bag of each, `keep` their positions in the flat input."""

    op_name = "embedding_bag"
    mode: str
    rows: object
    bags: object
    keep: object
    num_bags: int
    size: int  # of the flat input
    scale_grad_by_freq: bool = False

    def forward(self, weight, per_sample_weights=None):
        xp = get_array_module(weight)
        self.weight_shape = weight.shape
        self.counts = _row_counts(self.bags, self.num_bags, weight.dtype)
        width = weight.shape[1]
        if self.mode == "max":
            return self._max_forward(xp, weight)
        values = xp.take(weight, self.rows, axis=0)
        if per_sample_weights is not None:
            psw = per_sample_weights[self.keep]
            # Memory: the weights of the kept positions (a copy, (kept,)); the table itself
            # only for per_sample_weights' gradient.
            self.save_for_backward(psw, weight if self.needs_input_grad[1] else None)
            values = values * psw[:, None]
        out = None
        if xp is numpy:
            out = _bag_sums(values, self.bags, self.counts, self.keep, self.size, self.num_bags)
        if out is None:
            out = xp.zeros((self.num_bags, width), weight.dtype)
            _scatter_add_rows(out, self.bags, values)
        if self.mode == "mean":
            out /= xp.maximum(self.counts, 1)[:, None]
        return out

    def _max_forward(self, xp, weight):
        width = weight.shape[1]
        kept = self.rows.shape[0]
        longest = int(self.counts.max()) if kept else 0
        out = xp.zeros((self.num_bags, width), weight.dtype)
        if longest == 0:
            self.chosen = None
            return out
        # Bags as rows of a dense (num_bags, longest) table of weight rows, -1 where a bag is
        # shorter; the maximum over each column of a bag picks the row that gets the gradient.
        starts = xp.cumsum(self.counts.astype(xp.int64)) - self.counts.astype(xp.int64)
        place = xp.arange(kept) - starts[self.bags]
        table = xp.full((self.num_bags, longest), -1, dtype=xp.int64)
        table[self.bags, place] = self.rows
        values = xp.take(weight, xp.maximum(table, 0), axis=0)  # (bags, longest, D)
        values[table < 0] = -xp.inf
        best = xp.argmax(values, axis=1)  # (bags, D)
        nonempty = self.counts > 0
        out[nonempty] = xp.take_along_axis(values, best[:, None, :], axis=1)[:, 0][nonempty]
        chosen = xp.take_along_axis(table, best, axis=1)  # the row of each output element
        self.chosen, self.nonempty = chosen, nonempty  # Memory: integer rows and a bool mask
        return out

    def backward(self, g):
        xp = get_array_module(g)
        num_rows, width = self.weight_shape
        gw = gpsw = None
        if self.mode == "max":
            if self.needs_input_grad[0]:
                gw = xp.zeros(self.weight_shape, g.dtype)
                if self.chosen is not None:
                    columns = xp.arange(width)
                    positions = (self.chosen * width + columns)[self.nonempty]
                    _scatter_add_flat(gw, positions.reshape(-1), g[self.nonempty].reshape(-1))
            return (gw,) if len(self.needs_input_grad) == 1 else (gw, None)
        psw, weight = self.saved_arrays if len(self.needs_input_grad) == 2 else (None, None)
        if xp is numpy and weight is None:
            if self.needs_input_grad[0]:
                gw = self._weight_grad_rounds(g, psw)
            return (gw,) if len(self.needs_input_grad) == 1 else (gw, gpsw)
        per_row = xp.take(g, self.bags, axis=0)
        if self.mode == "mean":
            per_row = per_row / xp.maximum(self.counts, 1)[self.bags][:, None]
        if weight is not None:
            gathered = (per_row * xp.take(weight, self.rows, axis=0)).sum(axis=1)
            gpsw = xp.zeros(self.size, g.dtype)
            gpsw[self.keep] = gathered
        if self.needs_input_grad[0]:
            if psw is not None:
                per_row = per_row * psw[:, None]
            if self.scale_grad_by_freq:
                per_row = per_row / _row_counts(self.rows, num_rows, g.dtype)[self.rows][:, None]
            gw = xp.zeros(self.weight_shape, g.dtype)
            _scatter_add_rows(gw, self.rows, per_row)
        if len(self.needs_input_grad) == 1:
            return (gw,)
        return gw, gpsw

    def _weight_grad_rounds(self, g, psw):
        """NumPy, sum/mean: weight's gradient without numpy.add.at on 2-D. Rows that occur once
        are assigned their term (as 0.0 + term: -0.0 comes out 0.0). The terms of a repeated row
        are ranked by position (stably); round k adds every repeated row's k-th term with one
        fancy-indexed assignment (k = 0) or +=, no row twice in a round, so each row adds up in
        index order from zero: the bits of the scatter-add. A row repeated more than
        _MAX_ROUNDS times: the scatter-add itself for the repeated rows. The mean's 1 / count
        scales g's (bags, D) rows before the gather (the same products as scaling the gathered
        ones)."""
        num_rows, _ = self.weight_shape
        if self.mode == "mean":
            g = g / numpy.maximum(self.counts, 1)[:, None]
        g = g + 0  # (bags, D), small: -0.0 to 0.0, as zeros plus a term gives
        gw = numpy.zeros(self.weight_shape, g.dtype)
        all_rows = self.rows
        if all_rows.shape[0] == 0:
            return gw
        occurrences = numpy.bincount(all_rows, minlength=num_rows)
        freq = occurrences.astype(g.dtype) if self.scale_grad_by_freq else None

        def terms(chosen):  # the gradient terms of the kept positions chosen
            out = numpy.take(g, self.bags[chosen], axis=0)
            if psw is not None:
                out *= psw[chosen][:, None]
            if freq is not None:
                out /= freq[all_rows[chosen]][:, None]
            return out

        def assign(chosen):
            first = terms(chosen)
            if psw is not None or freq is not None:  # products and quotients can be -0.0
                first += 0
            gw[all_rows[chosen]] = first

        once = occurrences[all_rows] == 1
        assign(numpy.flatnonzero(once))
        repeated = numpy.flatnonzero(~once)
        if repeated.shape[0] == 0:
            return gw
        positions, ranks = _occurrence_ranks(all_rows[repeated], num_rows)
        rounds = int(ranks.max()) + 1
        if rounds > _MAX_ROUNDS:  # many repeats of a row: the scatter-add itself
            _scatter_add_rows(gw, all_rows[repeated], terms(repeated))
            return gw
        positions = repeated[positions]
        for k in range(rounds):
            chosen = positions[ranks == k]
            if k == 0:
                assign(chosen)
            else:
                gw[all_rows[chosen]] += terms(chosen)
        return gw

    def backward_graph(self, g):
        """Under create_graph: the bags recomputed with differentiable ops (autograd/
        composite.py), their gradients taken with a graph. The weight's values matter only
        for per_sample_weights' gradient (then kept); otherwise the op is linear in it and
        zeros stand in for a table not kept."""
        from gradflow.autograd.composite import backward_graph_by_recompute, embedding_bag_reference
        from gradflow.autograd.differentiable import input_array

        if self.scale_grad_by_freq:  # its gradient is not the forward's derivative
            return NotImplemented
        xp = get_array_module(g.array)
        psw, weight = self.saved_arrays if len(self.needs_input_grad) == 2 else (None, None)
        weight = input_array(self, 0, weight)
        if weight is None:
            weight = xp.broadcast_to(xp.zeros((), g.dtype), self.weight_shape)
        arrays = [weight]
        if len(self.needs_input_grad) == 2:
            full = xp.zeros(self.size, g.dtype)  # positions not kept count for nothing
            if psw is not None:
                full[self.keep] = psw
            arrays.append(full)
        return backward_graph_by_recompute(self, g, embedding_bag_reference(self), arrays)


_BAG_MODES = ("sum", "mean", "max")


def embedding_bag(
    input: Tensor,
    weight: Tensor,
    offsets: Tensor | None = None,
    max_norm: float | None = None,
    norm_type: float = 2,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights: Tensor | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> Tensor:
    """The sum, mean or max of each bag of embedding rows, without the (N, D) lookup result
    in between; PyTorch's F.embedding_bag.

    input is 2-D (B, N): B bags of N indices (offsets must be None); or 1-D with `offsets`
    (1-D) giving each bag's start in it (offsets[0] must be 0; with include_last_offset the
    last entry is the end of the last bag). Indices equal to padding_idx are left out of
    their bag (and of a mean's count); an empty bag gives zeros. per_sample_weights (input's
    shape) scale each row before the sum, mode='sum' only.

    >>> w = gradflow.arange(12.0).reshape(6, 2)
    >>> embedding_bag(gradflow.tensor([1, 2, 4, 5]), w, gradflow.tensor([0, 2]), mode="sum")
    tensor([[ 6.,  8.],
            [18., 20.]])
    """
    if mode not in _BAG_MODES:
        raise ValueError(f"embedding_bag: mode has to be one of sum, mean or max, got {mode!r}")
    if sparse:
        raise NotImplementedError(
            "embedding_bag: sparse=True is not supported (gradflow has no sparse gradients); "
            "pass sparse=False to get a dense weight gradient"
        )
    if not isinstance(weight, Tensor) or weight.ndim != 2 or weight.dtype.kind != "f":
        raise ValueError(
            "embedding_bag: weight must be a 2-D floating-point Tensor (num_embeddings, "
            f"embedding_dim), got {_describe(weight)}"
        )
    if not isinstance(input, Tensor) or input.dtype.kind not in "iu":
        raise TypeError(
            "embedding_bag: input must be a Tensor of integer indices (int64 or int32), got "
            f"{_describe(input)}; convert with .long()"
        )
    if input.device != weight.device:
        raise RuntimeError(
            f"embedding_bag: input is on {input.device} but weight is on {weight.device}; "
            "move them to one device first"
        )
    if per_sample_weights is not None:
        if mode != "sum":
            raise NotImplementedError(
                "embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                f"supported for mode='sum' (got mode='{mode}')"
            )
        if not isinstance(per_sample_weights, Tensor) or tuple(per_sample_weights.shape) != tuple(
            input.shape
        ):
            raise ValueError(
                f"embedding_bag: If per_sample_weights ({_describe(per_sample_weights)}) is not "
                f"None, then it must have the same shape as the input {tuple(input.shape)}"
            )
    xp = get_array_module(weight.array)
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError(
                "embedding_bag: if input is 2D, then offsets has to be None, as input is "
                "treated as a mini-batch of fixed length sequences; got offsets "
                f"{_describe(offsets)}"
            )
        num_bags, length = input.shape
        bags = xp.repeat(xp.arange(num_bags), length)
    elif input.ndim == 1:
        if offsets is None or not isinstance(offsets, Tensor) or offsets.ndim != 1:
            raise ValueError(
                f"embedding_bag: offsets has to be a 1D Tensor but got {_describe(offsets)}"
            )
        starts = offsets.array.astype(xp.int64)
        length = input.shape[0]
        host = [int(v) for v in (starts[0], starts[-1])] if starts.size else []
        if host and host[0] != 0:
            raise RuntimeError(
                "embedding_bag: offsets[0] has to be 0, i.e., the first sequence in the "
                f"mini-batch has to start from position 0. However, got {host[0]}"
            )
        if host and host[1] > length:
            raise RuntimeError(
                f"embedding_bag: offsets[-1] can not be greater than input's length {length} "
                f"but got offsets[-1] of {host[1]}"
            )
        if starts.size > 1 and bool((starts[1:] < starts[:-1]).any()):
            raise RuntimeError(
                f"embedding_bag: offsets must be non-decreasing, got {starts.tolist()}"
            )
        num_bags = starts.shape[0] - 1 if include_last_offset else starts.shape[0]
        if num_bags < 0:
            raise ValueError("embedding_bag: include_last_offset=True needs at least 1 offset")
        bags = xp.searchsorted(starts, xp.arange(length), side="right") - 1
    else:
        raise ValueError(
            f"embedding_bag: input has to be 1D or 2D Tensor, but got Tensor of dimension "
            f"{input.ndim}"
        )
    num_rows = weight.shape[0]
    _check_range(input, num_rows)
    if max_norm is not None:
        embedding_renorm_(weight, input, max_norm, norm_type)
    flat = input.array.reshape(-1).astype(xp.int64)
    keep = bags < num_bags  # positions after the last bag's end (include_last_offset) drop
    if padding_idx is not None:
        if not -num_rows <= padding_idx < num_rows:
            raise ValueError(
                f"embedding_bag: padding_idx={padding_idx} is out of range for weight with "
                f"{num_rows} rows; expected in [{-num_rows}, {num_rows})"
            )
        keep &= flat != int(padding_idx) % num_rows
    keep = xp.nonzero(keep)[0]
    args = [weight]
    if per_sample_weights is not None:
        args.append(per_sample_weights.reshape(-1))
    return EmbeddingBagFunction.apply(
        *args, mode=mode, rows=flat[keep], bags=bags[keep], keep=keep, num_bags=int(num_bags),
        size=flat.shape[0], scale_grad_by_freq=bool(scale_grad_by_freq),
    )  # fmt: skip


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"a Tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return type(value).__name__
