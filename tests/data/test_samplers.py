"""Samplers (gradflow/data/sampler.py) and the DataLoader's sampler arguments, against
PyTorch's semantics and error messages."""

import numpy
import pytest

import gradflow as gf
from gradflow.data import (
    BatchSampler,
    DataLoader,
    DistributedSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
)


def _torch_data():
    return pytest.importorskip("torch.utils.data")


def _same_error(ours, theirs):
    """Both calls raise the same exception type with the same message."""
    with pytest.raises(Exception) as mine:
        ours()
    with pytest.raises(Exception) as torch_error:
        theirs()
    assert type(mine.value) is type(torch_error.value)
    assert str(mine.value) == str(torch_error.value)


def _dataset(n=10):
    return TensorDataset(gf.arange(n))


# ---- Sampler, SequentialSampler ------------------------------------------------------------
def test_sequential():
    sampler = SequentialSampler(range(5))
    assert list(sampler) == [0, 1, 2, 3, 4] and len(sampler) == 5
    assert all(type(i) is int for i in sampler)


def test_sampler_base_needs_iter():
    with pytest.raises(NotImplementedError, match="must implement __iter__"):
        iter(Sampler())


# ---- RandomSampler -----------------------------------------------------------------------
def test_random_sampler_permutes_each_epoch():
    sampler = RandomSampler(range(20), generator=gf.Generator(seed=0))
    first, second = list(sampler), list(sampler)
    assert sorted(first) == list(range(20)) and sorted(second) == list(range(20))
    assert first != second and len(sampler) == 20
    again = RandomSampler(range(20), generator=gf.Generator(seed=0))
    assert list(again) == first


def test_random_sampler_follows_manual_seed():
    gf.manual_seed(3)
    first = list(RandomSampler(range(10)))
    gf.manual_seed(3)
    assert list(RandomSampler(range(10))) == first


def test_random_sampler_num_samples_and_replacement():
    more = list(RandomSampler(range(4), num_samples=10, generator=gf.Generator(seed=1)))
    assert len(more) == 10
    assert sorted(more[:4]) == sorted(more[4:8]) == [0, 1, 2, 3] and len(set(more[8:])) == 2
    drawn = list(RandomSampler(range(3), replacement=True, num_samples=50))
    assert len(drawn) == 50 and set(drawn) <= {0, 1, 2} and len(set(drawn)) == 3
    assert len(RandomSampler(range(3), replacement=True)) == 3


def test_random_sampler_errors_match_torch():
    data = _torch_data()
    _same_error(
        lambda: RandomSampler(range(3), replacement=1),
        lambda: data.RandomSampler(range(3), replacement=1),
    )
    _same_error(
        lambda: RandomSampler(range(3), num_samples=0),
        lambda: data.RandomSampler(range(3), num_samples=0),
    )
    with pytest.raises(TypeError, match="cpu gradflow.Generator"):
        RandomSampler(range(3), generator=numpy.random.default_rng(0))


# ---- SubsetRandomSampler, WeightedRandomSampler -----------------------------------------
def test_subset_random_sampler():
    sampler = SubsetRandomSampler([7, 3, 9, 1], generator=gf.Generator(seed=2))
    drawn = list(sampler)
    assert sorted(drawn) == [1, 3, 7, 9] and len(sampler) == 4
    many = SubsetRandomSampler(list(range(100, 130)), generator=gf.Generator(seed=2))
    first, second = list(many), list(many)
    assert first != second and sorted(first) == sorted(second) == list(range(100, 130))


def test_weighted_random_sampler():
    gen = gf.Generator(seed=0)
    drawn = list(WeightedRandomSampler([0.0, 1.0, 3.0, 0.0], 400, generator=gen))
    assert len(drawn) == 400 and set(drawn) == {1, 2}
    assert 250 < drawn.count(2) < 350  # about three quarters
    unique = list(WeightedRandomSampler(gf.tensor([1.0, 2, 3, 4]), 4, replacement=False))
    assert sorted(unique) == [0, 1, 2, 3]
    assert len(WeightedRandomSampler([1.0, 1.0], 7)) == 7


def test_weighted_random_sampler_errors():
    data = _torch_data()
    _same_error(
        lambda: WeightedRandomSampler([1.0, 2.0], 0),
        lambda: data.WeightedRandomSampler([1.0, 2.0], 0),
    )
    _same_error(
        lambda: WeightedRandomSampler([1.0, 2.0], 2, replacement=0),
        lambda: data.WeightedRandomSampler([1.0, 2.0], 2, replacement=0),
    )
    _same_error(
        lambda: WeightedRandomSampler([[1.0, 2.0]], 2),
        lambda: data.WeightedRandomSampler([[1.0, 2.0]], 2),
    )
    with pytest.raises(RuntimeError, match="cannot draw 3 samples without replacement from 2"):
        WeightedRandomSampler([1.0, 0.0, 2.0], 3, replacement=False)
    with pytest.raises(RuntimeError, match="finite and non-negative with a positive sum"):
        WeightedRandomSampler([1.0, -1.0], 2)


# ---- BatchSampler --------------------------------------------------------------------------
@pytest.mark.parametrize("drop_last", [False, True])
def test_batch_sampler_matches_torch(drop_last):
    data = _torch_data()
    ours = BatchSampler(SequentialSampler(range(10)), 3, drop_last)
    theirs = data.BatchSampler(data.SequentialSampler(range(10)), 3, drop_last)
    assert list(ours) == list(theirs) and len(ours) == len(theirs)
    plain = BatchSampler([5, 1, 4, 2, 3], 2, drop_last)  # any iterable of indices
    assert list(plain) == list(data.BatchSampler([5, 1, 4, 2, 3], 2, drop_last))


def test_batch_sampler_errors_match_torch():
    data = _torch_data()
    _same_error(
        lambda: BatchSampler(range(3), 0, False), lambda: data.BatchSampler(range(3), 0, False)
    )
    _same_error(lambda: BatchSampler(range(3), 2, 1), lambda: data.BatchSampler(range(3), 2, 1))


# ---- DistributedSampler ----------------------------------------------------------------------
@pytest.mark.parametrize("n, drop_last", [(10, False), (10, True), (2, False), (9, False)])
def test_distributed_without_shuffle_matches_torch(n, drop_last):
    distributed = pytest.importorskip("torch.utils.data.distributed")
    for rank in range(3):
        ours = DistributedSampler(range(n), 3, rank, shuffle=False, drop_last=drop_last)
        theirs = distributed.DistributedSampler(
            range(n), 3, rank, shuffle=False, drop_last=drop_last
        )
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_distributed_shuffle_partitions_and_set_epoch():
    shares = [DistributedSampler(range(10), 2, rank, seed=4) for rank in range(2)]
    first = [list(s) for s in shares]
    assert sorted(first[0] + first[1]) == list(range(10))
    assert [list(s) for s in shares] == first  # same epoch, same order
    for s in shares:
        s.set_epoch(1)
    second = [list(s) for s in shares]
    assert second != first and sorted(second[0] + second[1]) == list(range(10))
    padded = [list(DistributedSampler(range(5), 2, rank)) for rank in range(2)]
    assert len(padded[0]) == len(padded[1]) == 3 and set(padded[0] + padded[1]) == set(range(5))


def test_distributed_errors():
    distributed = pytest.importorskip("torch.utils.data.distributed")
    with pytest.raises(RuntimeError, match="pass num_replicas and rank; gradflow has no"):
        DistributedSampler(range(4))
    _same_error(
        lambda: DistributedSampler(range(4), 2, 2),
        lambda: distributed.DistributedSampler(range(4), 2, 2),
    )


def test_distributed_sampler_in_a_loader():
    sampler = DistributedSampler(range(10), 2, 1, seed=5)
    loader = DataLoader(_dataset(10), batch_size=2, sampler=sampler)
    assert [i for (b,) in loader for i in b.tolist()] == list(sampler)
    assert len(loader) == 3


# ---- the DataLoader's sampler arguments ----------------------------------------------------
def test_loader_with_sampler_and_batch_sampler():
    assert [b.tolist() for (b,) in DataLoader(_dataset(), batch_size=2, sampler=[4, 0, 7])] == [
        [4, 0],
        [7],
    ]
    loader = DataLoader(_dataset(), batch_sampler=[[1, 2], [9], [3, 0, 5]])
    assert [b.tolist() for (b,) in loader] == [[1, 2], [9], [3, 0, 5]]
    assert loader.batch_size is None and len(loader) == 3
    weighted = WeightedRandomSampler([0.0] * 5 + [1.0] * 5, 20)
    ids = [i for (b,) in DataLoader(_dataset(), batch_size=5, sampler=weighted) for i in b.tolist()]
    assert len(ids) == 20 and min(ids) >= 5


def test_loader_builds_torch_samplers():
    loader = DataLoader(_dataset(), batch_size=3, shuffle=True)
    assert isinstance(loader.sampler, RandomSampler)
    assert isinstance(loader.batch_sampler, BatchSampler) and loader.batch_sampler.batch_size == 3
    plain = DataLoader(_dataset(), batch_size=None)
    assert isinstance(plain.sampler, SequentialSampler) and plain.batch_sampler is None
    assert [t.item() for (t,) in plain][:3] == [0, 1, 2]


def test_loader_argument_errors_match_torch():
    data = _torch_data()
    torch = pytest.importorskip("torch")
    ds, tds = _dataset(), data.TensorDataset(torch.arange(10))
    cases = [
        dict(num_workers=-1),
        dict(timeout=-1),
        dict(prefetch_factor=2),
        dict(num_workers=1, prefetch_factor=-1),
        dict(persistent_workers=True),
        dict(sampler=[0, 1], shuffle=True),
        dict(batch_sampler=[[0]], batch_size=2),
        dict(batch_sampler=[[0]], drop_last=True),
        dict(batch_size=None, drop_last=True),
        dict(num_workers=1, multiprocessing_context="nope"),
        dict(num_workers=1, multiprocessing_context=3),
        dict(multiprocessing_context="fork"),
    ]
    for kwargs in cases:
        _same_error(
            lambda kw=kwargs: DataLoader(ds, **kw), lambda kw=kwargs: data.DataLoader(tds, **kw)
        )

    def set_batch_size(loader):
        loader.batch_size = 4

    _same_error(
        lambda: set_batch_size(DataLoader(ds)), lambda: set_batch_size(data.DataLoader(tds))
    )


def test_len_of_loaders():
    data = _torch_data()
    torch = pytest.importorskip("torch")
    for kwargs in (dict(batch_size=3), dict(batch_size=3, drop_last=True), dict(batch_size=None)):
        ours = DataLoader(_dataset(10), **kwargs)
        theirs = data.DataLoader(data.TensorDataset(torch.arange(10)), **kwargs)
        assert len(ours) == len(theirs)
