"""MNIST and Fashion-MNIST: an IDX file reader and datasets read from a local directory or
downloaded (checksummed) into a cache directory.

Files are looked up under their standard names, raw or gzipped (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
optionally ending in ``.gz``), in `root` or in torchvision's layout ``root/<Name>/raw``.
Without `root` the directory is ``<cache>/mnist`` or ``<cache>/fashion-mnist`` where
``<cache>`` is ``$GRADFLOW_CACHE_DIR`` or ``~/.cache/gradflow``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import secrets
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy

from gradflow.backend import Device
from gradflow.data.images import ImageDataset, image_tensors

# IDX type codes (third byte of the magic number) and their big-endian element types.
_IDX_TYPES = {
    0x08: numpy.dtype("u1"),
    0x09: numpy.dtype("i1"),
    0x0B: numpy.dtype(">i2"),
    0x0C: numpy.dtype(">i4"),
    0x0D: numpy.dtype(">f4"),
    0x0E: numpy.dtype(">f8"),
}
IDX_LABELS_MAGIC = 0x00000801  # uint8, 1 dimension
IDX_IMAGES_MAGIC = 0x00000803  # uint8, 3 dimensions
_CHUNK = 1 << 20


class DatasetFileError(ValueError):
    """A dataset file is missing, malformed, truncated or fails its checksum."""


# ---- the IDX format ----------------------------------------------------------------------
def read_idx(path: str | Path, expected_magic: int | None = None) -> numpy.ndarray:
    """Read an IDX file (raw or gzipped) into a NumPy array of its shape and native dtype.

    The header is two zero bytes, a type code (0x08 uint8 ... 0x0E float64), the number of
    dimensions, then one big-endian uint32 per dimension. `expected_magic` (e.g.
    0x00000803 for MNIST images) is checked when given.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DatasetFileError(f"{path}: not an IDX file: {len(raw)} bytes, too short for a header")
    magic = int.from_bytes(raw[:4], "big")
    type_code, ndim = raw[2], raw[3]
    if raw[0] != 0 or raw[1] != 0 or type_code not in _IDX_TYPES or ndim == 0:
        expected = f"0x{expected_magic:08X}" if expected_magic is not None else "0x000008NN"
        raise DatasetFileError(
            f"{path}: not an IDX file: its first 4 bytes are 0x{magic:08X} (expected "
            f"{expected}); is it an MNIST-format file, fully downloaded and not renamed?"
        )
    if expected_magic is not None and magic != expected_magic:
        raise DatasetFileError(
            f"{path}: IDX magic number is 0x{magic:08X} but 0x{expected_magic:08X} was expected "
            f"({_describe_magic(expected_magic)}); the file holds {_describe_magic(magic)}"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetFileError(f"{path}: IDX file truncated inside its header ({len(raw)} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_TYPES[type_code]
    expected_bytes = int(numpy.prod(shape, dtype=numpy.int64)) * dtype.itemsize
    got = len(raw) - header
    if got < expected_bytes:
        raise DatasetFileError(
            f"{path}: IDX file is truncated: its header says shape {shape} ({expected_bytes} "
            f"bytes of data) but only {got} bytes follow; delete it and download it again"
        )
    if got > expected_bytes:
        raise DatasetFileError(
            f"{path}: IDX file has {got - expected_bytes} bytes after the {expected_bytes} its "
            f"header (shape {shape}) describes; it is not a valid IDX file"
        )
    count = expected_bytes // dtype.itemsize
    array = numpy.frombuffer(raw, dtype=dtype, count=count, offset=header)
    return array.reshape(shape).astype(dtype.newbyteorder("="))


def _describe_magic(magic: int) -> str:
    dtype = _IDX_TYPES.get((magic >> 8) & 0xFF)
    name = dtype.newbyteorder("=").name if dtype is not None else "an unknown type"
    return f"{name} data in {magic & 0xFF} dimension(s)"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic."""
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except FileNotFoundError:
        raise DatasetFileError(f"{path}: file does not exist") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DatasetFileError(
            f"{path}: gzip data is truncated or corrupt ({exc}); delete it and download it again"
        ) from exc


# ---- checksummed downloads ---------------------------------------------------------------
def default_cache_dir() -> Path:
    """Where downloads go: ``$GRADFLOW_CACHE_DIR`` or ``~/.cache/gradflow``."""
    return Path(os.environ.get("GRADFLOW_CACHE_DIR") or Path.home() / ".cache" / "gradflow")


def _parse_checksum(checksum: str) -> tuple[str, str]:
    """("md5" | "sha256", hex digest) from "md5:<hex>", "sha256:<hex>" or bare hex."""
    algorithm, _, value = checksum.rpartition(":")
    value = value.lower()
    if not algorithm:
        algorithm = {32: "md5", 64: "sha256"}.get(len(value), "")
    if algorithm not in ("md5", "sha256"):
        raise ValueError(
            f"checksum {checksum!r}: expected 32 hex digits (MD5), 64 (SHA-256), or a "
            "'md5:' / 'sha256:' prefix"
        )
    return algorithm, value


def download_file(
    urls: Sequence[str], destination: str | Path, checksum: str | None, opener: Any = None
) -> Path:
    """Download the first of `urls` that works to `destination`, checking its checksum.

    The data go to a temporary file beside `destination`, renamed into place only once the
    checksum matches, so `destination` is either absent or complete and verified. A checksum
    of None skips verification (only for files whose checksum the caller does not know).
    `opener` defaults to ``urllib.request.urlopen``.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if opener is None:
        import urllib.request  # here, not at the top: it would slow `import gradflow`

        opener = urllib.request.urlopen
    algorithm, expected = _parse_checksum(checksum) if checksum else (None, None)
    failures = []
    for url in urls:
        temporary = destination.with_name(f".{destination.name}.{secrets.token_hex(4)}.part")
        try:
            digest = hashlib.new(algorithm or "md5")
            with opener(url) as response, open(temporary, "xb") as out:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    digest.update(block)
                    out.write(block)
            if expected is not None and digest.hexdigest() != expected:
                failures.append(
                    f"{url}: {algorithm} checksum {digest.hexdigest()} does not match the "
                    f"expected {expected}"
                )
                continue
            os.replace(temporary, destination)
            return destination
        except (OSError, ValueError) as exc:  # URLError, HTTPError; ValueError: a bad URL
            failures.append(f"{url}: {exc}")
        finally:
            temporary.unlink(missing_ok=True)
    raise DatasetFileError(f"could not download {destination.name}:\n  " + "\n  ".join(failures))


# ---- the datasets ------------------------------------------------------------------------
class MNIST(ImageDataset):
    """MNIST handwritten digits: 60,000 training and 10,000 test images of 28x28.

    Samples are (image, label): image float32 (1, 28, 28) in [0, 1] (bytes / 255), label int64.
    Files are read from `root` (see the module docstring for names and the default cache
    directory); ``download=True`` fetches missing files from `mirrors`, each checked against
    the MD5 in `resources` before it is kept.

    For example ``MNIST(download=True)`` (not a doctest: it needs the network).
    """

    name = "mnist"
    mirrors: Sequence[str] = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    )
    # (file name, checksum): the official files' MD5s, as torchvision lists them.
    resources: Sequence[tuple[str, str | None]] = (
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    )
    classes = [str(digit) for digit in range(10)]

    def __init__(
        self,
        root: str | Path | None = None,
        train: bool = True,
        download: bool = False,
        device: str | Device | None = None,
    ):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir() / self.name
        self.train = train
        prefix = "train" if train else "t10k"
        images_path = self._find(f"{prefix}-images-idx3-ubyte", download)
        labels_path = self._find(f"{prefix}-labels-idx1-ubyte", download)
        images = read_idx(images_path, IDX_IMAGES_MAGIC)
        labels = read_idx(labels_path, IDX_LABELS_MAGIC)
        if len(images) != len(labels):
            raise DatasetFileError(
                f"{images_path} holds {len(images)} images but {labels_path} holds "
                f"{len(labels)} labels; the files do not belong together"
            )
        super().__init__(*image_tensors(images, labels, 255.0, device))

    def _find(self, stem: str, download: bool) -> Path:
        """The path of `stem` or `stem`.gz in the root (or root/<Class>/raw); downloaded into
        the root when missing and `download` is set."""
        folders = [self.root, self.root / type(self).__name__ / "raw"]
        for folder in folders:
            for name in (stem, stem + ".gz"):
                if (folder / name).is_file():
                    return folder / name
        checksums = dict(self.resources)
        if download:
            if stem + ".gz" not in checksums:
                raise DatasetFileError(f"{type(self).__name__}: no download known for {stem}")
            urls = [mirror + stem + ".gz" for mirror in self.mirrors]
            return download_file(urls, self.root / (stem + ".gz"), checksums[stem + ".gz"])
        names = ", ".join(name for name, _ in self.resources)
        where = " or ".join(str(folder) for folder in folders)
        raise DatasetFileError(
            f"{type(self).__name__}: {stem}[.gz] not found in {where}. The directory should "
            f"hold {names} (raw or gzipped); pass download=True to fetch them into "
            f"{self.root}, or root= a directory that has them."
        )


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando): 28x28 images of 10 kinds of clothing, in MNIST's format and
    split; samples as in MNIST."""

    name = "fashion-mnist"
    mirrors: Sequence[str] = (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    )
    resources: Sequence[tuple[str, str | None]] = (
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    )
    classes = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
