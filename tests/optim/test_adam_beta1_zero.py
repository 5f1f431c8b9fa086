"""Issue 14: Adam's first moment with beta1 = 0 is exactly the gradient, as PyTorch's lerp
gives it. ``m += (1 - beta1)(g - m)`` cancelled to 0 when a tiny gradient followed a large one
(g - m rounds to -m); ``m = g - (g - m) beta1`` for weights 1 - beta1 >= 0.5 is exact there."""

import numpy as np
import pytest

import gradflow as gf
from gradflow.optim import Adam, AdamW
from gradflow.testing.emulation import route_kernels, unavailable_reason

GRADS = [np.float32([1.0, -3.0e4, 2.0]), np.float32([1e-10, 2e-9, -7e-12])]


def run(make, grads, dtype, device="cpu", **kwargs):
    p = gf.tensor(np.zeros(3, dtype), device=device, requires_grad=True)
    opt = make([p], lr=1e-3, **kwargs)
    for g in grads:
        p.grad = gf.tensor(g.astype(dtype), device=device)
        opt.step()
    m = opt.state[p]["exp_avg"]
    return p.detach().cpu().numpy(), m.detach().cpu().numpy()


def torch_run(torch, kind, grads, dtype, **kwargs):
    p = torch.zeros(3, dtype=getattr(torch, np.dtype(dtype).name), requires_grad=True)
    opt = getattr(torch.optim, kind)([p], lr=1e-3, **kwargs)
    for g in grads:
        p.grad = torch.tensor(g.astype(dtype))
        opt.step()
    return p.detach().numpy(), opt.state[p]["exp_avg"].numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("make", [Adam, AdamW])
def test_beta1_zero_keeps_a_tiny_gradient_after_a_large_one(make, amsgrad, dtype):
    torch = pytest.importorskip("torch")
    kwargs = {"betas": (0.0, 0.999), "amsgrad": amsgrad}
    p, m = run(make, GRADS, dtype, **kwargs)
    np.testing.assert_array_equal(m, GRADS[-1].astype(dtype))  # exactly g, not 0
    theirs_p, theirs_m = torch_run(torch, make.__name__, GRADS, dtype, **kwargs)
    np.testing.assert_array_equal(m, theirs_m)
    np.testing.assert_allclose(p, theirs_p, rtol=1e-6 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("beta1", [0.0, 0.3, 0.5, 0.9])
def test_first_moment_matches_torchs_lerp(beta1):
    """Bit for bit at beta1 = 0; elsewhere within an ulp (torch's vectorized lerp may fuse)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(3).astype(np.float32) * 10.0**k for k in (3, -4, 2, -8)]
    _, m = run(Adam, grads, np.float32, betas=(beta1, 0.999))
    _, theirs_m = torch_run(torch, "Adam", grads, np.float32, betas=(beta1, 0.999))
    if beta1 == 0:
        np.testing.assert_array_equal(m, theirs_m)
        np.testing.assert_array_equal(m, grads[-1])
    else:
        np.testing.assert_allclose(m, theirs_m, rtol=1e-6, atol=0)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_beta1_zero_on_each_device(device, amsgrad):
    """On cuda: the fused kernel, or the array path (amsgrad)."""
    _, m = run(Adam, GRADS, np.float32, device, betas=(0.0, 0.999), amsgrad=amsgrad)
    np.testing.assert_array_equal(m, GRADS[-1])


@pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
def test_beta1_zero_on_the_kernel_route():
    """kernels/optim.cu's adam_step (beta1 m + (1 - beta1) g), in the CPU emulation."""
    with route_kernels():
        _, m = run(Adam, GRADS, np.float32, betas=(0.0, 0.999))
    np.testing.assert_array_equal(m, GRADS[-1])
