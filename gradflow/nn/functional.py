"""PyTorch's torch.nn.functional vocabulary, gathered from gradflow's ops (``import
gradflow.nn.functional as F``). The functions and their docstrings live in gradflow/ops."""

from gradflow.ops.linalg import linear
from gradflow.ops.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    dropout,
    l1_loss,
    log_softmax,
    mse_loss,
    nll_loss,
    one_hot,
    softmax,
)
from gradflow.ops.shape import pad
from gradflow.ops.unary import elu, gelu, leaky_relu, relu, sigmoid, silu, softplus, tanh

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "dropout",
    "elu",
    "gelu",
    "l1_loss",
    "leaky_relu",
    "linear",
    "log_softmax",
    "mse_loss",
    "nll_loss",
    "one_hot",
    "pad",
    "relu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "tanh",
]
