"""gradflow.utils.data is torch.utils.data under the renamed import: its names and
submodules, the datasets it adds (Concat/Chain/Stack, IterableDataset) and default_convert."""

import collections
import importlib

import numpy
import pytest

import gradflow as gf
import gradflow.utils.data as gud
from gradflow.utils.data import (
    ChainDataset,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    default_collate,
    default_convert,
    random_split,
)

# torch.utils.data's names that are not datasets and loaders (DataPipes, decorators).
NOT_PROVIDED = {
    "DFIterDataPipe",
    "DataChunk",
    "IterDataPipe",
    "MapDataPipe",
    "_DatasetKind",
    "argument_validation",
    "functional_datapipe",
    "guaranteed_datapipes_determinism",
    "non_deterministic",
    "runtime_validation",
    "runtime_validation_disabled",
}


class Numbers(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i >= self.n:
            raise IndexError(i)
        return i


class Count(IterableDataset):
    def __init__(self, start, stop):
        self.start, self.stop = start, stop

    def __iter__(self):
        return iter(range(self.start, self.stop))

    def __len__(self):
        return self.stop - self.start


# ---- the namespace ---------------------------------------------------------------------------
def test_torch_names_are_all_here():
    data = pytest.importorskip("torch.utils.data")
    missing = [n for n in data.__all__ if n not in NOT_PROVIDED and not hasattr(gud, n)]
    assert missing == []
    assert gf.utils.data is gud and gud.DataLoader is gf.data.DataLoader


@pytest.mark.parametrize(
    "module, names",
    [
        ("dataloader", ["DataLoader", "default_collate", "default_convert", "get_worker_info"]),
        ("dataset", ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split"]),
        ("sampler", ["Sampler", "RandomSampler", "BatchSampler", "WeightedRandomSampler"]),
        ("distributed", ["DistributedSampler"]),
    ],
)
def test_submodules_match_torch(module, names):
    theirs = pytest.importorskip(f"torch.utils.data.{module}")
    ours = importlib.import_module(f"gradflow.utils.data.{module}")
    for name in names:
        assert hasattr(theirs, name)
        assert getattr(ours, name) is getattr(gud, name)


def test_classes_take_type_parameters():
    class Pairs(Dataset[tuple[int, int]]):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return i, i

    loader: DataLoader[tuple[int, int]] = DataLoader(Pairs(), batch_size=2)
    assert [b.tolist() for b in next(iter(loader))] == [[0, 1], [0, 1]]
    assert gud.Sampler[int] is not None and IterableDataset[int] is not None


def _program(torch):
    """A PyTorch data pipeline, written against `torch` only."""
    torch.manual_seed(0)
    x = torch.arange(24, dtype=torch.float32).reshape(12, 2)
    y = torch.arange(12)
    full = torch.utils.data.TensorDataset(x, y)
    train, val = torch.utils.data.random_split(full, [0.75, 0.25])
    both = torch.utils.data.ConcatDataset([train, val])
    loader = torch.utils.data.DataLoader(both, batch_size=5, shuffle=True, drop_last=False)
    seen = sorted(int(i) for _, yb in loader for i in yb.tolist())
    sizes = [tuple(xb.shape) for xb, _ in loader]
    stacked = torch.utils.data.StackDataset(x, y)
    first = torch.utils.data.dataloader.default_collate([stacked[0], stacked[1]])
    return len(train), len(val), len(loader), seen, sizes, first[0].tolist(), first[1].tolist()


def test_a_torch_program_runs_under_the_renamed_import():
    torch = pytest.importorskip("torch")
    assert _program(gf) == _program(torch)


# ---- ConcatDataset, ChainDataset, StackDataset, __add__ ---------------------------------------
def test_concat_dataset_matches_torch():
    data = pytest.importorskip("torch.utils.data")
    parts = [Numbers(3), Numbers(0), Numbers(4)]
    ours, theirs = ConcatDataset(parts), data.ConcatDataset(parts)
    assert len(ours) == len(theirs) == 7 and ours.cumulative_sizes == theirs.cumulative_sizes
    assert [ours[i] for i in range(-7, 7)] == [theirs[i] for i in range(-7, 7)]
    added = Numbers(2) + Numbers(3)
    assert isinstance(added, ConcatDataset) and [added[i] for i in range(5)] == [0, 1, 0, 1, 2]
    with pytest.raises(ValueError, match="absolute value of index should not exceed dataset"):
        ours[-8]
    with pytest.raises(AssertionError, match="datasets should not be an empty iterable"):
        ConcatDataset([])
    with pytest.raises(AssertionError, match="ConcatDataset does not support IterableDataset"):
        ConcatDataset([Count(0, 2)])


def test_concat_dataset_in_a_loader():
    ds = ConcatDataset([TensorDataset(gf.arange(3)), TensorDataset(gf.arange(10, 12))])
    assert [b.tolist() for (b,) in DataLoader(ds, batch_size=2)] == [[0, 1], [2, 10], [11]]


def test_chain_dataset():
    chain = ChainDataset([Count(0, 2), Count(5, 7)])
    assert list(chain) == [0, 1, 5, 6] and len(chain) == 4
    assert list(Count(0, 1) + Count(3, 4)) == [0, 3]
    assert [b.tolist() for b in DataLoader(chain, batch_size=3)] == [[0, 1, 5], [6]]
    assert len(DataLoader(chain, batch_size=3)) == 2
    with pytest.raises(AssertionError, match="ChainDataset only supports IterableDataset"):
        list(ChainDataset([Numbers(2)]))


def test_stack_dataset_matches_torch():
    data = pytest.importorskip("torch.utils.data")
    ours, theirs = StackDataset(Numbers(3), Numbers(3)), data.StackDataset(Numbers(3), Numbers(3))
    assert ours[2] == theirs[2] == (2, 2) and len(ours) == 3
    named = StackDataset(a=Numbers(2), b=Numbers(2))
    assert named[1] == {"a": 1, "b": 1}
    for args, kwargs in [
        ((Numbers(2),), {"b": Numbers(2)}),
        ((), {}),
        ((Numbers(2), Numbers(3)), {}),
    ]:
        with pytest.raises(ValueError) as mine:
            StackDataset(*args, **kwargs)
        with pytest.raises(ValueError) as torch_error:
            data.StackDataset(*args, **kwargs)
        assert str(mine.value) == str(torch_error.value)


def test_iterable_dataset_loader_rules():
    data = pytest.importorskip("torch.utils.data")

    class TorchCount(data.IterableDataset):
        def __iter__(self):
            return iter(range(3))

    for kwargs in (dict(shuffle=True), dict(sampler=[0]), dict(batch_sampler=[[0]])):
        with pytest.raises(ValueError) as mine:
            DataLoader(Count(0, 3), **kwargs)
        with pytest.raises(ValueError) as torch_error:
            data.DataLoader(TorchCount(), **kwargs)
        assert str(mine.value) == str(torch_error.value)
    assert [b.tolist() for b in DataLoader(Count(0, 5), batch_size=2, drop_last=True)] == [
        [0, 1],
        [2, 3],
    ]
    assert list(DataLoader(Count(0, 3), batch_size=None)) == [0, 1, 2]  # ints stay ints
    with pytest.raises(NotImplementedError, match="must implement __iter__"):
        iter(IterableDataset())


def test_random_split_and_subset_from_the_namespace():
    train, val = random_split(Numbers(10), [0.7, 0.3], generator=gf.Generator(seed=0))
    assert isinstance(train, Subset) and len(train) == 7 and len(val) == 3
    assert sorted([train[i] for i in range(7)] + [val[i] for i in range(3)]) == list(range(10))


# ---- default_convert and default_collate --------------------------------------------------
def test_default_convert_matches_torch():
    data = pytest.importorskip("torch.utils.data")
    Point = collections.namedtuple("Point", "x y")
    sample = {
        "a": numpy.arange(3, dtype=numpy.int32),
        "b": (numpy.float32(1.5), "text", 4),
        "c": [numpy.zeros((2, 2))],
        "p": Point(numpy.ones(1), 2.0),
        "s": numpy.array(["x", "y"]),
    }
    ours, theirs = default_convert(sample), data.default_convert(sample)
    assert isinstance(ours["a"], gf.Tensor) and ours["a"].dtype == gf.int32
    assert ours["a"].tolist() == theirs["a"].tolist()
    assert type(ours["b"]) is type(theirs["b"]) is list
    assert ours["b"][0].item() == theirs["b"][0].item() and ours["b"][1:] == ["text", 4]
    assert ours["c"][0].shape == tuple(theirs["c"][0].shape) and ours["c"][0].dtype == gf.float64
    assert isinstance(ours["p"], Point) and ours["p"].y == 2.0
    assert isinstance(ours["s"], numpy.ndarray)  # strings are left alone


def test_default_collate_structures_match_torch():
    data = pytest.importorskip("torch.utils.data")
    torch = pytest.importorskip("torch")
    Pair = collections.namedtuple("Pair", "image label")
    ours_in = [
        {"x": numpy.full(2, i, numpy.float32), "t": gf.tensor([i, i]), "p": Pair(i, "n")}
        for i in range(3)
    ]
    theirs_in = [
        {"x": numpy.full(2, i, numpy.float32), "t": torch.tensor([i, i]), "p": Pair(i, "n")}
        for i in range(3)
    ]
    ours, theirs = default_collate(ours_in), data.default_collate(theirs_in)
    for key in ("x", "t"):
        assert ours[key].tolist() == theirs[key].tolist()
        assert str(ours[key].dtype) == str(theirs[key].dtype).removeprefix("torch.")
    assert isinstance(ours["p"], Pair) and ours["p"].label == theirs["p"].label == ("n",) * 3
    assert default_collate(["a", "b"]) == data.default_collate(["a", "b"]) == ["a", "b"]
    assert ours["p"].image.tolist() == theirs["p"].image.tolist()


def test_default_collate_refuses_string_arrays():
    with pytest.raises(TypeError, match="found arrays of dtype <U1"):
        default_collate([numpy.array(["a"]), numpy.array(["b"])])
