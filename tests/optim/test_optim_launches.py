"""What one optimizer step costs on cuda: launches, host-to-device copies and host syncs.

Counted by the CuPy stand-in (gradflow.testing.standin), so these run only under
``GRADFLOW_CUDA_STANDIN=1 pytest -m gpu tests/optim``. The design they hold
(gradflow/kernels/optim.py): a step of SGD, Adam, AdamW or RMSprop launches one fused kernel
per parameter group, dtype and step count, and uploads the tables of all those launches in one
copy, or in none when every array sits where it sat on a recent step; it never waits for the
device.
"""

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.backend import cupy_module
from gradflow.testing import standin


def _standin_active() -> bool:
    return standin.enabled() and standin.is_standin(cupy_module())


pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not _standin_active(),
        reason="counts launches on the CuPy stand-in: run with GRADFLOW_CUDA_STANDIN=1",
    ),
]

# name: (optimizer, hyperparameters, state arrays it zero-fills per parameter on its first step)
CASES = {
    "Adam": (gf.optim.Adam, {"lr": 1e-2, "weight_decay": 0.01}, 2),
    "AdamW": (gf.optim.AdamW, {"lr": 1e-2, "weight_decay": 0.1}, 2),
    "RMSprop": (gf.optim.RMSprop, {"lr": 1e-2, "alpha": 0.9}, 1),
    "RMSprop-centered_momentum": (
        gf.optim.RMSprop,
        {"lr": 1e-2, "alpha": 0.9, "centered": True, "momentum": 0.9, "weight_decay": 0.01},
        3,
    ),
    "SGD-momentum": (gf.optim.SGD, {"lr": 0.1, "momentum": 0.9}, 0),
    "SGD-nesterov": (
        gf.optim.SGD,
        {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        0,
    ),
}
STEPS = 6


def _model(dtype=np.float32, device="cuda"):
    gf.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    return model.to(device, gf.float64 if dtype == np.float64 else gf.float32)


def _batch(dtype=np.float32, device="cuda"):
    x = np.random.default_rng(1).standard_normal((5, 8)).astype(dtype)
    return gf.tensor(x, device=device)


def _train_step(model, optimizer, x):
    """zero_grad, forward, backward, then step: the counts of the step and of zero_grad."""
    with standin.counting() as zeroing:
        optimizer.zero_grad()
    loss = (model(x) ** 2).mean()
    loss.backward()
    with standin.counting() as stepping:
        optimizer.step()
    return stepping.counts, zeroing.counts


def _host(array):
    return array if isinstance(array, np.ndarray) else cupy_module().asnumpy(array)


def _assert_no_sync(counts):
    assert (counts.syncs, counts.d2h) == (0, 0), counts


@pytest.mark.parametrize("case", CASES)
def test_a_step_is_one_launch_and_at_most_one_upload(case):
    cls, hyper, zero_filled = CASES[case]
    model = _model()
    optimizer = cls(model.parameters(), **hyper)
    params = len(list(model.parameters()))
    x = _batch()
    for step in range(STEPS):
        counts, zeroing = _train_step(model, optimizer, x)
        _assert_no_sync(counts)
        _assert_no_sync(zeroing)
        assert zeroing.launches() == 0 and zeroing.h2d == 0, zeroing
        assert counts.raw_launches == 1, counts  # one fused launch: one group, one dtype
        assert counts.cublas == 0, counts
        if step == 0:  # the state is created (zero-filled), the tables uploaded
            assert counts.kernels == zero_filled * params, counts
            assert counts.h2d == 1, counts
        else:  # at most the tables again, when a gradient landed at a new address
            assert counts.kernels == 0, counts
            assert counts.h2d <= 1, counts


@pytest.mark.parametrize("case", CASES)
def test_a_step_over_arrays_that_stayed_put_uploads_nothing(case):
    cls, hyper, _ = CASES[case]
    model = _model()
    params = list(model.parameters())
    rng = np.random.default_rng(2)
    for p in params:
        p.grad = gf.tensor(rng.standard_normal(p.shape).astype(np.float32), device="cuda")
    optimizer = cls(params, **hyper)
    optimizer.step()
    for _ in range(3):
        with standin.counting() as c:
            optimizer.step()
        assert c.counts.h2d == 0, c.counts
        assert c.counts.launches() == c.counts.raw_launches == 1, c.counts
        _assert_no_sync(c.counts)


def test_zero_grad_in_place_does_not_sync():
    model = _model()
    optimizer = gf.optim.Adam(model.parameters())
    _train_step(model, optimizer, _batch())
    with standin.counting() as c:
        optimizer.zero_grad(set_to_none=False)
    _assert_no_sync(c.counts)
    assert c.counts.h2d == 0
    assert c.counts.kernels == len(list(model.parameters()))  # one fill each


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES)
def test_cuda_steps_match_the_cpu_optimizer(case, dtype):
    cls, hyper, _ = CASES[case]
    results = {}
    for device in ("cpu", "cuda"):
        model = _model(dtype, device)
        optimizer = cls(model.parameters(), **hyper)
        x = _batch(dtype, device)
        for _ in range(STEPS):
            _train_step(model, optimizer, x)
        results[device] = [p.detach().cpu().numpy() for p in model.parameters()]
    tol = {"rtol": 2e-5, "atol": 2e-6} if dtype == np.float32 else {"rtol": 1e-11, "atol": 1e-13}
    for ours, expected in zip(results["cuda"], results["cpu"]):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, expected, **tol)


@pytest.mark.parametrize("case", CASES)
def test_a_replaced_parameter_array_gets_a_new_table(case):
    # Module.to and load_state_dict replace p.array: the kept table must not be used for it.
    cls, hyper, _ = CASES[case]
    results = {}
    for device in ("cpu", "cuda"):
        model = _model(np.float64, device)
        optimizer = cls(model.parameters(), **hyper)
        x = _batch(np.float64, device)
        for _ in range(2):
            _train_step(model, optimizer, x)
        weight = model[0].weight
        old = weight.array
        kept = old.copy()
        weight.array = old * 0.5  # a new array (old stays alive, so at a new address)
        counts, _ = _train_step(model, optimizer, x)
        if device == "cuda":
            assert counts.h2d == 1 and counts.raw_launches == 1, counts
        np.testing.assert_array_equal(_host(old), _host(kept))  # the old array is left alone
        _train_step(model, optimizer, x)
        results[device] = [p.detach().cpu().numpy() for p in model.parameters()]
    for ours, expected in zip(results["cuda"], results["cpu"]):
        np.testing.assert_allclose(ours, expected, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("case", ["Adam", "RMSprop-centered_momentum", "SGD-nesterov"])
def test_groups_dtypes_and_step_counts_share_one_upload(case):
    # Two parameter groups, the second with a float64 parameter: three launches (group 0;
    # group 1 float32 and float64), their tables in one upload. A float32 parameter of group 1
    # misses step 3; on step 4 its Adam step count trails its group's, so that group's float32
    # parameters take two launches: still one upload.
    cls, hyper, _ = CASES[case]
    model = _model()
    rng = np.random.default_rng(3)
    extra32 = gf.tensor(rng.standard_normal(6).astype(np.float32), device="cuda")
    extra64 = gf.tensor(rng.standard_normal((2, 3)), device="cuda")
    groups = [
        {"params": list(model[0].parameters())},
        {"params": [*model[2].parameters(), extra32, extra64], "lr": hyper["lr"] / 2},
    ]
    for p in (extra32, extra64):
        p.requires_grad_()
    optimizer = cls(groups, **hyper)
    x = _batch()
    for step in (1, 2, 3, 4):
        optimizer.zero_grad()
        (model(x) ** 2).mean().backward()
        for p in (extra32, extra64):
            if p is extra64 or step != 3:
                p.grad = gf.tensor(rng.standard_normal(p.shape).astype(p.dtype), device="cuda")
        with standin.counting() as c:
            optimizer.step()
        launches = 4 if case == "Adam" and step == 4 else 3
        assert c.counts.raw_launches == launches, c.counts
        assert c.counts.h2d <= 1, c.counts
        _assert_no_sync(c.counts)
    if "step" in optimizer.state[extra64]:  # SGD keeps no step count
        assert optimizer.state[extra32]["step"] == 3
        assert optimizer.state[extra64]["step"] == 4


def test_groups_before_a_failing_group_are_still_updated():
    # The launches of a step run when its last group is done, or when a group raises: the
    # groups before it are updated, as they were when each group launched on its own.
    model = _model()
    first, second = list(model[0].parameters()), list(model[2].parameters())
    optimizer = gf.optim.Adam([{"params": first}, {"params": second}], lr=0.1)
    for p in first:
        p.grad = gf.tensor(np.ones(p.shape, np.float32), device="cuda")
    second[0].grad = gf.tensor(np.ones(3, np.float32), device="cuda")  # the wrong shape
    before = [_host(p.array).copy() for p in first]
    with pytest.raises(ValueError, match=r"Adam.step: a parameter of shape \(4, 16\) has a grad"):
        optimizer.step()
    for p, old in zip(first, before):
        np.testing.assert_allclose(_host(p.array), old - 0.1, rtol=1e-6, atol=1e-6)
