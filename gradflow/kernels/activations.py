"""The activation table: every activation our kernels implement, in one place.

Each row names a kernel activation (``<name>_fwd``/``<name>_bwd`` in kernels/elementwise.cu),
the public function that computes it (``gradflow.nn.functional.<function>``) with the keyword
arguments that select the variant, its ``ACT_*`` code in kernels/activation.cuh when the fused
kernels (bias_act_bwd, act_matmul_bwd) implement it, and whether its backward reads the output
instead of the input. The launchers, ops.fused, ops.unary and nn.fusion all derive their
lists from this table.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class KernelActivation(NamedTuple):
    name: str  # the kernel's name for it
    function: str | None  # the public function computing it; None for identity (no kernel)
    params: dict  # the function's keyword arguments that select this variant
    code: int | None  # ACT_* in kernels/activation.cuh; None where the fused kernels lack it
    saves_output: bool  # activation_bwd takes the output y (else the input x)


TABLE = (
    KernelActivation("identity", None, {}, 0, False),
    KernelActivation("relu", "relu", {}, 1, False),
    KernelActivation("sigmoid", "sigmoid", {}, 2, True),
    KernelActivation("tanh", "tanh", {}, 3, True),
    KernelActivation("gelu_erf", "gelu", {"approximate": "none"}, 4, False),
    KernelActivation("gelu_tanh", "gelu", {"approximate": "tanh"}, 5, False),
    KernelActivation("silu", "silu", {}, 6, False),
    KernelActivation("leaky_relu", "leaky_relu", {}, None, False),
    KernelActivation("elu", "elu", {}, None, False),
    KernelActivation("softplus", "softplus", {}, None, False),
)

# The activations of kernels/elementwise.cu (activation_fwd/activation_bwd).
ACTIVATIONS = tuple(a.name for a in TABLE if a.function is not None)
# activation_bwd takes the output y for these, the input x for the others.
SAVES_OUTPUT = frozenset(a.name for a in TABLE if a.saves_output)
# The ACT_* codes of kernels/activation.cuh: what the fused kernels implement.
ACT_CODES = {a.name: a.code for a in TABLE if a.code is not None}
FUSED_ACTIVATIONS = tuple(ACT_CODES)
# The table's rows by public function, and the keyword arguments that pick among them.
_VARIANTS = {
    function: [row for row in TABLE if row.function == function]
    for function in dict.fromkeys(row.function for row in TABLE if row.function is not None)
}
VARIANT_KEYWORDS = {f: {k for r in rows for k in r.params} for f, rows in _VARIANTS.items()}


def kernel_activation(function: str, **params: Any) -> str | None:
    """The table's name for ``F.<function>(x, **params)`` (``"gelu", approximate="tanh"`` ->
    ``"gelu_tanh"``), or None when no kernel computes it.

    >>> kernel_activation("gelu", approximate="tanh")
    'gelu_tanh'
    >>> kernel_activation("relu"), kernel_activation("hardswish")
    ('relu', None)
    """
    for row in _VARIANTS.get(function, ()):
        if all(params.get(k) == v for k, v in row.params.items()):
            return row.name
    return None
