"""gradflow.utils: PyTorch's ``torch.utils`` names (``gradflow.utils.data``)."""

from gradflow.utils import data

__all__ = ["data"]
