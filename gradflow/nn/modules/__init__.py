"""torch.nn.modules' class paths (``nn.modules.conv.Conv2d``, ``nn.modules.loss.MSELoss``, ...)
for code that imports or checks them there: thin modules whose names are gradflow.nn's classes,
looked up on use, so ``isinstance(m, nn.modules.conv.Conv2d)`` is ``isinstance(m, nn.Conv2d)``.
``nn.modules.Linear`` works too, as in PyTorch."""

# isort: off
from gradflow.nn.modules import activation
from gradflow.nn.modules import batchnorm
from gradflow.nn.modules import channelshuffle
from gradflow.nn.modules import container
from gradflow.nn.modules import conv
from gradflow.nn.modules import distance
from gradflow.nn.modules import dropout
from gradflow.nn.modules import flatten
from gradflow.nn.modules import fold
from gradflow.nn.modules import instancenorm
from gradflow.nn.modules import lazy
from gradflow.nn.modules import linear
from gradflow.nn.modules import loss
from gradflow.nn.modules import module
from gradflow.nn.modules import normalization
from gradflow.nn.modules import padding
from gradflow.nn.modules import pixelshuffle
from gradflow.nn.modules import pooling
from gradflow.nn.modules import rnn
from gradflow.nn.modules import sparse
from gradflow.nn.modules import transformer
from gradflow.nn.modules import upsampling
from gradflow.nn.modules import utils

# isort: on
from gradflow.nn.modules._lazy import forward_to_nn

__getattr__, _dir_names = forward_to_nn(__name__)

__all__ = [
    "activation",
    "batchnorm",
    "channelshuffle",
    "container",
    "conv",
    "distance",
    "dropout",
    "flatten",
    "fold",
    "instancenorm",
    "lazy",
    "linear",
    "loss",
    "module",
    "normalization",
    "padding",
    "pixelshuffle",
    "pooling",
    "rnn",
    "sparse",
    "transformer",
    "upsampling",
    "utils",
]
