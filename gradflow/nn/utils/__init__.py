"""Training utilities: gradient clipping, flattening parameters to one vector, truncated
backpropagation through time, packed sequences (``nn.utils.rnn``)."""

from gradflow.nn.utils import rnn
from gradflow.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_
from gradflow.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters

# isort: split
# nn.tbptt imports nn.utils.clip_grad: load it after the clipping functions above.
from gradflow.nn.tbptt import detach_state, truncated_bptt

__all__ = [
    "clip_grad_norm_",
    "clip_grad_value_",
    "detach_state",
    "parameters_to_vector",
    "rnn",
    "truncated_bptt",
    "vector_to_parameters",
]
