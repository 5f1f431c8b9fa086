"""PyTorch's torch.nn.functional vocabulary, gathered from gradflow's ops (``import
gradflow.nn.functional as F``). The functions and their docstrings live in gradflow/ops."""

from gradflow.ops.conv import conv1d, conv2d, conv_transpose2d
from gradflow.ops.dropout import dropout
from gradflow.ops.embedding import embedding
from gradflow.ops.indexing import one_hot
from gradflow.ops.linalg import linear
from gradflow.ops.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    l1_loss,
    mse_loss,
    nll_loss,
)
from gradflow.ops.normalization import batch_norm, group_norm, layer_norm
from gradflow.ops.pooling import (
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
)
from gradflow.ops.shape import pad
from gradflow.ops.softmax import log_softmax, softmax
from gradflow.ops.unary import elu, gelu, leaky_relu, relu, sigmoid, silu, softplus, tanh

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv1d",
    "conv2d",
    "conv_transpose2d",
    "cross_entropy",
    "dropout",
    "elu",
    "embedding",
    "gelu",
    "group_norm",
    "l1_loss",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool1d",
    "max_pool2d",
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
