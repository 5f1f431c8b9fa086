"""gradflow.utils: PyTorch's ``torch.utils`` names (``gradflow.utils.data``,
``gradflow.utils.checkpoint``)."""

from gradflow.utils import checkpoint, data

__all__ = ["checkpoint", "data"]
