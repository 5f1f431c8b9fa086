"""Ready-made parametrizations (``torch.nn.utils.parametrizations``): ``weight_norm``,
``spectral_norm`` and ``orthogonal``, registered through ``parametrize`` with PyTorch's
state-dict keys (``parametrizations.weight.original0``/``original1`` for weight_norm's g and v,
``parametrizations.weight.original`` and ``parametrizations.weight.0._u``/``_v`` for
spectral_norm, ``parametrizations.weight.original`` and ``...0.base`` for orthogonal)."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

import numpy

import gradflow
import gradflow.linalg as _linalg
from gradflow.autograd.grad_mode import no_grad
from gradflow.backend import get_array_module
from gradflow.nn.module import Module
from gradflow.nn.utils import parametrize
from gradflow.nn.utils.spectral_norm import _as_matrix, _default_dim, _normalize_, power_iteration_
from gradflow.nn.utils.weight_norm import _weight_norm, norm_except_dim
from gradflow.tensor import Tensor

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]


# ---- orthogonal ------------------------------------------------------------------------------
def _is_orthogonal(xp: Any, q: Any) -> bool:
    n, k = q.shape[-2], q.shape[-1]
    eye = xp.eye(k, dtype=q.dtype)
    eps = 10.0 * n * numpy.finfo(q.dtype).eps
    gram = xp.swapaxes(q, -1, -2).conj() @ q
    return bool(xp.allclose(gram, eye, atol=eps))


def _make_orthogonal(xp: Any, a: Any) -> Any:
    """The Q of A = QR (A tall) with R's diagonal made non-negative (PyTorch's geqrf route)."""
    q, r = xp.linalg.qr(a)
    d = xp.diagonal(r, axis1=-2, axis2=-1)
    return q * xp.sign(d)[..., None, :]


def _householder_product(a: Tensor, tau: Tensor) -> Tensor:
    """``linalg.householder_product(A, tau)`` composed of differentiable ops: the first k
    columns of H_1 ... H_k, H_i = I - tau_i v_i v_i^T, v_i = (0.., 1, A[i+1:, i]). Uses the
    compact WY form H_1 ... H_k = I - V T V^T, T^-1 = striu(V^T V) + diag(1 / tau) (tau > 0
    here), so the graph has a handful of nodes instead of a few per reflector."""
    n, k = a.shape[-2], a.shape[-1]
    xp = get_array_module(a.array)
    eye = Tensor._wrap(xp.eye(n, k, dtype=a.dtype))
    v = a.tril(-1) + eye  # (..., n, k), unit lower trapezoidal
    s = (v.mT @ v).triu(1) + gradflow.diag_embed(1.0 / tau)
    t_vt = _linalg.solve_triangular(s, v[..., :k, :].mT, upper=True)  # T V[:k]^T
    return eye - v @ t_vt


class _OrthMaps(Enum):
    matrix_exp = auto()
    cayley = auto()
    householder = auto()


class _Orthogonal(Module):
    def __init__(self, weight: Tensor, orthogonal_map: _OrthMaps, *, use_trivialization=True):
        super().__init__()
        if weight.is_complex() and orthogonal_map == _OrthMaps.householder:
            raise ValueError("The householder parametrization does not support complex tensors.")
        self.shape = weight.shape
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X: Tensor) -> Tensor:
        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X = X.mT
            n, k = k, n
        if self.orthogonal_map in (_OrthMaps.matrix_exp, _OrthMaps.cayley):
            X = X.tril()
            if n != k:
                zeros = X.new_zeros(n, n - k).expand(*X.shape[:-2], -1, -1)
                X = gradflow.cat([X, zeros], dim=-1)
            A = X - X.mT.conj()
            if self.orthogonal_map == _OrthMaps.matrix_exp:
                Q = gradflow.matrix_exp(A)
            else:
                Id = gradflow.eye(n, dtype=A.dtype, device=A.device)
                Q = _linalg.solve(Id - 0.5 * A, Id + 0.5 * A)
            if n != k:
                Q = Q[..., :k]
        else:
            A = X.tril(diagonal=-1)
            tau = 2.0 / (1.0 + (A * A).sum(dim=-2))
            Q = _householder_product(A, tau)
            Q = Q * X.diagonal(dim1=-2, dim2=-1).int().unsqueeze(-2)
        base = getattr(self, "base", None)
        if base is not None:
            Q = base @ Q
        if transposed:
            Q = Q.mT
        return Q

    def right_inverse(self, Q: Tensor) -> Tensor:
        if Q.shape != self.shape:
            raise ValueError(
                f"Expected a matrix or batch of matrices of shape {self.shape}. "
                f"Got a tensor of shape {Q.shape}."
            )
        with no_grad():
            return self._right_inverse(Q)

    def _right_inverse(self, Q: Tensor) -> Tensor:
        xp = get_array_module(Q.array)
        q = Q.array
        n, k = q.shape[-2], q.shape[-1]
        transpose = n < k
        if transpose:
            q = xp.swapaxes(q, -1, -2)
            n, k = k, n
        if not hasattr(self, "base"):
            if self.orthogonal_map in (_OrthMaps.cayley, _OrthMaps.matrix_exp):
                raise NotImplementedError(
                    "It is not possible to assign to the matrix exponential "
                    "or the Cayley parametrizations when use_trivialization=False."
                )
            if xp is not numpy:
                q = q.get()
            h, tau = _geqrf(q)
            diag = numpy.diagonal(h, axis1=-2, axis2=-1).copy()
            diag = numpy.sign(diag) * numpy.where(tau == 0.0, -1.0, 1.0)
            idx = numpy.arange(k)
            h[..., idx, idx] = diag
            h = numpy.swapaxes(h, -1, -2) if transpose else h
            return gradflow.tensor(xp.asarray(numpy.ascontiguousarray(h)), device=Q.device)
        if n == k:
            q = _make_orthogonal(xp, q) if not _is_orthogonal(xp, q) else q.copy()
        else:
            extra = gradflow.randn(*q.shape[:-2], n, n - k, dtype=Q.dtype, device=Q.device)
            q = _make_orthogonal(xp, xp.concatenate([q, extra.array], axis=-1))
        self.base = Tensor._wrap(xp.ascontiguousarray(q))
        neg_id = xp.zeros(Q.shape, dtype=Q.dtype)
        m = min(Q.shape[-2], Q.shape[-1])
        neg_id[..., numpy.arange(m), numpy.arange(m)] = -1.0
        return Tensor._wrap(neg_id)


def _geqrf(a: numpy.ndarray) -> tuple[numpy.ndarray, numpy.ndarray]:
    """LAPACK geqrf through numpy.linalg.qr(mode="raw"), batched by a loop."""
    batch = a.shape[:-2]
    flat = a.reshape(-1, *a.shape[-2:])
    hs, taus = [], []
    for mat in flat:
        h, tau = numpy.linalg.qr(mat, mode="raw")
        hs.append(h.T)
        taus.append(tau)
    h = numpy.stack(hs).reshape(*batch, *a.shape[-2:])
    tau = numpy.stack(taus).reshape(*batch, -1)
    return h, tau


def orthogonal(
    module: Module,
    name: str = "weight",
    orthogonal_map: str | None = None,
    *,
    use_trivialization: bool = True,
) -> Module:
    """Make ``module.<name>`` (a matrix or a batch of matrices) orthogonal: orthonormal
    columns when tall, rows when wide. `orthogonal_map`: "matrix_exp" (the default for square
    matrices), "cayley" or "householder" (the default for rectangular ones), as PyTorch. With
    `use_trivialization` the starting orthogonal matrix is kept in the buffer
    ``parametrizations.<name>.0.base``; the initial value is the weight itself when orthogonal,
    else the Q of its QR decomposition."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(
            f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions."
        )
    if orthogonal_map is None:
        square = weight.shape[-2] == weight.shape[-1]
        orthogonal_map = "matrix_exp" if square or weight.is_complex() else "householder"
    orth_enum = getattr(_OrthMaps, str(orthogonal_map), None)
    if orth_enum is None:
        raise ValueError(
            'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". '
            f"Got: {orthogonal_map}"
        )
    orth = _Orthogonal(weight, orth_enum, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module


# ---- weight norm -----------------------------------------------------------------------------
class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        if dim is None:
            dim = -1
        self.dim = dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int = 0) -> Module:
    """Reparametrize ``module.<name>`` as ``g * v / ||v||`` (the norm over every dimension
    but `dim`; dim=None: over the whole tensor), g and v stored as
    ``parametrizations.<name>.original0`` and ``original1``."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


# ---- spectral norm ---------------------------------------------------------------------------
class _SpectralNorm(Module):
    def __init__(
        self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12
    ) -> None:
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(
                "Dimension out of range (expected to be in range of "
                f"[-{ndim}, {ndim - 1}] but got {dim})"
            )
        if n_power_iterations <= 0:
            raise ValueError(
                "Expected n_power_iterations to be positive, but "
                f"got n_power_iterations={n_power_iterations}"
            )
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            h, w = _as_matrix(weight.array, self.dim).shape
            xp = get_array_module(weight.array)
            u = gradflow.randn(h, dtype=weight.dtype, device=weight.device).array
            v = gradflow.randn(w, dtype=weight.dtype, device=weight.device).array
            _normalize_(xp, u, u, eps)
            _normalize_(xp, v, v, eps)
            self.register_buffer("_u", Tensor._wrap(u))
            self.register_buffer("_v", Tensor._wrap(v))
            self._power_method(weight, 15)

    def _power_method(self, weight: Tensor, n: int) -> None:
        mat = _as_matrix(weight.array, self.dim)
        power_iteration_(mat, self._u.array, self._v.array, n, self.eps, u_first=True)

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return gradflow.nn.functional.normalize(weight, dim=0, eps=self.eps)
        if self.training:
            self._power_method(weight, self.n_power_iterations)
        weight_mat = _as_matrix(weight, self.dim)
        u, v = self._u.clone(), self._v.clone()
        sigma = gradflow.vdot(u, gradflow.mv(weight_mat, v))
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(
    module: Module,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
) -> Module:
    """Reparametrize ``module.<name>`` as W / sigma(W), sigma its largest singular value
    (W seen as a matrix with `dim` as rows: 0, or 1 for ConvTranspose), estimated by power
    iteration with the buffers ``parametrizations.<name>.0._u``/``_v`` (updated on each access
    in training mode)."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = _default_dim(module)
    parametrize.register_parametrization(
        module, name, _SpectralNorm(weight, n_power_iterations, dim, eps)
    )
    return module
