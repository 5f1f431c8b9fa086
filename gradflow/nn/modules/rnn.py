"""torch.nn.modules.rnn's path: the recurrent layers and cells, from gradflow.nn on use."""

from gradflow.nn.modules._lazy import forward_to_nn

_NAMES = (
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "RNN",
    "RNNBase",
    "RNNCell",
    "RNNCellBase",
)
__getattr__, __dir__ = forward_to_nn(__name__, _NAMES)
