"""torch.utils.data.dataloader's names: DataLoader, default_collate, default_convert, ..."""

from gradflow.data.collate import default_collate, default_convert
from gradflow.data.dataloader import DataLoader
from gradflow.data.worker import WorkerInfo, get_worker_info

__all__ = ["DataLoader", "WorkerInfo", "default_collate", "default_convert", "get_worker_info"]
