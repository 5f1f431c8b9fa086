"""kernels/optim.cu through the multi-tensor launchers on the CPU emulation."""

import numpy as np
import pytest
from kernel_reference import TOLERANCES

from gradflow.kernels import adam_step_multi, sgd_step_multi

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


@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw"])
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
