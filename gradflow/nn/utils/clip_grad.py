"""Gradient clipping in place: by the global norm of all gradients, or by value."""

from __future__ import annotations

import math
import types
import warnings
from collections.abc import Iterable

import numpy

from gradflow.backend import device_of, get_array_module
from gradflow.tensor import Tensor


def _grads(parameters: Tensor | Iterable[Tensor]) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad.array for p in parameters if p.grad is not None]


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Scale all gradients together so that their joint norm is at most `max_norm`.

    The norm is taken over every gradient as if concatenated into one vector (`norm_type` 2 by
    default; ``float("inf")`` for the largest magnitude). Returns the norm before clipping.
    Gradients are scaled by max_norm / (norm + 1e-6) when that is below 1, as in PyTorch; on a
    GPU the scale is applied without a host synchronization. `foreach` (PyTorch's choice of
    its multi-tensor kernels) changes nothing here.
    """
    if not isinstance(parameters, Tensor):
        is_generator = isinstance(parameters, types.GeneratorType)
        parameters = list(parameters)
        if is_generator and not parameters:
            warnings.warn(
                "`parameters` is an empty generator, no gradient clipping will occur.",
                stacklevel=2,
            )
    grads = _grads(parameters)
    norm_type = float(norm_type)
    if not grads:
        return Tensor._wrap(numpy.zeros((), dtype=numpy.float32))
    xp = get_array_module(grads[0])
    devices = {device_of(g) for g in grads}  # a CuPy array's .device is unhashable
    if len(devices) > 1:
        raise ValueError("clip_grad_norm_: gradients live on more than one device")
    total = _total_norm(xp, grads, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"the total norm of order {norm_type} of the gradients is non-finite ({total}); "
            "pass error_if_nonfinite=False to clip anyway"
        )
    _scale_grads(xp, grads, max_norm, total)
    return Tensor._wrap(xp.asarray(total))


def get_total_norm(
    tensors: Tensor | Iterable[Tensor],
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """The `norm_type` norm of all `tensors` together, as if concatenated into one vector
    (PyTorch's first half of clip_grad_norm_; pass the gradients). `foreach` changes nothing
    here."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    arrays = [t.array for t in tensors if t is not None]
    norm_type = float(norm_type)
    if not arrays:
        return Tensor._wrap(numpy.zeros((), dtype=numpy.float32))
    xp = get_array_module(arrays[0])
    if len({device_of(a) for a in arrays}) > 1:
        raise ValueError("get_total_norm: the tensors live on more than one device")
    total = _total_norm(xp, arrays, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the "
            "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    return Tensor._wrap(xp.asarray(total))


def clip_grads_with_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    total_norm: Tensor,
    foreach: bool | None = None,
) -> None:
    """Scale every gradient by min(1, max_norm / (total_norm + 1e-6)), in place (PyTorch's
    second half of clip_grad_norm_, with a norm from get_total_norm)."""
    grads = _grads(parameters)
    if not grads:
        return
    max_norm = float(max_norm)
    xp = get_array_module(grads[0])
    total = total_norm.array if isinstance(total_norm, Tensor) else xp.asarray(total_norm)
    _scale_grads(xp, grads, max_norm, total)


def clip_grad_norm(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Deprecated alias of clip_grad_norm_ (a FutureWarning, as in PyTorch)."""
    warnings.warn(
        "`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
        "`torch.nn.utils.clip_grad_norm_`.",
        FutureWarning,
        stacklevel=2,
    )
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def _total_norm(xp, arrays: list, norm_type: float):
    """The norm_type norm of all arrays as one vector (the largest or smallest magnitude for
    +-inf), in their promoted dtype, as PyTorch's stack of per-tensor norms."""
    if norm_type == math.inf:
        norms = [xp.abs(a).max() if a.size else xp.zeros((), a.dtype) for a in arrays]
        return xp.stack(norms).max()
    if norm_type == -math.inf:
        norms = [xp.abs(a).min() if a.size else xp.asarray(xp.inf, a.dtype) for a in arrays]
        return xp.stack(norms).min()
    norms = xp.stack([_vector_norm(xp, a, norm_type) for a in arrays])
    return _vector_norm(xp, norms, norm_type)


def _scale_grads(xp, grads: list, max_norm: float, total) -> None:
    """Every gradient times min(1, max_norm / (total + 1e-6)), in place, with no host sync."""
    scale = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g *= scale.astype(g.dtype)


def _vector_norm(xp, g, p: float):
    a = xp.abs(g.ravel()).astype(xp.float64 if g.dtype == xp.float64 else xp.float32)
    if p == 2.0:
        return xp.sqrt(xp.dot(a, a))
    if p == 1.0:
        return a.sum()
    return (a**p).sum() ** (1.0 / p)


def clip_grad_value_(
    parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None
) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place. `foreach`
    (PyTorch's choice of its multi-tensor kernels) changes nothing here."""
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        get_array_module(g).clip(g, -clip_value, clip_value, out=g)
