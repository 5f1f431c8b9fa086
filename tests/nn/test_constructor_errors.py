"""Layer constructors refuse bad arguments with an error that names the layer and the argument,
of PyTorch's exception type where PyTorch raises one (issue 14 §4): ``nn.Conv2d(1, 1, 0)`` was a
ZeroDivisionError from the init, ``nn.Linear(-1, 2)`` a ValueError that named no layer. And
Embedding takes PyTorch's arguments (``scale_grad_by_freq`` was a TypeError)."""

import numpy
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.nn.module import check_size
from gradflow.ops.conv import conv1d, conv2d, conv_transpose2d

# (gradflow's call, the same call in torch, or None where torch accepts it, the type, the message)
# torch checks a conv's kernel size, stride, padding and dilation in its first forward: the twin
# builds the layer and runs it.
CASES = {
    "Conv2d-kernel-0": (
        lambda m: m.Conv2d(1, 1, 0),
        lambda t: t.nn.Conv2d(1, 1, 0)(t.ones(1, 1, 5, 5)),
        RuntimeError,
        "Conv2d: kernel_size must be positive (each >= 1), got 0",
    ),
    "Conv2d-kernel-negative": (
        lambda m: m.Conv2d(1, 1, (3, -1)),
        lambda t: t.nn.Conv2d(1, 1, (3, -1)),
        RuntimeError,
        "Conv2d: kernel_size must be positive (each >= 1), got (3, -1)",
    ),
    "Conv1d-kernel-0": (
        lambda m: m.Conv1d(1, 1, 0),
        lambda t: t.nn.Conv1d(1, 1, 0)(t.ones(1, 1, 5)),
        RuntimeError,
        "Conv1d: kernel_size must be positive (each >= 1), got 0",
    ),
    "ConvTranspose2d-kernel-0": (
        lambda m: m.ConvTranspose2d(1, 1, 0),
        lambda t: t.nn.ConvTranspose2d(1, 1, 0)(t.ones(1, 1, 5, 5)),
        RuntimeError,
        "ConvTranspose2d: kernel_size must be positive (each >= 1), got 0",
    ),
    "Conv2d-stride-0": (
        lambda m: m.Conv2d(1, 1, 3, stride=0),
        lambda t: t.nn.Conv2d(1, 1, 3, stride=0)(t.ones(1, 1, 5, 5)),
        RuntimeError,
        "Conv2d: stride must be positive (each >= 1), got 0",
    ),
    "Conv2d-padding-negative": (
        lambda m: m.Conv2d(1, 1, 3, padding=(1, -1)),
        lambda t: t.nn.Conv2d(1, 1, 3, padding=(1, -1))(t.ones(1, 1, 5, 5)),
        RuntimeError,
        "Conv2d: padding must be non-negative (each >= 0), got (1, -1)",
    ),
    "Conv2d-dilation-0": (
        lambda m: m.Conv2d(1, 1, 3, dilation=0),
        lambda t: t.nn.Conv2d(1, 1, 3, dilation=0)(t.ones(1, 1, 5, 5)),
        RuntimeError,
        "Conv2d: dilation must be positive (each >= 1), got 0",
    ),
    "ConvTranspose2d-output_padding-negative": (
        lambda m: m.ConvTranspose2d(1, 1, 3, output_padding=-1),
        lambda t: t.nn.ConvTranspose2d(1, 1, 3, output_padding=-1)(t.ones(1, 1, 5, 5)),
        RuntimeError,
        "ConvTranspose2d: output_padding must be non-negative (each >= 0), got -1",
    ),
    "ConvTranspose2d-output_padding-too-large": (
        lambda m: m.ConvTranspose2d(1, 1, 3, stride=2, output_padding=2),
        lambda t: t.nn.ConvTranspose2d(1, 1, 3, stride=2, output_padding=2)(t.ones(1, 1, 5, 5)),
        RuntimeError,
        "ConvTranspose2d: output_padding (2, 2) must be smaller than either stride (2, 2) or "
        "dilation (1, 1) (in each dim)",
    ),
    "Conv2d-kernel-float": (
        lambda m: m.Conv2d(1, 1, 2.5),
        lambda t: t.nn.Conv2d(1, 1, 2.5),
        TypeError,
        "Conv2d: kernel_size must be an int or a tuple of 2 ints, got 2.5",
    ),
    "Conv2d-in_channels-negative": (
        lambda m: m.Conv2d(-1, 1, 3),
        lambda t: t.nn.Conv2d(-1, 1, 3),
        RuntimeError,
        "Conv2d: in_channels must be a positive int, got -1 (a layer can't have a negative size)",
    ),
    "Conv2d-groups-negative": (
        lambda m: m.Conv2d(2, 2, 3, groups=-1),
        lambda t: t.nn.Conv2d(2, 2, 3, groups=-1),
        ValueError,
        "Conv2d: groups must be a positive int, got -1",
    ),
    "Conv2d-padding_mode-unknown": (
        lambda m: m.Conv2d(1, 1, 3, padding_mode="mirror"),
        lambda t: t.nn.Conv2d(1, 1, 3, padding_mode="mirror"),
        ValueError,
        "Conv2d: padding_mode must be one of ('zeros', 'reflect', 'replicate', 'circular'), got "
        "'mirror'",
    ),
    "Linear-in-negative": (
        lambda m: m.Linear(-1, 2),
        lambda t: t.nn.Linear(-1, 2),
        RuntimeError,
        "Linear: in_features must be a positive int, got -1 (a layer can't have a negative size)",
    ),
    "Linear-out-negative": (
        lambda m: m.Linear(2, -3),
        lambda t: t.nn.Linear(2, -3),
        RuntimeError,
        "Linear: out_features must be a positive int, got -3 (a layer can't have a negative size)",
    ),
    "Linear-in-float": (
        lambda m: m.Linear(2.5, 2),
        lambda t: t.nn.Linear(2.5, 2),
        TypeError,
        "Linear: in_features must be a positive int, got float 2.5",
    ),
    "Linear-in-0": (
        lambda m: m.Linear(0, 2),
        None,  # torch builds an empty layer
        ValueError,
        "Linear: in_features must be a positive int, got 0",
    ),
    "Linear-in-bool": (
        lambda m: m.Linear(True, 2),
        None,  # torch takes True as 1
        TypeError,
        "Linear: in_features must be a positive int, got bool True",
    ),
    "Embedding-num-negative": (
        lambda m: m.Embedding(-1, 2),
        lambda t: t.nn.Embedding(-1, 2),
        RuntimeError,
        "Embedding: num_embeddings must be a positive int, got -1 (a layer can't have a "
        "negative size)",
    ),
    "Embedding-dim-float": (
        lambda m: m.Embedding(4, 2.0),
        lambda t: t.nn.Embedding(4, 2.0),
        TypeError,
        "Embedding: embedding_dim must be a positive int, got float 2.0",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_constructor_errors_name_the_layer_and_argument(case):
    ours, _, error, message = CASES[case]
    with pytest.raises(error) as info:
        ours(nn)
    assert str(info.value) == message


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
@pytest.mark.parametrize("case", [c for c, v in CASES.items() if v[1] is not None])
def test_the_exception_type_is_pytorchs(case):
    torch = pytest.importorskip("torch")
    _, theirs, error, _ = CASES[case]
    with pytest.raises(Exception) as info:  # the type is what is compared
        theirs(torch)
    assert isinstance(info.value, error), (type(info.value), info.value)


def test_valid_arguments_still_build_the_layers():
    assert nn.Conv2d(2, 4, (1, 3), stride=(2, 1), padding=0, dilation=(1, 2)).weight.shape == (
        4, 2, 1, 3,
    )  # fmt: skip
    assert nn.Conv2d(numpy.int64(2), 2, numpy.int64(3)).kernel_size == (3, 3)
    assert nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=1).output_padding == (1, 1)
    assert nn.ConvTranspose2d(2, 2, 3, dilation=2, output_padding=1).output_padding == (1, 1)
    assert nn.Conv1d(2, 2, [3], padding=[1]).padding == (1,)
    assert nn.Linear(numpy.int64(3), 2).in_features == 3
    assert type(nn.Linear(numpy.int64(3), 2).in_features) is int
    assert check_size("Layer", "size", 1) == 1


def test_conv_functionals_refuse_an_empty_kernel_or_no_output_channels():
    """conv2d with a (1, 1, 0, 0) weight returned a (1, 1, 6, 6) output from a 5x5 input; one
    with no output channels leaked NumPy's reshape error. PyTorch raises RuntimeError."""
    x = gf.ones(1, 1, 5, 5)
    cases = [
        (lambda: conv2d(x, gf.ones(1, 1, 0, 0)), "conv2d: weight of shape (1, 1, 0, 0) has an "
         "empty kernel (kernel size (0, 0)); each kernel dim must be >= 1"),
        (lambda: conv1d(gf.ones(1, 1, 5), gf.ones(1, 1, 0)), "conv1d: weight of shape (1, 1, 0) "
         "has an empty kernel (kernel size (0,)); each kernel dim must be >= 1"),
        (lambda: conv_transpose2d(x, gf.ones(1, 1, 0, 2)), "conv_transpose2d: weight of shape "
         "(1, 1, 0, 2) has an empty kernel (kernel size (0, 2)); each kernel dim must be >= 1"),
        (lambda: conv2d(x, gf.ones(0, 1, 3, 3)), "conv2d: weight of shape (0, 1, 3, 3) has no "
         "output channels (dim 0 is 0); it needs at least one"),
        (lambda: conv_transpose2d(x, gf.ones(1, 0, 3, 3)), "conv_transpose2d: weight of shape "
         "(1, 0, 3, 3) has no output channels (dim 1 is 0); it needs at least one"),
    ]  # fmt: skip
    for call, message in cases:
        with pytest.raises(RuntimeError) as info:
            call()
        assert str(info.value) == message


# ---- Embedding: PyTorch's signature ----------------------------------------------------------


def test_embedding_takes_pytorchs_arguments_in_pytorchs_order():
    import inspect

    names = list(inspect.signature(nn.Embedding).parameters)
    assert names == [
        "num_embeddings", "embedding_dim", "padding_idx", "max_norm", "norm_type",
        "scale_grad_by_freq", "sparse", "_weight", "_freeze", "device", "dtype",
    ]  # fmt: skip


def test_embedding_scale_grad_by_freq_matches_torch():
    torch = pytest.importorskip("torch")
    layer = nn.Embedding(6, 3, padding_idx=1, scale_grad_by_freq=True)
    twin = torch.nn.Embedding(6, 3, padding_idx=1, scale_grad_by_freq=True)
    assert repr(layer) == repr(twin) == "Embedding(6, 3, padding_idx=1, scale_grad_by_freq=True)"
    twin.weight.data = torch.from_numpy(layer.weight.detach().numpy().copy())
    indices = numpy.array([[0, 2, 2], [5, 2, 1], [0, 4, 2]])
    g = numpy.random.default_rng(0).standard_normal((3, 3, 3)).astype(numpy.float32)
    out = layer(gf.tensor(indices))
    out.backward(gf.tensor(g))
    theirs = twin(torch.from_numpy(indices))
    theirs.backward(torch.from_numpy(g))
    numpy.testing.assert_allclose(out.detach().numpy(), theirs.detach().numpy())
    numpy.testing.assert_allclose(layer.weight.grad.numpy(), twin.weight.grad.numpy(), rtol=1e-6)
    plain = nn.Embedding(6, 3, _weight=gf.tensor(layer.weight.detach().numpy()))
    plain(gf.tensor(indices)).backward(gf.tensor(g))
    # row 2 occurs four times: its gradient is a quarter of the unscaled one
    numpy.testing.assert_allclose(layer.weight.grad.numpy()[2], plain.weight.grad.numpy()[2] / 4)


def test_embedding_refuses_what_it_does_not_implement_by_name():
    with pytest.raises(NotImplementedError, match=r"^Embedding: sparse=True is not supported"):
        nn.Embedding(4, 2, sparse=True)
    with pytest.raises(TypeError, match=r"^Embedding: scale_grad_by_freq must be a bool, got"):
        nn.Embedding(4, 2, scale_grad_by_freq="yes")
    with pytest.raises(TypeError, match=r"^Embedding: padding_idx must be an int or None, got"):
        nn.Embedding(4, 2, padding_idx=1.5)
    with pytest.raises(ValueError, match=r"^Embedding: _weight has shape \(2, 2\), but"):
        nn.Embedding(4, 2, _weight=gf.zeros(2, 2))


def test_embedding_from_pretrained_shares_the_table_and_freezes_it():
    table = gf.tensor(numpy.arange(8.0, dtype=numpy.float32).reshape(4, 2))
    layer = nn.Embedding.from_pretrained(table)
    assert layer.weight.array is table.array and not layer.weight.requires_grad
    numpy.testing.assert_array_equal(layer(gf.tensor([3, 0])).numpy(), [[6, 7], [0, 1]])
    trainable = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=0)
    assert trainable.weight.requires_grad and trainable.padding_idx == 0
    numpy.testing.assert_array_equal(trainable.weight.detach().numpy()[0], [0, 1])  # as torch
    assert not nn.Embedding(3, 2, _freeze=True).weight.requires_grad
    with pytest.raises(ValueError, match=r"embeddings must be 2-D .* got shape \(4,\)"):
        nn.Embedding.from_pretrained(gf.zeros(4))
