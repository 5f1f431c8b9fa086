"""Neural-network building blocks shaped like torch.nn: Module, Parameter, layers, losses,
containers, ``init``, ``utils`` and ``functional``."""

from gradflow.nn import functional, fusion, init, utils
from gradflow.nn.activation import (
    ELU,
    GELU,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from gradflow.nn.container import ModuleDict, ModuleList, Sequential
from gradflow.nn.conv import Conv1d, Conv2d, ConvTranspose2d
from gradflow.nn.dropout import Dropout
from gradflow.nn.embedding import Embedding
from gradflow.nn.flatten import Flatten, Unflatten
from gradflow.nn.linear import Identity, Linear
from gradflow.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
)
from gradflow.nn.module import IncompatibleKeys, Module
from gradflow.nn.normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from gradflow.nn.parameter import Parameter
from gradflow.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from gradflow.nn.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = [
    "ELU",
    "GELU",
    "GRU",
    "LSTM",
    "RNN",
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRUCell",
    "GroupNorm",
    "Identity",
    "IncompatibleKeys",
    "L1Loss",
    "LSTMCell",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "ModuleDict",
    "ModuleList",
    "NLLLoss",
    "Parameter",
    "RNNCell",
    "ReLU",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "Unflatten",
    "functional",
    "fusion",
    "init",
    "utils",
]
