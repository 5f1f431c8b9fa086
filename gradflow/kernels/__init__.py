"""Typed launchers for the CUDA kernels in kernels/*.cu (compiled lazily through CuPy).

Importing this package imports no CuPy and compiles nothing; a launcher compiles its family
for its dtype on first use (gradflow.kernels.loader). Every launcher takes ``backend=None``
(CuPy on the arrays' device) or a backend object such as
``gradflow.testing.emulation.EmulationBackend`` that runs the same kernels on the CPU.
"""

from gradflow.kernels._common import ACT_CODES, KernelBackend
from gradflow.kernels.elementwise import (
    ACTIVATIONS,
    BINARY_OPS,
    SAVES_OUTPUT,
    activation_bwd,
    activation_fwd,
    binary_bwd,
)
from gradflow.kernels.fused import bias_act_bwd, softmax_xent_bwd, softmax_xent_fwd, sum_to_bias
from gradflow.kernels.matmul import fused_act_matmul_bwd
from gradflow.kernels.optim import adam_step_multi, sgd_step_multi

FUSED_ACTIVATIONS = tuple(ACT_CODES)

__all__ = [
    "ACTIVATIONS",
    "BINARY_OPS",
    "FUSED_ACTIVATIONS",
    "SAVES_OUTPUT",
    "KernelBackend",
    "activation_bwd",
    "activation_fwd",
    "adam_step_multi",
    "bias_act_bwd",
    "binary_bwd",
    "fused_act_matmul_bwd",
    "sgd_step_multi",
    "softmax_xent_bwd",
    "softmax_xent_fwd",
    "sum_to_bias",
]
