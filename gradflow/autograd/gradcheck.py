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


def gradgradcheck(
    func: Callable[..., Any],
    inputs: Any,
    grad_outputs: Any = None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    gen_non_contig_grad_outputs: bool = False,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_fwd_over_rev: bool = False,
    check_rev_over_rev: bool = True,
    fast_mode: bool = False,
    masked: bool = False,
) -> bool:
    """Check second derivatives as torch.autograd.gradgradcheck: gradcheck of the function
    (inputs, grad_outputs) -> d(func(inputs))/d(inputs) . grad_outputs, computed with
    create_graph=True, so the double backward (each op's backward_graph) is compared with
    finite differences of the first backward. `grad_outputs` (one per floating output) are
    random float64 normals, requiring grad, when omitted. Returns True, or raises
    GradcheckError (False with raise_exception=False)."""
    import numpy

    from gradflow.autograd.grad_mode import enable_grad
    from gradflow.autograd.gradients import grad
    from gradflow.tensor import Tensor

    for name, value in (
        ("check_batched_grad", check_batched_grad),
        ("check_fwd_over_rev", check_fwd_over_rev),
    ):
        if value:
            raise NotImplementedError(
                f"gradgradcheck: {name}=True is not supported (no forward mode or batched grad)"
            )
    if not check_rev_over_rev:
        return True
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    wrt = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not wrt:
        raise ValueError("gradgradcheck: no input requires grad")

    def floating(out: Any) -> list:
        outs = list(out) if isinstance(out, tuple | list) else [out]
        return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]

    if grad_outputs is None:
        rng = numpy.random.default_rng(0)
        outs = floating(func(*inputs))
        grad_outputs = tuple(
            Tensor._wrap(_to_like(rng.standard_normal(o.shape), wrt[0].array))
            .to(o.dtype)
            .requires_grad_(True)
            for o in outs
        )
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = (grad_outputs,)
    grad_outputs = tuple(grad_outputs)
    n = len(inputs)

    def first_derivative(*args: Any) -> tuple:
        ins, gos = args[:n], args[n:]
        with enable_grad():  # gradcheck runs it under no_grad for its finite differences
            pairs = [(o, go) for o, go in zip(floating(func(*ins)), gos) if o.requires_grad]
            chosen = [t for t in ins if isinstance(t, Tensor) and t.requires_grad]
            if not pairs:
                return ()
            got = grad(
                [o for o, _ in pairs],
                chosen,
                [go for _, go in pairs],
                create_graph=True,
                allow_unused=True,
            )
        return tuple(g for g in got if g is not None)

    return gradcheck(
        first_derivative,
        inputs + grad_outputs,
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
        fast_mode=fast_mode,
    )


def _to_like(values: Any, like: Any) -> Any:
    """Host float64 values as an array of `like`'s kind (NumPy, or CuPy on like's device)."""
    from gradflow.backend import get_array_module

    return get_array_module(like).asarray(values)
