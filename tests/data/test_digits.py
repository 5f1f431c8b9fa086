"""The embedded digits: shape, class counts, value range, the fixed disjoint split, the
shipped file and its licence."""

from importlib import resources
from pathlib import Path

import numpy
import pytest

import gradflow as gf
from gradflow.data import DataLoader, Digits, load_digits
from gradflow.data.digits import TEST_PER_CLASS, build_digits_npz

SOURCE_CSV = Path("/tmp/skl/sklearn/datasets/data/digits.csv.gz")
COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]  # the UCI test set's classes


def _shipped():
    with numpy.load(resources.files("gradflow.data") / "digits.npz", allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def test_all_images_shape_dtype_range_and_classes():
    images, labels = load_digits()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == gf.float32
    assert labels.shape == (1797,) and labels.dtype == gf.int64
    pixels = images.numpy()
    assert pixels.min() == 0.0 and pixels.max() == 1.0
    assert numpy.array_equal(pixels * 16, numpy.round(pixels * 16))  # counts 0..16 over 16
    assert numpy.bincount(labels.numpy()).tolist() == COUNTS


def test_split_sizes_stratified_and_deterministic():
    train_x, train_y = load_digits(train=True)
    test_x, test_y = load_digits(train=False)
    assert len(train_y) == 1437 and len(test_y) == 360
    assert numpy.bincount(test_y.numpy()).tolist() == [TEST_PER_CLASS] * 10
    again_x, again_y = load_digits(train=False)
    assert numpy.array_equal(again_x.numpy(), test_x.numpy())
    assert numpy.array_equal(again_y.numpy(), test_y.numpy())


def test_split_is_disjoint_and_complete():
    shipped = _shipped()
    is_test = shipped["is_test"]
    assert is_test.dtype == bool and int(is_test.sum()) == 360
    all_x, _ = load_digits()
    train_x, _ = load_digits(train=True)
    test_x, _ = load_digits(train=False)
    # The split is a mask over the rows: each row lands in exactly one part.
    assert numpy.array_equal(train_x.numpy(), all_x.numpy()[~is_test])
    assert numpy.array_equal(test_x.numpy(), all_x.numpy()[is_test])


def test_loads_are_independent_copies():
    images, _ = load_digits(train=True)
    images.zero_()
    assert load_digits(train=True)[0].numpy().max() == 1.0


def test_digits_dataset_and_loader():
    train = Digits(train=True)
    assert len(train) == 1437 and len(Digits(train=False)) == 360
    image, label = train[0]
    assert image.shape == (1, 8, 8) and label.dtype == gf.int64
    assert train.data.shape == (1437, 1, 8, 8) and train.targets.shape == (1437,)
    assert train.classes == [str(d) for d in range(10)]
    xb, yb = next(iter(DataLoader(train, batch_size=64, shuffle=True)))
    assert xb.shape == (64, 1, 8, 8) and yb.shape == (64,)


def test_digits_on_device(device):
    images, labels = load_digits(train=False, device=device)
    assert images.device == device and labels.device == device


def test_shipped_file_is_small_and_plain():
    path = resources.files("gradflow.data") / "digits.npz"
    assert path.read_bytes()[:2] == b"PK" and len(path.read_bytes()) < 80_000
    shipped = _shipped()
    assert sorted(shipped) == ["is_test", "labels", "pixels"]
    assert shipped["pixels"].dtype == numpy.uint8 and shipped["pixels"].shape == (1797, 64)
    assert shipped["labels"].dtype == numpy.uint8 and shipped["pixels"].max() == 16


def test_licence_is_shipped():
    text = (resources.files("gradflow.data") / "DIGITS_LICENSE.txt").read_text()
    for needed in ("CC BY 4.0", "Alpaydin", "Kaynak", "UCI", "What was changed"):
        assert needed in text


@pytest.mark.skipif(not SOURCE_CSV.exists(), reason="scikit-learn's digits.csv.gz not present")
def test_rebuild_from_source_matches_shipped(tmp_path):
    out = tmp_path / "digits.npz"
    build_digits_npz(SOURCE_CSV, out)
    rebuilt, shipped = numpy.load(out, allow_pickle=False), _shipped()
    assert numpy.array_equal(rebuilt["pixels"], shipped["pixels"])
    assert numpy.array_equal(rebuilt["labels"], shipped["labels"])
    assert numpy.bincount(rebuilt["labels"][rebuilt["is_test"]]).tolist() == [36] * 10
