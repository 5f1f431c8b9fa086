"""What the image datasets (Digits, MNIST, FashionMNIST) share: image and label tensors made
from raw pixels, and torchvision's names for them, ``data`` and ``targets``."""

from __future__ import annotations

import numpy

from gradflow.backend import Device, move_array
from gradflow.data.dataset import TensorDataset
from gradflow.tensor import Tensor


def image_tensors(
    pixels: numpy.ndarray, labels: numpy.ndarray, full_scale: float, device: str | Device | None
) -> tuple[Tensor, Tensor]:
    """(images, labels): images float32 (N, 1, H, W) = pixels (N, H, W) / full_scale, so in
    [0, 1]; labels int64 (N,); both on `device` when given (else on the cpu)."""
    count, height, width = pixels.shape
    images = (pixels.astype(numpy.float32) / numpy.float32(full_scale)).reshape(
        count, 1, height, width
    )
    targets = labels.astype(numpy.int64)
    if device is not None:
        images, targets = move_array(images, Device(device)), move_array(targets, Device(device))
    return Tensor._wrap(images), Tensor._wrap(targets)


class ImageDataset(TensorDataset):
    """A TensorDataset of (image, label) samples: ``data`` is the images, ``targets`` the
    labels."""

    @property
    def data(self) -> Tensor:
        return self.tensors[0]

    @property
    def targets(self) -> Tensor:
        return self.tensors[1]
