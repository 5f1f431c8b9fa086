"""Peephole fusion in nn.Sequential: a Linear followed by ReLU, Sigmoid, Tanh, GELU or SiLU
runs as one graph node, ops.fused.LinearActivation. On the GPU its backward makes one pass
through the activation and the bias (kernels/fused.cu's bias_act_bwd) where the unfused pair
makes two passes and a reduction.

The result is what the two modules compute (on cpu, the same bits). A pair is fused only when
nothing could tell the difference: the exact Linear and activation classes (a subclass may
override forward), no forward hooks or pre-hooks on either module, no forward replaced on the
instance. ``disabled()`` turns fusion off, to compare or to debug.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from gradflow.kernels import activations
from gradflow.nn import activation
from gradflow.nn.linear import Linear
from gradflow.nn.module import Module
from gradflow.ops.fused import linear_activation

_enabled = True

# The activation modules whose public function the fused kernels implement, by function name
# (kernels/activations.py's table); each module stores the function's keyword arguments.
_MODULES = {"relu": activation.ReLU, "sigmoid": activation.Sigmoid, "tanh": activation.Tanh,
            "gelu": activation.GELU, "silu": activation.SiLU}  # fmt: skip
_FUSABLE = {
    _MODULES[a.function]: a.function
    for a in activations.TABLE
    if a.code is not None and a.function in _MODULES
}


def fused_activation(first: Module, second: Module) -> str | None:
    """The activation name (ops.fused.FUSED_ACTIVATIONS) if `first`, `second` run fused."""
    if not _enabled or type(first) is not Linear:
        return None
    function = _FUSABLE.get(type(second))  # the exact class: a subclass may change forward
    if function is None or not (_plain(first) and _plain(second)):
        return None
    # A module keeps its function's keyword arguments as attributes of the same names; only
    # those that pick a variant (gelu's approximate) are read.
    settings = {k: getattr(second, k) for k in activations.VARIANT_KEYWORDS[function]}
    return activations.kernel_activation(function, **settings)


def run_fused(linear: Linear, activation_name: str, x: Any) -> Any:
    """activation(linear(x)) as one node (what Sequential runs for a fused pair)."""
    linear.check_input(x)
    return linear_activation(x, linear.weight, linear.bias, activation_name)


def is_enabled() -> bool:
    return _enabled


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run every Sequential's modules one by one inside this block."""
    global _enabled
    previous, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = previous


def _plain(module: Module) -> bool:
    return not (module._forward_hooks or module._forward_pre_hooks or "forward" in module.__dict__)
