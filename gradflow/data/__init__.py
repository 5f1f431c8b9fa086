"""Datasets and the DataLoader: TensorDataset, random_split, the embedded digits, MNIST."""

from gradflow.data.dataloader import DataLoader, default_collate
from gradflow.data.dataset import Dataset, Subset, TensorDataset, random_split
from gradflow.data.digits import Digits, load_digits
from gradflow.data.mnist import MNIST, DatasetFileError, FashionMNIST, read_idx

__all__ = [
    "MNIST",
    "DataLoader",
    "Dataset",
    "DatasetFileError",
    "Digits",
    "FashionMNIST",
    "Subset",
    "TensorDataset",
    "default_collate",
    "load_digits",
    "random_split",
    "read_idx",
]
