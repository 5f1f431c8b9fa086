"""Neural-network building blocks. For now only `functional` (PyTorch's torch.nn.functional
names over our ops); Module and the layers come later."""

from gradflow.nn import functional

__all__ = ["functional"]
