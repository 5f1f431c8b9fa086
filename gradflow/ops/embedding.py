"""Embedding lookup: rows of a weight matrix picked by integer indices (PyTorch's F.embedding).

Memory: backward keeps only the indices (the input's own array, a reference, no copy). The
weight gradient is dense, (num_embeddings, embedding_dim): zeros plus a scatter-add of the
output gradient's rows, so repeated indices add up; the row at padding_idx gets none.
"""

from __future__ import annotations

import numpy

from gradflow.autograd.function import Function
from gradflow.backend import get_array_module, is_cuda_array
from gradflow.tensor import Tensor


def _scatter_add_rows(out, rows, values):
    """out[rows[i]] += values[i] for every i, repeated rows adding up (out: (V, D), C order)."""
    if is_cuda_array(out):
        import cupyx

        cupyx.scatter_add(out, rows, values)
        return
    # NumPy's add.at has a fast path for 1-D operands only: flat element positions beat rows of
    # the 2-D array, sort + reduceat and bincount (benchmarks/results/2026-12-07-code-figures.md).
    width = out.shape[1]
    positions = rows.astype(numpy.intp, copy=False)[:, None] * width  # int32 * V * D overflows
    positions = (positions + numpy.arange(width)).reshape(-1)
    numpy.add.at(out.reshape(-1), positions, values.reshape(-1))


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
        _scatter_add_rows(gw, rows, g2)
        if self.padding_idx is not None:
            gw[self.padding_idx] = 0
        return None, gw


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
    max_norm (renormalizing rows in place) and sparse gradients are not supported.

    >>> weight = gradflow.randn(10, 3, requires_grad=True)
    >>> embedding(gradflow.tensor([[1, 2], [4, 1]]), weight).shape
    (2, 2, 3)
    """
    if max_norm is not None:
        raise NotImplementedError(
            f"embedding: max_norm={max_norm} is not supported (it renormalizes weight rows in "
            "place during the lookup); pass max_norm=None and renormalize the weight yourself "
            "under gradflow.no_grad() if you need it"
        )
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
    return EmbeddingFunction.apply(
        input, weight, padding_idx=padding_idx, scale_grad_by_freq=bool(scale_grad_by_freq)
    )


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
