"""gradcheck: compare autograd's gradients with float64 central finite differences.

By default a random directional derivative is checked (cheap enough for every op); for small
problems the full Jacobian is compared element by element, and a failure names the worst one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy

from gradflow.autograd.functional import grad as autograd_grad
from gradflow.autograd.grad_mode import no_grad
from gradflow.backend import get_array_module
from gradflow.tensor import Tensor

MODE_ENV = "GRADFLOW_GRADCHECK"


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree."""


def gradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    full_jacobian: bool | None = None,
    max_jacobian_size: int = 2048,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Check fn's gradients with respect to every input that requires grad.

    Inputs that require grad must be float64. `full_jacobian=None` checks the full Jacobian
    when (input elements x output elements) <= max_jacobian_size and the inputs are on the
    CPU, else only a random directional derivative: on cuda the op's math is the CPU's, checked
    there in full, and a random direction catches a wrong kernel route. The environment
    variable ``GRADFLOW_GRADCHECK=directional`` skips every full Jacobian (the GPU session
    script sets it to fit its time). Returns True, or raises GradcheckError with the worst
    element.
    """
    inputs = tuple(inputs)
    wrt = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not wrt:
        raise ValueError("gradcheck: no input requires grad")
    for t in wrt:
        if t.dtype != numpy.float64:
            raise TypeError(
                f"gradcheck: inputs that require grad must be float64 for finite differences, "
                f"got {t.dtype}; pass .double() tensors"
            )
    rng = numpy.random.default_rng(seed)
    outputs = _outputs(fn, inputs)
    if not outputs:
        raise ValueError("gradcheck: fn returned no floating-point tensor")
    xp = get_array_module(wrt[0].array)
    weights = [xp.asarray(rng.standard_normal(o.shape)) for o in outputs]
    try:
        _check_directional(fn, inputs, wrt, outputs, weights, eps, atol, rtol, rng, xp)
        in_size = sum(t.array.size for t in wrt)
        out_size = sum(o.array.size for o in outputs)
        if full_jacobian is None:
            full_jacobian = xp is numpy and in_size * out_size <= max_jacobian_size
        if full_jacobian and os.environ.get(MODE_ENV, "").strip().lower() != "directional":
            _check_jacobian(fn, inputs, wrt, outputs, eps, atol, rtol, xp)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def _outputs(fn: Callable, inputs: tuple) -> list[Tensor]:
    out = fn(*inputs)
    outs = list(out) if isinstance(out, tuple | list) else [out]
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f" and o.requires_grad]


def _weighted_sum(fn: Callable, inputs: tuple, weights: list) -> float:
    with no_grad():
        outs = fn(*inputs)
    outs = list(outs) if isinstance(outs, tuple | list) else [outs]
    outs = [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]
    return float(sum((o.array * w).sum() for o, w in zip(outs, weights)))


def _analytic(outputs: list, wrt: list, weights: list) -> list:
    grads = autograd_grad(
        outputs,
        wrt,
        grad_outputs=[Tensor._wrap(w) for w in weights],
        retain_graph=True,
        allow_unused=True,
    )
    return [
        g.array if g is not None else get_array_module(t.array).zeros_like(t.array)
        for g, t in zip(grads, wrt)
    ]


def _check_directional(fn, inputs, wrt, outputs, weights, eps, atol, rtol, rng, xp) -> None:
    analytic = _analytic(outputs, wrt, weights)
    directions = [xp.asarray(rng.standard_normal(t.shape)) for t in wrt]
    originals = [t.array.copy() for t in wrt]
    try:
        for t, d, o in zip(wrt, directions, originals):
            t.array[...] = o + eps * d
        plus = _weighted_sum(fn, inputs, weights)
        for t, d, o in zip(wrt, directions, originals):
            t.array[...] = o - eps * d
        minus = _weighted_sum(fn, inputs, weights)
    finally:
        for t, o in zip(wrt, originals):
            t.array[...] = o
    numeric = (plus - minus) / (2 * eps)
    expected = float(sum((a * d).sum() for a, d in zip(analytic, directions)))
    if abs(expected - numeric) > atol + rtol * abs(numeric):
        raise GradcheckError(
            f"gradcheck: directional derivative mismatch: analytic {expected:.10g} vs numeric "
            f"{numeric:.10g} (difference {abs(expected - numeric):.3g}, atol={atol}, rtol={rtol})"
        )


def _check_jacobian(fn, inputs, wrt, outputs, eps, atol, rtol, xp) -> None:
    out_sizes = [o.array.size for o in outputs]
    worst = None  # (excess, message)
    for oi, o in enumerate(outputs):
        for flat in range(out_sizes[oi]):
            weights = [xp.zeros(p.shape) for p in outputs]
            weights[oi].reshape(-1)[flat] = 1.0
            analytic = _analytic(outputs, wrt, weights)
            for ti, t in enumerate(wrt):
                for pos in numpy.ndindex(*t.shape):
                    numeric = _numeric_partial(fn, inputs, t, pos, weights, eps)
                    a = float(analytic[ti][pos])
                    excess = abs(a - numeric) - (atol + rtol * abs(numeric))
                    if excess > 0 and (worst is None or excess > worst[0]):
                        out_pos = numpy.unravel_index(flat, o.shape) if o.ndim else ()
                        worst = (
                            excess,
                            f"gradcheck: Jacobian mismatch, worst at d output[{oi}]"
                            f"{tuple(int(i) for i in out_pos)} / d input[{inputs.index(t)}]"
                            f"{pos}: analytic {a:.10g} vs numeric {numeric:.10g}",
                        )
    if worst is not None:
        raise GradcheckError(worst[1])


def _numeric_partial(fn, inputs, t, pos, weights, eps) -> float:
    original = float(t.array[pos])
    try:
        t.array[pos] = original + eps
        plus = _weighted_sum(fn, inputs, weights)
        t.array[pos] = original - eps
        minus = _weighted_sum(fn, inputs, weights)
    finally:
        t.array[pos] = original
    return (plus - minus) / (2 * eps)
