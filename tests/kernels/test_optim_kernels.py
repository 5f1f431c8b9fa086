"""kernels/optim.cu through the multi-tensor launchers on the CPU emulation."""

import numpy as np
import pytest
from kernel_reference import TOLERANCES

from gradflow.kernels.optim import (
    KernelLaunches,
    TableCache,
    adam_step_multi,
    rmsprop_step_multi,
    sgd_step_multi,
)
from gradflow.testing.emulation import EmulationBackend

# Tensor sizes of one group: an empty tensor, a scalar-sized one, block-sized and odd ones; the
# total (2,572) takes several rounds of the grid-stride loop over the 4-block cap.
SIZES = [(3, 5), (0,), (1,), (256,), (7, 33), (2000,)]


def _group(dtype, seed):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SIZES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SIZES] for _ in range(3)]
    return params, grads


def _sgd_reference(p, grads, lr, momentum, dampening, nesterov, weight_decay):
    p = p.astype(np.float64)
    buf = None
    for g in grads:
        d = g.astype(np.float64) + weight_decay * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p, buf


SGD_CONFIGS = [
    {"momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0},
    {"momentum": 0.9, "dampening": 0.1, "nesterov": False, "weight_decay": 0.01},
    {"momentum": 0.8, "dampening": 0.0, "nesterov": True, "weight_decay": 0.05},
]


@pytest.mark.parametrize("config", SGD_CONFIGS, ids=["plain", "momentum", "nesterov"])
def test_sgd_steps_match_reference(emu, dtype, config):
    params, grads = _group(dtype, 0)
    start = [p.copy() for p in params]
    bufs = [np.empty_like(p) for p in params] if config["momentum"] else None
    for step, step_grads in enumerate(grads):
        sgd_step_multi(
            params, step_grads, bufs, lr=0.1, first_step=step == 0, backend=emu, **config
        )
    for i, p in enumerate(params):
        expected, buf = _sgd_reference(start[i], [g[i] for g in grads], 0.1, **config)
        np.testing.assert_allclose(p, expected, **TOLERANCES[dtype])
        if bufs is not None:
            np.testing.assert_allclose(bufs[i], buf, **TOLERANCES[dtype])


def _adam_reference(p, grads, lr, beta1, beta2, eps, weight_decay, decoupled):
    p = p.astype(np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for step, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1**step), v / (1 - beta2**step)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p, m, v


@pytest.mark.parametrize("decoupled", [False, True], ids=["adam", "adamw"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_steps_match_reference(emu, dtype, decoupled, weight_decay):
    params, grads = _group(dtype, 1)
    start = [p.copy() for p in params]
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]
    hyper = {"lr": 0.01, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "weight_decay": weight_decay}
    for step, step_grads in enumerate(grads, start=1):
        adam_step_multi(
            params, step_grads, ms, vs, step=step, decoupled=decoupled, backend=emu, **hyper
        )
    tol = {"rtol": TOLERANCES[dtype]["rtol"] * 10, "atol": TOLERANCES[dtype]["atol"] * 10}
    for i, p in enumerate(params):
        expected, m, v = _adam_reference(
            start[i], [g[i] for g in grads], decoupled=decoupled, **hyper
        )
        np.testing.assert_allclose(p, expected, **tol)
        np.testing.assert_allclose(ms[i], m, **tol)
        np.testing.assert_allclose(vs[i], v, **tol)


def _rmsprop_reference(p, grads, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    p = p.astype(np.float64)
    sq, ga, buf = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        g = (-1 if maximize else 1) * g.astype(np.float64) + weight_decay * p
        sq = alpha * sq + (1 - alpha) * g * g
        if centered:
            ga = ga + (1 - alpha) * (g - ga)
            avg = np.sqrt(sq - ga * ga) + eps
        else:
            avg = np.sqrt(sq) + eps
        if momentum:
            buf = momentum * buf + g / avg
            p = p - lr * buf
        else:
            p = p - lr * g / avg
    return p, sq, ga, buf


RMSPROP_CONFIGS = {
    "plain": {"weight_decay": 0.0, "momentum": 0.0, "centered": False, "maximize": False},
    "decay_maximize": {"weight_decay": 0.1, "momentum": 0.0, "centered": False, "maximize": True},
    "centered": {"weight_decay": 0.0, "momentum": 0.0, "centered": True, "maximize": False},
    "momentum": {"weight_decay": 0.05, "momentum": 0.9, "centered": False, "maximize": False},
    "centered_momentum": {
        "weight_decay": 0.01,
        "momentum": 0.5,
        "centered": True,
        "maximize": False,
    },
}


@pytest.mark.parametrize("config", RMSPROP_CONFIGS.values(), ids=RMSPROP_CONFIGS.keys())
def test_rmsprop_steps_match_reference(emu, dtype, config):
    params, grads = _group(dtype, 3)
    start = [p.copy() for p in params]
    square_avgs = [np.zeros_like(p) for p in params]
    grad_avgs = [np.zeros_like(p) for p in params] if config["centered"] else None
    bufs = [np.zeros_like(p) for p in params] if config["momentum"] else None
    hyper = {"lr": 0.01, "alpha": 0.9, "eps": 1e-6}
    for step_grads in grads:
        rmsprop_step_multi(
            params,
            step_grads,
            square_avgs,
            grad_avgs,
            bufs,
            backend=emu,
            **hyper,
            weight_decay=config["weight_decay"],
            momentum=config["momentum"],
            maximize=config["maximize"],
        )
    tol = {"rtol": TOLERANCES[dtype]["rtol"] * 10, "atol": TOLERANCES[dtype]["atol"] * 10}
    for i, p in enumerate(params):
        expected, sq, ga, buf = _rmsprop_reference(
            start[i], [g[i] for g in grads], **hyper, **config
        )
        np.testing.assert_allclose(p, expected, **tol)
        np.testing.assert_allclose(square_avgs[i], sq, **tol)
        if grad_avgs is not None:
            np.testing.assert_allclose(grad_avgs[i], ga, **tol)
        if bufs is not None:
            np.testing.assert_allclose(bufs[i], buf, **tol)


@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw", "rmsprop"])
def test_optimizers_match_pytorch(emu, kind):
    torch = pytest.importorskip("torch")
    params, grads = _group(np.float64, 2)
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    if kind == "sgd":
        hyper = {
            "lr": 0.05,
            "momentum": 0.9,
            "dampening": 0.0,
            "nesterov": True,
            "weight_decay": 0.01,
        }
        opt = torch.optim.SGD(tparams, **hyper)
        bufs = [np.empty_like(p) for p in params]
    elif kind == "rmsprop":
        hyper = {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.01, "momentum": 0.5}
        opt = torch.optim.RMSprop(tparams, centered=True, **hyper)
        state = [[np.zeros_like(p) for p in params] for _ in range(3)]
    else:
        hyper = {"lr": 0.01, "weight_decay": 0.1}
        opt = (torch.optim.Adam if kind == "adam" else torch.optim.AdamW)(tparams, **hyper)
        ms = [np.zeros_like(p) for p in params]
        vs = [np.zeros_like(p) for p in params]
    for step, step_grads in enumerate(grads, start=1):
        for tp, g in zip(tparams, step_grads):
            tp.grad = torch.tensor(g)
        opt.step()
        if kind == "sgd":
            sgd_step_multi(params, step_grads, bufs, first_step=step == 1, backend=emu, **hyper)
        elif kind == "rmsprop":
            rmsprop_step_multi(params, step_grads, *state, backend=emu, **hyper)
        else:
            adam_step_multi(
                params,
                step_grads,
                ms,
                vs,
                step=step,
                decoupled=kind == "adamw",
                backend=emu,
                **hyper,
            )
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_empty_group_is_a_no_op(emu):
    sgd_step_multi([], [], None, lr=0.1, backend=emu)
    adam_step_multi([], [], [], [], lr=0.1, step=1, backend=emu)
    rmsprop_step_multi([], [], [], lr=0.1, backend=emu)


def test_optim_errors(emu):
    p = [np.zeros(4), np.zeros(3)]
    with pytest.raises(
        ValueError, match=r"sgd_step_multi: 'grads' has 1 arrays but 'params' has 2"
    ):
        sgd_step_multi(p, p[:1], None, lr=0.1, backend=emu)
    with pytest.raises(ValueError, match=r"sgd_step_multi: nesterov needs momentum > 0 and "):
        sgd_step_multi(p, p, None, lr=0.1, nesterov=True, backend=emu)
    with pytest.raises(ValueError, match=r"sgd_step_multi: momentum=0.9 needs momentum buffers"):
        sgd_step_multi(p, p, None, lr=0.1, momentum=0.9, backend=emu)
    with pytest.raises(
        ValueError,
        match=r"sgd_step_multi: argument 'grads\[1\]' has shape \(4,\) "
        r"and dtype float64; expected shape \(3,\) \(the shape of 'params\[1\]'\)",
    ):
        sgd_step_multi(p, [p[0], p[0]], None, lr=0.1, backend=emu)
    with pytest.raises(
        ValueError,
        match=r"sgd_step_multi: argument 'params\[0\]' \(shape \(4,\) "
        r"and dtype float64\) is not C-contiguous; it is updated in place",
    ):
        sgd_step_multi([np.zeros(8)[::2]], [np.zeros(4)], None, lr=0.1, backend=emu)
    with pytest.raises(
        TypeError,
        match=r"adam_step_multi: argument 'exp_avgs\[0\]' has shape "
        r"\(4,\) and dtype float32; expected dtype float64 like 'params\[0\]'",
    ):
        adam_step_multi(p, p, [np.zeros(4, np.float32), p[1]], p, lr=0.1, step=1, backend=emu)
    with pytest.raises(ValueError, match=r"adam_step_multi: step must be >= 1"):
        adam_step_multi(p, p, p, p, lr=0.1, step=0, backend=emu)
    with pytest.raises(
        ValueError, match=r"rmsprop_step_multi: momentum=0.5 needs momentum buffers in 'bufs'"
    ):
        rmsprop_step_multi(p, p, p, lr=0.1, momentum=0.5, backend=emu)
    with pytest.raises(
        ValueError, match=r"rmsprop_step_multi: 'grad_avgs' has 1 arrays but 'params' has 2"
    ):
        rmsprop_step_multi(p, p, p, p[:1], lr=0.1, backend=emu)
    with pytest.raises(ValueError, match=r"TableCache: capacity must be >= 1, got 0"):
        TableCache(0)


# ---- the group table: one upload per launch, none while the arrays stay put ----------------
class UploadCounting(EmulationBackend):
    """The emulation, counting table uploads and keeping what each one uploaded."""

    def __init__(self) -> None:
        super().__init__(max_grid_blocks=4)
        self.uploads = []

    def upload(self, host, device):
        self.uploads.append(host.copy())
        return super().upload(host, device)


@pytest.fixture
def counting_emu(emu):
    return UploadCounting()


def test_a_launch_uploads_one_table_in_the_documented_layout(counting_emu):
    params, grads = _group(np.float64, 4)
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]
    adam_step_multi(params, grads[0], ms, vs, lr=0.01, step=1, backend=counting_emu)
    [table] = counting_emu.uploads
    count = len(SIZES)
    assert table.dtype == np.uint64 and table.shape == (1 + 5 * count,)
    np.testing.assert_array_equal(table[: count + 1], np.cumsum([0, *(p.size for p in params)]))
    for section, arrays in enumerate((params, grads[0], ms, vs)):
        start = count + 1 + section * count
        expected = [a.ctypes.data for a in arrays]
        assert table[start : start + count].tolist() == expected
    # Without a cache every call uploads its table again; SGD without momentum has zeros for
    # its unread momentum-buffer section.
    sgd_step_multi(params, grads[1], None, lr=0.1, backend=counting_emu)
    sgd_step_multi(params, grads[1], None, lr=0.1, backend=counting_emu)
    assert len(counting_emu.uploads) == 3
    assert not counting_emu.uploads[-1][1 + 3 * count :].any()


def test_cached_table_serves_later_steps_that_change_only_scalars(counting_emu, dtype):
    # Three Adam steps over the same arrays: one upload; the step count and the bias
    # corrections travel as kernel arguments, so the reused table gives the reference result.
    params, grads = _group(dtype, 5)
    start = [p.copy() for p in params]
    step_grads = [g.copy() for g in grads[0]]
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]
    tables = TableCache()
    hyper = {"lr": 0.01, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "weight_decay": 0.1}
    for step, source in enumerate(grads, start=1):
        for g, new in zip(step_grads, source):
            g[...] = new  # new values, same arrays
        adam_step_multi(
            params, step_grads, ms, vs, step=step, tables=tables, backend=counting_emu, **hyper
        )
    assert len(counting_emu.uploads) == 1 and len(tables) == 1
    tol = {"rtol": TOLERANCES[dtype]["rtol"] * 10, "atol": TOLERANCES[dtype]["atol"] * 10}
    for i, p in enumerate(params):
        expected, _, _ = _adam_reference(start[i], [g[i] for g in grads], decoupled=False, **hyper)
        np.testing.assert_allclose(p, expected, **tol)


def test_table_is_rebuilt_when_an_array_moves_or_changes_size(counting_emu):
    tables = TableCache()
    rng = np.random.default_rng(6)
    p = [rng.standard_normal(5), rng.standard_normal(4)]
    g = [rng.standard_normal(5), rng.standard_normal(4)]
    sgd_step_multi(p, g, None, lr=0.5, tables=tables, backend=counting_emu)
    sgd_step_multi(p, g, None, lr=0.5, tables=tables, backend=counting_emu)
    assert len(counting_emu.uploads) == 1
    # A replaced parameter array (a new address): a new table, and the update lands on it.
    old = p[1]
    before = old.copy()
    p[1] = rng.standard_normal(4)
    replaced = p[1].copy()
    sgd_step_multi(p, g, None, lr=0.5, tables=tables, backend=counting_emu)
    assert len(counting_emu.uploads) == 2
    np.testing.assert_array_equal(old, before)
    np.testing.assert_allclose(p[1], replaced - 0.5 * g[1], rtol=1e-15)
    # The same address with another size: the offsets differ, so the table does too.
    base, grad = rng.standard_normal(12), rng.standard_normal(12)
    for n in (6, 12):
        expected = base[:n] - 0.5 * grad[:n]
        untouched = base[n:].copy()
        sgd_step_multi([base[:n]], [grad[:n]], None, lr=0.5, tables=tables, backend=counting_emu)
        np.testing.assert_allclose(base[:n], expected, rtol=1e-15)
        np.testing.assert_array_equal(base[n:], untouched)
    assert len(counting_emu.uploads) == 4
    # Back to arrays seen before: their table is still kept.
    sgd_step_multi(p, g, None, lr=0.5, tables=tables, backend=counting_emu)
    assert len(counting_emu.uploads) == 4


def test_table_cache_keeps_the_most_recently_used():
    tables = TableCache(capacity=2)
    tables.put("a", 1)
    tables.put("b", 2)
    assert tables.get("a") == 1  # now "b" is the oldest
    tables.put("c", 3)
    assert (tables.get("a"), tables.get("b"), tables.get("c")) == (1, None, 3)
    assert len(tables) == 2
    tables.clear()
    assert len(tables) == 0 and tables.get("a") is None


def test_a_batch_of_launches_uploads_their_tables_in_one_copy(counting_emu):
    # An SGD launch on float64 tensors, an Adam launch on float32 ones and an empty group, in
    # one batch: one upload holding both tables back to back, none on the next run.
    tables = TableCache()
    rng = np.random.default_rng(7)
    p64 = [rng.standard_normal(s) for s in SIZES]
    g64 = [rng.standard_normal(s) for s in SIZES]
    p32 = [rng.standard_normal(s).astype(np.float32) for s in SIZES[:3]]
    g32 = [rng.standard_normal(s).astype(np.float32) for s in SIZES[:3]]
    ms = [np.zeros_like(p) for p in p32]
    vs = [np.zeros_like(p) for p in p32]
    start64, start32 = [p.copy() for p in p64], [p.copy() for p in p32]
    hyper = {"lr": 0.01, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "weight_decay": 0.0}
    for step in (1, 2):
        launches = KernelLaunches(tables)
        sgd_step_multi(p64, g64, None, lr=0.1, launches=launches, backend=counting_emu)
        adam_step_multi(
            p32, g32, ms, vs, step=step, launches=launches, backend=counting_emu, **hyper
        )
        sgd_step_multi([], [], None, lr=0.1, launches=launches, backend=counting_emu)
        assert len(launches) == 2
        np.testing.assert_array_equal(p64[0], start64[0] - 0.1 * g64[0] * (step - 1))
        launches.run()
        assert len(launches) == 0
    [table] = counting_emu.uploads
    assert table.shape == (1 + 4 * len(SIZES) + 1 + 5 * 3,)  # prefix + 3 sections, + 4
    for i, p in enumerate(p64):
        np.testing.assert_allclose(p, start64[i] - 0.2 * g64[i], rtol=1e-14, atol=1e-15)
    for i, p in enumerate(p32):
        expected, _, _ = _adam_reference(start32[i], [g32[i]] * 2, decoupled=False, **hyper)
        np.testing.assert_allclose(p, expected, rtol=2e-5, atol=2e-6)


def test_a_queued_launch_keeps_its_arrays_alive(counting_emu):
    launches = KernelLaunches()
    p = [np.ones(5)]
    sgd_step_multi(p, [np.full(5, 2.0)], None, lr=0.5, launches=launches, backend=counting_emu)
    launches.run()  # the gradient has no other reference: the launch kept it
    np.testing.assert_array_equal(p[0], np.zeros(5))


def test_tables_go_to_the_batch_not_the_launcher(emu):
    p = [np.zeros(4)]
    with pytest.raises(ValueError, match=r"sgd_step_multi: pass 'tables' to the KernelLaunches"):
        sgd_step_multi(
            p, p, None, lr=0.1, tables=TableCache(), launches=KernelLaunches(), backend=emu
        )
