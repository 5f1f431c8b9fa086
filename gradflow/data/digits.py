"""The 8x8 handwritten digits (UCI optdigits test set, 1,797 images), shipped in the package.

The data are in ``digits.npz`` next to this file (see ``DIGITS_LICENSE.txt``: UCI Optical
Recognition of Handwritten Digits by E. Alpaydin and C. Kaynak, CC BY 4.0). It holds
``pixels`` (uint8, 1797 x 64, values 0..16), ``labels`` (uint8, 0..9) and ``is_test`` (bool).

The train/test split is fixed and stored in the file: 36 images of each digit (360 in all)
were drawn for test by a stratified draw with ``numpy.random.default_rng(0)``; the other
1,437 are the training set. ``build_digits_npz`` rebuilds the file from scikit-learn's
``digits.csv.gz``.
"""

from __future__ import annotations

import functools
import gzip
from importlib import resources
from pathlib import Path

import numpy

from gradflow.backend import Device
from gradflow.data.images import ImageDataset, image_tensors
from gradflow.tensor import Tensor

TEST_PER_CLASS = 36
SPLIT_SEED = 0


class Digits(ImageDataset):
    """The digits as a dataset of (image, label): images float32 (1, 8, 8) in [0, 1] (pixel
    counts 0..16 divided by 16), labels int64 0..9. ``train=True`` gives the 1,437 training
    images, ``train=False`` the 360 test images (a fixed split, disjoint).

    >>> from gradflow.data import DataLoader
    >>> loader = DataLoader(Digits(train=True), batch_size=64, shuffle=True)
    >>> images, labels = next(iter(loader))
    >>> tuple(images.shape), tuple(labels.shape)
    ((64, 1, 8, 8), (64,))
    """

    classes = [str(digit) for digit in range(10)]

    def __init__(self, train: bool = True, device: str | Device | None = None):
        super().__init__(*load_digits(train=train, device=device))


def load_digits(
    train: bool | None = None, device: str | Device | None = None
) -> tuple[Tensor, Tensor]:
    """(images, labels) of the digits: images float32 (N, 1, 8, 8) in [0, 1], labels int64.

    train=True: the 1,437 training images; False: the 360 test images; None: all 1,797 in the
    file's order.
    """
    pixels, labels, is_test = _read_npz()
    if train is not None:
        keep = ~is_test if train else is_test
        pixels, labels = pixels[keep], labels[keep]
    return image_tensors(pixels.reshape(-1, 8, 8), labels, 16.0, device)


@functools.lru_cache(maxsize=1)
def _read_npz() -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    path = resources.files("gradflow.data").joinpath("digits.npz")
    with path.open("rb") as file, numpy.load(file, allow_pickle=False) as npz:
        arrays = npz["pixels"], npz["labels"], npz["is_test"]
    for array in arrays:
        array.flags.writeable = False  # cached and shared; every caller gets copies
    return arrays


def build_digits_npz(csv_gz: str | Path, out: str | Path) -> None:
    """Convert scikit-learn's ``digits.csv.gz`` (64 pixels then the label per row) into the
    compressed ``digits.npz`` this module reads, drawing the stratified test split."""
    with gzip.open(csv_gz, "rt") as file:
        table = numpy.loadtxt(file, delimiter=",", dtype=numpy.int64)
    if table.ndim != 2 or table.shape[1] != 65:
        raise ValueError(f"{csv_gz}: expected rows of 64 pixels and a label, got {table.shape}")
    pixels, labels = table[:, :64], table[:, 64]
    if pixels.min() < 0 or pixels.max() > 16 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{csv_gz}: pixels must lie in 0..16 and labels in 0..9")
    rng = numpy.random.default_rng(SPLIT_SEED)
    is_test = numpy.zeros(len(labels), dtype=bool)
    for digit in range(10):
        members = numpy.flatnonzero(labels == digit)
        is_test[rng.choice(members, size=TEST_PER_CLASS, replace=False)] = True
    numpy.savez_compressed(
        out, pixels=pixels.astype(numpy.uint8), labels=labels.astype(numpy.uint8), is_test=is_test
    )
