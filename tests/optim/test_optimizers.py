"""gradflow.optim optimizers: closed-form updates, torch parity, the kernel route, state dicts."""

import numpy as np
import pytest

import gradflow as gf
from gradflow.nn.parameter import Parameter
from gradflow.optim import SGD, Adam, AdamW, RMSprop, _arrays
from gradflow.testing.emulation import route_kernels, unavailable_reason

SHAPES = [(3, 4), (5,), (2, 1, 3), (300,)]


# ---- closed forms, written out per step ----------------------------------------------------
def sgd_reference(
    p, grads, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False
):
    buf = None
    for g in grads:
        d = (-g if maximize else g) + weight_decay * p
        if momentum:
            buf = d if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p


def adam_reference(
    p,
    grads,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    amsgrad=False,
    maximize=False,
    decoupled=False,
):
    beta1, beta2 = betas
    m = v = v_max = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        v_max = np.maximum(v_max, v)
        m_hat = m / (1 - beta1**t)
        v_hat = (v_max if amsgrad else v) / (1 - beta2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def adamw_reference(p, grads, weight_decay=1e-2, **kwargs):
    return adam_reference(p, grads, weight_decay=weight_decay, decoupled=True, **kwargs)


def rmsprop_reference(
    p,
    grads,
    lr=1e-2,
    alpha=0.99,
    eps=1e-8,
    weight_decay=0.0,
    momentum=0.0,
    centered=False,
    maximize=False,
):
    square_avg = grad_avg = buf = np.zeros_like(p)
    for g in grads:
        g = (-g if maximize else g) + weight_decay * p
        square_avg = alpha * square_avg + (1 - alpha) * g**2
        if centered:
            grad_avg = alpha * grad_avg + (1 - alpha) * g
            avg = np.sqrt(square_avg - grad_avg**2) + eps
        else:
            avg = np.sqrt(square_avg) + eps
        if momentum > 0:
            buf = momentum * buf + g / avg
            p = p - lr * buf
        else:
            p = p - lr * g / avg
    return p


OPTIMIZERS = {
    "SGD": (SGD, sgd_reference),
    "Adam": (Adam, adam_reference),
    "AdamW": (AdamW, adamw_reference),
    "RMSprop": (RMSprop, rmsprop_reference),
}
CASES = {
    "SGD-plain": ("SGD", {"lr": 0.1}),
    "SGD-weight_decay": ("SGD", {"lr": 0.1, "weight_decay": 0.05}),
    "SGD-momentum": ("SGD", {"lr": 0.1, "momentum": 0.9}),
    "SGD-dampening": ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    "SGD-nesterov": ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.02}),
    "SGD-maximize": ("SGD", {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.01, "maximize": True}),
    "Adam-defaults": ("Adam", {}),
    "Adam-betas": ("Adam", {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-6}),
    "Adam-weight_decay": ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    "Adam-amsgrad": ("Adam", {"lr": 0.01, "weight_decay": 0.05, "amsgrad": True}),
    "Adam-maximize": ("Adam", {"lr": 0.01, "weight_decay": 0.1, "maximize": True}),
    "AdamW-defaults": ("AdamW", {}),
    "AdamW-weight_decay": ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    "AdamW-amsgrad": ("AdamW", {"lr": 0.01, "amsgrad": True}),
    "AdamW-maximize": ("AdamW", {"lr": 0.01, "maximize": True}),
    "RMSprop-defaults": ("RMSprop", {}),
    "RMSprop-weight_decay": ("RMSprop", {"lr": 0.01, "alpha": 0.9, "weight_decay": 0.1}),
    "RMSprop-momentum": ("RMSprop", {"lr": 0.01, "momentum": 0.9}),
    "RMSprop-centered": ("RMSprop", {"lr": 0.01, "centered": True, "eps": 1e-6}),
    "RMSprop-centered_momentum": (
        "RMSprop",
        {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.01},
    ),
    "RMSprop-maximize": ("RMSprop", {"lr": 0.01, "momentum": 0.3, "maximize": True}),
}
# What kernels/optim.cu runs: everything but SGD/Adam's maximize and amsgrad (RMSprop's
# kernel covers all of its options).
KERNEL_CASES = [
    name
    for name, (kind, kw) in CASES.items()
    if kind == "RMSprop" or not (kw.get("maximize") or kw.get("amsgrad"))
]


def problem(dtype=np.float64, steps=4, seed=0, shapes=SHAPES):
    """Initial parameter arrays and `steps` lists of gradients, one per parameter."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]
    return arrays, grads


def leaves(arrays):
    return [gf.tensor(a.copy(), requires_grad=True) for a in arrays]


def run_steps(opt, params, grads):
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = gf.tensor(g.copy())
        opt.step()


def optimize(case, arrays, grads, **overrides):
    """The parameters (arrays) after one optimizer of `case` took a step per gradient list."""
    kind, kwargs = CASES[case]
    params = leaves(arrays)
    opt = OPTIMIZERS[kind][0](params, **{**kwargs, **overrides})
    run_steps(opt, params, grads)
    return [p.array for p in params]


# ---- the update rules ----------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_step_matches_closed_form(case):
    kind, kwargs = CASES[case]
    arrays, grads = problem()
    got = optimize(case, arrays, grads)
    reference = OPTIMIZERS[kind][1]
    for i, p in enumerate(got):
        expected = reference(arrays[i], [g[i] for g in grads], **kwargs)
        np.testing.assert_allclose(p, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "case", ["SGD-nesterov", "Adam-amsgrad", "AdamW-defaults", "RMSprop-centered_momentum"]
)
def test_float32_follows_the_float64_closed_form(case):
    kind, kwargs = CASES[case]
    arrays, grads = problem(np.float32)
    got = optimize(case, arrays, grads)
    reference = OPTIMIZERS[kind][1]
    for i, p in enumerate(got):
        assert p.dtype == np.float32
        expected = reference(
            arrays[i].astype(np.float64), [g[i].astype(np.float64) for g in grads], **kwargs
        )
        np.testing.assert_allclose(p, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", ["SGD-dampening", "Adam-amsgrad", "RMSprop-centered_momentum"])
def test_large_and_non_contiguous_parameters_update_in_place(case, monkeypatch):
    # A tiny piece size makes the small test arrays go through several pieces, odd tail too.
    monkeypatch.setattr(_arrays, "CHUNK", 7)
    kind, kwargs = CASES[case]
    arrays, grads = problem(shapes=[(5, 9), (40,), (3,)])
    base = arrays[0].T.copy()  # parameter 0 is a transposed (non-contiguous) view of `base`
    params = [gf.Tensor._wrap(base.T, requires_grad=True), *leaves(arrays[1:])]
    opt = OPTIMIZERS[kind][0](params, **kwargs)
    run_steps(opt, params, grads)
    reference = OPTIMIZERS[kind][1]
    assert params[0].array.base is base
    for i, p in enumerate(params):
        expected = reference(arrays[i], [g[i] for g in grads], **kwargs)
        np.testing.assert_allclose(p.array, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "case", ["SGD-nesterov", "Adam-weight_decay", "AdamW-amsgrad", "RMSprop-centered_momentum"]
)
def test_step_on_each_device_matches_closed_form(case, device):
    # On cuda, SGD, Adam and RMSprop run the fused kernels; amsgrad the CuPy array path.
    kind, kwargs = CASES[case]
    cls, reference = OPTIMIZERS[kind]
    arrays, grads = problem(steps=3)
    params = [gf.tensor(a, device=device, requires_grad=True) for a in arrays]
    opt = cls(params, **kwargs)
    for step in grads:
        for p, g in zip(params, step):
            p.grad = gf.tensor(g, device=device)
        opt.step()
    for i, p in enumerate(params):
        assert p.device == device
        expected = reference(arrays[i], [g[i] for g in grads], **kwargs)
        np.testing.assert_allclose(p.detach().cpu().numpy(), expected, rtol=1e-10, atol=1e-12)


# ---- parity with PyTorch ------------------------------------------------------------------
def torch_optimize(torch, case, arrays, grads, groups=None):
    kind, kwargs = CASES[case]
    params = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    spec = params if groups is None else [{**g, "params": params[g["params"]]} for g in groups]
    opt = getattr(torch.optim, kind)(spec, **kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g)
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize("case", CASES)
def test_matches_torch(case):
    torch = pytest.importorskip("torch")
    arrays, grads = problem(steps=6)
    for ours, theirs in zip(
        optimize(case, arrays, grads), torch_optimize(torch, case, arrays, grads)
    ):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "case", ["SGD-nesterov", "Adam-weight_decay", "AdamW-amsgrad", "RMSprop-centered"]
)
def test_param_groups_with_their_own_lr_match_torch(case):
    torch = pytest.importorskip("torch")
    kind, kwargs = CASES[case]
    arrays, grads = problem(steps=5)
    groups = [{"params": slice(0, 2), "lr": 0.3}, {"params": slice(2, 4)}]
    params = leaves(arrays)
    ours = [{**g, "params": params[g["params"]]} for g in groups]
    opt = OPTIMIZERS[kind][0](ours, **kwargs)
    assert [g["lr"] for g in opt.param_groups] == [0.3, kwargs.get("lr", opt.defaults["lr"])]
    run_steps(opt, params, grads)
    theirs = torch_optimize(torch, case, arrays, grads, groups)
    for p, expected in zip(params, theirs):
        np.testing.assert_allclose(p.array, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_defaults_are_pytorchs(kind):
    torch = pytest.importorskip("torch")
    ours = OPTIMIZERS[kind][0]([gf.zeros(2, requires_grad=True)]).defaults
    theirs = getattr(torch.optim, kind)([torch.zeros(2, requires_grad=True)]).defaults
    assert ours == {k: theirs[k] for k in ours}


# ---- the kernel route ---------------------------------------------------------------------
needs_emulation = pytest.mark.skipif(
    unavailable_reason() is not None, reason=str(unavailable_reason())
)


def count_launches(backend):
    """Wrap the emulation backend's launch to record the kernels it runs."""
    launched = []
    launch = backend.launch

    def counting(family, dtype, kernel, *args):
        launched.append((kernel, np.dtype(dtype).name))
        return launch(family, dtype, kernel, *args)

    backend.launch = counting
    return launched


@needs_emulation
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", KERNEL_CASES)
def test_kernel_route_matches_array_path(case, dtype):
    arrays, grads = problem(dtype, steps=3)
    expected = optimize(case, arrays, grads)
    with route_kernels(max_grid_blocks=2) as backend:
        launched = count_launches(backend)
        got = optimize(case, arrays, grads)
    kernel = {"SGD": "sgd_step", "RMSprop": "rmsprop_step"}.get(case.split("-")[0], "adam_step")
    assert launched == [(kernel, np.dtype(dtype).name)] * 3  # one launch per group per step
    tol = {"rtol": 2e-6, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-13, "atol": 1e-14}
    for ours, ref in zip(got, expected):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, ref, **tol)


@needs_emulation
@pytest.mark.parametrize("case", ["SGD-nesterov", "AdamW-weight_decay", "Adam-amsgrad"])
def test_kernel_route_groups_by_dtype_and_skips_what_it_cannot_run(case):
    # float32 and float64 parameters, one without a grad, one non-contiguous, one float16.
    arrays, grads = problem(steps=3, shapes=[(4, 3), (7,), (6,), (3, 5), (9,)])
    dtypes = [np.float32, np.float64, np.float32, np.float64, np.float16]
    arrays = [a.astype(d) for a, d in zip(arrays, dtypes)]
    grads = [[g.astype(d) for g, d in zip(step, dtypes)] for step in grads]
    for step in grads:
        step[2] = None

    def run():
        params = leaves(arrays)
        params[3] = gf.Tensor._wrap(arrays[3].T.copy().T, requires_grad=True)
        kind, kwargs = CASES[case]
        opt = OPTIMIZERS[kind][0](params, **kwargs)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = None if g is None else gf.tensor(g.copy())
            opt.step()
        return [p.array for p in params], opt

    expected, _ = run()
    with route_kernels(max_grid_blocks=2) as backend:
        launched = count_launches(backend)
        got, opt = run()
    if case == "Adam-amsgrad":
        assert launched == []
    else:
        kernel = {"SGD": "sgd_step", "RMSprop": "rmsprop_step"}.get(case.split("-")[0], "adam_step")
        assert launched == [(kernel, "float32"), (kernel, "float64")] * 3
    np.testing.assert_array_equal(got[2], arrays[2])
    assert len(opt.state) == 4 and all(p.grad is not None for p in opt.state)
    for ours, ref, dtype in zip(got, expected, dtypes):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, ref, rtol=2e-6, atol=1e-6)


# ---- state dicts --------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_state_dict_round_trip_continues_like_an_uninterrupted_run(case):
    kind, kwargs = CASES[case]
    cls = OPTIMIZERS[kind][0]
    arrays, grads = problem(steps=5)
    params = leaves(arrays)
    opt = cls(params, **kwargs)
    run_steps(opt, params, grads[:2])
    saved = opt.state_dict()
    copies = leaves([p.array for p in params])
    resumed = cls(copies, **{**kwargs, "lr": 123.0})  # the hyperparameters come from `saved`
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    run_steps(opt, params, grads[2:])
    run_steps(resumed, copies, grads[2:])
    for p, q in zip(params, copies):
        np.testing.assert_array_equal(p.array, q.array)


def test_state_dict_layout_is_pytorchs_and_a_snapshot():
    arrays, grads = problem(steps=2)
    params = leaves(arrays)
    opt = Adam([{"params": params[:2]}, {"params": params[2:], "lr": 0.1}], amsgrad=True)
    for step in grads:
        for i, p in enumerate(params):
            p.grad = None if i == 1 else gf.tensor(step[i])
        opt.step()
    saved = opt.state_dict()
    assert [g["params"] for g in saved["param_groups"]] == [[0, 1], [2, 3]]
    assert saved["param_groups"][1]["lr"] == 0.1
    assert saved["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sorted(saved["state"]) == [0, 2, 3]  # parameter 1 never had a grad
    entry = saved["state"][0]
    assert sorted(entry) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]
    assert entry["step"] == 2
    assert isinstance(entry["exp_avg"], gf.Tensor)
    before = entry["exp_avg"].array.copy()
    run_steps(opt, params, grads)
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"].array, before)
    assert opt.state[params[0]]["step"] == 4


def test_load_state_dict_copies_the_state_it_is_given():
    params = leaves(problem()[0])
    opt = SGD(params, lr=0.1, momentum=0.9)
    run_steps(opt, params, problem()[1][:1])
    saved = opt.state_dict()
    other = SGD(leaves([p.array for p in params]), lr=0.1, momentum=0.9)
    other.load_state_dict(saved)
    buf = saved["state"][0]["momentum_buffer"]
    assert other.state[other.param_groups[0]["params"][0]]["momentum_buffer"].array is not buf.array


def test_load_state_dict_errors():
    params = leaves(problem()[0])
    saved = Adam(params).state_dict()
    with pytest.raises(
        ValueError,
        match=r"state dict has 1 parameter group\(s\) but this "
        r"optimizer has 2; build the optimizer with the same parameter groups",
    ):
        Adam([{"params": params[:2]}, {"params": params[2:]}]).load_state_dict(saved)
    with pytest.raises(
        ValueError,
        match=r"parameter group 0 of the state dict has 4 parameter"
        r"\(s\) but this optimizer's group 0 has 3",
    ):
        Adam(params[:3]).load_state_dict(saved)
    with pytest.raises(
        ValueError,
        match=r"Adam.load_state_dict: parameter group 0 of the state "
        r"dict has no \['amsgrad', 'betas', 'decoupled_weight_decay', 'eps'\]; was "
        r"it saved from another kind of optimizer than Adam\?",
    ):
        Adam(params).load_state_dict(SGD(params).state_dict())
    with pytest.raises(
        ValueError,
        match=r"expected the dict returned by state_dict\(\), with "
        r"keys 'state' and 'param_groups'",
    ):
        Adam(params).load_state_dict({"state": {}})
    stepped = Adam(params)
    run_steps(stepped, params, problem()[1][:1])
    other_model = leaves([np.zeros((4, 3)), *problem()[0][1:]])
    with pytest.raises(
        ValueError,
        match=r"state 'exp_avg' of parameter 0 has shape \(3, 4\) but "
        r"the parameter has shape \(4, 3\); the state dict belongs to another "
        r"model",
    ):
        Adam(other_model).load_state_dict(stepped.state_dict())
    bad = stepped.state_dict()
    bad["param_groups"][0]["lr"] = -1.0
    with pytest.raises(ValueError, match=r"Adam: invalid learning rate lr=-1.0"):
        Adam(params).load_state_dict(bad)


# ---- the rest of the API ------------------------------------------------------------------
def test_zero_grad():
    params = leaves(problem()[0])
    opt = SGD(params)
    for p in params:
        p.grad = gf.ones(p.shape, dtype=gf.float64)
    arrays = [p.grad.array for p in params]
    opt.zero_grad(set_to_none=False)
    for p, a in zip(params, arrays):
        assert p.grad.array is a and not a.any()
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_parameters_without_grad_are_skipped_and_get_no_state():
    params = leaves(problem()[0])
    opt = Adam(params)
    params[0].grad = gf.ones((3, 4), dtype=gf.float64)
    opt.step()
    assert list(opt.state) == [params[0]]
    np.testing.assert_array_equal(params[1].array, problem()[0][1])


def test_step_updates_a_modules_parameter_array_in_place():
    weight = Parameter(gf.tensor(np.ones((2, 3))))
    array = weight.array
    opt = SGD([weight], lr=0.5, momentum=0.9)
    (weight * 2.0).sum().backward()
    opt.step()
    assert weight.array is array
    np.testing.assert_allclose(array, 0.0)


def test_a_graph_that_saved_a_parameter_refuses_backward_after_a_step():
    w = gf.tensor(np.ones(3), requires_grad=True)
    loss = (w * w).sum()
    w.grad = gf.ones(3, dtype=gf.float64)
    SGD([w], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_closure_runs_with_grad_enabled_and_its_loss_is_returned():
    w = gf.tensor(np.array([1.0, -2.0]), requires_grad=True)
    opt = SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with gf.no_grad():
        loss = opt.step(closure)
    assert float(loss.item()) == 5.0
    np.testing.assert_allclose(w.array, [0.5, -1.0])


def test_add_param_group_takes_defaults_and_overrides():
    a, b = leaves([np.ones(2), np.ones(3)])
    opt = SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert opt.param_groups[1]["params"] == [b]
    assert (opt.param_groups[1]["lr"], opt.param_groups[1]["momentum"]) == (0.01, 0.9)
    with pytest.raises(ValueError, match="SGD: invalid learning rate lr=-1"):
        opt.add_param_group({"params": leaves([np.ones(1)]), "lr": -1})
    assert len(opt.param_groups) == 2
    assert "lr: 0.01" in repr(opt)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda p: SGD([]), ValueError, r"optimizer got an empty parameter list; pass the tensors"),
        (
            lambda p: SGD(p[0]),
            TypeError,
            r"SGD: params should be an iterable of Tensors or of "
            r"dicts \(parameter groups\), but got a single Tensor; wrap it in a list",
        ),
        (lambda p: SGD(set(p)), TypeError, r"parameters must be in an ordered collection"),
        (
            lambda p: SGD([np.ones(3)]),
            TypeError,
            r"SGD: parameter 0 of group 0 is a ndarray; an "
            r"optimizer updates Tensors",
        ),
        (
            lambda p: SGD([p[0] * 2.0]),
            ValueError,
            r"SGD: can't optimize a non-leaf Tensor "
            r"\(parameter 0 of group 0 was computed by Mul\); optimize the leaf tensors",
        ),
        (
            lambda p: SGD([gf.tensor([1, 2])]),
            TypeError,
            r"SGD: parameter 0 of group 0 has dtype "
            r"int64; only floating-point tensors can be optimized \(convert with \.float\(\)",
        ),
        (
            lambda p: SGD([{"params": p[:1]}, {"params": p}]),
            ValueError,
            r"SGD: some parameters "
            r"appear in more than one parameter group; give each parameter to one group only",
        ),
        (
            lambda p: SGD([p[0], p[0]]),
            ValueError,
            r"parameter group 0 lists a parameter more "
            r"than once",
        ),
        (
            lambda p: SGD(p, lr=-0.1),
            ValueError,
            r"SGD: invalid learning rate lr=-0.1; it must be "
            r">= 0, e.g. lr=0.01",
        ),
        (lambda p: Adam(p, lr=float("nan")), ValueError, r"Adam: invalid learning rate lr=nan"),
        (
            lambda p: SGD(p, momentum=-0.5),
            ValueError,
            r"SGD: invalid momentum=-0.5; it must be "
            r">= 0",
        ),
        (lambda p: SGD(p, weight_decay=-1e-4), ValueError, r"SGD: invalid weight_decay=-0.0001"),
        (
            lambda p: SGD(p, nesterov=True),
            ValueError,
            r"SGD: Nesterov momentum requires a "
            r"momentum and zero dampening \(got momentum=0.0, dampening=0.0\); pass e.g. "
            r"momentum=0.9 with dampening=0, or nesterov=False",
        ),
        (
            lambda p: SGD(p, momentum=0.9, dampening=0.1, nesterov=True),
            ValueError,
            r"Nesterov momentum requires a momentum and zero dampening \(got momentum=0.9, "
            r"dampening=0.1\)",
        ),
        (
            lambda p: Adam(p, betas=(1.0, 0.999)),
            ValueError,
            r"Adam: invalid beta parameter at "
            r"index 0: 1.0; each beta must be in \[0, 1\), e.g. betas=\(0.9, 0.999\)",
        ),
        (
            lambda p: AdamW(p, betas=(0.9, -0.1)),
            ValueError,
            r"AdamW: invalid beta parameter at "
            r"index 1: -0.1",
        ),
        (lambda p: Adam(p, betas=0.9), ValueError, r"betas must be a pair \(beta1, beta2\)"),
        (
            lambda p: Adam(p, eps=-1e-8),
            ValueError,
            r"Adam: invalid epsilon eps=-1e-08; it must "
            r"be >= 0",
        ),
        (lambda p: RMSprop(p, eps=-1.0), ValueError, r"RMSprop: invalid epsilon eps=-1.0"),
        (
            lambda p: RMSprop(p, alpha=-0.9),
            ValueError,
            r"RMSprop: invalid alpha=-0.9; it must "
            r"be >= 0",
        ),
        (lambda p: RMSprop(p, momentum=-1), ValueError, r"RMSprop: invalid momentum=-1"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(make, error, message):
    params = leaves(problem()[0])
    with pytest.raises(error, match=message):
        make(params)


def test_a_grad_of_the_wrong_shape_is_refused():
    w = gf.tensor(np.ones((3, 4)), requires_grad=True)
    w.grad = gf.ones((4, 3), dtype=gf.float64)
    with pytest.raises(
        ValueError,
        match=r"Adam.step: a parameter of shape \(3, 4\) has a grad "
        r"of shape \(4, 3\)",
    ):
        Adam([w]).step()
