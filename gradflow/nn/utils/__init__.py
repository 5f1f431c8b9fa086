"""Training utilities: gradient clipping, flattening parameters to one vector, truncated
backpropagation through time, packed sequences (``nn.utils.rnn``), parametrizations
(``parametrize``, ``parametrizations``), weight and spectral normalization, Conv/Linear +
BatchNorm fusion and ``stateless.functional_call``."""

from gradflow.nn.utils import rnn
from gradflow.nn.utils.clip_grad import (
    clip_grad_norm,
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
)
from gradflow.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters

# isort: split
# nn.tbptt imports nn.utils.clip_grad: load it after the clipping functions above.
from gradflow.nn.tbptt import detach_state, truncated_bptt

# isort: split
from gradflow.nn.utils import parametrizations, parametrize, stateless
from gradflow.nn.utils.fusion import (
    fuse_conv_bn_eval,
    fuse_conv_bn_weights,
    fuse_linear_bn_eval,
    fuse_linear_bn_weights,
)
from gradflow.nn.utils.init import skip_init
from gradflow.nn.utils.memory_format import (
    convert_conv2d_weight_memory_format,
    convert_conv3d_weight_memory_format,
)
from gradflow.nn.utils.spectral_norm import remove_spectral_norm, spectral_norm
from gradflow.nn.utils.weight_norm import remove_weight_norm, weight_norm

__all__ = [
    "clip_grad_norm",
    "clip_grad_norm_",
    "clip_grad_value_",
    "clip_grads_with_norm_",
    "convert_conv2d_weight_memory_format",
    "convert_conv3d_weight_memory_format",
    "detach_state",
    "fuse_conv_bn_eval",
    "fuse_conv_bn_weights",
    "fuse_linear_bn_eval",
    "fuse_linear_bn_weights",
    "get_total_norm",
    "parameters_to_vector",
    "parametrizations",
    "parametrize",
    "remove_spectral_norm",
    "remove_weight_norm",
    "rnn",
    "skip_init",
    "spectral_norm",
    "stateless",
    "truncated_bptt",
    "vector_to_parameters",
    "weight_norm",
]
