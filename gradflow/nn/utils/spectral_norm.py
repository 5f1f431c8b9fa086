"""Spectral normalization through forward pre-hooks (``torch.nn.utils.spectral_norm``): the
weight divided by its largest singular value, estimated by power iteration. The module keeps
``weight_orig`` (a parameter), ``weight_u`` and ``weight_v`` (buffers); training-mode forwards
run `n_power_iterations` steps, updating u and v in place."""

from __future__ import annotations

from typing import Any, TypeVar

import gradflow
from gradflow.backend import get_array_module
from gradflow.nn.module import Module
from gradflow.nn.parameter import Parameter, UninitializedParameter
from gradflow.nn.utils.weight_norm import _remove_hook
from gradflow.tensor import Tensor

__all__ = ["SpectralNorm", "remove_spectral_norm", "spectral_norm"]

T_module = TypeVar("T_module", bound=Module)


def _normalize_(xp: Any, out: Any, x: Any, eps: float) -> None:
    """out[...] = x / max(||x||, eps) (F.normalize(x, dim=0, eps=eps, out=out))."""
    norm = xp.sqrt(xp.dot(x, x))
    xp.divide(x, xp.maximum(norm, eps), out=out)


def _as_matrix(weight: Any, dim: int) -> Any:
    """The weight as a matrix with `dim` as rows (a Tensor or a raw array)."""
    if dim != 0:
        order = (dim, *(d for d in range(weight.ndim) if d != dim))
        weight = weight.permute(*order) if isinstance(weight, Tensor) else weight.transpose(order)
    return weight.reshape(weight.shape[0], -1)


def power_iteration_(weight_mat: Any, u: Any, v: Any, n: int, eps: float, u_first: bool) -> None:
    """`n` power-iteration steps on raw arrays, updating u and v in place (PyTorch's order:
    v then u for the hook API, u then v for the parametrization)."""
    xp = get_array_module(weight_mat)
    for _ in range(n):
        if u_first:
            _normalize_(xp, u, weight_mat @ v, eps)
            _normalize_(xp, v, weight_mat.T.conj() @ u, eps)
        else:
            _normalize_(xp, v, weight_mat.T @ u, eps)
            _normalize_(xp, u, weight_mat @ v, eps)


class SpectralNorm:
    """The forward pre-hook that recomputes ``module.<name>`` = weight_orig / sigma."""

    _version: int = 1

    def __init__(
        self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12
    ) -> None:
        self.name = name
        self.dim = dim
        if n_power_iterations <= 0:
            raise ValueError(
                "Expected n_power_iterations to be positive, but "
                f"got n_power_iterations={n_power_iterations}"
            )
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    def reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        return _as_matrix(weight, self.dim)

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            power_iteration_(
                _as_matrix(weight.array, self.dim),
                u.array,
                v.array,
                self.n_power_iterations,
                self.eps,
                u_first=False,
            )
            u, v = u.clone(), v.clone()
        sigma = gradflow.dot(u, gradflow.mv(weight_mat, v))
        return weight / sigma

    def remove(self, module: Module) -> None:
        weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))

    @staticmethod
    def apply(module: Module, name: str, n_power_iterations: int, dim: int, eps: float):
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(
                    f"Cannot register two spectral_norm hooks on the same parameter {name}"
                )
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters.get(name)
        if isinstance(weight, UninitializedParameter):
            raise ValueError(
                "The module passed to `SpectralNorm` can't have uninitialized parameters. "
                "Make sure to run the dummy forward before applying spectral normalization"
            )
        if not isinstance(weight, Parameter):
            raise ValueError(
                f"spectral_norm: {type(module).__name__} has no parameter named '{name}'"
            )
        if weight.ndim < 1 or not -weight.ndim <= dim < weight.ndim:
            raise IndexError(
                f"spectral_norm: dim {dim} is out of range for the {weight.ndim}-d '{name}'"
            )
        fn.dim = dim % weight.ndim
        h, w = fn.reshape_weight_to_matrix(weight).shape
        xp = get_array_module(weight.array)
        u = gradflow.randn(h, dtype=weight.dtype, device=weight.device).array
        v = gradflow.randn(w, dtype=weight.dtype, device=weight.device).array
        _normalize_(xp, u, u, eps)
        _normalize_(xp, v, v, eps)
        delattr(module, fn.name)
        module.register_parameter(fn.name + "_orig", weight)
        setattr(module, fn.name, weight.detach())
        module.register_buffer(fn.name + "_u", Tensor._wrap(u))
        module.register_buffer(fn.name + "_v", Tensor._wrap(v))
        module.register_forward_pre_hook(fn)
        return fn


def _default_dim(module: Module) -> int:
    from gradflow import nn

    transposed = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    return 1 if isinstance(module, transposed) else 0


def spectral_norm(
    module: T_module,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
) -> T_module:
    """Replace parameter `name` by ``<name>_orig`` and recompute ``module.<name>`` =
    orig / sigma(orig) before each forward, sigma the largest singular value of orig seen as a
    matrix with `dim` as rows (default 0; 1 for ConvTranspose), estimated by power iteration
    with the buffers ``<name>_u``, ``<name>_v`` (updated in training mode only)."""
    if dim is None:
        dim = _default_dim(module)
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module: T_module, name: str = "weight") -> T_module:
    """Undo ``spectral_norm``: `name` becomes one parameter holding orig / sigma."""
    return _remove_hook(module, SpectralNorm, name, "spectral_norm")
