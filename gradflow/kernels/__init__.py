"""Typed launchers for the CUDA kernels in kernels/*.cu (compiled lazily through CuPy).

Importing this package imports no CuPy and compiles nothing; a launcher compiles its family
for its dtype on first use (gradflow.kernels.loader). Every launcher takes ``backend=None``
(the backend routed to in this context by gradflow.backend.routing, else CuPy on the arrays'
device) or a backend object such as ``gradflow.testing.emulation.EmulationBackend`` that runs
the same kernels on the CPU.
"""

from gradflow.kernels._common import KernelBackend
from gradflow.kernels.activations import ACTIVATIONS, FUSED_ACTIVATIONS, SAVES_OUTPUT
from gradflow.kernels.attention import attn_softmax_bwd, attn_softmax_fwd
from gradflow.kernels.conv import col2im, im2col_fwd
from gradflow.kernels.elementwise import (
    BINARY_OPS,
    activation_bwd,
    activation_fwd,
    binary_bwd,
)
from gradflow.kernels.fused import bias_act_bwd, softmax_xent_bwd, softmax_xent_fwd, sum_to_bias
from gradflow.kernels.matmul import fused_act_matmul_bwd
from gradflow.kernels.optim import (
    KernelLaunches,
    TableCache,
    adam_step_multi,
    rmsprop_step_multi,
    sgd_step_multi,
)
from gradflow.kernels.pooling import (
    avg_pool2d_bwd,
    avg_pool2d_fwd,
    max_pool2d_bwd,
    max_pool2d_fwd,
)
from gradflow.kernels.rnn_cells import (
    gru_cell_bwd,
    gru_cell_fwd,
    lstm_cell_bwd,
    lstm_cell_fwd,
    rnn_cell_bwd,
    rnn_cell_fwd,
)

__all__ = [
    "ACTIVATIONS",
    "BINARY_OPS",
    "FUSED_ACTIVATIONS",
    "SAVES_OUTPUT",
    "KernelBackend",
    "KernelLaunches",
    "TableCache",
    "activation_bwd",
    "activation_fwd",
    "adam_step_multi",
    "attn_softmax_bwd",
    "attn_softmax_fwd",
    "avg_pool2d_bwd",
    "avg_pool2d_fwd",
    "bias_act_bwd",
    "binary_bwd",
    "col2im",
    "fused_act_matmul_bwd",
    "gru_cell_bwd",
    "gru_cell_fwd",
    "im2col_fwd",
    "lstm_cell_bwd",
    "lstm_cell_fwd",
    "max_pool2d_bwd",
    "max_pool2d_fwd",
    "rmsprop_step_multi",
    "rnn_cell_bwd",
    "rnn_cell_fwd",
    "sgd_step_multi",
    "softmax_xent_bwd",
    "softmax_xent_fwd",
    "sum_to_bias",
]
