"""Calling a module with other tensors in place of its parameters and buffers
(``torch.nn.utils.stateless.functional_call``)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

from gradflow.nn.module import Module
from gradflow.tensor import Tensor

__all__ = ["functional_call"]


def _tied_names(module: Module) -> dict[str, list[str]]:
    """For each parameter/buffer name, the other names of the same tensor (tied weights)."""
    by_id: dict[int, list[str]] = {}
    for name, t in module.named_parameters(remove_duplicate=False):
        by_id.setdefault(id(t), []).append(name)
    for name, t in module.named_buffers(remove_duplicate=False):
        by_id.setdefault(id(t), []).append(name)
    return {n: names for names in by_id.values() for n in names}


def _owner(module: Module, name: str) -> tuple[Module, str]:
    path, _, leaf = name.rpartition(".")
    return module.get_submodule(path), leaf


@contextlib.contextmanager
def _reparametrize_module(
    module: Module,
    parameters_and_buffers: dict[str, Any],
    *,
    tie_weights: bool = False,
    strict: bool = False,
) -> Iterator[None]:
    values = dict(parameters_and_buffers)
    if tie_weights:
        tied = _tied_names(module)
        for name in list(values):
            for other in tied.get(name, ()):
                if other in values and values[other] is not values[name]:
                    raise ValueError(
                        f"functional_call got multiple values for keys ['{name}', '{other}'], "
                        "which are tied. Consider using tie_weights=False"
                    )
                values.setdefault(other, values[name])
    if strict:
        own = set(_tied_names(module))
        missing = sorted(own - set(values))
        unexpected = sorted(set(values) - own)
        if missing or unexpected:
            parts = []
            if unexpected:
                parts.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
            if missing:
                parts.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
            raise RuntimeError(
                f"Error(s) in reparametrizing for {type(module).__name__}:\n\t" + "\n\t".join(parts)
            )
    saved: list[tuple[Module, str, str | None, Any]] = []
    try:
        for name, value in values.items():
            owner, leaf = _owner(module, name)
            for registry in ("_parameters", "_buffers"):
                table = owner.__dict__[registry]
                if leaf in table:
                    saved.append((owner, leaf, registry, table[leaf]))
                    table[leaf] = value  # any Tensor, even one that is not a Parameter
                    break
            else:
                had = leaf in owner.__dict__
                saved.append((owner, leaf, None, owner.__dict__.get(leaf) if had else _ABSENT))
                object.__setattr__(owner, leaf, value)
        yield
    finally:
        for owner, leaf, registry, old in reversed(saved):
            if registry is not None:
                owner.__dict__[registry][leaf] = old
            elif old is _ABSENT:
                owner.__dict__.pop(leaf, None)
            else:
                object.__setattr__(owner, leaf, old)


_ABSENT = object()


def _functional_call(
    module: Module,
    parameters_and_buffers: dict[str, Any] | tuple | list,
    args: Any = None,
    kwargs: dict[str, Any] | None = None,
    *,
    tie_weights: bool = True,
    strict: bool = False,
) -> Any:
    if isinstance(parameters_and_buffers, tuple | list):
        merged: dict[str, Any] = {}
        for d in parameters_and_buffers:
            for k in d:
                if k in merged:
                    raise ValueError(
                        f"{k} appeared in multiple dictionaries; behavior of functional call "
                        "is ambiguous"
                    )
            merged.update(d)
        parameters_and_buffers = merged
    if not isinstance(parameters_and_buffers, dict):
        raise TypeError(
            "functional_call: parameters_and_buffers must be a dict of name -> Tensor, got "
            f"{type(parameters_and_buffers).__name__}"
        )
    for k, v in parameters_and_buffers.items():
        if v is not None and not isinstance(v, Tensor):
            raise TypeError(
                f"functional_call: the value for '{k}' is a {type(v).__name__}; expected a Tensor"
            )
    if kwargs is None:
        kwargs = {}
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    with _reparametrize_module(
        module, parameters_and_buffers, tie_weights=tie_weights, strict=strict
    ):
        return module(*args, **kwargs)


def functional_call(
    module: Module,
    parameters_and_buffers: dict[str, Tensor],
    args: Any = None,
    kwargs: dict[str, Any] | None = None,
    *,
    tie_weights: bool = True,
    strict: bool = False,
) -> Any:
    """Run ``module(*args, **kwargs)`` with the tensors of `parameters_and_buffers` (dotted
    names, as in state_dict) in place of the module's own, then put the module's back.
    Gradients flow to the given tensors. `tie_weights`: a value given for one of several tied
    names is used for all of them. `strict`: the names must match the module's exactly.
    Deprecated in PyTorch 2.0 (a FutureWarning), as there."""
    warnings.warn(
        "`torch.nn.utils.stateless.functional_call` is deprecated as of PyTorch 2.0 and will be "
        "removed in a future version of PyTorch. Please use `torch.func.functional_call` "
        "instead which is a drop-in replacement.",
        FutureWarning,
        stacklevel=2,
    )
    return _functional_call(
        module, parameters_and_buffers, args, kwargs, tie_weights=tie_weights, strict=strict
    )
