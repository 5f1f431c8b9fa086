"""gradflow/bench/op_cases.py: the cases are well formed, scale down, run without torch, and a
layer case's torch module starts from gradflow's weights (checked where torch is installed)."""

import dataclasses
import sys

import numpy
import pytest

import gradflow
from gradflow.bench.op_cases import (
    CASES,
    CASES_BY_NAME,
    SMOKE_SCALE,
    check_case,
    peak_memory_case,
    prepare,
    size,
    time_case,
)

ISSUE_CASES = [
    "gelu",
    "leaky_relu",
    "elu",
    "softplus",
    "silu",
    "sigmoid",
    "relu",
    "abs",
    "pow_scalar",
    "where",
    "prod",
    "cumsum",
    "sum",
    "mean",
    "max",
    "amax",
    "var",
    "layer_norm",
    "softmax",
    "log_softmax",
    "group_norm",
    "batch_norm",
    "cross_entropy",
    "mse_loss",
    "gather",
    "index_select",
    "getitem_int",
    "getitem_two",
    "embedding",
    "matmul",
    "bmm",
    "linear",
    "max_pool2d",
    "avg_pool2d",
    "conv2d",
    "conv2d_depthwise",
    "conv2d_groups4",
    "conv1d",
    "conv_transpose2d",
    "cnn_block",
    "mlp_block",
    "transformer_layer",
    "lstm",
    "lstm_cell_loop",
    "gru",
    "rnn",
    "train_mlp",
    "train_cnn",
    "train_lstm",
    "train_gru",
    "train_transformer",
]


def test_every_case_the_issue_names_is_there_once():
    assert sorted(case.name for case in CASES) == sorted(ISSUE_CASES)
    assert len(CASES_BY_NAME) == len(CASES)


def test_importing_the_cases_does_not_import_torch():
    code = "import sys, gradflow.bench.op_cases; assert 'torch' not in sys.modules"
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True)


def test_size_keeps_multiples():
    assert size(1024, 1.0) == 1024
    assert size(64, SMOKE_SCALE, 8) == 8
    assert size(256, 0.1, 128) == 128 and size(256, 0.9, 128) == 256
    assert size(16, SMOKE_SCALE) == 1


def test_pointwise_cases_have_a_million_elements_at_full_size():
    for case in CASES:
        if case.family == "pointwise":
            (x,) = case.make(numpy.random.default_rng(0), 1.0)
            assert x.shape == (1 << 20,) and x.dtype == numpy.float32, case.name


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_case_steps_on_gradflow_alone(case, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    (side,) = prepare(case, None, SMOKE_SCALE)
    side.step(case.fn)
    grads = [t.grad for t in side.inputs if t.requires_grad]
    if side.module is not None:
        grads += [p.grad for p in side.module.parameters()]
    assert grads and all(g is not None for g in grads)
    seconds, torch_seconds = time_case(case, None, repeat=2, scale=SMOKE_SCALE)
    assert seconds >= 0 and torch_seconds is None


def test_torch_module_starts_from_gradflow_weights():
    torch = pytest.importorskip("torch")
    ours, theirs = prepare(CASES_BY_NAME["lstm"], torch, SMOKE_SCALE)
    for name, value in ours.module.state_dict().items():
        numpy.testing.assert_array_equal(value.numpy(), theirs.module.state_dict()[name].numpy())
    gradflow.manual_seed(0)
    expected = gradflow.nn.LSTM(128, 256, batch_first=True).weight_ih_l0.detach().numpy()
    numpy.testing.assert_array_equal(ours.module.weight_ih_l0.detach().numpy(), expected)


def test_train_cases_step_the_optimizer_on_data_inputs():
    case = CASES_BY_NAME["train_mlp"]
    (side,) = prepare(case, None, SMOKE_SCALE)
    before = [p.detach().numpy().copy() for p in side.module.parameters()]
    side.step(case.fn)
    assert not any(t.requires_grad for t in side.inputs)
    after = [p.detach().numpy() for p in side.module.parameters()]
    assert all(not numpy.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_check_floors_a_gradient_that_is_zero_up_to_rounding():
    torch = pytest.importorskip("torch")
    errors = check_case(CASES_BY_NAME["train_cnn"], torch, SMOKE_SCALE)
    assert "0.bias" in errors and max(errors.values()) < 1e-4


def test_check_finds_a_wrong_side():
    torch = pytest.importorskip("torch")
    case = CASES_BY_NAME["relu"]
    assert max(check_case(case, torch, SMOKE_SCALE).values()) == 0.0

    def wrong(lib, x):
        return lib.relu(x) * (1.5 if lib is gradflow else 1.0)

    bad = type(case)(case.name, case.family, case.shape, case.make, wrong)
    errors = check_case(bad, torch, SMOKE_SCALE)
    assert errors["output"] == pytest.approx(0.5) and errors["input0"] == pytest.approx(0.5)


def test_peak_memory_of_a_fresh_step_without_torch():
    ours, theirs = peak_memory_case(CASES_BY_NAME["relu"], None, 1.0)
    assert theirs is None
    assert ours >= 4 << 20  # at least the output, 2^20 float32 values


def test_a_max_routed_case_compares_gradients_in_float64(monkeypatch):
    """A near-tie in a max window routes float32 gradients to different elements on the two
    sides (cnn_block at full scale); check_case compares such a case's gradients in a float64
    run, and still finds a wrong one."""
    torch = pytest.importorskip("torch")
    from gradflow.bench import op_cases

    case = CASES_BY_NAME["cnn_block"]
    assert case.argmax and CASES_BY_NAME["max_pool2d"].argmax and not CASES_BY_NAME["relu"].argmax
    dtypes = []
    real = op_cases.prepare

    def spy(case, torch, scale=1.0, dtype="float32", backward="dense"):
        dtypes.append(dtype)
        return real(case, torch, scale, dtype, backward)

    monkeypatch.setattr(op_cases, "prepare", spy)
    errors = check_case(case, torch, SMOKE_SCALE)
    assert dtypes == ["float32", "float64"] and max(errors.values()) < 1e-4
    wrong = dataclasses.replace(case, fn=lambda lib, m, x: m(x) * (1 + (lib is gradflow)))
    assert check_case(wrong, torch, SMOKE_SCALE)["0.weight"] > 0.1


def test_a_step_backs_off_a_fixed_dense_gradient_the_same_on_both_sides():
    """The timed step's backward starts from one random gradient of the output's shape (not a
    sum's broadcast of ones), the same array on both sides; a loss from 1; backward="sum"
    keeps the issue's .sum().backward()."""
    from gradflow.bench import op_cases

    torch = pytest.importorskip("torch")
    case = op_cases.CASES_BY_NAME["layer_norm"]
    ours, theirs = op_cases.prepare(case, torch, SMOKE_SCALE)
    assert ours.grad.shape == ours.fn_output(case.fn).shape
    numpy.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())
    assert float(ours.grad.std()) > 0.5  # random, not ones
    ours.step(case.fn)
    dense = ours.inputs[0].grad.numpy().copy()
    assert numpy.abs(dense).max() > 1e-3  # a layer_norm's gradient of a sum is ~0
    summed = op_cases.prepare(case, None, SMOKE_SCALE, backward="sum")[0]
    assert summed.grad is None
    summed.step(case.fn)
    assert numpy.abs(summed.inputs[0].grad.numpy()).max() < 1e-3
    loss = op_cases.prepare(op_cases.CASES_BY_NAME["cross_entropy"], None, SMOKE_SCALE)[0]
    assert loss.grad is None  # a scalar output backs off 1
    with pytest.raises(ValueError, match="backward must be one of"):
        op_cases.prepare(case, None, SMOKE_SCALE, backward="ones")
