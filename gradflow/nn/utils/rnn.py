"""Variable-length batches for the recurrent layers: PackedSequence and PyTorch's
pack_padded_sequence, pad_packed_sequence, pad_sequence, pack_sequence, unpad_sequence and
unpack_sequence (torch.nn.utils.rnn's names, arguments, layouts and errors).

Every function is a row gather (``index_select``) over the flattened input, with the padding
value as one extra row where the result has padding, so gradients flow through all of them
with one node each. Lengths and ``batch_sizes`` live on the host (int64, CPU), as in PyTorch.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

import numpy

from gradflow import creation
from gradflow.backend import get_array_module
from gradflow.ops.indexing import index_select
from gradflow.ops.shape import cat, transpose
from gradflow.tensor import Tensor, _make_tensor

_Fields = collections.namedtuple(
    "PackedSequence_", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"]
)


class PackedSequence(_Fields):
    """A batch of sequences of different lengths, packed time step by time step.

    ``data`` holds the steps of every sequence that is still running, step 0 of all of them
    first (longest first); ``batch_sizes[t]`` says how many sequences are running at step t.
    ``sorted_indices`` (None when the batch was already sorted by decreasing length) maps
    the packed order to the original batch, ``unsorted_indices`` back. Build one with
    :func:`pack_padded_sequence` or :func:`pack_sequence`, not directly. nn.RNN, nn.LSTM and
    nn.GRU take one and return one.
    """

    __slots__ = ()

    def __new__(
        cls,
        data: Tensor,
        batch_sizes: Tensor | None = None,
        sorted_indices: Tensor | None = None,
        unsorted_indices: Tensor | None = None,
    ) -> PackedSequence:
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = _invert(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args: Any, **kwargs: Any) -> PackedSequence:
        """The data moved or cast as ``Tensor.to`` does; the indices follow its device and
        batch_sizes stays on the CPU."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        sorted_indices, unsorted_indices = (
            None if i is None else i.to(data.device)
            for i in (self.sorted_indices, self.unsorted_indices)
        )
        return type(self)(data, self.batch_sizes, sorted_indices, unsorted_indices)

    def cuda(self, *args: Any, **kwargs: Any) -> PackedSequence:
        return self.to(self.data.cuda(*args, **kwargs).device)

    def cpu(self) -> PackedSequence:
        return self.to("cpu")

    def double(self) -> PackedSequence:
        return self.to(dtype=numpy.float64)

    def float(self) -> PackedSequence:
        return self.to(dtype=numpy.float32)

    def half(self) -> PackedSequence:
        return self.to(dtype=numpy.float16)

    def long(self) -> PackedSequence:
        return self.to(dtype=numpy.int64)

    def int(self) -> PackedSequence:
        return self.to(dtype=numpy.int32)

    @property
    def is_cuda(self) -> bool:
        return self.data.device.type == "cuda"

    def is_pinned(self) -> bool:
        return False


def _invert(permutation: Tensor) -> Tensor:
    """The inverse of a permutation Tensor (on its device)."""
    xp = get_array_module(permutation.array)
    inverse = xp.empty_like(permutation.array)
    inverse[permutation.array] = xp.arange(permutation.shape[0], dtype=inverse.dtype)
    return _wrap(inverse)


def _wrap(array: Any) -> Tensor:
    """A Tensor holding `array` itself (no copy, no gradient)."""
    return _make_tensor(array, None, False, 0)


def _host_lengths(lengths: Any) -> numpy.ndarray:
    """Lengths (a list, array or int Tensor, on any device) as a host int64 vector."""
    if isinstance(lengths, Tensor):
        values = lengths.detach().cpu().numpy()
    else:
        values = numpy.asarray(lengths)
    if values.size and values.dtype.kind not in "iu":
        raise TypeError(f"lengths must hold integers, got dtype {values.dtype}")
    return values.astype(numpy.int64).reshape(-1)


def _rows(x: Tensor, rows: numpy.ndarray, shape: tuple) -> Tensor:
    """x's first-dim rows at host positions `rows`, reshaped to `shape` (one gather node)."""
    xp = get_array_module(x.array)
    return index_select(x, 0, xp.asarray(rows)).reshape(shape)


def _sorted_lengths(batch_sizes: numpy.ndarray) -> numpy.ndarray:
    """The length of each sequence in packed (sorted) order, from batch_sizes."""
    return (batch_sizes[None, :] > numpy.arange(batch_sizes[0])[:, None]).sum(axis=1)


def _packed_rows(steps: int, sorted_lengths: numpy.ndarray, order: numpy.ndarray,
                 batch_first: bool) -> numpy.ndarray:  # fmt: skip
    """For each packed row, its row in the flattened padded input ((T, B) or (B, T))."""
    batch = len(order)
    t, s = numpy.nonzero(numpy.arange(steps)[:, None] < sorted_lengths[None, :])  # t-major
    b = order[s]
    return b * steps + t if batch_first else t * batch + b


def pack_padded_sequence(
    input: Tensor, lengths: Any, batch_first: bool = False, enforce_sorted: bool = True
) -> PackedSequence:
    """Pack a padded batch (T, B, *) ((B, T, *) with batch_first) of sequences of the given
    lengths (B values, a list or an int Tensor). With ``enforce_sorted`` (the default) the
    lengths must decrease; ``enforce_sorted=False`` sorts them (stable) and records the
    order in sorted_indices."""
    if not isinstance(input, Tensor) or input.ndim < 2:
        raise ValueError(
            "pack_padded_sequence: input must be a Tensor of shape (T, B, *) or (B, T, *) "
            f"with batch_first, got {getattr(input, 'shape', type(input).__name__)}"
        )
    values = _host_lengths(lengths)
    batch, steps = (input.shape[0], input.shape[1]) if batch_first else input.shape[:2][::-1]
    if values.shape[0] != batch:
        raise RuntimeError(
            f"Expected `len(lengths)` to be equal to batch_size, but got {values.shape[0]} "
            f"(batch_size={batch})"
        )
    if batch and values.min() <= 0:
        raise RuntimeError(
            "Length of all samples has to be greater than 0, but found an element in "
            "'lengths' that is <= 0"
        )
    if batch and values.max() > steps:
        raise RuntimeError(
            f"pack_padded_sequence: a length of {int(values.max())} is longer than the input's "
            f"{steps} steps (input of shape {tuple(input.shape)}, batch_first={batch_first})"
        )
    if enforce_sorted:
        if (numpy.diff(values) > 0).any():
            raise RuntimeError(
                "`lengths` array must be sorted in decreasing order when `enforce_sorted` is "
                "True. You can pass `enforce_sorted=False` to pack_padded_sequence and/or "
                "pack_sequence to sidestep this requirement if you do not need ONNX "
                "exportability."
            )
        order = numpy.arange(batch)
        sorted_indices = None
    else:
        order = numpy.argsort(-values, kind="stable")
        xp = get_array_module(input.array)
        sorted_indices = _wrap(xp.asarray(order, dtype=numpy.int64))
    sorted_lengths = values[order]
    batch_sizes = (sorted_lengths[None, :] > numpy.arange(int(sorted_lengths[0]))[:, None]).sum(1)
    rows = _packed_rows(steps, sorted_lengths, order, batch_first)
    flat = input.reshape(batch * steps, *input.shape[2:])
    data = _rows(flat, rows, (rows.shape[0], *input.shape[2:]))
    return PackedSequence(data, _wrap(batch_sizes.astype(numpy.int64)), sorted_indices)


def _padded_rows(batch_sizes: numpy.ndarray, steps: int, position: numpy.ndarray,
                 batch_first: bool) -> numpy.ndarray:  # fmt: skip
    """For each padded position, its packed row, or the total (the extra padding row).
    `position[b]` is where sequence b of the output sits in the packed (sorted) order."""
    total = int(batch_sizes.sum())
    starts = numpy.cumsum(batch_sizes) - batch_sizes
    known = len(batch_sizes)
    running = numpy.zeros((steps, len(position)), dtype=bool)  # steps past known: padding
    running[:known] = position[None, :] < batch_sizes[:, None]
    offsets = numpy.zeros(steps, dtype=numpy.int64)
    offsets[:known] = starts
    rows = numpy.where(running, offsets[:, None] + position[None, :], total)
    return rows.T.reshape(-1) if batch_first else rows.reshape(-1)


def _unpack(sequence: PackedSequence, steps: int, padding_value: float, batch_first: bool,
            unsort: bool) -> Tensor:  # fmt: skip
    """The padded Tensor of a PackedSequence, in the original batch order when `unsort`."""
    batch_sizes = _host_lengths(sequence.batch_sizes)
    data = sequence.data
    batch = int(batch_sizes[0])
    position = numpy.arange(batch)
    if unsort and sequence.unsorted_indices is not None:
        position = sequence.unsorted_indices.detach().cpu().numpy().astype(numpy.int64)
    rows = _padded_rows(batch_sizes, steps, position, batch_first)
    pad = creation.full((1, *data.shape[1:]), padding_value, dtype=data.dtype, device=data.device)
    shape = (batch, steps) if batch_first else (steps, batch)
    return _rows(cat([data, pad]), rows, (*shape, *data.shape[1:]))


def pad_packed_sequence(
    sequence: PackedSequence,
    batch_first: bool = False,
    padding_value: float = 0.0,
    total_length: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Undo pack_padded_sequence: (padded (T, B, *) or (B, T, *) with batch_first, lengths),
    in the original batch order; lengths is an int64 CPU Tensor. total_length pads to that
    many steps (at least the longest sequence), e.g. to match the input of a DataParallel."""
    if not isinstance(sequence, PackedSequence):
        raise TypeError(
            "pad_packed_sequence expects a PackedSequence (from pack_padded_sequence or "
            f"pack_sequence), got {type(sequence).__name__}"
        )
    batch_sizes = _host_lengths(sequence.batch_sizes)
    steps = len(batch_sizes)
    if total_length is not None:
        if total_length < steps:
            raise ValueError(
                "Expected total_length to be at least the length of the longest sequence in "
                f"input, but got total_length={total_length} and max sequence length being "
                f"{steps}"
            )
        steps = total_length
    padded = _unpack(sequence, steps, padding_value, batch_first, unsort=True)
    lengths = _sorted_lengths(batch_sizes)
    if sequence.unsorted_indices is not None:
        lengths = lengths[sequence.unsorted_indices.detach().cpu().numpy()]
    return padded, _wrap(lengths.astype(numpy.int64))


def pad_sequence(
    sequences: Sequence[Tensor] | Tensor,
    batch_first: bool = False,
    padding_value: float = 0.0,
    padding_side: str = "right",
) -> Tensor:
    """Stack tensors of shapes (L_i, *) into (T, B, *) ((B, T, *) with batch_first), T the
    longest L_i, filling with padding_value after each sequence (before it with
    ``padding_side='left'``)."""
    if padding_side not in ("left", "right"):
        raise ValueError(
            f"Expected padding_side to be one of left or right, but got {padding_side}."
        )
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    for i, s in enumerate(sequences):
        if not isinstance(s, Tensor) or s.ndim < 1:
            raise TypeError(
                f"pad_sequence: sequences[{i}] must be a Tensor with at least 1 dim (L, *), "
                f"got {getattr(s, 'shape', type(s).__name__)}"
            )
        if s.shape[1:] != sequences[0].shape[1:]:
            raise RuntimeError(
                f"pad_sequence: sequences[{i}] has shape {tuple(s.shape)} but sequences[0] has "
                f"{tuple(sequences[0].shape)}; all must match after the first (length) dim"
            )
    lengths = numpy.array([s.shape[0] for s in sequences], dtype=numpy.int64)
    steps, batch, total = int(lengths.max()), len(sequences), int(lengths.sum())
    starts = numpy.cumsum(lengths) - lengths
    t = numpy.arange(steps)[:, None]
    shift = (steps - lengths)[None, :] if padding_side == "left" else 0
    inside = (t - shift >= 0) & (t - shift < lengths[None, :])
    rows = numpy.where(inside, starts[None, :] + t - shift, total)  # (T, B)
    rows = rows.T.reshape(-1) if batch_first else rows.reshape(-1)
    first = sequences[0]
    pad = creation.full((1, *first.shape[1:]), padding_value, dtype=first.dtype,
                        device=first.device)  # fmt: skip
    shape = (batch, steps) if batch_first else (steps, batch)
    return _rows(cat([*sequences, pad]), rows, (*shape, *first.shape[1:]))


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack tensors of shapes (L_i, *): pack_padded_sequence(pad_sequence(sequences), ...)."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(
    padded_sequences: Tensor, lengths: Any, batch_first: bool = False
) -> list[Tensor]:
    """The list of unpadded sequences (L_i, *) of a padded batch: pad_sequence's inverse."""
    if not batch_first:
        padded_sequences = transpose(padded_sequences, 0, 1)
    return [padded_sequences[i, : int(n)] for i, n in enumerate(_host_lengths(lengths))]


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The list of sequences (L_i, *) in a PackedSequence: pack_sequence's inverse."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


# ---- for the recurrent layers ----------------------------------------------------------------


def padded_sorted(sequence: PackedSequence) -> tuple[Tensor, numpy.ndarray]:
    """(padded (T, B, *) in packed order, lengths in packed order): what nn.RNN runs on."""
    batch_sizes = _host_lengths(sequence.batch_sizes)
    padded = _unpack(sequence, len(batch_sizes), 0.0, batch_first=False, unsort=False)
    return padded, _sorted_lengths(batch_sizes)


def packed_from_sorted(padded: Tensor, like: PackedSequence) -> PackedSequence:
    """Pack a (T, B, *) Tensor in packed order with `like`'s batch_sizes and indices."""
    batch_sizes = _host_lengths(like.batch_sizes)
    steps, batch = padded.shape[:2]
    lengths = _sorted_lengths(batch_sizes)
    rows = _packed_rows(steps, lengths, numpy.arange(batch), batch_first=False)
    flat = padded.reshape(steps * batch, *padded.shape[2:])
    data = _rows(flat, rows, (rows.shape[0], *padded.shape[2:]))
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)
