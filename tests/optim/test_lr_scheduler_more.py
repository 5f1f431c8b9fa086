"""More of gradflow.optim.lr_scheduler against torch's: lambda, cyclic, one-cycle, warm restarts,
polynomial, constant, sequential and chained schedules; step(epoch); state dicts; errors."""

import warnings

import numpy as np
import pytest

import gradflow as gf
from gradflow import optim
from gradflow.optim import lr_scheduler

LRS = (0.1, 0.02)  # two parameter groups with their own lr
EPOCHS = 25


def warm_up(epoch):
    return min(1.0, (epoch + 1) / 4)


class Halving:
    """A callable object: its attributes go into LambdaLR's state dict, as in PyTorch."""

    def __init__(self):
        self.rate = 0.5

    def __call__(self, epoch):
        return self.rate ** (epoch // 3)


# name: (optimizer kind, a function (optimizer, lr_scheduler module) -> [schedulers]).
CASES = {
    "LambdaLR": ("SGD", lambda o, m: [m.LambdaLR(o, lambda e: 0.95**e)]),
    "LambdaLR-per_group": ("SGD", lambda o, m: [m.LambdaLR(o, [warm_up, lambda e: 1 / (e + 1)])]),
    "MultiplicativeLR": ("SGD", lambda o, m: [m.MultiplicativeLR(o, lambda e: 0.9)]),
    "ConstantLR": ("SGD", lambda o, m: [m.ConstantLR(o, factor=0.5, total_iters=3)]),
    "ConstantLR-defaults": ("SGD", lambda o, m: [m.ConstantLR(o)]),
    "PolynomialLR": ("SGD", lambda o, m: [m.PolynomialLR(o, total_iters=6, power=2.0)]),
    "PolynomialLR-defaults": ("SGD", lambda o, m: [m.PolynomialLR(o)]),
    "OneCycleLR": ("SGD", lambda o, m: [m.OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=EPOCHS)]),
    "OneCycleLR-linear_adam": (
        "Adam",
        lambda o, m: [
            m.OneCycleLR(
                o,
                max_lr=0.3,
                epochs=5,
                steps_per_epoch=5,
                pct_start=0.4,
                anneal_strategy="linear",
                div_factor=10.0,
                final_div_factor=100.0,
            )
        ],
    ),
    "OneCycleLR-three_phase": (
        "SGD",
        lambda o, m: [
            m.OneCycleLR(
                o, max_lr=1.0, total_steps=EPOCHS, three_phase=True, base_momentum=[0.8, 0.7]
            )
        ],
    ),
    "OneCycleLR-no_momentum": (
        "Adagrad",
        lambda o, m: [m.OneCycleLR(o, max_lr=0.4, total_steps=EPOCHS, cycle_momentum=False)],
    ),
    "CyclicLR-triangular": (
        "SGD",
        lambda o, m: [
            m.CyclicLR(o, base_lr=0.01, max_lr=[0.1, 0.05], step_size_up=3, step_size_down=2)
        ],
    ),
    "CyclicLR-triangular2": (
        "SGD",
        lambda o, m: [m.CyclicLR(o, 0.01, 0.1, step_size_up=2, mode="triangular2")],
    ),
    "CyclicLR-exp_range_adam": (
        "Adam",
        lambda o, m: [
            m.CyclicLR(
                o, 0.001, 0.01, step_size_up=4, mode="exp_range", gamma=0.9, base_momentum=0.85
            )
        ],
    ),
    "CyclicLR-scale_fn": (
        "RMSprop",
        lambda o, m: [
            m.CyclicLR(
                o, 0.01, 0.1, step_size_up=3, scale_fn=lambda x: 0.8**x, scale_mode="iterations"
            )
        ],
    ),
    "CosineAnnealingWarmRestarts": (
        "SGD",
        lambda o, m: [m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001)],
    ),
    "CosineAnnealingWarmRestarts-T_mult_1": (
        "SGD",
        lambda o, m: [m.CosineAnnealingWarmRestarts(o, T_0=4)],
    ),
    "SequentialLR": (
        "SGD",
        lambda o, m: [
            m.SequentialLR(
                o,
                [m.LinearLR(o, start_factor=0.1, total_iters=4), m.CosineAnnealingLR(o, T_max=10)],
                milestones=[4],
            )
        ],
    ),
    "SequentialLR-three": (
        "SGD",
        lambda o, m: [
            m.SequentialLR(
                o,
                [
                    m.ConstantLR(o, factor=0.2, total_iters=3),
                    m.ExponentialLR(o, gamma=0.8),
                    m.StepLR(o, step_size=3, gamma=0.5),
                ],
                milestones=[3, 9],
            )
        ],
    ),
    "ChainedScheduler": (
        "SGD",
        lambda o, m: [
            m.ChainedScheduler(
                [m.ConstantLR(o, factor=0.1, total_iters=2), m.ExponentialLR(o, 0.9)]
            )
        ],
    ),
    "ChainedScheduler-poly_multistep": (
        "SGD",
        lambda o, m: [
            m.ChainedScheduler(
                [m.PolynomialLR(o, total_iters=8), m.MultiStepLR(o, milestones=[2, 4], gamma=0.5)],
                optimizer=o,
            )
        ],
    ),
    # Two schedulers on one optimizer, stepped one after the other (PyTorch's chaining).
    "StepLR+LinearLR": (
        "SGD",
        lambda o, m: [m.StepLR(o, step_size=4, gamma=0.5), m.LinearLR(o, 0.2, total_iters=5)],
    ),
    "CosineAnnealingLR+ExponentialLR": (
        "SGD",
        lambda o, m: [m.CosineAnnealingLR(o, T_max=6), m.ExponentialLR(o, gamma=0.95)],
    ),
}


def make_optimizer(lib, kind):
    if lib is gf:
        params = [gf.zeros(2, requires_grad=True) for _ in LRS]
    else:
        params = [lib.zeros(2, requires_grad=True) for _ in LRS]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, LRS)]
    extra = {"momentum": 0.9} if kind == "SGD" else {}
    return getattr(lib.optim, kind)(groups, **extra)


def momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]


def run(lib, case, epochs=EPOCHS):
    kind, make = CASES[case]
    opt = make_optimizer(lib, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "step the optimizer first" on empty grads
        schedulers = make(opt, lib.optim.lr_scheduler)
        lrs = [schedulers[-1].get_last_lr()]
        moms = [momenta(opt)]
        for _ in range(epochs):
            opt.step()
            for s in schedulers:
                s.step()
            lrs.append(schedulers[-1].get_last_lr())
            moms.append(momenta(opt))
    return opt, schedulers, lrs, moms


@pytest.mark.parametrize("case", CASES)
def test_lr_and_momentum_sequences_match_torch(case):
    torch = pytest.importorskip("torch")
    opt, _, ours, our_moms = run(gf, case)
    _, _, theirs, their_moms = run(torch, case)
    assert all(lrs == [g["lr"] for g in opt.param_groups] for lrs in ours[-1:])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    if our_moms[0][0] is not None:
        np.testing.assert_allclose(our_moms, their_moms, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", CASES)
def test_state_dict_round_trip_resumes_the_schedule(case):
    kind, make = CASES[case]
    _, _, straight, straight_moms = run(gf, case)
    opt, schedulers, _, _ = run(gf, case, epochs=7)
    saved_opt = opt.state_dict()
    saved = [s.state_dict() for s in schedulers]
    fresh = make_optimizer(gf, kind)
    resumed = make(fresh, lr_scheduler)
    fresh.load_state_dict(saved_opt)
    for s, state in zip(resumed, saved):
        s.load_state_dict(state)
    lrs, moms = [resumed[-1].get_last_lr()], [momenta(fresh)]
    for _ in range(EPOCHS - 7):
        for s in resumed:
            s.step()
        lrs.append(resumed[-1].get_last_lr())
        moms.append(momenta(fresh))
    np.testing.assert_allclose(lrs, straight[7:], rtol=1e-14, atol=0)
    assert moms == straight_moms[7:]


def test_lambda_lr_saves_a_callable_objects_attributes_not_functions():
    opt = make_optimizer(gf, "SGD")
    halving = Halving()
    sched = lr_scheduler.LambdaLR(opt, [halving, warm_up])
    halving.rate = 0.25
    state = sched.state_dict()
    assert state["lr_lambdas"] == [{"rate": 0.25}, None]
    other = Halving()
    again = lr_scheduler.LambdaLR(make_optimizer(gf, "SGD"), [other, warm_up])
    again.load_state_dict(state)
    assert other.rate == 0.25


@pytest.mark.parametrize(
    "make",
    [
        lambda o, m: m.StepLR(o, step_size=3, gamma=0.5),
        lambda o, m: m.MultiStepLR(o, milestones=[2, 4, 4], gamma=0.5),
        lambda o, m: m.ExponentialLR(o, gamma=0.9),
        lambda o, m: m.CosineAnnealingLR(o, T_max=8, eta_min=0.001),
        lambda o, m: m.LinearLR(o, start_factor=0.2, total_iters=6),
        lambda o, m: m.ConstantLR(o, factor=0.4, total_iters=4),
        lambda o, m: m.PolynomialLR(o, total_iters=7, power=1.5),
        lambda o, m: m.LambdaLR(o, lambda e: 1 / (1 + e)),
    ],
)
def test_step_with_an_epoch_uses_the_closed_form_and_warns(make):
    torch = pytest.importorskip("torch")
    results = []
    for lib in (gf, torch):
        opt = make_optimizer(lib, "SGD")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sched = make(opt, lib.optim.lr_scheduler)
        opt.step()
        seen = []
        for epoch in [3, 1, 9, 5]:
            with pytest.warns(UserWarning, match="The epoch parameter in `scheduler.step\\(\\)`"):
                sched.step(epoch)
            seen.append(sched.get_last_lr())
        results.append((seen, sched.last_epoch))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12, atol=0)
    assert results[0][1] == results[1][1] == 5


def test_warm_restarts_step_takes_fractional_epochs():
    torch = pytest.importorskip("torch")
    epochs = [0.0, 0.5, 1.25, 2.9, 3.0, 4.5, 9.0, 10.2, 21.5, 2.0]
    results = []
    for lib in (gf, torch):
        opt = make_optimizer(lib, "SGD")
        sched = lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2)
        seen = []
        for epoch in epochs:
            sched.step(epoch)
            seen.append((*sched.get_last_lr(), sched.T_cur, sched.T_i, sched.last_epoch))
        results.append(seen)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=1e-15)


def test_one_cycle_refuses_a_step_past_total_steps():
    opt = make_optimizer(gf, "SGD")
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    sched.step()
    sched.step()
    sched.step()
    with pytest.raises(ValueError, match="OneCycleLR: tried to step 4 times; the specified number"):
        sched.step()


def test_reduce_lr_on_plateau_matches_torch_with_an_epoch():
    torch = pytest.importorskip("torch")
    metrics = [1.0, 0.9, 0.95, 0.97, 0.99, 0.8, 0.85, 0.9, 0.91, 0.92, 0.93]
    results = []
    for lib in (gf, torch):
        opt = make_optimizer(lib, "SGD")
        sched = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5)
        seen = []
        for m in metrics:
            sched.step(m)
            seen.append(sched.get_last_lr())
        with pytest.warns(UserWarning, match="The epoch parameter"):
            sched.step(0.5, epoch=20)
        results.append((seen, sched.last_epoch))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    assert results[0][1] == results[1][1] == 20


def test_loads_torchs_scheduler_state_dict():
    torch = pytest.importorskip("torch")
    topt, tscheds, _, _ = run(torch, "OneCycleLR", epochs=6)
    _, _, straight, _ = run(gf, "OneCycleLR")
    opt = make_optimizer(gf, "SGD")
    sched = lr_scheduler.OneCycleLR(opt, max_lr=[0.5, 0.2], total_steps=EPOCHS)
    sched.load_state_dict(tscheds[0].state_dict())
    for group, saved in zip(opt.param_groups, topt.state_dict()["param_groups"]):
        group.update({k: v for k, v in saved.items() if k != "params"})
    sched.step()
    np.testing.assert_allclose(sched.get_last_lr(), straight[7], rtol=1e-14)


@pytest.mark.parametrize(
    "build, error, message",
    [
        (
            lambda o: lr_scheduler.LambdaLR(o, [warm_up]),
            ValueError,
            r"LambdaLR: expected 2 lr_lambdas \(one per parameter group\), but got 1",
        ),
        (
            lambda o: lr_scheduler.MultiplicativeLR(o, 0.9),
            TypeError,
            "MultiplicativeLR: lr_lambda should be a function of the epoch, but got float",
        ),
        (
            lambda o: lr_scheduler.ConstantLR(o, factor=1.5),
            ValueError,
            "ConstantLR: factor=1.5 must be between 0 and 1",
        ),
        (
            lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1),
            ValueError,
            r"OneCycleLR: you must define either total_steps OR \(epochs AND steps_per_epoch\)",
        ),
        (
            lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=0),
            ValueError,
            "OneCycleLR: expected a positive integer total_steps, but got 0",
        ),
        (
            lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=5, pct_start=2),
            ValueError,
            "OneCycleLR: expected a float between 0 and 1 for pct_start, but got 2",
        ),
        (
            lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=5, anneal_strategy="exp"),
            ValueError,
            "OneCycleLR: anneal_strategy must be one of 'cos' or 'linear', instead got 'exp'",
        ),
        (
            lambda o: lr_scheduler.OneCycleLR(o, max_lr=[0.1], total_steps=5),
            ValueError,
            "max_lr must have the same length as optimizer.param_groups",
        ),
        (
            lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.1, mode="sawtooth"),
            ValueError,
            "CyclicLR: mode 'sawtooth' is invalid and scale_fn is None",
        ),
        (
            lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=0),
            ValueError,
            "CosineAnnealingWarmRestarts: expected a positive integer T_0, but got 0",
        ),
        (
            lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0),
            ValueError,
            "CosineAnnealingWarmRestarts: expected an integer T_mult >= 1, but got 0",
        ),
        (
            lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2, eta_min="0"),
            ValueError,
            "CosineAnnealingWarmRestarts: expected a float or int eta_min",
        ),
        (
            lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2).step(-1),
            ValueError,
            "CosineAnnealingWarmRestarts: expected a non-negative epoch, but got -1",
        ),
        (
            lambda o: lr_scheduler.SequentialLR(o, [], milestones=[]),
            ValueError,
            "SequentialLR expects at least one scheduler",
        ),
        (
            lambda o: lr_scheduler.SequentialLR(
                o, [lr_scheduler.StepLR(o, 2), lr_scheduler.StepLR(o, 3)], milestones=[]
            ),
            ValueError,
            "SequentialLR expects number of schedulers provided to be one more than the number",
        ),
        (
            lambda o: lr_scheduler.SequentialLR(
                o, [lr_scheduler.ReduceLROnPlateau(o)], milestones=[]
            ),
            ValueError,
            "SequentialLR does not support `ReduceLROnPlateau`",
        ),
        (
            lambda o: lr_scheduler.ChainedScheduler(
                [lr_scheduler.StepLR(o, 2), lr_scheduler.StepLR(make_optimizer(gf, "SGD"), 2)]
            ),
            ValueError,
            "ChainedScheduler expects all schedulers to belong to the same optimizer",
        ),
        (
            lambda o: lr_scheduler.ChainedScheduler([object()], optimizer=o),
            TypeError,
            "ChainedScheduler: the scheduler at index 0 should have `optimizer`",
        ),
        (
            lambda o: lr_scheduler.ChainedScheduler([]),
            ValueError,
            "ChainedScheduler expects at least one scheduler to be chained",
        ),
        (
            lambda o: lr_scheduler.ChainedScheduler([lr_scheduler.StepLR(o, 2)]).load_state_dict(
                {"_last_lr": [0.1, 0.1]}
            ),
            ValueError,
            r"ChainedScheduler.load_state_dict: expected '_schedulers'",
        ),
    ],
)
def test_invalid_arguments_are_refused(build, error, message):
    with pytest.raises(error, match=message):
        build(make_optimizer(gf, "SGD"))


def test_cycle_momentum_needs_a_momentum():
    opt = make_optimizer(gf, "Adagrad")
    with pytest.raises(ValueError, match="CyclicLR: optimizer must support momentum or beta1"):
        lr_scheduler.CyclicLR(opt, 0.01, 0.1)
    with pytest.raises(ValueError, match="OneCycleLR: optimizer must support momentum or beta1"):
        lr_scheduler.OneCycleLR(opt, 0.1, total_steps=5)


def test_custom_scheduler_subclassing_the_old_name():
    class Halve(lr_scheduler._LRScheduler):
        def get_lr(self):
            return [base * 0.5**self.last_epoch for base in self.base_lrs]

    opt = make_optimizer(gf, "SGD")
    sched = Halve(opt)
    sched.step()
    sched.step()
    assert sched.get_last_lr() == [LRS[0] / 4, LRS[1] / 4]
    assert isinstance(sched, optim.lr_scheduler.LRScheduler)


# ---- swa_utils.SWALR ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"swa_lr": 0.05},
        {"swa_lr": [0.05, 0.01], "anneal_epochs": 4, "anneal_strategy": "linear"},
        {"swa_lr": 0.3, "anneal_epochs": 0},
    ],
)
def test_swalr_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    results = []
    for lib in (gf, torch):
        opt = make_optimizer(lib, "SGD")
        sched = lib.optim.swa_utils.SWALR(opt, **kwargs)
        seen = [sched.get_last_lr()]
        for _ in range(14):
            opt.step()
            sched.step()
            seen.append(sched.get_last_lr())
        results.append(seen)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=1e-15)


def test_swalr_state_dict_round_trip_and_errors():
    from gradflow.optim.swa_utils import SWALR

    opt = make_optimizer(gf, "SGD")
    sched = SWALR(opt, swa_lr=0.05, anneal_epochs=5)
    for _ in range(2):
        sched.step()
    saved, saved_opt = sched.state_dict(), opt.state_dict()
    expected = [sched.step() or sched.get_last_lr() for _ in range(4)]
    fresh = make_optimizer(gf, "SGD")
    again = SWALR(fresh, swa_lr=0.05, anneal_epochs=5)
    fresh.load_state_dict(saved_opt)
    again.load_state_dict(saved)
    assert [again.step() or again.get_last_lr() for _ in range(4)] == expected
    with pytest.raises(ValueError, match="SWALR: anneal_strategy must be one of 'cos' or 'linear'"):
        SWALR(opt, 0.1, anneal_strategy="exp")
    with pytest.raises(ValueError, match="SWALR: anneal_epochs must be equal or greater than 0"):
        SWALR(opt, 0.1, anneal_epochs=-1)
