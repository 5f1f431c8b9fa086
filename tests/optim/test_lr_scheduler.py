"""gradflow.optim.lr_scheduler: closed forms, torch's lr sequences, state dicts, errors."""

import math

import numpy as np
import pytest

import gradflow as gf
from gradflow.optim import SGD, lr_scheduler

LRS = (0.1, 0.02)  # two parameter groups with their own lr
EPOCHS = 30

SCHEDULES = {
    "StepLR": ("StepLR", {"step_size": 3, "gamma": 0.5}),
    "StepLR-default_gamma": ("StepLR", {"step_size": 7}),
    "MultiStepLR": ("MultiStepLR", {"milestones": [2, 5, 5, 11], "gamma": 0.3}),
    "ExponentialLR": ("ExponentialLR", {"gamma": 0.9}),
    "CosineAnnealingLR": ("CosineAnnealingLR", {"T_max": 10, "eta_min": 0.001}),
    "CosineAnnealingLR-eta_min_0": ("CosineAnnealingLR", {"T_max": 7}),
    "LinearLR-defaults": ("LinearLR", {}),
    "LinearLR": ("LinearLR", {"start_factor": 0.1, "end_factor": 0.5, "total_iters": 8}),
}


def optimizer(lrs=LRS):
    groups = [{"params": [gf.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    return SGD(groups, momentum=0.9)


def lr_sequence(opt, schedulers, epochs=EPOCHS, metrics=None):
    """get_last_lr() after construction and after each epoch's step (of every scheduler)."""
    seen = [schedulers[-1].get_last_lr()]
    for epoch in range(epochs):
        opt.step()
        for s in schedulers:
            s.step() if metrics is None else s.step(metrics[epoch])
        seen.append(schedulers[-1].get_last_lr())
        assert seen[-1] == [g["lr"] for g in opt.param_groups]
    return seen


def torch_lr_sequence(torch, make, metrics=None):
    params = [torch.zeros(2, requires_grad=True) for _ in LRS]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, LRS)], momentum=0.9)
    return lr_sequence(opt, make(opt, torch.optim.lr_scheduler), metrics=metrics)


def make_schedule(case):
    name, kwargs = SCHEDULES[case]
    return lambda opt, module: [getattr(module, name)(opt, **kwargs)]


@pytest.mark.parametrize("case", SCHEDULES)
def test_lr_sequence_matches_torch(case):
    torch = pytest.importorskip("torch")
    opt = optimizer()
    ours = lr_sequence(opt, make_schedule(case)(opt, lr_scheduler))
    theirs = torch_lr_sequence(torch, make_schedule(case))
    assert np.allclose(ours, theirs, rtol=1e-12, atol=0)


def closed_form(case, base, epoch):
    name, kw = SCHEDULES[case]
    if name == "StepLR":
        return base * kw.get("gamma", 0.1) ** (epoch // kw["step_size"])
    if name == "MultiStepLR":
        return base * kw["gamma"] ** sum(m <= epoch for m in kw["milestones"])
    if name == "ExponentialLR":
        return base * kw["gamma"] ** epoch
    if name == "CosineAnnealingLR":
        eta_min = kw.get("eta_min", 0.0)
        return eta_min + (base - eta_min) * (1 + math.cos(math.pi * epoch / kw["T_max"])) / 2
    start, end = kw.get("start_factor", 1 / 3), kw.get("end_factor", 1.0)
    total = kw.get("total_iters", 5)
    return base * (start + (end - start) * min(epoch, total) / total)


@pytest.mark.parametrize("case", SCHEDULES)
def test_recursion_follows_the_closed_form(case):
    opt = optimizer()
    seen = lr_sequence(opt, make_schedule(case)(opt, lr_scheduler))
    for epoch, lrs in enumerate(seen):
        expected = [closed_form(case, base, epoch) for base in LRS]
        np.testing.assert_allclose(lrs, expected, rtol=1e-9, atol=1e-15)


def test_constructor_steps_once_and_records_initial_lr():
    opt = optimizer()
    sched = lr_scheduler.LinearLR(opt)
    assert sched.last_epoch == 0
    assert [g["initial_lr"] for g in opt.param_groups] == list(LRS)
    assert sched.get_last_lr() == pytest.approx([lr / 3 for lr in LRS])
    assert sched.base_lrs == list(LRS)


def test_chained_schedulers_compose_like_torch():
    torch = pytest.importorskip("torch")

    def make(opt, module):
        warmup = module.LinearLR(opt, start_factor=0.25, total_iters=4)
        return [warmup, module.ExponentialLR(opt, gamma=0.95)]

    opt = optimizer()
    ours = lr_sequence(opt, make(opt, lr_scheduler))
    assert np.allclose(ours, torch_lr_sequence(torch, make), rtol=1e-12, atol=0)


def test_resuming_with_last_epoch_matches_torch():
    torch = pytest.importorskip("torch")

    def make(opt, module):
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
        return [module.StepLR(opt, step_size=4, gamma=0.5, last_epoch=6)]

    opt = optimizer()
    ours = lr_sequence(opt, make(opt, lr_scheduler), epochs=12)
    theirs = torch_lr_sequence(torch, make)[:13]
    assert np.allclose(ours, theirs, rtol=1e-12, atol=0)


# ---- ReduceLROnPlateau --------------------------------------------------------------------
def plateau_metrics():
    """A loss that improves, stalls, creeps by tiny amounts, and jumps: every branch fires."""
    rng = np.random.default_rng(3)
    trend = np.concatenate([np.linspace(1.0, 0.6, 6), np.full(8, 0.6), np.linspace(0.6, 0.59, 8)])
    noise = rng.uniform(-0.002, 0.002, trend.size)
    return [*(trend + noise).tolist(), 0.3, 0.31, 0.29, 0.3, 0.3, 0.2, 0.2, 0.2]


PLATEAUS = {
    "min-rel": {"patience": 2},
    "min-abs-cooldown": {"threshold": 0.05, "threshold_mode": "abs", "patience": 1, "cooldown": 2},
    "max-rel": {"mode": "max", "threshold": 0.01, "patience": 2, "cooldown": 1, "factor": 0.5},
    "max-abs-min_lr": {
        "mode": "max",
        "threshold": 0.01,
        "threshold_mode": "abs",
        "patience": 0,
        "factor": 0.5,
        "min_lr": [0.05, 0.001],
    },
    "eps-stops-tiny-changes": {"patience": 0, "factor": 0.5, "eps": 0.004},
}


@pytest.mark.parametrize("case", PLATEAUS)
def test_reduce_lr_on_plateau_matches_torch(case):
    torch = pytest.importorskip("torch")
    kwargs = PLATEAUS[case]
    metrics = plateau_metrics()
    if kwargs.get("mode") == "max":
        metrics = [1 - m for m in metrics]

    def make(opt, module):
        return [module.ReduceLROnPlateau(opt, **kwargs)]

    opt = optimizer()
    scheduler = make(opt, lr_scheduler)
    ours = lr_sequence(opt, scheduler, epochs=len(metrics), metrics=metrics)
    theirs = torch_lr_sequence(torch, make, metrics=metrics)
    assert np.allclose(ours, theirs, rtol=1e-12, atol=0)
    assert len({tuple(lrs) for lrs in ours}) > 2, "the case should reduce the lr more than once"


def test_reduce_lr_on_plateau_by_hand():
    opt = optimizer()
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=1, cooldown=1, min_lr=0.01)
    assert sched.get_last_lr() == list(LRS)  # no step at construction
    for loss in [1.0, 0.5, 0.5]:  # improves twice, then one bad epoch (within patience)
        sched.step(loss)
    assert sched.get_last_lr() == list(LRS) and sched.num_bad_epochs == 1
    sched.step(0.5)  # second bad epoch: reduce, clamped at min_lr for the second group
    assert sched.get_last_lr() == pytest.approx([0.01, 0.01])
    assert sched.in_cooldown and sched.num_bad_epochs == 0
    sched.step(gf.tensor(0.5))  # a 1-element tensor is a metric too; cooldown swallows it
    assert sched.num_bad_epochs == 0 and not sched.in_cooldown


# ---- state dicts --------------------------------------------------------------------------
@pytest.mark.parametrize("case", [*SCHEDULES, "ReduceLROnPlateau"])
def test_state_dict_round_trip_continues_the_schedule(case):
    metrics = plateau_metrics()

    def make(opt):
        if case == "ReduceLROnPlateau":
            return lr_scheduler.ReduceLROnPlateau(opt, patience=1, cooldown=1)
        return make_schedule(case)(opt, lr_scheduler)[0]

    def advance(opt, sched, epochs):
        for epoch in epochs:
            opt.step()
            sched.step(metrics[epoch]) if case == "ReduceLROnPlateau" else sched.step()

    opt = optimizer()
    sched = make(opt)
    advance(opt, sched, range(10))
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    advance(opt, sched, range(10, EPOCHS))

    resumed_opt = optimizer(lrs=(5.0, 7.0))  # the lrs come from the saved state
    resumed = make(resumed_opt)
    resumed_opt.load_state_dict(saved_opt)
    resumed.load_state_dict(saved_sched)
    advance(resumed_opt, resumed, range(10, EPOCHS))
    assert resumed.get_last_lr() == sched.get_last_lr()
    assert resumed.last_epoch == sched.last_epoch == EPOCHS
    assert [g["lr"] for g in resumed_opt.param_groups] == sched.get_last_lr()


def test_state_dict_has_no_optimizer_and_is_a_copy():
    opt = optimizer()
    sched = lr_scheduler.MultiStepLR(opt, milestones=[3, 6])
    saved = sched.state_dict()
    assert "optimizer" not in saved
    assert saved["last_epoch"] == 0 and saved["base_lrs"] == list(LRS)
    saved["milestones"][9] = 1
    assert 9 not in sched.milestones


# ---- errors -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda o: lr_scheduler.LinearLR(o, start_factor=0),
            ValueError,
            r"LinearLR: start_factor=0 must be in \(0, 1\]",
        ),
        (
            lambda o: lr_scheduler.LinearLR(o, end_factor=1.5),
            ValueError,
            r"LinearLR: end_factor=1.5 must be in \[0, 1\]",
        ),
        (
            lambda o: lr_scheduler.LinearLR(o, total_iters=0),
            ValueError,
            r"LinearLR: total_iters=0 must be a positive int",
        ),
        (
            lambda o: lr_scheduler.StepLR(o, step_size=0),
            ValueError,
            r"StepLR: step_size=0 must be a positive int \(a number of epochs\)",
        ),
        (
            lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=2.5),
            ValueError,
            r"CosineAnnealingLR: T_max=2.5 must be a positive int",
        ),
        (
            lambda o: lr_scheduler.MultiStepLR(o, milestones=[1.5]),
            TypeError,
            r"MultiStepLR: milestones must be epoch numbers \(ints\)",
        ),
        (
            lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0),
            ValueError,
            r"ReduceLROnPlateau: factor=1.0 must be < 1.0",
        ),
        (
            lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="lowest"),
            ValueError,
            r"mode 'lowest' is unknown; use 'min' or 'max'",
        ),
        (
            lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold_mode="relative"),
            ValueError,
            r"threshold_mode 'relative' is unknown; use 'rel' or 'abs'",
        ),
        (
            lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=[0.1]),
            ValueError,
            r"expected 2 min_lrs \(one per parameter group\), got 1",
        ),
        (
            lambda o: lr_scheduler.StepLR(o, step_size=2, last_epoch=4),
            KeyError,
            r"param 'initial_lr' is not specified in param_groups\[0\] when resuming with "
            r"last_epoch=4; load the optimizer's state dict first",
        ),
        (
            lambda o: lr_scheduler.ExponentialLR(o.param_groups, gamma=0.5),
            TypeError,
            r"ExponentialLR: expected a gradflow.optim.Optimizer, got list",
        ),
        (
            lambda o: lr_scheduler.StepLR(o, 2).load_state_dict(
                lr_scheduler.ExponentialLR(optimizer(), 0.5).state_dict()
            ),
            ValueError,
            r"StepLR.load_state_dict: the state dict lacks \['step_size'\]; pass the dict "
            r"returned by state_dict\(\) of a StepLR",
        ),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(make, error, message):
    with pytest.raises(error, match=message):
        make(optimizer())
