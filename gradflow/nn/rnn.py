"""Recurrent layers shaped like torch.nn: RNN (tanh or relu), LSTM, GRU and their cells.

Constructor arguments, parameter names (``weight_ih_l{k}``, ``weight_hh_l{k}``,
``bias_ih_l{k}``, ``bias_hh_l{k}``, ``_reverse`` for the backward direction), gate order
(LSTM i, f, g, o; GRU r, z, n), initialization U(-1/sqrt(H), 1/sqrt(H)) and outputs are
PyTorch's. Each layer and direction runs as one graph node (gradflow.ops.rnn.rnn_layer), so
backpropagation through a whole sequence costs one node per layer and direction.

Variable-length batches: pass ``lengths`` (a list or int tensor of B values) to forward instead
of packing. Each sequence stops at its own end: outputs past it are zero and h_n is its state at
its last step; the reverse direction starts at each sequence's own end.

    >>> import gradflow
    >>> lstm = LSTM(10, 20, num_layers=2, batch_first=True)
    >>> x = gradflow.randn(3, 7, 10)
    >>> output, (h_n, c_n) = lstm(x, lengths=[7, 5, 2])
    >>> tuple(output.shape), tuple(h_n.shape), tuple(c_n.shape)
    ((3, 7, 20), (2, 3, 20), (2, 3, 20))
    >>> output[2, 2:].abs().sum().item()  # sequence 2 has ended after 2 steps
    0.0
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from gradflow import creation
from gradflow.nn import init
from gradflow.nn.module import Module
from gradflow.nn.parameter import Parameter
from gradflow.nn.utils.rnn import PackedSequence, packed_from_sorted, padded_sorted
from gradflow.ops.dropout import dropout as dropout_op
from gradflow.ops.indexing import index_select
from gradflow.ops.rnn import CELLS, GATES, lstm_projected_layer, rnn_layer, sequence_lengths
from gradflow.ops.shape import cat, squeeze, stack, transpose, unsqueeze
from gradflow.tensor import Tensor


def _shape(x: Any) -> Any:
    return tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__


def _positive_int(name: str, value: Any, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return value


class _Recurrent(Module):
    """What the layers and the cells share: the mode, the sizes, PyTorch's initialization and
    the input-size check."""

    mode: str  # "lstm", "gru" (set by the class), "rnn_tanh" or "rnn_relu" (by RNN, RNNCell)

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        name = type(self).__name__
        self.input_size = _positive_int("input_size", input_size, name)
        self.hidden_size = _positive_int("hidden_size", hidden_size, name)

    def reset_parameters(self) -> None:
        """Draw every weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _check_features(self, input: Tensor) -> None:
        if input.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__}: input.size(-1) must be equal to input_size: expected "
                f"{self.input_size}, got {input.shape[-1]} (input of shape {_shape(input)})"
            )


# torch.nn.RNNBase's mode names (its first argument) and ours.
_TORCH_MODES = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu"}


class RNNBase(_Recurrent):
    """The stack of layers shared by RNN, LSTM and GRU, with torch.nn.LSTM's and GRU's
    constructor; see the module docstring. As torch.nn.RNNBase it also takes the mode first,
    ``RNNBase('LSTM', input_size, hidden_size, ...)`` ('LSTM', 'GRU', 'RNN_TANH', 'RNN_RELU'),
    for subclasses written against torch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        mode = kwargs.pop("mode", None)
        if args and isinstance(args[0], str):
            mode, args = args[0], args[1:]
        if mode is not None:
            if mode not in _TORCH_MODES:
                raise ValueError(f"Unrecognized RNN mode: {mode}; expected one of "
                                 f"{tuple(_TORCH_MODES)}")  # fmt: skip
            self.mode = _TORCH_MODES[mode]
        if not hasattr(self, "mode"):
            raise TypeError(
                "RNNBase: pass the mode first, RNNBase('LSTM', input_size, hidden_size, ...), "
                "or use LSTM, GRU or RNN"
            )
        self._build(*args, **kwargs)

    def _build(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size)
        name = type(self).__name__
        if isinstance(proj_size, bool) or not isinstance(proj_size, int):
            raise TypeError(f"{name}: proj_size must be an int, got {proj_size!r}")
        if proj_size < 0:
            raise ValueError(
                f"{name}: proj_size should be a positive integer or zero to disable "
                f"projections, got {proj_size}"
            )
        if proj_size >= hidden_size:
            raise ValueError(
                f"{name}: proj_size has to be smaller than hidden_size, got proj_size="
                f"{proj_size} and hidden_size={hidden_size}"
            )
        if proj_size and self.mode != "lstm":
            raise ValueError(
                f"{name}: proj_size argument is only supported for LSTM, not RNN or GRU"
            )
        self.proj_size = proj_size
        self.num_layers = _positive_int("num_layers", num_layers, name)
        if isinstance(dropout, bool) or not isinstance(dropout, int | float):
            raise ValueError(f"{name}: dropout must be a number in [0, 1], got {dropout!r}")
        if not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"{name}: dropout={dropout} acts between layers, so with num_layers=1 it does "
                "nothing",
                stacklevel=3,
            )
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        self.dropout, self.bidirectional = float(dropout), bool(bidirectional)
        directions = 2 if bidirectional else 1
        width = GATES[self.mode] * hidden_size
        out_size = proj_size or hidden_size  # the size of h (the layer's output per direction)
        self._weight_names: list[list[str]] = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else out_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = [("weight_ih", (width, layer_input)), ("weight_hh", (width, out_size))]
                if bias:
                    shapes += [("bias_ih", (width,)), ("bias_hh", (width,))]
                if proj_size:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                for stem, shape in shapes:
                    p = Parameter(creation.empty(*shape, device=device, dtype=dtype))
                    setattr(self, stem + suffix, p)
                self._weight_names.append([stem + suffix for stem, _ in shapes])
        self.reset_parameters()

    def flatten_parameters(self) -> None:
        """Does nothing (PyTorch packs cuDNN weights here; our layers read them as they are)."""

    def _weights(self, index: int) -> list:
        """weight_ih, weight_hh, bias_ih, bias_hh (None without bias) of layer*D + direction."""
        names = self._weight_names[index]
        weights = [getattr(self, n) for n in (names[:-1] if self.proj_size else names)]
        return weights if self.bias else [*weights, None, None]

    def _projection(self, index: int) -> Any:
        """weight_hr of layer*D + direction (LSTM with proj_size), else None."""
        return getattr(self, self._weight_names[index][-1]) if self.proj_size else None

    def forward(self, input: Tensor, hx: Any = None, lengths: Any = None) -> tuple:
        """Run the stack over `input`: (T, B, input_size), (B, T, input_size) with
        batch_first, or unbatched (T, input_size). hx: h_0, or (h_0, c_0) for LSTM, each of
        shape (num_layers * num_directions, B, hidden_size) ((.., hidden_size) unbatched;
        h_0 has proj_size features for an LSTM with proj_size > 0).
        Returns (output, h_n), or (output, (h_n, c_n)) for LSTM. A PackedSequence input
        (nn.utils.rnn) gives a PackedSequence output, as in PyTorch."""
        name = type(self).__name__
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError(
                    f"{name}: pass either a PackedSequence or lengths, not both (the packed "
                    "sequence already has its lengths)"
                )
            return self._forward_packed(input, hx)
        if not isinstance(input, Tensor) or input.ndim not in (2, 3):
            raise ValueError(
                f"{name}: expected input of shape (seq_len, batch, input_size) or unbatched "
                f"(seq_len, input_size), got {_shape(input)}"
            )
        batched = input.ndim == 3
        self._check_features(input)
        x = unsqueeze(input, 1) if not batched else input
        if batched and self.batch_first:
            x = transpose(x, 0, 1)
        steps, batch = x.shape[0], x.shape[1]
        read_as = self._layout_note(input, batched)
        states = self._initial_states(hx, batched, batch, read_as)
        if lengths is not None:
            try:
                lengths = sequence_lengths(lengths, batch, steps, name)
            except ValueError as exc:
                raise ValueError(f"{exc}; {read_as}") from None
        output, finals = self._run_layers(x, states, lengths)
        if batched and self.batch_first:
            output = transpose(output, 0, 1)
        elif not batched:
            output = squeeze(output, 1)
        finals = [stack(f, 0) for f in finals]
        if not batched:
            finals = [squeeze(f, 1) for f in finals]
        if self.mode == "lstm":
            return output, (finals[0], finals[1])
        return output, finals[0]

    def _forward_packed(self, packed: PackedSequence, hx: Any) -> tuple:
        """Run the padded batch in packed (sorted) order with per-sequence lengths, then pack
        the output again; hx and h_n are in the caller's batch order, as in PyTorch."""
        padded, lengths = padded_sorted(packed)
        self._check_features(padded)
        read_as = (
            f"the PackedSequence holds {padded.shape[1]} sequences of at most "
            f"{padded.shape[0]} steps"
        )
        states = self._initial_states(hx, True, padded.shape[1], read_as)
        order, restore = packed.sorted_indices, packed.unsorted_indices
        if order is not None:
            states = [None if s is None else index_select(s, 1, order) for s in states]
        output, finals = self._run_layers(padded, states, lengths)
        finals = [stack(f, 0) for f in finals]
        if restore is not None:
            finals = [index_select(f, 1, restore) for f in finals]
        output = packed_from_sorted(output, packed)
        if self.mode == "lstm":
            return output, (finals[0], finals[1])
        return output, finals[0]

    def _layout_note(self, input: Tensor, batched: bool) -> str:
        """How the input's dims were read (for errors, where batch_first is a likely culprit)."""
        if not batched:
            return f"the input of shape {_shape(input)} was read as unbatched (seq_len, features)"
        layout = "(batch, seq_len, features)" if self.batch_first else "(seq_len, batch, features)"
        return (
            f"the input of shape {_shape(input)} was read as {layout} since "
            f"batch_first={self.batch_first}"
        )

    def _initial_states(self, hx: Any, batched: bool, batch: int, read_as: str) -> list:
        """[h0] or [h0, c0] as (L*D, B, H) Tensors or None, checked against the input."""
        name = type(self).__name__
        count = 2 if self.mode == "lstm" else 1
        if hx is None:
            return [None] * count
        if self.mode == "lstm":
            if not isinstance(hx, tuple | list) or len(hx) != 2:
                raise TypeError(f"{name}: hx must be a tuple (h_0, c_0), got {type(hx).__name__}")
            hx = list(hx)
        else:
            hx = [hx]
        layers = self.num_layers * (2 if self.bidirectional else 1)
        states = []
        for label, state in zip(("h_0", "c_0"), hx):
            size, size_name = self.hidden_size, "hidden_size"
            if label == "h_0" and self.proj_size:
                size, size_name = self.proj_size, "proj_size"
            expected = (layers, batch, size) if batched else (layers, size)
            if not isinstance(state, Tensor) or tuple(state.shape) != expected:
                raise ValueError(
                    f"{name}: expected {label} of shape {expected} (num_layers * "
                    f"num_directions, {'batch, ' if batched else ''}{size_name}), got "
                    f"{_shape(state)}; {read_as}"
                )
            states.append(state if batched else unsqueeze(state, 1))
        return states

    def _run_layers(self, x: Tensor, states: list, lengths: Any) -> tuple:
        """The layers in order, dropout between them in training; returns the last layer's
        output and, per state kind, the list of final states of every layer and direction."""
        directions = 2 if self.bidirectional else 1
        finals: list[list] = [[] for _ in states]
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                initial = [None if s is None else s[index] for s in states]
                hx = tuple(initial) if self.mode == "lstm" else initial[0]
                if self.proj_size:
                    out, final = lstm_projected_layer(
                        x, hx, *self._weights(index), self._projection(index),
                        reverse=direction == 1, lengths=lengths,
                    )  # fmt: skip
                else:
                    out, final = rnn_layer(
                        x, hx, *self._weights(index), mode=self.mode, reverse=direction == 1,
                        lengths=lengths,
                    )  # fmt: skip
                outputs.append(out)
                for kept, f in zip(finals, final if self.mode == "lstm" else (final,)):
                    kept.append(f)
            x = outputs[0] if directions == 1 else cat(outputs, dim=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = dropout_op(x, self.dropout, True)
        return x, finals

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            text += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if self.mode == "rnn_relu":
            text += ", nonlinearity='relu'"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


class RNN(RNNBase):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu), stacked.

    Arguments as torch.nn.RNN: (input_size, hidden_size, num_layers=1, nonlinearity='tanh',
    bias=True, batch_first=False, dropout=0.0, bidirectional=False). forward(input, hx=None,
    lengths=None) returns (output, h_n).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: Any = None,
        *,
        proj_size: int = 0,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; use 'tanh' or 'relu'")
        self.nonlinearity = nonlinearity
        self.mode = f"rnn_{nonlinearity}"
        super().__init__(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
            proj_size, device, dtype,
        )  # fmt: skip


class LSTM(RNNBase):
    """Long short-term memory, gates i, f, g, o (PyTorch's formulas), stacked.

    Arguments as torch.nn.LSTM, proj_size included: with proj_size = P > 0 each layer
    projects h_t = W_hr (o_t * tanh(c_t)) (weight_hr_l{k} of shape (P, hidden_size)), so h,
    the output and the next layer's input have P features per direction while c keeps
    hidden_size (that route runs step by step: ops/rnn.py lstm_projected_layer).
    forward(input, hx=None, lengths=None), hx = (h_0, c_0), returns (output, (h_n, c_n)).
    """

    mode = "lstm"


class GRU(RNNBase):
    """Gated recurrent unit, gates r, z, n with n = tanh(W_in x + b_in + r (W_hn h + b_hn)),
    stacked. Arguments as torch.nn.GRU. forward(input, hx=None, lengths=None) returns
    (output, h_n).
    """

    mode = "gru"


# ---- cells -----------------------------------------------------------------------------------


class RNNCellBase(_Recurrent):
    """One step of a recurrent cell: weight_ih (G*H, I), weight_hh (G*H, H), bias_ih, bias_hh;
    torch.nn.LSTMCell's and GRUCell's constructor."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size)
        self.bias = bool(bias)
        width = GATES[self.mode] * hidden_size
        self.weight_ih = Parameter(creation.empty(width, input_size, device=device, dtype=dtype))
        self.weight_hh = Parameter(creation.empty(width, hidden_size, device=device, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(creation.empty(width, device=device, dtype=dtype))
            self.bias_hh = Parameter(creation.empty(width, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def _step(self, input: Tensor, hx: Any) -> Any:
        """Checks shapes, lifts unbatched input to a batch of one, runs one step: the cell
        function of ops/rnn.py (lstm_cell, gru_cell, rnn_tanh_cell or rnn_relu_cell)."""
        name = type(self).__name__
        if not isinstance(input, Tensor) or input.ndim not in (1, 2):
            raise ValueError(
                f"{name}: expected input of shape (batch, input_size) or unbatched "
                f"(input_size,), got {_shape(input)}"
            )
        self._check_features(input)
        batched = input.ndim == 2
        expected = (input.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        states = list(hx) if self.mode == "lstm" and hx is not None else [hx]
        if self.mode == "lstm" and hx is not None and len(states) != 2:
            raise TypeError(f"{name}: hx must be a tuple (h, c), got {len(states)} tensors")
        for label, state in zip(("h", "c"), states):
            if state is not None and (
                not isinstance(state, Tensor) or tuple(state.shape) != expected
            ):
                raise ValueError(
                    f"{name}: expected hidden state {label} of shape {expected}, got "
                    f"{_shape(state)} (input of shape {_shape(input)})"
                )
        x = input if batched else unsqueeze(input, 0)
        if not batched:
            states = [None if s is None else unsqueeze(s, 0) for s in states]
        hx = tuple(states) if self.mode == "lstm" and hx is not None else states[0]
        weights = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        final = CELLS[self.mode](x, hx, *weights)
        if batched:
            return final
        if self.mode == "lstm":
            return squeeze(final[0], 0), squeeze(final[1], 0)
        return squeeze(final, 0)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            text += ", bias=False"
        if self.mode == "rnn_relu":
            text += ", nonlinearity='relu'"
        return text


class RNNCell(RNNCellBase):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu); forward(input, hx=None) -> h'."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"RNNCell: unknown nonlinearity {nonlinearity!r}; use 'tanh' or 'relu'"
            )
        self.nonlinearity = nonlinearity
        self.mode = f"rnn_{nonlinearity}"
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, hx)


class LSTMCell(RNNCellBase):
    """One LSTM step (gates i, f, g, o); forward(input, hx=None), hx = (h, c) -> (h', c')."""

    mode = "lstm"

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple[Tensor, Tensor]:
        return self._step(input, hx)


class GRUCell(RNNCellBase):
    """One GRU step (gates r, z, n); forward(input, hx=None) -> h'."""

    mode = "gru"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, hx)
