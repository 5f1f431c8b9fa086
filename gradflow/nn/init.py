"""Weight initializations (``torch.nn.init``'s names and formulas), filling tensors in place.

Every function draws from the tensor's device generator (or the `generator` given), so
``gradflow.manual_seed`` makes initialization reproducible.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy

from gradflow.backend import Device, get_array_module, move_array
from gradflow.random import Generator, seed_for
from gradflow.tensor import Tensor

_GAINS = {
    "linear": 1.0,
    "conv1d": 1.0,
    "conv2d": 1.0,
    "conv3d": 1.0,
    "conv_transpose1d": 1.0,
    "conv_transpose2d": 1.0,
    "conv_transpose3d": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3,
    "relu": math.sqrt(2.0),
    "selu": 3.0 / 4,
}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended scale of the weights feeding `nonlinearity` (PyTorch's table)."""
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, int | float) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity not in _GAINS:
        raise ValueError(
            f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected one of "
            f"{sorted([*_GAINS, 'leaky_relu'])}"
        )
    return _GAINS[nonlinearity]


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shaped (out, in, *kernel)."""
    if tensor.ndim < 2:
        raise ValueError(
            "fan in and fan out need a tensor with at least 2 dims, got shape "
            f"{tuple(tensor.shape)}"
        )
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


_calculate_correct_fan = _fan  # PyTorch's private name, which model code (timm) imports


def _fill(tensor: Tensor, values: Any) -> Tensor:
    tensor.array[...] = values.astype(tensor.dtype, copy=False)
    return tensor


def uniform_(
    tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Generator | None = None
) -> Tensor:
    """Fill with samples from U(a, b)."""
    rng = seed_for(generator, tensor.device)
    return _fill(tensor, a + (b - a) * rng.random(tensor.shape))


def normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Generator | None = None
) -> Tensor:
    """Fill with samples from N(mean, std^2)."""
    rng = seed_for(generator, tensor.device)
    return _fill(tensor, mean + std * rng.standard_normal(tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    tensor.array[...] = val
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def xavier_uniform_(
    tensor: Tensor, gain: float = 1.0, generator: Generator | None = None
) -> Tensor:
    """Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Generator | None = None) -> Tensor:
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Generator | None = None,
) -> Tensor:
    """He uniform: U(-b, b) with b = gain * sqrt(3 / fan) (nn.Linear and nn.Conv use a=sqrt(5))."""
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Generator | None = None,
) -> Tensor:
    """He normal: N(0, std^2) with std = gain / sqrt(fan)."""
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator)


def _normal_quantile(xp: Any, p: Any) -> Any:
    """The standard normal's inverse CDF at p in (0, 1), elementwise (Acklam's rational
    approximation, relative error below 1.2e-9: NumPy and CuPy have no erfinv)."""
    a = (-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690,
         -30.66479806614716, 2.506628277459239)  # fmt: skip
    b = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
         -13.28068155288572)  # fmt: skip
    c = (-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
         4.374664141464968, 2.938163982698783)  # fmt: skip
    d = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)

    def poly(coeffs: tuple, x: Any) -> Any:
        out = xp.full_like(x, coeffs[0])
        for k in coeffs[1:]:
            out = out * x + k
        return out

    low = 0.02425
    q = p - 0.5
    r = q * q
    central = poly(a, r) * q / (poly(b, r) * r + 1)
    t = xp.sqrt(-2 * xp.log(xp.where(p < 0.5, p, 1 - p)))
    tail = poly(c, t) / (poly(d, t) * t + 1)
    tail = xp.where(p < 0.5, tail, -tail)
    return xp.where((p >= low) & (p <= 1 - low), central, tail)


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: Generator | None = None,
) -> Tensor:
    """Fill with N(mean, std^2) samples truncated to [a, b] (a and b are values, not numbers
    of std), by the inverse CDF as PyTorch does."""
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn(
            "mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The distribution "
            "of values may be incorrect.",
            stacklevel=2,
        )
    rng = seed_for(generator, tensor.device)
    xp = get_array_module(tensor.array)
    low = 0.5 * (1 + math.erf((a - mean) / (std * math.sqrt(2.0))))
    high = 0.5 * (1 + math.erf((b - mean) / (std * math.sqrt(2.0))))
    p = low + (high - low) * rng.random(tensor.shape)
    p = xp.clip(p, 1e-300, 1 - 1e-16)  # the quantile is finite only inside (0, 1)
    values = xp.clip(mean + std * _normal_quantile(xp, p), a, b)
    return _fill(tensor, values)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Generator | None = None) -> Tensor:
    """Fill with a (semi-)orthogonal matrix (the tensor viewed as (size(0), -1)) times gain:
    the Q of a QR decomposition of a normal matrix, signs fixed by R's diagonal (PyTorch's)."""
    if tensor.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor  # nothing to fill, as in PyTorch
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = seed_for(generator, tensor.device).standard_normal((rows, cols))
    # The QR runs on the host (once per weight): one code path on every device.
    flat = move_array(flat, Device("cpu"))
    if rows < cols:
        flat = flat.T
    q, r = numpy.linalg.qr(flat)
    q = q * numpy.sign(numpy.diagonal(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, move_array(gain * q, tensor.device).reshape(tensor.shape))


def sparse_(
    tensor: Tensor, sparsity: float, std: float = 0.01, generator: Generator | None = None
) -> Tensor:
    """Fill a 2-D tensor from N(0, std^2), then zero ceil(sparsity * rows) random entries of
    each column (Martens 2010, as PyTorch)."""
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = tensor.shape
    zeros_per_column = math.ceil(sparsity * rows)
    rng = seed_for(generator, tensor.device)
    xp = get_array_module(tensor.array)
    values = std * rng.standard_normal((rows, cols))
    # A random permutation of the rows per column: argsort of uniform keys (CuPy's Generator
    # has no batched permutation).
    order = xp.argsort(rng.random((rows, cols)), axis=0)[:zeros_per_column]
    values[order, xp.arange(cols)[None, :]] = 0
    return _fill(tensor, values)


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill a 3-, 4- or 5-D (convolution) weight with the Dirac delta: a convolution with it
    keeps as many input channels as it can, in each of `groups` groups."""
    if tensor.ndim not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    out_channels = tensor.shape[0]
    if out_channels % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    per_group = out_channels // groups
    kept = min(per_group, tensor.shape[1])
    tensor.array[...] = 0
    centre = tuple(k // 2 for k in tensor.shape[2:])
    for g in range(groups):
        for d in range(kept):
            tensor.array[(g * per_group + d, d, *centre)] = 1
    return tensor


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix (ones on the diagonal, zeros elsewhere)."""
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    xp = get_array_module(tensor.array)
    return _fill(tensor, xp.eye(*tensor.shape, dtype=tensor.dtype))


def fan_in_uniform_(tensor: Tensor, fan_in: int, generator: Generator | None = None) -> Tensor:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for biases (and RNN weights)."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return uniform_(tensor, -bound, bound, generator)


def linear_default_(weight: Tensor, bias: Tensor | None = None) -> None:
    """PyTorch's default initialization of Linear and Conv layers, in place: the weight from
    kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the bias from the
    same bound."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in_uniform_(bias, _calculate_fan_in_and_fan_out(weight)[0])
