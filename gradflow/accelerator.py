"""``gradflow.accelerator``: PyTorch's device-agnostic accelerator API; here the accelerator is
a CUDA GPU through CuPy, when one is usable.

    device = gradflow.accelerator.current_accelerator() if gradflow.accelerator.is_available() \\
        else gradflow.device("cpu")
"""

from __future__ import annotations

from gradflow import cuda
from gradflow.backend import Device


def is_available() -> bool:
    """True when a CUDA GPU is usable (CuPy imports and sees one)."""
    return cuda.is_available()


def current_accelerator(check_available: bool = False) -> Device | None:
    """``device('cuda')`` when a GPU is usable, else None (as PyTorch on a machine without an
    accelerator)."""
    return Device("cuda") if cuda.is_available() else None


def device_count() -> int:
    return cuda.device_count()


def current_device_index() -> int:
    return cuda.current_device() if cuda.is_available() else -1


current_device_idx = current_device_index


def set_device_index(device: int) -> None:
    cuda.set_device(device)


set_device_idx = set_device_index


def synchronize(device: int | None = None) -> None:
    cuda.synchronize(device)
