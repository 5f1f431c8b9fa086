"""Devices and the array-module switch (NumPy on cpu, CuPy on cuda); knows nothing of Tensor."""

from gradflow.backend._cupy import CudaUnavailableError, cupy_module, device_count, require_cupy
from gradflow.backend.device import (
    CPU,
    Device,
    device_of,
    get_array_module,
    is_cuda_array,
    move_array,
)
from gradflow.backend.heap import pad_heap

pad_heap()  # once per process: freed arrays stay for the next step (backend/heap.py)

__all__ = [
    "CPU",
    "CudaUnavailableError",
    "Device",
    "cupy_module",
    "device_count",
    "device_of",
    "get_array_module",
    "is_cuda_array",
    "move_array",
    "require_cupy",
]
