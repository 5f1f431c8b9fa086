"""Issue 14: default_collate takes a batch's dtype from every sample, not the first (as
PyTorch's default_collate, which builds Python numbers with torch.tensor(batch) and stacks
tensors with promotion), and names the sample whose shape differs."""

import numpy
import pytest

import gradflow as gf
from gradflow.data import DataLoader, Dataset, default_collate


class ListDataset(Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


# Batches of Python numbers whose first sample's type is not the batch's (torch.tensor's rule).
MIXED_NUMBERS = {
    "int_then_floats": [3, 2.7, 1.2],
    "bool_then_ints": [True, 2, 0],
    "int_then_bool": [1, True],
    "bool_then_float": [True, 0.5],
    "int_then_numpy_int": [1, numpy.int64(2)],
}


@pytest.mark.parametrize("batch", MIXED_NUMBERS.values(), ids=MIXED_NUMBERS.keys())
def test_python_numbers_promote_across_the_batch_like_torch(batch):
    torch_collate = pytest.importorskip("torch.utils.data").default_collate

    ours, theirs = default_collate(batch), torch_collate(batch)
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    assert ours.tolist() == pytest.approx(theirs.tolist())


def test_the_issues_targets():
    floats = default_collate([3, 2.7, 1.2])
    assert floats.dtype == gf.float32 and floats.tolist() == pytest.approx([3, 2.7, 1.2])
    ints = default_collate([True, 2, 0])
    assert ints.dtype == gf.int64 and ints.tolist() == [1, 2, 0]
    # and through a DataLoader: the targets of (x, y) samples
    ds = ListDataset([(numpy.zeros(2, numpy.float32), y) for y in (3, 2.7, 1.2)])
    _, yb = next(iter(DataLoader(ds, batch_size=3)))
    assert yb.dtype == gf.float32 and yb.tolist() == pytest.approx([3, 2.7, 1.2])


def test_floats_first_keep_the_default_float_dtype():
    """PyTorch makes a batch that starts with a Python float float64; gradflow keeps its
    documented rule (Python floats -> the default float dtype), order-independent."""
    assert default_collate([2.5, 1]).dtype == gf.float32
    assert default_collate([1, 2.5]).dtype == gf.float32
    gf.set_default_dtype(gf.float64)
    try:
        assert default_collate([1, 2.5]).dtype == gf.float64
    finally:
        gf.set_default_dtype(gf.float32)


STACKED = {
    "numpy_int32_float64": [numpy.array([1, 2], numpy.int32), numpy.array([1.5, 2.0])],
    "numpy_int64_float32": [numpy.array([1, 2]), numpy.array([1.5, 2.0], numpy.float32)],
    "numpy_scalars": [numpy.float32(1), numpy.float64(2)],
    "numpy_bool_uint8": [numpy.array([True, False]), numpy.array([3, 4], numpy.uint8)],
}


@pytest.mark.parametrize("batch", STACKED.values(), ids=STACKED.keys())
def test_arrays_of_several_dtypes_promote_like_torch(batch):
    torch_collate = pytest.importorskip("torch.utils.data").default_collate

    ours, theirs = default_collate(batch), torch_collate(batch)
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    numpy.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_tensors_of_several_dtypes_promote_like_torch(device):
    torch = pytest.importorskip("torch")
    ours = default_collate(
        [gf.zeros(2, device=device), gf.tensor([1, 2], device=device)]  # float32, int64
    )
    theirs = torch.stack([torch.zeros(2), torch.tensor([1, 2])])
    assert ours.dtype == gf.float32 and str(theirs.dtype) == "torch.float32"
    assert ours.device == device and ours.tolist() == theirs.tolist()


@pytest.mark.parametrize(
    "samples, message",
    [
        ([numpy.zeros(2), numpy.zeros(2), numpy.zeros(3)],
         r"sample 2 has shape \(3,\) but sample 0 has shape \(2,\)"),
        ([gf.zeros(2, 2), gf.zeros(2, 1)], r"sample 1 has shape \(2, 1\) but sample 0 has shape "
         r"\(2, 2\)"),
        ([{"x": numpy.zeros(2)}, {"x": numpy.zeros((2, 1))}], r"field 'x' of sample 1 has shape "
         r"\(2, 1\) but field 'x' of sample 0 has shape \(2,\)"),
        ([(gf.zeros(1), 0), (gf.zeros(()), 1)], r"field 0 of sample 1 has shape \(\) but field 0 "
         r"of sample 0 has shape \(1,\)"),
    ],
)  # fmt: skip
def test_samples_of_different_shapes_name_the_index_and_both_shapes(samples, message):
    with pytest.raises(ValueError, match="default_collate: " + message):
        default_collate(samples)


def test_shape_error_through_a_dataloader():
    ds = ListDataset([numpy.zeros(3, numpy.float32)] * 5 + [numpy.zeros(4, numpy.float32)])
    with pytest.raises(ValueError, match=r"sample 1 has shape \(4,\) but sample 0 has shape"):
        list(DataLoader(ds, batch_size=4))


def test_torch_also_refuses_different_shapes():
    torch_collate = pytest.importorskip("torch.utils.data").default_collate

    with pytest.raises(RuntimeError, match=r"\[2\] at entry 0 and \[3\] at entry 1"):
        torch_collate([numpy.zeros(2), numpy.zeros(3)])


def test_default_collate_takes_torch_argument_name():
    out = default_collate(batch=[numpy.zeros(2), numpy.ones(2)])
    assert out.shape == (2, 2)
