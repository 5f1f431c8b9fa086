"""A whole population's forward pass in one batched run, for Sequentials of Linear layers.

Evolution strategies evaluate the same model at many perturbed weights. For an ``nn.Sequential``
of Linear layers, Flatten and elementwise activations, the members' weights stack into one
(members, out, in) array per Linear and the population runs as batched matrix products: the
hidden state is (members, batch, features) from the first evolved layer on. Layers before the
first evolved layer hold nothing that varies between members and run once, on the shared input,
whatever they are (a frozen feature extractor, say).

`batchable(model, params)` says whether a model has this form; `BatchedForward` runs it. Any
other model is evaluated member by member (the estimators' loop form), with the same results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gradflow import nn
from gradflow.ops.linalg import matmul
from gradflow.tensor import Tensor

__all__ = ["BatchedForward", "batchable"]

# Modules that act on each element alone (or, for Dropout, draw each element's mask alone):
# they run unchanged on a (members, batch, features) hidden state.
ELEMENTWISE = (
    nn.Identity, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Sigmoid, nn.Tanh, nn.SiLU,
    nn.Softplus, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.SELU, nn.CELU,
    nn.Threshold, nn.LogSigmoid, nn.Softsign, nn.Tanhshrink, nn.Softshrink, nn.Dropout,
)  # fmt: skip
LAST_DIM = (nn.Softmax, nn.LogSoftmax)  # batchable when they act on the features dim


def _has_hooks(module: nn.Module) -> bool:
    return any(module.__dict__.get(name) for name in
               ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks"))  # fmt: skip


def _plan(model: Any, evolved: set[int]) -> tuple[int, str]:
    """(index of the first layer holding an evolved parameter, "") when ``model`` can run
    batched, else (-1, why not)."""
    if not isinstance(model, nn.Sequential) or _has_hooks(model):
        return -1, "the model is not an nn.Sequential without hooks"
    layers = list(model)
    first = None
    for i, layer in enumerate(layers):
        mine = [id(p) for p in layer.parameters()]
        if any(m in evolved for m in mine):
            first = i
            break
    if first is None:
        return -1, "none of the evolved parameters is in the model"
    for layer in layers[first:]:
        if _has_hooks(layer):
            return -1, f"{type(layer).__name__} has hooks"
        if isinstance(layer, (nn.Linear, nn.Flatten, *LAST_DIM)):
            continue
        if isinstance(layer, ELEMENTWISE) and not list(layer.parameters()):
            continue
        return -1, f"{type(layer).__name__} after the first evolved layer"
    evolved_in_model = {id(p) for p in model.parameters()} & evolved
    if len(evolved_in_model) != len(evolved):
        return -1, "some evolved parameters are not in the model"
    return first, ""


def batchable(model: Any, params: Sequence[Tensor] | None = None) -> bool:
    """Whether ``model`` evaluates a population in one batched forward when ``params`` (default:
    all its parameters) are evolved: an ``nn.Sequential`` whose layers from the first one holding
    an evolved parameter on are Linear, Flatten, Softmax/LogSoftmax over the features and
    elementwise activations (ReLU, Tanh, GELU, Dropout, ...), without hooks."""
    if params is None:
        params = list(model.parameters()) if isinstance(model, nn.Module) else []
    return _plan(model, {id(p) for p in params})[0] >= 0


class BatchedForward:
    """Runs ``model`` for a chunk of members at once. ``offsets`` maps id(param) to its
    (start, stop) in the flat vector of evolved parameters."""

    def __init__(self, layers: list, first: int, offsets: dict[int, tuple[int, int]]):
        self.layers, self.first, self.offsets = layers, first, offsets

    @classmethod
    def for_model(cls, model: Any, offsets: dict[int, tuple[int, int]]) -> BatchedForward | None:
        """The batched forward of ``model``, or None when it is not `batchable` (the planning
        done once, for both the question and the run)."""
        first, _ = _plan(model, set(offsets))
        return None if first < 0 else cls(list(model), first, offsets)

    def __call__(self, inputs: Any, perturbed: Any) -> Tensor:
        """The outputs (members, *output_shape) for the members whose evolved parameters, flat,
        are the rows of ``perturbed`` (a (members, n) array on the parameters' device)."""
        hidden = inputs
        for layer in self.layers[: self.first]:
            hidden = layer(hidden)
        members = perturbed.shape[0]
        # the first evolved layer is a Linear: it adds the members dim in front
        hidden = self._linear(self.layers[self.first], hidden, True, perturbed, members)
        for layer in self.layers[self.first + 1 :]:
            if isinstance(layer, nn.Linear):
                hidden = self._linear(layer, hidden, False, perturbed, members)
            elif isinstance(layer, nn.Flatten):  # one member's dims are shifted by one
                start, end = (d if d < 0 else d + 1 for d in (layer.start_dim, layer.end_dim))
                hidden = hidden.flatten(start, end)
            elif isinstance(layer, LAST_DIM):
                rank = hidden.ndim - 1  # of one member's output
                dim = -1 if layer.dim is None else layer.dim
                if dim % rank != rank - 1:
                    raise ValueError(
                        f"{type(layer).__name__}(dim={layer.dim}) acts across samples, not on the "
                        "features: the population can't run batched"
                    )
                hidden = type(layer)(dim=-1)(hidden)
            else:
                hidden = layer(hidden)
        return hidden

    def _param(self, p: Tensor | None, perturbed: Any, members: int) -> Tensor | None:
        """The parameter as (members, *shape) when evolved, else itself (broadcast)."""
        if p is None or id(p) not in self.offsets:
            return p
        start, stop = self.offsets[id(p)]
        return Tensor._wrap(perturbed[:, start:stop].reshape(members, *p.shape))

    def _linear(
        self, layer: nn.Linear, hidden: Tensor, shared: bool, perturbed: Any, members: int
    ) -> Tensor:
        weight = self._param(layer.weight, perturbed, members)
        bias = self._param(layer.bias, perturbed, members)
        if shared:  # the shared input: (..., in) -> (members, ..., out)
            lead = hidden.shape[:-1]
            flat = hidden.reshape(-1, hidden.shape[-1])
            if weight.ndim == 3:
                out = matmul(flat, weight.transpose(1, 2))  # (members, M, out)
            else:
                out = matmul(flat, weight.t()).unsqueeze(0).expand(members, -1, -1)
        else:  # (members, ..., in)
            lead = hidden.shape[1:-1]
            flat = hidden.reshape(members, -1, hidden.shape[-1])
            out = matmul(flat, weight.transpose(-1, -2))  # a shared weight broadcasts
        if bias is not None:
            out = out + (bias.unsqueeze(1) if bias.ndim == 2 else bias)
        return out.reshape(members, *lead, out.shape[-1])
