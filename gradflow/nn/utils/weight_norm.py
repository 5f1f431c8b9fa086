"""Weight normalization through forward pre-hooks (``torch.nn.utils.weight_norm``, deprecated
in PyTorch in favour of ``parametrizations.weight_norm``): ``weight = g * v / ||v||`` with
``weight_g`` and ``weight_v`` as the module's parameters."""

from __future__ import annotations

import warnings
from typing import Any, TypeVar

import numpy

import gradflow.linalg as _linalg
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.nn.module import Module
from gradflow.nn.parameter import Parameter, UninitializedParameter
from gradflow.tensor import Tensor

__all__ = ["WeightNorm", "norm_except_dim", "remove_weight_norm", "weight_norm"]

T_module = TypeVar("T_module", bound=Module)


def norm_except_dim(v: Tensor, pow: float = 2, dim: int = 0) -> Tensor:
    """``torch.norm_except_dim``: the `pow`-norm of `v` over every dimension but `dim`, kept
    as size-1 dimensions (dim=-1: the norm of the whole tensor, a 0-d tensor)."""
    if dim == -1:
        return _linalg.vector_norm(v, pow)
    if v.ndim == 0:
        return v.abs()
    d = dim % v.ndim if -v.ndim <= dim < v.ndim else None
    if d is None:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [-{v.ndim}, {v.ndim - 1}], "
            f"but got {dim})"
        )
    axes = tuple(i for i in range(v.ndim) if i != d)
    if not axes:
        return v.abs()
    return _linalg.vector_norm(v, pow, dim=axes, keepdim=True)


def _dot_except(xp: Any, a: Any, b: Any, d: int | None, shape: tuple) -> Any:
    """sum(a * b) over every axis but `d` (all axes when d is None), shaped `shape`, in one
    pass where the layout allows (einsum on the 2-D view)."""
    if d is None:
        return xp.asarray(xp.dot(a.ravel(), b.ravel())).reshape(shape)
    if a.ndim == 1:
        return (a * b).reshape(shape)
    if a.size == 0:
        axes = tuple(i for i in range(a.ndim) if i != d)
        return (a * b).sum(axis=axes, keepdims=True).reshape(shape)
    if d == 0:  # rows: a batch of (1, m) @ (m, 1) products, faster than einsum
        a2, b2 = a.reshape(a.shape[0], 1, -1), b.reshape(b.shape[0], -1, 1)
        return (a2 @ b2).reshape(shape)
    if d == a.ndim - 1:
        a2, b2 = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
        return xp.einsum("ij,ij->j", a2, b2).reshape(shape)
    axes = tuple(i for i in range(a.ndim) if i != d)
    return (a * b).sum(axis=axes, keepdims=True).reshape(shape)


class _WeightNormFn(Function):
    """``torch._weight_norm(v, g, dim)`` = v * g / ||v|| (the norm over every dim but `dim`;
    dim None: the whole tensor) as one node: a pass for the norms and one for the product
    forward; the norms' dot product and two passes backward."""

    op_name = "_weight_norm"
    dim: int | None

    def forward(self, v, g):
        xp = get_array_module(v)
        d = self.dim
        shape = () if d is None else tuple(n if i == d else 1 for i, n in enumerate(v.shape))
        norm = xp.sqrt(_dot_except(xp, v, v, d, shape))
        with numpy.errstate(divide="ignore", invalid="ignore"):
            scale = g / norm
            out = v * scale
        self.save_for_backward(v, g, norm, scale)
        return out

    def backward(self, grad):
        v, _, norm, scale = self.saved_arrays
        xp = get_array_module(v)
        s = _dot_except(xp, grad, v, self.dim, norm.shape)
        with numpy.errstate(divide="ignore", invalid="ignore"):
            grad_g = s / norm
            k = -grad_g / norm
        grad_v = None
        if self.needs_input_grad[0]:
            # (grad - v * s / norm^2) * scale, in one new array (a fresh large array costs
            # page faults: fewer allocations is faster than fewer passes here)
            grad_v = v * k
            grad_v += grad
            grad_v *= scale
        return grad_v, grad_g if self.needs_input_grad[1] else None

    def backward_graph(self, grad):
        from gradflow.autograd.differentiable import graph_input

        v_a, g_a, _, _ = self.saved_arrays
        v = graph_input(self, 0, v_a)
        g = graph_input(self, 1, g_a)
        norm = norm_except_dim(v, 2, -1 if self.dim is None else self.dim)
        scale = g / norm
        axes = tuple(i for i in range(v.ndim) if i != self.dim)
        s = (grad * v).sum(dim=axes, keepdim=True) if self.dim is not None else (grad * v).sum()
        grad_g = s / norm
        grad_v = grad * scale - v * (scale * grad_g / norm)
        return grad_v, grad_g


def _weight_norm(v: Tensor, g: Tensor, dim: int = 0) -> Tensor:
    """``torch._weight_norm``: ``v * (g / norm_except_dim(v, 2, dim))``, differentiable in
    both (twice, too)."""
    if dim == -1:
        d = None
    elif v.ndim == 0:
        return v * (g / v.abs())
    elif -v.ndim <= dim < v.ndim:
        d = dim % v.ndim
    else:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [-{v.ndim}, {v.ndim - 1}], "
            f"but got {dim})"
        )
    g_shape = () if d is None else tuple(n if i == d else 1 for i, n in enumerate(v.shape))
    if tuple(g.shape) != g_shape:
        return v * (g / norm_except_dim(v, 2, dim))  # g of another (broadcastable) shape
    return _WeightNormFn.apply(v, g, dim=d)


class WeightNorm:
    """The forward pre-hook that recomputes ``module.<name>`` from ``<name>_g``, ``<name>_v``."""

    def __init__(self, name: str, dim: int) -> None:
        if dim is None:
            dim = -1
        self.name = name
        self.dim = dim

    def compute_weight(self, module: Module) -> Any:
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return _weight_norm(v, g, self.dim)

    @staticmethod
    def apply(module: Module, name: str, dim: int) -> WeightNorm:
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(
                    f"Cannot register two weight_norm hooks on the same parameter {name}"
                )
        if dim is None:
            dim = -1
        fn = WeightNorm(name, dim)
        weight = getattr(module, name, None)
        if isinstance(weight, UninitializedParameter):
            raise ValueError(
                "The module passed to `WeightNorm` can't have uninitialized parameters. "
                "Make sure to run the dummy forward before applying weight normalization"
            )
        if not isinstance(module._parameters.get(name), Parameter):
            raise ValueError(
                f"weight_norm: {type(module).__name__} has no parameter named '{name}'"
            )
        del module._parameters[name]
        module.register_parameter(name + "_g", Parameter(norm_except_dim(weight, 2, dim).detach()))
        module.register_parameter(name + "_v", Parameter(weight.detach()))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module: T_module, name: str = "weight", dim: int = 0) -> T_module:
    """Replace parameter `name` by ``<name>_g`` (its norm over every dimension but `dim`;
    dim=None: the whole tensor) and ``<name>_v`` (its direction), recomputing
    ``module.<name>`` before each forward. Deprecated, as in PyTorch (a FutureWarning): use
    ``nn.utils.parametrizations.weight_norm``."""
    warnings.warn(
        "`torch.nn.utils.weight_norm` is deprecated in favor of "
        "`torch.nn.utils.parametrizations.weight_norm`.",
        FutureWarning,
        stacklevel=2,
    )
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module: T_module, name: str = "weight") -> T_module:
    """Undo ``weight_norm``: `name` becomes one parameter again, holding g * v / ||v||."""
    return _remove_hook(module, WeightNorm, name, "weight_norm")


def _remove_hook(module: T_module, kind: type, name: str, what: str) -> T_module:
    """Undo the reparametrization hook of type `kind` on parameter `name` (remove_weight_norm,
    remove_spectral_norm): the hook restores the plain parameter and leaves the module."""
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, kind) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"{what} of '{name}' not found in {module}")
