"""conv's im2col workspace is bounded (issue 14 §4): a conv whose columns exceed the budget
(gradflow.ops.conv.set_workspace_budget, 256 MiB by default) runs in tiles, groups of samples
or bands of output rows, forward and backward, on the NumPy route and the kernel route, with
the results of the one-piece computation; and a MemoryError names the op, the shapes and the
bytes. (A 7x7 conv of (8, 64, 128, 128) float32 allocated 1.6 GB of columns at once, a batch
of 128 asked for 24.5 GiB.) Memory is checked with tracemalloc and tiny budgets, never time."""

import tracemalloc

import numpy
import pytest

import gradflow as gf
import gradflow.ops.conv as conv_module
from gradflow.ops.conv import (
    DEFAULT_WORKSPACE_BUDGET,
    conv1d,
    conv2d,
    conv_transpose2d,
    get_workspace_budget,
    set_workspace_budget,
)
from gradflow.testing.emulation import route_kernels, unavailable_reason

needs_emulation = pytest.mark.skipif(
    unavailable_reason() is not None, reason=str(unavailable_reason())
)
OPS = {"conv2d": conv2d, "conv1d": conv1d, "conv_transpose2d": conv_transpose2d}

# (op, input shape, weight shape, keyword arguments): strides, dilation, groups, "same",
# padding so large that whole bands of output rows read only padding, a stride longer than
# the kernel (input rows no window reads), 1-D, unbatched, transposed.
CASES = [
    ("conv2d", (3, 3, 9, 7), (4, 3, 3, 3), dict(padding=1)),
    ("conv2d", (2, 4, 11, 6), (6, 2, 3, 2), dict(stride=(2, 1), dilation=(2, 1), groups=2)),
    ("conv2d", (2, 2, 5, 4), (3, 2, 2, 3), dict(padding=(4, 1))),
    ("conv2d", (2, 3, 13, 8), (4, 3, 2, 2), dict(stride=3)),
    ("conv2d", (3, 6, 7, 7), (3, 6, 3, 3), dict(padding="same")),  # dX as a conv of dY
    ("conv2d", (3, 8, 8), (2, 3, 3, 3), dict(padding=1)),  # unbatched
    ("conv1d", (3, 4, 17), (5, 4, 3), dict(stride=2, padding=2)),
    ("conv_transpose2d", (2, 3, 5, 4), (3, 2, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ("conv_transpose2d", (2, 4, 6, 5), (4, 2, 3, 2), dict(padding=1, groups=2)),
]
IDS = [f"{name}-{i}" for i, (name, *_) in enumerate(CASES)]


@pytest.fixture(autouse=True)
def _restore_budget():
    previous = get_workspace_budget()
    yield
    set_workspace_budget(previous)


def _arrays(x_shape, w_shape, out_channels, seed=0):
    rng = numpy.random.default_rng(seed)
    return [rng.standard_normal(s) for s in (x_shape, w_shape, (out_channels,))]


def _run(name, arrays, kwargs, device="cpu", routed=False, dtype=numpy.float64):
    """Output and gradients (input, weight, bias) of one forward and backward, on the host."""
    tensors = [gf.tensor(a.astype(dtype), device=device, requires_grad=True) for a in arrays]
    with route_kernels() if routed else _nothing():
        y = OPS[name](*tensors, **kwargs)
        g = numpy.random.default_rng(1).standard_normal(y.shape).astype(dtype)
        y.backward(gf.tensor(g, device=device))
    return [t.detach().cpu().numpy() for t in (y, *(t.grad for t in tensors))]


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _reference_and_budgets(monkeypatch, run):
    """run()'s results in one piece, and two budgets: one that holds one output row of every
    phase's conv (forward, weight and input gradients) and one that holds one sample's."""
    calls = []
    tiles = conv_module._tiles
    monkeypatch.setattr(conv_module, "_tiles", lambda *args: calls.append(args) or tiles(*args))
    reference = run()
    monkeypatch.setattr(conv_module, "_tiles", tiles)
    rows = [conv_module._row_bytes(window, x_shape[1], numpy.dtype(dtype).itemsize)
            for _, x_shape, window, dtype in calls]  # fmt: skip
    samples = [row * window.out[0] for row, (_, _, window, _) in zip(rows, calls)]
    return reference, max(rows), max(samples)


def _spy_tiles(monkeypatch):
    """Records what each conv phase's plan was: None (one piece) or its tiles."""
    plans = []
    tiles = conv_module._tiles

    def spy(*args):
        plans.append(tiles(*args))
        return plans[-1]

    monkeypatch.setattr(conv_module, "_tiles", spy)
    return plans


@pytest.mark.parametrize("mode", ["rows", "samples"])
@pytest.mark.parametrize("name,x_shape,w_shape,kwargs", CASES, ids=IDS)
def test_tiles_give_the_one_piece_results(device, monkeypatch, mode, name, x_shape, w_shape,
                                          kwargs):  # fmt: skip
    out_c = w_shape[1] * kwargs.get("groups", 1) if name == "conv_transpose2d" else w_shape[0]
    arrays = _arrays(x_shape, w_shape, out_c)
    reference, rows, samples = _reference_and_budgets(
        monkeypatch, lambda: _run(name, arrays, kwargs, device)
    )
    set_workspace_budget(rows if mode == "rows" else samples)
    plans = _spy_tiles(monkeypatch)
    tiled = _run(name, arrays, kwargs, device)
    _check_tiling(plans, mode, x_shape, w_shape)
    for ours, ref in zip(tiled, reference):
        assert ours.shape == ref.shape
        numpy.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def _check_tiling(plans, mode, x_shape, w_shape):
    """Some phase ran in tiles of the kind the mode asks for (bands of rows where a sample has
    more than one, groups of samples where the batch has more than one)."""
    dims = len(w_shape) - 2
    batch = x_shape[0] if len(x_shape) == dims + 2 else 1
    tiles = [t for p in plans if p is not None for t in p]
    if mode == "rows" and dims == 2:
        assert any(not t.whole_rows for t in tiles), plans
    elif batch > 1:
        assert any(t.whole_rows for t in tiles), plans


@needs_emulation
@pytest.mark.parametrize("mode", ["rows", "samples"])
@pytest.mark.parametrize("name,x_shape,w_shape,kwargs", CASES, ids=IDS)
def test_the_kernel_route_tiles_the_same_way(monkeypatch, mode, name, x_shape, w_shape, kwargs):
    """im2col_fwd and col2im (CPU emulation of kernels/conv.cu) on tiles: as in one piece."""
    out_c = w_shape[1] * kwargs.get("groups", 1) if name == "conv_transpose2d" else w_shape[0]
    arrays = _arrays(x_shape, w_shape, out_c)
    reference, rows, samples = _reference_and_budgets(
        monkeypatch, lambda: _run(name, arrays, kwargs, routed=True)
    )
    set_workspace_budget(rows if mode == "rows" else samples)
    plans = _spy_tiles(monkeypatch)
    tiled = _run(name, arrays, kwargs, routed=True)
    _check_tiling(plans, mode, x_shape, w_shape)
    for ours, ref in zip(tiled, reference):
        numpy.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,x_shape,w_shape,kwargs", [CASES[i] for i in (1, 2, 4, 7)])
def test_tiled_convs_match_torch(monkeypatch, name, x_shape, w_shape, kwargs):
    torch = pytest.importorskip("torch")
    out_c = w_shape[1] * kwargs.get("groups", 1) if name == "conv_transpose2d" else w_shape[0]
    arrays = _arrays(x_shape, w_shape, out_c)
    _, rows, _ = _reference_and_budgets(monkeypatch, lambda: _run(name, arrays, kwargs))
    set_workspace_budget(rows)
    ours = _run(name, arrays, kwargs)
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = getattr(torch.nn.functional, name)(*tensors, **kwargs)
    y.backward(torch.from_numpy(numpy.random.default_rng(1).standard_normal(tuple(y.shape))))
    theirs = [y.detach().numpy(), *(t.grad.numpy() for t in tensors)]
    for a, b in zip(ours, theirs):
        numpy.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_float32_tiles_stay_within_rounding_of_one_piece():
    """The weight gradient is a sum over tiles (in tile order), so float32 may differ from the
    one-piece GEMM in the last bits; the output and input gradient are the same products."""
    arrays = _arrays((4, 8, 12, 12), (6, 8, 3, 3), 6)
    reference = _run("conv2d", arrays, dict(padding=1), dtype=numpy.float32)
    set_workspace_budget(8 * 9 * 12 * 12 * 4)  # one sample's columns
    tiled = _run("conv2d", arrays, dict(padding=1), dtype=numpy.float32)
    for ours, ref in zip(tiled, reference):
        assert ours.dtype == numpy.float32
        numpy.testing.assert_allclose(ours, ref, rtol=2e-6, atol=2e-6 * numpy.abs(ref).max())


def _peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_is_the_budget_plus_a_few_inputs_and_outputs():
    """A 7x7 conv's columns are 49 times its input: in one piece the forward and backward peak
    above them, in tiles at about the budget plus a few copies of the input and output."""
    rng = numpy.random.default_rng(2)
    x = gf.tensor(rng.standard_normal((4, 16, 32, 32), dtype=numpy.float32), requires_grad=True)
    w = gf.tensor(rng.standard_normal((16, 16, 7, 7), dtype=numpy.float32), requires_grad=True)
    columns = 16 * 49 * 32 * 32 * 4 * 4  # 12.8 MB
    in_and_out = 2 * x.array.nbytes  # the output has the input's shape

    def step():
        y = conv2d(x, w, padding=3)
        y.backward(gf.ones(*y.shape))

    one_piece = _peak_bytes(step)
    budget = 512 * 1024  # a sample's columns are 3.2 MB: bands of 5 output rows
    set_workspace_budget(budget)
    tiled = _peak_bytes(step)
    assert one_piece > columns
    assert tiled < budget + 6 * in_and_out < columns / 2, (tiled, one_piece)


def test_a_row_over_the_budget_is_refused_naming_the_op_and_the_budget():
    x, w = gf.ones(1, 4, 6, 6), gf.ones(2, 4, 3, 3)
    set_workspace_budget(600)  # a row's columns are 4*3*3 values for 4 pixels: 576 bytes
    assert conv2d(x, w).shape == (1, 2, 4, 4)  # in four bands of one row
    set_workspace_budget(500)
    with pytest.raises(MemoryError) as info:
        conv2d(x, w)
    assert str(info.value) == (
        "conv2d: its smallest im2col tile, one row of 4 window positions over 4 channels with "
        "a 3x3 kernel (float32), needs 576 bytes, over the workspace budget of 500 bytes; "
        "raise the budget with gradflow.ops.conv.set_workspace_budget(nbytes)"
    )


def test_out_of_memory_errors_name_the_op_the_shapes_and_the_bytes(monkeypatch):
    """A MemoryError from inside a conv (NumPy's names only an array's shape) is re-raised
    naming the op and phase, the input, weight and output shapes, the workspace bytes and the
    budget; the original is its cause."""
    numpy_text = (
        "Unable to allocate 24.5 GiB for an array with shape (2097152, 3136) and data type float32"
    )

    def fail(*args, **kwargs):
        raise MemoryError(numpy_text)

    x = gf.ones(2, 3, 8, 8, requires_grad=True)
    w = gf.ones(4, 3, 3, 3, requires_grad=True)
    monkeypatch.setattr(conv_module, "_forward_gemm", fail)
    with pytest.raises(MemoryError) as info:
        conv2d(x, w, padding=1)
    workspace = 2 * 8 * 8 * 3 * 9 * 4
    assert str(info.value) == (
        "conv2d forward: out of memory with input of shape (2, 3, 8, 8), weight of shape "
        "(4, 3, 3, 3) and output of shape (2, 4, 8, 8) (float32); its im2col workspace is "
        f"{workspace} bytes (0.00 GiB) for the whole batch, allocated at once (see "
        f"gradflow.ops.conv.set_workspace_budget) [MemoryError: {numpy_text}]. Use a smaller "
        "batch or a lower workspace budget"
    )
    set_workspace_budget(workspace // 2)
    with pytest.raises(MemoryError, match=rf"allocated in tiles of at most the budget, "
                                          rf"{workspace // 2} bytes \(see"):  # fmt: skip
        conv2d(x, w, padding=1)
    assert str(info.value.__cause__) == numpy_text
    monkeypatch.undo()

    y = conv1d(gf.ones(2, 3, 8, requires_grad=True), gf.ones(4, 3, 3, requires_grad=True))
    monkeypatch.setattr(conv_module, "_weight_grad_gemm", fail)
    with pytest.raises(MemoryError, match=r"^conv1d backward: out of memory with input of shape "
                                          r"\(2, 3, 8\), weight of shape \(4, 3, 3\) and output "
                                          r"of shape \(2, 4, 6\) \(float32\)"):  # fmt: skip
        y.sum().backward()
    monkeypatch.undo()

    monkeypatch.setattr(conv_module, "_input_grad_gemm", fail)
    message = (
        r"^conv_transpose2d forward: out of memory with input of shape \(1, 2, 3, 3\), weight "
        r"of shape \(2, 3, 2, 2\) and output of shape \(1, 3, 6, 6\)"
    )
    with pytest.raises(MemoryError, match=message):
        conv_transpose2d(gf.ones(1, 2, 3, 3), gf.ones(2, 3, 2, 2), stride=2)


def test_the_budget_setting():
    assert DEFAULT_WORKSPACE_BUDGET == 256 * 2**20 == get_workspace_budget()
    assert set_workspace_budget(1 << 20) == DEFAULT_WORKSPACE_BUDGET
    assert get_workspace_budget() == 1 << 20
    assert set_workspace_budget(None) == 1 << 20
    assert get_workspace_budget() == DEFAULT_WORKSPACE_BUDGET
    for bad in (0, -1, 1.5, True, "1M"):
        with pytest.raises(ValueError, match=r"^set_workspace_budget: expected a positive number"):
            set_workspace_budget(bad)


def test_an_empty_batch_needs_no_workspace():
    set_workspace_budget(1)
    x, w = gf.zeros(0, 2, 4, 4, requires_grad=True), gf.ones(3, 2, 3, 3, requires_grad=True)
    y = conv2d(x, w, padding=1)
    y.sum().backward()
    assert y.shape == (0, 3, 4, 4) and x.grad.shape == (0, 2, 4, 4)


def test_the_cnn_convs_stay_in_one_piece(monkeypatch):
    """gradflow train cnn's convolutions (28x28 MNIST, batches of 64, evaluation in 512s) are
    far below the default budget: they keep the one-piece path, and its speed."""
    from gradflow import models

    plans = _spy_tiles(monkeypatch)
    model = models.cnn(28)
    images = gf.tensor(
        numpy.random.default_rng(3).standard_normal((64, 1, 28, 28)), dtype=gf.float32
    )
    model(images).sum().backward()
    assert len(plans) >= 3 and all(p is None for p in plans)
    window = conv_module.Window((3, 3), (1, 1), (1, 1), (1, 1), (14, 14))
    assert conv_module._tiles("conv2d", (512, 32, 14, 14), window, numpy.float32) is None
