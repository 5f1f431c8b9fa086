"""MNIST/Fashion-MNIST on tiny IDX files written into tmp_path: the reader (raw and gzip),
the datasets, every error path, and downloads through file:// URLs or a fake opener (never
the network)."""

import gzip
import hashlib
import io
import struct

import numpy
import pytest

import gradflow as gf
from gradflow.data import MNIST, DatasetFileError, FashionMNIST, read_idx
from gradflow.data.mnist import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, download_file

N_TRAIN, N_TEST = 5, 3
STEMS = {
    "train-images-idx3-ubyte": (N_TRAIN, 28, 28),
    "train-labels-idx1-ubyte": (N_TRAIN,),
    "t10k-images-idx3-ubyte": (N_TEST, 28, 28),
    "t10k-labels-idx1-ubyte": (N_TEST,),
}


def idx_bytes(array, type_code=0x08):
    array = numpy.asarray(array)
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def sample(shape):
    values = numpy.arange(int(numpy.prod(shape)), dtype=numpy.int64)
    return ((values * 7) % (256 if len(shape) > 1 else 10)).astype(numpy.uint8).reshape(shape)


def write_mnist(folder, gz=False):
    """The four MNIST files (tiny) in `folder`; returns {file name: bytes written}."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for stem, shape in STEMS.items():
        data = idx_bytes(sample(shape))
        name = stem + ".gz" if gz else stem
        data = gzip.compress(data, mtime=0) if gz else data
        (folder / name).write_bytes(data)
        written[name] = data
    return written


# ---- read_idx ----------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_uint8(tmp_path, gz):
    images = sample((4, 28, 28))
    data = idx_bytes(images)
    (tmp_path / "f").write_bytes(gzip.compress(data) if gz else data)
    out = read_idx(tmp_path / "f", IDX_IMAGES_MAGIC)
    assert out.dtype == numpy.uint8 and numpy.array_equal(out, images)


@pytest.mark.parametrize(
    ("type_code", "dtype"), [(0x09, "i1"), (0x0B, "i2"), (0x0C, "i4"), (0x0D, "f4"), (0x0E, "f8")]
)
def test_read_idx_other_types_are_big_endian(tmp_path, type_code, dtype):
    values = (numpy.arange(6) - 3).astype(dtype).reshape(2, 3)
    (tmp_path / "f").write_bytes(idx_bytes(values, type_code))
    out = read_idx(tmp_path / "f")
    assert out.dtype == numpy.dtype(dtype) and numpy.array_equal(out, values)


def test_read_idx_bad_magic_says_what_was_found(tmp_path):
    (tmp_path / "f").write_bytes(b"<html>not found</html>")
    with pytest.raises(
        DatasetFileError, match=r"not an IDX file: its first 4 bytes are 0x3C68746D"
    ):
        read_idx(tmp_path / "f", IDX_IMAGES_MAGIC)
    (tmp_path / "g").write_bytes(b"\x00\x00")
    with pytest.raises(DatasetFileError, match="too short for a header"):
        read_idx(tmp_path / "g")


def test_read_idx_wrong_kind_of_file(tmp_path):
    (tmp_path / "labels").write_bytes(idx_bytes(sample((5,))))
    with pytest.raises(
        DatasetFileError,
        match=r"magic number is 0x00000801 but 0x00000803 was expected .*uint8 data in 1 dim",
    ):
        read_idx(tmp_path / "labels", IDX_IMAGES_MAGIC)


def test_read_idx_truncated(tmp_path):
    data = idx_bytes(sample((4, 28, 28)))
    (tmp_path / "f").write_bytes(data[:-100])
    with pytest.raises(
        DatasetFileError, match=r"truncated: its header says shape \(4, 28, 28\) \(3136 bytes"
    ):
        read_idx(tmp_path / "f")
    (tmp_path / "h").write_bytes(data[:10])
    with pytest.raises(DatasetFileError, match="truncated inside its header"):
        read_idx(tmp_path / "h")
    (tmp_path / "gz").write_bytes(gzip.compress(data)[:-30])
    with pytest.raises(DatasetFileError, match="gzip data is truncated or corrupt"):
        read_idx(tmp_path / "gz")
    (tmp_path / "long").write_bytes(data + b"\x00\x00")
    with pytest.raises(DatasetFileError, match="2 bytes after"):
        read_idx(tmp_path / "long")


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DatasetFileError, match="does not exist"):
        read_idx(tmp_path / "nope")


# ---- the datasets from a local directory -------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_local_files(tmp_path, gz):
    write_mnist(tmp_path, gz=gz)
    train, test = MNIST(tmp_path), MNIST(tmp_path, train=False)
    assert len(train) == N_TRAIN and len(test) == N_TEST
    image, label = train[1]
    assert image.shape == (1, 28, 28) and image.dtype == gf.float32
    assert label.dtype == gf.int64
    expected = sample(STEMS["train-images-idx3-ubyte"]).astype(numpy.float32) / 255
    assert numpy.allclose(train.data.numpy()[:, 0], expected)
    assert train.targets.tolist() == sample((N_TRAIN,)).tolist()
    assert train.data.numpy().max() <= 1.0


def test_torchvision_layout_and_fashion(tmp_path):
    write_mnist(tmp_path / "FashionMNIST" / "raw", gz=True)
    data = FashionMNIST(tmp_path, train=False)
    assert len(data) == N_TEST and data.classes[9] == "Ankle boot"


def test_dataset_on_device(tmp_path, device):
    write_mnist(tmp_path)
    data = MNIST(tmp_path, device=device)
    assert data.data.device == device and data.targets.device == device


def test_missing_directory_names_files_and_download(tmp_path):
    with pytest.raises(DatasetFileError) as info:
        MNIST(tmp_path / "absent")
    message = str(info.value)
    assert "train-images-idx3-ubyte[.gz] not found in" in message
    assert "t10k-labels-idx1-ubyte.gz" in message and "download=True" in message


def test_default_root_is_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADFLOW_CACHE_DIR", str(tmp_path))
    with pytest.raises(DatasetFileError, match="fashion-mnist"):
        FashionMNIST()
    write_mnist(tmp_path / "mnist")
    assert len(MNIST()) == N_TRAIN


def test_label_and_image_counts_must_agree(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(sample((4,))))
    with pytest.raises(DatasetFileError, match="holds 5 images but .* holds 4 labels"):
        MNIST(tmp_path)


def test_swapped_files_are_caught(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(sample((5,))))
    with pytest.raises(DatasetFileError, match="0x00000801 but 0x00000803 was expected"):
        MNIST(tmp_path)


# ---- downloads (file:// URLs and a fake opener; no network) ------------------------------
def _serve(tmp_path, monkeypatch, corrupt=None):
    """Write the gzipped files to a 'server' folder and point MNIST's mirrors at it."""
    served = write_mnist(tmp_path / "server", gz=True)
    table = [(name, hashlib.md5(data).hexdigest()) for name, data in served.items()]
    if corrupt:
        table = [(name, "0" * 32 if name == corrupt else md5) for name, md5 in table]
    monkeypatch.setattr(MNIST, "mirrors", [(tmp_path / "server").as_uri() + "/"])
    monkeypatch.setattr(MNIST, "resources", table)
    return served


def test_download_into_cache(tmp_path, monkeypatch):
    served = _serve(tmp_path, monkeypatch)
    cache = tmp_path / "cache"
    data = MNIST(cache, train=False, download=True)
    assert len(data) == N_TEST
    assert sorted(p.name for p in cache.iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    assert (cache / "t10k-images-idx3-ubyte.gz").read_bytes() == served["t10k-images-idx3-ubyte.gz"]
    for path in (tmp_path / "server").iterdir():
        path.unlink()
    assert len(MNIST(cache, train=False, download=True)) == N_TEST  # no second download


def test_checksum_mismatch_raises_and_keeps_nothing(tmp_path, monkeypatch):
    _serve(tmp_path, monkeypatch, corrupt="train-labels-idx1-ubyte.gz")
    cache = tmp_path / "cache"
    with pytest.raises(DatasetFileError, match="md5 checksum [0-9a-f]{32} does not match"):
        MNIST(cache, download=True)
    assert [p.name for p in cache.iterdir()] == ["train-images-idx3-ubyte.gz"]


def test_next_mirror_is_tried(tmp_path, monkeypatch):
    _serve(tmp_path, monkeypatch)
    mirrors = [(tmp_path / "empty").as_uri() + "/", *MNIST.mirrors]
    monkeypatch.setattr(MNIST, "mirrors", mirrors)
    assert len(MNIST(tmp_path / "cache", download=True)) == N_TRAIN


class _BrokenStream(io.BytesIO):
    def read(self, size=-1):
        if self.tell() > 0:
            raise ConnectionResetError("connection reset by peer")
        return super().read(4)


def test_interrupted_download_leaves_nothing(tmp_path):
    with pytest.raises(DatasetFileError, match="connection reset by peer"):
        download_file(
            ["https://example.invalid/f"],
            tmp_path / "f",
            None,
            opener=lambda url: _BrokenStream(b"0123456789"),
        )
    assert list(tmp_path.iterdir()) == []


def test_download_with_sha256_and_failures_listed(tmp_path):
    payload = b"payload"
    digest = hashlib.sha256(payload).hexdigest()
    out = download_file(
        ["https://a.invalid/f"],
        tmp_path / "f",
        f"sha256:{digest}",
        opener=lambda u: io.BytesIO(payload),
    )
    assert out.read_bytes() == payload
    with pytest.raises(DatasetFileError, match=r"(?s)could not download g:.*a.invalid.*b.invalid"):
        download_file(
            ["https://a.invalid/g", "https://b.invalid/g"],
            tmp_path / "g",
            digest,
            opener=lambda u: io.BytesIO(b"other"),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
    with pytest.raises(ValueError, match="expected 32 hex digits"):
        download_file(["x"], tmp_path / "h", "abc")


def test_builtin_checksum_tables():
    for cls in (MNIST, FashionMNIST):
        names = [name for name, _ in cls.resources]
        assert names == [stem + ".gz" for stem in STEMS]
        assert all(len(md5) == 32 and int(md5, 16) >= 0 for _, md5 in cls.resources)
    assert dict(MNIST.resources) != dict(FashionMNIST.resources)
    assert IDX_LABELS_MAGIC == 0x801
