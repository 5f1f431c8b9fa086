"""gradflow.stopping: EarlyStopping on scripted metric sequences (patience, min_delta, modes,
target, time limit, nan), its best weights and state, and check_loss."""

import math

import numpy
import pytest

import gradflow
from gradflow import nn
from gradflow.stopping import EarlyStopping, check_loss
from gradflow.training import EarlyStopping as ReExported


def _run(stopper, values, key="val_loss", model=None):
    """The epoch (1-based) at which `stopper` stops on `values`, or None."""
    for epoch, value in enumerate(values, 1):
        if stopper.step({key: value}, model, epoch):
            return epoch
    return None


def test_min_mode_stops_after_patience_epochs_without_improvement():
    stopper = EarlyStopping("val_loss", patience=2)
    assert _run(stopper, [1.0, 0.8, 0.9, 0.85, 0.7]) == 4
    assert (stopper.best, stopper.best_epoch, stopper.wait) == (0.8, 2, 2)
    assert stopper.stopped_epoch == 4
    assert stopper.stop_reason == "val_loss did not improve for 2 epochs (best 0.8 at epoch 2)"


def test_max_mode_is_inferred_for_accuracy_and_counts_a_tie_as_no_improvement():
    stopper = EarlyStopping("val_accuracy", patience=3)
    assert stopper.mode == "max"
    assert _run(stopper, [0.5, 0.7, 0.7, 0.6, 0.7, 0.9], key="val_accuracy") == 5
    assert stopper.best_epoch == 2


def test_min_delta_makes_small_improvements_count_as_none():
    values = [1.0, 0.9995, 0.9992, 0.9991, 0.5]
    assert _run(EarlyStopping(patience=3), values) is None  # each is an improvement
    stopper = EarlyStopping(patience=3, min_delta=0.001)
    assert _run(stopper, values) == 4
    assert stopper.stop_reason == (
        "val_loss did not improve by more than 0.001 for 3 epochs (best 1 at epoch 1)"
    )


def test_patience_one_stops_at_the_first_epoch_without_improvement():
    assert _run(EarlyStopping(patience=1), [3.0, 2.0, 1.0, 2.5]) == 4


def test_a_target_stops_once_reached_in_either_mode():
    stopper = EarlyStopping("val_accuracy", patience=None, target=0.95)
    assert _run(stopper, [0.5, 0.9, 0.94, 0.8, 0.5, 0.95, 0.99], key="val_accuracy") == 6
    assert stopper.stop_reason == "val_accuracy reached the target 0.95 at epoch 6"
    assert _run(EarlyStopping(patience=None, target=0.1), [0.5, 0.2, 0.1]) == 3


def test_nan_and_inf_stop_with_the_epoch_unless_check_finite_is_off():
    stopper = EarlyStopping(patience=5)
    assert _run(stopper, [1.0, 0.5, math.nan]) == 3
    assert stopper.stop_reason == "val_loss is nan at epoch 3"
    stopper = EarlyStopping(patience=5)
    assert (
        _run(stopper, [1.0, math.inf]) == 2 and "val_loss is inf at epoch 2" in stopper.stop_reason
    )
    assert _run(EarlyStopping(patience=5, check_finite=False), [1.0, math.nan, 0.5]) is None


def test_max_time_stops_at_the_first_step_past_the_limit(monkeypatch):
    clock = iter([100.0, 100.0, 130.0, 161.0])
    monkeypatch.setattr("gradflow.stopping.time.monotonic", lambda: next(clock))
    stopper = EarlyStopping(patience=None, max_time=60)
    assert _run(stopper, [3.0, 2.0, 1.0]) == 3  # the clock starts at the first step
    assert stopper.stop_reason == "the time limit of 60 s was reached"


def test_a_callable_monitor_needs_a_mode_and_is_named_by_its_function():
    def error_rate(metrics):
        return 1 - metrics["val_accuracy"]

    with pytest.raises(ValueError, match="can't tell whether .* pass mode='min' or mode='max'"):
        EarlyStopping(error_rate)
    stopper = EarlyStopping(error_rate, mode="min", patience=1)
    assert _run(stopper, [0.5, 0.4], key="val_accuracy") == 2
    assert stopper.stop_reason.startswith("error_rate did not improve for 1 epoch (best 0.5")


def _tiny_model(seed):
    gradflow.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))


def _weights(model):
    return [p.array.copy() for p in model.parameters()]


def test_restore_loads_the_weights_of_the_best_epoch():
    model = _tiny_model(0)
    stopper = EarlyStopping(patience=2)
    best = None
    for epoch, loss in enumerate([1.0, 0.5, 0.7, 0.8], 1):
        with gradflow.no_grad():
            for p in model.parameters():
                p.add_(1.0)  # a different model every epoch
        if epoch == 2:
            best = _weights(model)
        if stopper.step({"val_loss": loss}, model, epoch):
            break
    assert stopper.stopped_epoch == 4
    stopper.restore(model)
    for got, want in zip(_weights(model), best):
        numpy.testing.assert_array_equal(got, want)


def test_restore_without_a_kept_copy_says_what_to_do():
    stopper = EarlyStopping(restore_best=False)
    stopper.step({"val_loss": 1.0}, _tiny_model(0))
    with pytest.raises(ValueError, match=r"pass the model to step\(\) \(with restore_best=True\)"):
        stopper.restore(_tiny_model(1))


def test_state_dict_resumes_the_count_and_the_best_weights():
    model = _tiny_model(0)
    first = EarlyStopping(patience=3)
    _run(first, [1.0, 0.5, 0.6], model=model)
    second = EarlyStopping(patience=3)
    second.load_state_dict(first.state_dict())
    assert (second.best, second.best_epoch, second.wait) == (0.5, 2, 1)
    assert second.step({"val_loss": 0.7}, epoch=4) is False
    assert second.step({"val_loss": 0.7}, epoch=5) is True  # 3 epochs without improvement
    other = _tiny_model(1)
    second.restore(other)
    for got, want in zip(_weights(other), _weights(model)):
        numpy.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match=r"watched 'val_loss' \(min\), this stopper watches"):
        EarlyStopping("val_accuracy").load_state_dict(first.state_dict())


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [({"monitor": 3}, TypeError, "monitor must be a metric's name"),
     ({"monitor": "f1"}, ValueError, "can't tell whether 'f1' should fall or rise"),
     ({"mode": "up"}, ValueError, "mode must be 'min' or 'max', got 'up'"),
     ({"patience": 0}, ValueError, "patience must be an integer, 1 or more"),
     ({"patience": 2.5}, ValueError, "patience must be an integer"),
     ({"min_delta": -0.1}, ValueError, "min_delta must be a finite number, 0 or more"),
     ({"restore_best": 1}, TypeError, "restore_best must be True or False"),
     ({"target": math.nan}, ValueError, "target must be a finite number or None"),
     ({"max_time": 0}, ValueError, "max_time must be a positive number of seconds"),
     ({"check_finite": None}, TypeError, "check_finite must be True or False")],
)  # fmt: skip
def test_every_argument_is_checked(kwargs, error, message):
    with pytest.raises(error, match=message):
        EarlyStopping(**kwargs)


def test_step_names_a_missing_metric_and_a_non_number():
    with pytest.raises(KeyError, match=r"no 'val_loss' \(they have \['loss'\]\)"):
        EarlyStopping().step({"loss": 1.0})
    with pytest.raises(TypeError, match="val_loss must be a number or a 0-d tensor, got str"):
        EarlyStopping().step({"val_loss": "low"})


def test_check_loss_names_the_epoch_and_step_of_a_non_finite_loss():
    assert check_loss(0.25, 1, 1) is None
    assert check_loss(gradflow.tensor(1.5), 1, 1) is None
    assert check_loss(math.nan, 3, 12) == "the training loss is nan at epoch 3, step 12"
    assert (
        check_loss(gradflow.tensor(math.inf), 2, 7) == "the training loss is inf at epoch 2, step 7"
    )


def test_the_training_module_re_exports_it():
    assert ReExported is EarlyStopping
