"""torch.utils.data under gradflow: ``from gradflow.utils.data import DataLoader, Dataset``.

The names live in gradflow.data; PyTorch's submodules here (``dataloader``, ``dataset``,
``sampler``, ``distributed``) each re-export their share, and this package gathers them, so
PyTorch's imports work unchanged and each name is listed once.
"""

from gradflow.utils.data import dataloader, dataset, distributed, sampler
from gradflow.utils.data.dataloader import *  # noqa: F403
from gradflow.utils.data.dataset import *  # noqa: F403
from gradflow.utils.data.distributed import *  # noqa: F403
from gradflow.utils.data.sampler import *  # noqa: F403

__all__ = [
    *dataloader.__all__,
    *dataset.__all__,
    *distributed.__all__,
    *sampler.__all__,
    "dataloader",
    "dataset",
    "distributed",
    "sampler",
]
