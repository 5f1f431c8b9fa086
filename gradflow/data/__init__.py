"""Datasets, samplers and the DataLoader (PyTorch's torch.utils.data), the digits, MNIST."""

from gradflow.data.collate import default_collate, default_convert
from gradflow.data.dataloader import DataLoader
from gradflow.data.dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    random_split,
)
from gradflow.data.digits import Digits, load_digits
from gradflow.data.mnist import MNIST, DatasetFileError, FashionMNIST, read_idx
from gradflow.data.sampler import (
    BatchSampler,
    DistributedSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from gradflow.data.worker import WorkerInfo, get_worker_info

__all__ = [
    "MNIST",
    "BatchSampler",
    "ChainDataset",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DatasetFileError",
    "Digits",
    "DistributedSampler",
    "FashionMNIST",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "StackDataset",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "WorkerInfo",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "load_digits",
    "random_split",
    "read_idx",
]
