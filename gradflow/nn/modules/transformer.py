"""torch.nn.modules.transformer's path: the transformer layers, from gradflow.nn on use."""

from gradflow.nn.modules._lazy import forward_to_nn

_NAMES = (
    "Transformer",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
)
__getattr__, __dir__ = forward_to_nn(__name__, _NAMES)
