"""Dataset, TensorDataset, Subset, random_split, DataLoader (order, seeding, fast path,
collation, devices) and their errors."""

from collections import namedtuple

import numpy
import pytest

import gradflow as gf
from gradflow.data import (
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)


def _dataset(n=10, device="cpu"):
    x = gf.tensor(numpy.arange(n * 3, dtype=numpy.float32).reshape(n, 3), device=device)
    y = gf.tensor(numpy.arange(n), device=device)
    return TensorDataset(x, y)


def _rows(loader):
    """The sample ids (the label column) of each batch, as lists."""
    return [yb.tolist() for _, yb in loader]


def _flat(batches):
    return [i for batch in batches for i in batch]


class ListDataset(Dataset):
    def __init__(self, items):
        self.items = items

    def __getitem__(self, index):
        return self.items[index]

    def __len__(self):
        return len(self.items)


# ---- TensorDataset, Subset, random_split -------------------------------------------------
def test_tensor_dataset_samples():
    ds = _dataset(4)
    assert len(ds) == 4
    x, y = ds[2]
    assert x.tolist() == [6.0, 7.0, 8.0] and y.item() == 2 and y.dtype == gf.int64
    assert x.is_leaf and not x.requires_grad


def test_tensor_dataset_errors():
    with pytest.raises(ValueError, match=r"same first dimension.*\(3, 2\), \(4,\)"):
        TensorDataset(gf.zeros(3, 2), gf.zeros(4))
    with pytest.raises(TypeError, match="argument 1 is ndarray"):
        TensorDataset(gf.zeros(3), numpy.zeros(3))
    with pytest.raises(ValueError, match="0-d tensor"):
        TensorDataset(gf.tensor(1.0))
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()


def test_dataset_base_needs_getitem_and_len():
    with pytest.raises(NotImplementedError, match="__getitem__"):
        Dataset()[0]
    with pytest.raises(NotImplementedError, match="__len__"):
        len(Dataset())


def test_subset():
    sub = Subset(_dataset(10), [7, 2, 5])
    assert len(sub) == 3
    assert sub[0][1].item() == 7 and sub[2][1].item() == 5


def test_random_split_counts_and_fractions():
    ds = _dataset(10)
    parts = random_split(ds, [6, 4], generator=gf.Generator(seed=1))
    ids = [sorted(int(p[i][1].item()) for i in range(len(p))) for p in parts]
    assert [len(p) for p in parts] == [6, 4]
    assert sorted(ids[0] + ids[1]) == list(range(10))  # disjoint and complete
    again = random_split(ds, [6, 4], generator=gf.Generator(seed=1))
    assert [p.indices.tolist() for p in again] == [p.indices.tolist() for p in parts]
    assert [len(p) for p in random_split(ds, [0.5, 0.3, 0.2])] == [5, 3, 2]
    assert [len(p) for p in random_split(_dataset(7), [0.5, 0.5])] == [4, 3]


def test_random_split_follows_manual_seed():
    gf.manual_seed(5)
    first = random_split(_dataset(10), [5, 5])[0].indices.tolist()
    gf.manual_seed(5)
    assert random_split(_dataset(10), [5, 5])[0].indices.tolist() == first


def test_random_split_errors():
    with pytest.raises(ValueError, match="lengths sum to 9 but the dataset has 10"):
        random_split(_dataset(10), [5, 4])
    with pytest.raises(ValueError, match="non-negative ints"):
        random_split(_dataset(10), [11, -1])
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(_dataset(10), [0.5, 0.4])
    with pytest.raises(TypeError, match="cpu gradflow.Generator"):
        random_split(_dataset(10), [5, 5], generator=numpy.random.default_rng(0))


# ---- DataLoader order and length ---------------------------------------------------------
def test_sequential_batches_and_len():
    loader = DataLoader(_dataset(10), batch_size=4)
    assert len(loader) == 3
    assert _rows(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    xb, yb = next(iter(loader))
    assert xb.shape == (4, 3) and xb.dtype == gf.float32 and yb.dtype == gf.int64


def test_drop_last():
    loader = DataLoader(_dataset(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert _rows(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(_dataset(8), batch_size=4, drop_last=True)) == 2
    assert len(DataLoader(_dataset(3), batch_size=4, drop_last=True)) == 0
    assert list(DataLoader(_dataset(3), batch_size=4, drop_last=True)) == []


def test_shuffle_same_seed_same_order_and_each_epoch_reshuffles():
    gf.manual_seed(42)
    loader = DataLoader(_dataset(20), batch_size=5, shuffle=True)
    epoch1, epoch2 = _rows(loader), _rows(loader)
    assert sorted(_flat(epoch1)) == list(range(20))
    assert sorted(_flat(epoch2)) == list(range(20))
    assert epoch1 != epoch2
    gf.manual_seed(42)
    again = DataLoader(_dataset(20), batch_size=5, shuffle=True)
    assert _rows(again) == epoch1 and _rows(again) == epoch2


def test_explicit_generator_is_independent_of_the_global_one():
    a = _rows(DataLoader(_dataset(20), batch_size=5, shuffle=True, generator=gf.Generator(seed=3)))
    gf.manual_seed(99)
    b = _rows(DataLoader(_dataset(20), batch_size=5, shuffle=True, generator=gf.Generator(seed=3)))
    assert a == b


# ---- the fast path -----------------------------------------------------------------------
def test_fast_path_indexes_whole_tensors(monkeypatch):
    def no_per_sample_access(self, index):
        raise AssertionError("the fast path must not fetch samples one by one")

    ds = _dataset(10)
    monkeypatch.setattr(TensorDataset, "__getitem__", no_per_sample_access)
    gf.manual_seed(0)
    batches = [(xb.tolist(), yb.tolist()) for xb, yb in DataLoader(ds, 4, shuffle=True)]
    monkeypatch.undo()
    gf.manual_seed(0)
    slow = DataLoader(ds, 4, shuffle=True, collate_fn=default_collate)
    assert batches == [(xb.tolist(), yb.tolist()) for xb, yb in slow]


def test_fast_path_batches_are_copies():
    ds = _dataset(4)
    xb, _ = next(iter(DataLoader(ds, batch_size=2)))
    xb.zero_()
    assert ds.tensors[0].tolist()[0] == [0.0, 1.0, 2.0] and ds.tensors[0].tolist()[1][0] == 3.0


def test_fast_path_through_subsets():
    train, _ = random_split(_dataset(10), [6, 4], generator=gf.Generator(seed=0))
    got = sorted(_flat(_rows(DataLoader(train, batch_size=4, shuffle=True))))
    assert got == sorted(train.indices.tolist())


def test_overridden_getitem_is_respected():
    class Doubled(TensorDataset):
        def __getitem__(self, index):
            x, y = super().__getitem__(index)
            return x * 2, y

    xb, _ = next(iter(DataLoader(Doubled(*_dataset(4).tensors), batch_size=2)))
    assert xb.tolist()[1] == [6.0, 8.0, 10.0]


# ---- collation ---------------------------------------------------------------------------
def test_default_collate_numbers():
    ints, floats, bools = (
        default_collate([1, 2]),
        default_collate([0.5, 1.5]),
        default_collate([True, False]),
    )
    assert ints.dtype == gf.int64 and ints.tolist() == [1, 2]
    assert floats.dtype == gf.float32 and floats.tolist() == [0.5, 1.5]
    assert bools.dtype == gf.bool
    assert default_collate([numpy.float64(1.0), numpy.float64(2.0)]).dtype == gf.float64
    assert default_collate([numpy.int32(1), numpy.int32(2)]).dtype == gf.int32


def test_default_collate_arrays_and_tensors_keep_dtype():
    batch = default_collate([numpy.zeros((2, 2)), numpy.ones((2, 2))])
    assert batch.shape == (2, 2, 2) and batch.dtype == gf.float64
    batch = default_collate([gf.zeros(3, dtype=gf.float32), gf.ones(3, dtype=gf.float32)])
    assert batch.shape == (2, 3) and batch.dtype == gf.float32


def test_default_collate_structures():
    Pair = namedtuple("Pair", "image label")
    samples = [
        {"x": numpy.zeros(2, numpy.float32), "y": 1, "name": "a", "pair": Pair(0.5, 3)},
        {"x": numpy.ones(2, numpy.float32), "y": 0, "name": "b", "pair": Pair(1.5, 4)},
    ]
    batch = default_collate(samples)
    assert batch["x"].shape == (2, 2) and batch["y"].tolist() == [1, 0]
    assert batch["name"] == ["a", "b"]
    assert isinstance(batch["pair"], Pair) and batch["pair"].label.tolist() == [3, 4]
    as_tuple = default_collate([(1, 2.0), (3, 4.0)])
    as_list = default_collate([[1, 2.0], [3, 4.0]])
    assert isinstance(as_tuple, tuple) and isinstance(as_list, list)
    assert as_tuple[0].tolist() == [1, 3] and as_list[1].tolist() == [2.0, 4.0]


def test_default_collate_errors():
    with pytest.raises(TypeError, match="can't batch samples of type object"):
        default_collate([object(), object()])
    with pytest.raises(ValueError, match="different numbers of fields"):
        default_collate([(1, 2), (1,)])
    with pytest.raises(TypeError, match="samples mix Tensor and int"):
        default_collate([gf.zeros(1), 1])
    with pytest.raises(ValueError, match="empty"):
        default_collate([])


def test_generic_dataset_and_custom_collate():
    ds = ListDataset([(numpy.full(2, i, numpy.float32), i) for i in range(5)])
    xb, yb = next(iter(DataLoader(ds, batch_size=5)))
    assert xb.shape == (5, 2) and yb.tolist() == [0, 1, 2, 3, 4]
    loader = DataLoader(ds, batch_size=2, collate_fn=lambda samples: len(samples))
    assert list(loader) == [2, 2, 1]


# ---- devices -----------------------------------------------------------------------------
def test_device_moves_fast_path_batches(device):
    xb, yb = next(iter(DataLoader(_dataset(6), batch_size=4, shuffle=True, device=device)))
    assert xb.device == device and yb.device == device
    assert xb.shape == (4, 3)


def test_device_moves_collated_batches(device):
    ds = ListDataset([{"x": numpy.zeros(2, numpy.float32), "y": i} for i in range(4)])
    batch = next(iter(DataLoader(ds, batch_size=2, device=device)))
    assert batch["x"].device == device and batch["y"].device == device


def test_dataset_on_device(device):
    loader = DataLoader(_dataset(6, device=device), batch_size=4, shuffle=True)
    batches = list(loader)
    assert all(xb.device == device for xb, _ in batches)
    assert sorted(_flat(yb.tolist() for _, yb in batches)) == list(range(6))


def test_loader_argument_errors():
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        DataLoader(_dataset(), batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be a positive int"):
        DataLoader(_dataset(), batch_size=True)
    with pytest.raises(TypeError, match="generator must be a cpu gradflow.Generator"):
        DataLoader(_dataset(), shuffle=True, generator=7)
    with pytest.raises(ValueError, match="unknown device"):
        DataLoader(_dataset(), device="tpu")
