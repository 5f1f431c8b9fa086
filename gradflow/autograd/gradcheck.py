"""torch.autograd.gradcheck: PyTorch's call form over gradflow.testing.gradcheck."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def gradcheck(
    func: Callable[..., Any],
    inputs: Any,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_batched_forward_grad: bool = False,
    check_forward_ad: bool = False,
    check_backward_ad: bool = True,
    fast_mode: bool = False,
    masked: bool | None = None,
) -> bool:
    """Compare func's backward with float64 finite differences, as torch.autograd.gradcheck:
    `inputs` is a Tensor or a tuple of them; returns True, or raises GradcheckError (False
    with raise_exception=False). fast_mode checks only a random directional derivative. The
    options that check forward-mode or batched gradients (features gradflow lacks) raise."""
    from gradflow.tensor import Tensor
    from gradflow.testing.gradcheck import gradcheck as _gradcheck

    for name, value in (
        ("check_batched_grad", check_batched_grad),
        ("check_batched_forward_grad", check_batched_forward_grad),
        ("check_forward_ad", check_forward_ad),
    ):
        if value:
            raise NotImplementedError(f"gradcheck: {name}=True is not supported (no forward mode)")
    if not check_backward_ad:
        return True
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    return _gradcheck(
        func,
        tuple(inputs),
        eps=eps,
        atol=atol,
        rtol=rtol,
        full_jacobian=False if fast_mode else None,
        raise_exception=raise_exception,
    )


def gradgradcheck(func: Callable[..., Any], inputs: Any, *args: Any, **kwargs: Any) -> bool:
    """Second-order gradients need create_graph=True, which gradflow does not have yet."""
    raise NotImplementedError(
        "gradgradcheck: higher-order gradients (create_graph=True) are not supported yet"
    )
