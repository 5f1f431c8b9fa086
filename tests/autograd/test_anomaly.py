"""Anomaly mode: NaN/Inf in forward or backward raises naming the op and where it was created."""

import os
import threading
from pathlib import Path

import numpy
import pytest

import gradflow as gf
from gradflow.autograd import (
    AnomalyError,
    detect_anomaly,
    is_anomaly_enabled,
    set_detect_anomaly,
)

# log(-1), log(0) and 1 / (2 * sqrt(0)) are the point of these tests.
pytestmark = [
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning"),
]


@pytest.fixture(autouse=True)
def _anomaly_off_after():
    """A failing test must not leave the global flag on for the rest of the suite."""
    yield
    set_detect_anomaly(False)


class NanGrad(gf.Function):
    """a * b forward; backward returns NaN for b (and a correct gradient for a)."""

    def forward(self, a, b):
        return a * b

    def backward(self, g):
        return g, g * numpy.nan


class Boom(gf.Function):
    def forward(self, x):
        return x + 1

    def backward(self, g):
        raise ValueError("boom in backward")


def _frame_of(error, test_name):
    """The recorded frame of `test_name` (the test body that created the op), or None."""
    return next((f for f in error.created_at if f.name == test_name), None)


@pytest.mark.parametrize(("value", "kind"), [(-1.0, "nan"), (0.0, "inf")])
def test_forward_non_finite_output_names_the_op_and_the_line(device, value, kind):
    x = gf.tensor([value, 2.0], dtype=gf.float64, device=device, requires_grad=True)
    with detect_anomaly(), pytest.raises(AnomalyError) as info:
        x.log()  # the op under test
    error = info.value
    assert isinstance(error, RuntimeError)
    assert (error.op, error.phase, error.index) == ("Log", "forward", 0)
    message = str(error)
    assert f"Function 'Log' returned {kind} values in its output 0" in message
    assert "(shape (2,), dtype float64) during forward" in message
    assert __file__ in message and "x.log()  # the op under test" in message


def test_forward_check_applies_under_no_grad_and_skips_integer_outputs():
    x = gf.tensor([-1.0, 3.0])
    with detect_anomaly():
        assert int(x.argmax().item()) == 1  # integer output: not checked
        with gf.no_grad(), pytest.raises(AnomalyError, match="'Log' returned nan"):
            x.log()


def test_backward_inf_names_the_node_and_the_forward_line(device):
    x = gf.tensor([0.0, 4.0], dtype=gf.float64, device=device, requires_grad=True)
    with detect_anomaly():
        y = x.sqrt()  # created here; d sqrt(x)/dx at 0 is inf
        loss = y.sum()
        with pytest.raises(AnomalyError) as info:
            loss.backward()
    error = info.value
    assert (error.op, error.phase, error.index) == ("SqrtBackward", "backward", 0)
    message = str(error)
    assert "Function 'SqrtBackward' returned inf values in its gradient for input 0" in message
    assert "Sqrt was created in forward at" in message
    frame = _frame_of(error, "test_backward_inf_names_the_node_and_the_forward_line")
    assert frame is not None and frame.filename == __file__
    assert frame.line == "y = x.sqrt()  # created here; d sqrt(x)/dx at 0 is inf"
    assert f'File "{__file__}", line {frame.lineno}' in message
    package = str(Path(gf.__file__).resolve().parent) + os.sep  # the package's frames: left out
    assert all(not str(Path(f.filename).resolve()).startswith(package) for f in error.created_at)


def test_backward_nan_from_a_custom_function_names_it_and_the_input(device):
    a = gf.tensor([1.0, 2.0], dtype=gf.float64, device=device, requires_grad=True)
    b = gf.tensor([3.0, 4.0], dtype=gf.float64, device=device, requires_grad=True)
    with detect_anomaly():
        out = NanGrad.apply(a, b)  # the custom op
        with pytest.raises(AnomalyError, match=r"'NanGradBackward' returned nan values in its "
                           r"gradient for input 1") as info:  # fmt: skip
            out.sum().backward()
    assert "out = NanGrad.apply(a, b)  # the custom op" in str(info.value)
    assert info.value.index == 1


def test_off_by_default_nan_propagates_without_error():
    assert not is_anomaly_enabled()
    x = gf.tensor([-1.0, 0.0, 4.0], dtype=gf.float64, requires_grad=True)
    y = x.log()
    values = y.detach().numpy()
    assert numpy.isnan(values[0]) and numpy.isneginf(values[1])
    (y.sum() + NanGrad.apply(x, x).sum()).backward()
    assert numpy.isnan(x.grad.numpy()).all()
    assert y.grad_fn._anomaly_trace is None  # nothing recorded while off


def test_a_graph_recorded_with_the_mode_off_says_where_is_unknown():
    x = gf.tensor([0.0], dtype=gf.float64, requires_grad=True)
    y = x.sqrt().sum()
    with detect_anomaly(), pytest.raises(AnomalyError, match="was not recorded") as info:
        y.backward()
    assert len(info.value.created_at) == 0


def test_nested_contexts_and_set_detect_anomaly_restore_the_previous_state():
    with detect_anomaly():
        assert is_anomaly_enabled()
        with set_detect_anomaly(False):
            assert not is_anomaly_enabled()
            with detect_anomaly():
                assert is_anomaly_enabled()
            assert not is_anomaly_enabled()
        assert is_anomaly_enabled()
        with pytest.raises(ValueError), detect_anomaly():
            raise ValueError("leaving by an exception restores too")
        assert is_anomaly_enabled()
    assert not is_anomaly_enabled()
    set_detect_anomaly(True)  # a plain call takes effect at once
    assert is_anomaly_enabled()
    set_detect_anomaly(False)
    assert not is_anomaly_enabled()


def test_decorator_form_turns_it_on_for_the_call_only():
    @detect_anomaly()
    def step(x):
        assert is_anomaly_enabled()
        return x.log()

    with pytest.raises(AnomalyError, match="'Log' returned nan"):
        step(gf.tensor([-1.0]))
    assert not is_anomaly_enabled()
    assert step(gf.tensor([1.0])).item() == 0.0
    assert step.__name__ == "step"


def test_retain_graph_keeps_the_trace_and_a_finite_graph_backwards_twice():
    x = gf.tensor([1.0, 4.0], dtype=gf.float64, requires_grad=True)
    with detect_anomaly():
        y = x.sqrt().sum()
        y.backward(retain_graph=True)
        y.backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [1.0, 0.5])  # 2 * 1 / (2 sqrt(x))

    z = gf.tensor([0.0], dtype=gf.float64, requires_grad=True)
    with detect_anomaly():
        w = z.sqrt().sum()  # the line both errors show
        for _ in range(2):
            with pytest.raises(AnomalyError, match="SqrtBackward") as info:
                w.backward(retain_graph=True)
            assert "w = z.sqrt().sum()  # the line both errors show" in str(info.value)


def test_works_with_gradflow_grad():
    x = gf.tensor([1.0, 4.0], dtype=gf.float64, requires_grad=True)
    with detect_anomaly():
        (g,) = gf.grad(x.sqrt().sum(), x)
        numpy.testing.assert_allclose(g.numpy(), [0.5, 0.25])
        assert x.grad is None
        x0 = gf.tensor([0.0], dtype=gf.float64, requires_grad=True)
        r = (x0.sqrt() * 3).sum()  # grad() path
        with pytest.raises(AnomalyError, match="'SqrtBackward' returned inf") as info:
            gf.grad(r, x0)
    assert "r = (x0.sqrt() * 3).sum()  # grad() path" in str(info.value)


@pytest.mark.skipif(not hasattr(BaseException, "add_note"), reason="exception notes: Python 3.11+")
def test_other_backward_errors_keep_their_type_and_gain_the_forward_frames():
    x = gf.ones(2, requires_grad=True)
    with detect_anomaly():
        y = Boom.apply(x)  # the op whose backward fails
        with pytest.raises(ValueError, match="boom in backward") as info:
            y.sum().backward()
    notes = "\n".join(info.value.__notes__)
    assert "Raised in the backward of Boom" in notes
    assert "y = Boom.apply(x)  # the op whose backward fails" in notes


def test_results_are_unchanged_by_the_mode():
    def gradients():
        gf.manual_seed(0)
        model = gf.nn.Sequential(gf.nn.Linear(4, 8), gf.nn.Tanh(), gf.nn.Linear(8, 3))
        x = gf.randn(5, 4)
        gf.nn.functional.cross_entropy(model(x), gf.tensor([0, 1, 2, 0, 1])).backward()
        return [p.grad.numpy().copy() for p in model.parameters()]

    plain = gradients()
    with detect_anomaly():
        checked = gradients()
    for a, b in zip(plain, checked):
        numpy.testing.assert_array_equal(a, b)


def test_the_flag_is_global_across_threads():
    seen = {}

    def worker():
        seen["enabled"] = is_anomaly_enabled()

    with detect_anomaly():
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    assert seen["enabled"] is True


def test_check_nan_false_records_without_raising():
    x = gf.tensor([0.0], requires_grad=True)
    with numpy.errstate(all="ignore"), gf.autograd.detect_anomaly(check_nan=False):
        (x.log() * 0).sum().backward()  # NaN in forward and backward, as asked: no error
        assert gf.autograd.is_anomaly_enabled()
    assert numpy.isnan(x.grad.numpy()).all()
    with gf.autograd.set_detect_anomaly(True, check_nan=False), numpy.errstate(all="ignore"):
        x.log()
    # the default checks again
    with pytest.raises(AnomalyError), numpy.errstate(all="ignore"), gf.autograd.detect_anomaly():
        x.log()
    assert not gf.autograd.is_anomaly_enabled()
