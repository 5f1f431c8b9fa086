"""Launchers for kernels/elementwise.cu: activation forward/backward, binary-op backward."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradflow.kernels._common import (
    BLOCK,
    KernelBackend,
    check_array_type,
    check_float_arrays,
    check_shape,
    contiguous,
    grid_1d,
    resolve_backend,
    scalar,
)
from gradflow.kernels.activations import ACTIVATIONS

BINARY_OPS = ("mul", "div", "pow")
# The kernels load and store 16-byte vectors when all their pointers are this aligned
# (vec_t in kernels/common.cuh).
VECTOR_BYTES = 16


def _activation_params(
    launcher: str, name: str, negative_slope: float, alpha: float, beta: float, threshold: float
) -> tuple[float, float]:
    """The kernel's (p0, p1) for activation ``name``."""
    if name not in ACTIVATIONS:
        raise ValueError(f"{launcher}: unknown activation {name!r}; expected one of {ACTIVATIONS}")
    if name == "leaky_relu":
        return negative_slope, 0.0
    if name == "elu":
        return alpha, 0.0
    if name == "softplus":
        if beta == 0:
            raise ValueError(f"{launcher}: softplus needs a nonzero beta, got {beta}")
        return beta, threshold
    return 0.0, 0.0


def _grid(backend: Any, device: Any, n: int, arrays: list[Any]) -> tuple[int, int, int]:
    """The 1-D grid for n elements: one thread per 16-byte vector when every array is aligned
    (the kernel then takes its vector path), else one per element. Any grid is correct."""
    if all(backend.address(x) % VECTOR_BYTES == 0 for x in arrays if x is not None):
        n = -(-n // (VECTOR_BYTES // arrays[0].itemsize))
    return (grid_1d(backend, device, n), 1, 1)


def _run_unary(
    launcher: str, kernel: str, inputs: dict[str, Any], params: tuple[float, float], backend: Any
) -> Any:
    dtype, device = check_float_arrays(launcher, backend, **inputs)
    arrays = list(inputs.values())
    for name, x in list(inputs.items())[1:]:
        check_shape(launcher, name, x, arrays[0].shape, f"the shape of '{next(iter(inputs))}'")
    arrays = contiguous(backend, *arrays)
    out = backend.empty(arrays[0].shape, dtype, device)
    n = out.size
    if n:
        p0, p1 = (scalar(dtype, p) for p in params)
        grid = _grid(backend, device, n, [*arrays, out])
        args = (*arrays, out, np.int64(n), p0, p1)
        backend.launch("elementwise", dtype, kernel, grid, (BLOCK, 1, 1), args, device)
    return out


def activation_fwd(
    name: str,
    x: Any,
    *,
    negative_slope: float = 0.01,
    alpha: float = 1.0,
    beta: float = 1.0,
    threshold: float = 20.0,
    backend: KernelBackend | None = None,
) -> Any:
    """y = f(x) for activation ``name`` (one of ACTIVATIONS); a new array shaped like x.

    negative_slope is leaky_relu's, alpha elu's, beta/threshold softplus's (PyTorch defaults).
    """
    launcher = "activation_fwd"
    params = _activation_params(launcher, name, negative_slope, alpha, beta, threshold)
    return _run_unary(launcher, f"{name}_fwd", {"x": x}, params, resolve_backend(backend))


def activation_bwd(
    name: str,
    saved: Any,
    grad_out: Any,
    *,
    negative_slope: float = 0.01,
    alpha: float = 1.0,
    beta: float = 1.0,
    threshold: float = 20.0,
    backend: KernelBackend | None = None,
) -> Any:
    """grad_in = grad_out * f'(x) for activation ``name``; a new array shaped like grad_out.

    ``saved`` is the forward output y for the activations in SAVES_OUTPUT (sigmoid, tanh) and
    the forward input x for the others (relu accepts either: x > 0 exactly where y > 0).
    """
    launcher = "activation_bwd"
    params = _activation_params(launcher, name, negative_slope, alpha, beta, threshold)
    inputs = {"saved": saved, "grad_out": grad_out}
    return _run_unary(launcher, f"{name}_bwd", inputs, params, resolve_backend(backend))


def binary_bwd(
    op: str,
    a: Any,
    b: Any,
    grad: Any,
    *,
    out: Any = None,
    need_a: bool = True,
    need_b: bool = True,
    backend: KernelBackend | None = None,
) -> tuple[Any, Any]:
    """Both input gradients of ``out = a <op> b`` in one pass: returns (grad_a, grad_b).

    op is "mul", "div" or "pow". a, b and grad have one shape (broadcast them first; reducing
    the gradients to the input shapes is the caller's job). ``out`` is pow's forward output
    (recomputed when None). A gradient not needed is returned as None and not computed.
    """
    launcher = "binary_bwd"
    backend = resolve_backend(backend)
    if op not in BINARY_OPS:
        raise ValueError(f"{launcher}: unknown op {op!r}; expected one of {BINARY_OPS}")
    inputs = {"a": a, "b": b, "grad": grad}
    if out is not None:
        if op != "pow":
            raise ValueError(f"{launcher}: 'out' is used only by op 'pow', not {op!r}")
        check_array_type(launcher, backend, "out", out)
        inputs["out"] = out
    dtype, device = check_float_arrays(launcher, backend, **inputs)
    for name, x in inputs.items():
        check_shape(launcher, name, x, a.shape, "the shape of 'a'; broadcast the operands first")
    if not (need_a or need_b):
        return None, None
    a, b, grad, out = contiguous(backend, a, b, grad, out)
    ga = backend.empty(a.shape, dtype, device) if need_a else None
    gb = backend.empty(a.shape, dtype, device) if need_b else None
    n = a.size
    if n:
        operands = (a, b, out, grad) if op == "pow" else (a, b, grad)
        grid = _grid(backend, device, n, [*operands, ga, gb])
        args = (*operands, ga, gb, np.int64(n))
        backend.launch("elementwise", dtype, f"{op}_bwd", grid, (BLOCK, 1, 1), args, device)
    return ga, gb
