"""NumPy float64 reference formulas that the kernel tests compare the kernels against."""

from __future__ import annotations

import math

import numpy as np

# Tolerances for kernel results (computed in the dtype) against float64 references.
TOLERANCES = {
    np.dtype(np.float32): {"rtol": 2e-5, "atol": 2e-6},
    np.dtype(np.float64): {"rtol": 1e-12, "atol": 1e-13},
}

_erf = np.frompyfunc(math.erf, 1, 1)


def erf(x: np.ndarray) -> np.ndarray:
    return _erf(x).astype(np.float64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def gelu_tanh_inner(x: np.ndarray) -> np.ndarray:
    return math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)


def activation(name: str, x: np.ndarray, p: dict) -> np.ndarray:
    """f(x) in float64."""
    if name == "relu":
        return np.maximum(x, 0)
    if name == "leaky_relu":
        return np.where(x > 0, x, x * p["negative_slope"])
    if name == "elu":
        return np.where(x > 0, x, p["alpha"] * np.expm1(x))
    if name == "gelu_erf":
        return 0.5 * x * (1 + erf(x / math.sqrt(2)))
    if name == "gelu_tanh":
        return 0.5 * x * (1 + np.tanh(gelu_tanh_inner(x)))
    if name == "sigmoid":
        return sigmoid(x)
    if name == "tanh":
        return np.tanh(x)
    if name == "silu":
        return x * sigmoid(x)
    if name == "softplus":
        bx = p["beta"] * x
        return np.where(bx > p["threshold"], x, np.log1p(np.exp(np.minimum(bx, 700))) / p["beta"])
    if name == "identity":
        return x
    raise KeyError(name)


def activation_grad(name: str, x: np.ndarray, p: dict | None = None) -> np.ndarray:
    """f'(x) in float64, written independently of the kernels' formulas where possible."""
    p = p or {}
    if name == "relu":
        return (x > 0).astype(np.float64)
    if name == "leaky_relu":
        return np.where(x > 0, 1.0, p["negative_slope"])
    if name == "elu":
        return np.where(x > 0, 1.0, p["alpha"] * np.exp(x))
    if name == "gelu_erf":
        return 0.5 * (1 + erf(x / math.sqrt(2))) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    if name == "gelu_tanh":
        t = np.tanh(gelu_tanh_inner(x))
        dinner = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x * x)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dinner
    if name == "sigmoid":
        s = sigmoid(x)
        return s * (1 - s)
    if name == "tanh":
        return 1 - np.tanh(x) ** 2
    if name == "silu":
        s = sigmoid(x)
        return s + x * s * (1 - s)
    if name == "softplus":
        bx = p["beta"] * x
        return np.where(bx > p["threshold"], 1.0, sigmoid(bx))
    if name == "identity":
        return np.ones_like(x)
    raise KeyError(name)


def binary_grads(op: str, a: np.ndarray, b: np.ndarray, g: np.ndarray):
    """(grad_a, grad_b) of a <op> b, with PyTorch's conventions for pow at a == 0."""
    if op == "mul":
        return g * b, g * a
    if op == "div":
        return g / b, -g * a / b**2
    if op == "pow":
        with np.errstate(divide="ignore", invalid="ignore"):
            ga = np.where(b == 0, 0.0, g * b * np.power(a, b - 1))
            gb = np.where((a == 0) & (b >= 0), 0.0, g * np.power(a, b) * np.log(a))
        return ga, gb
    raise KeyError(op)


def log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def xent_rows(logits, target, weight, ignore_index, eps):
    """PyTorch cross_entropy(reduction='none') per row, float64, written from its definition:
    (1-eps) * nll(log_softmax) + eps/C * (-sum_c w_c log_softmax_c), zero on ignored rows."""
    n, c = logits.shape
    w = np.ones(c) if weight is None else weight.astype(np.float64)
    logp = log_softmax(logits.astype(np.float64))
    keep = target != ignore_index
    safe_t = np.where(keep, target, 0)
    nll = -w[safe_t] * logp[np.arange(n), safe_t]
    smooth = -(logp * w).sum(axis=1)
    return np.where(keep, (1 - eps) * nll + eps / c * smooth, 0.0)


def xent_grad(logits, target, weight, ignore_index, eps, scale):
    """d/dlogits of sum_n scale_n * xent_rows(...)_n, float64."""
    n, c = logits.shape
    w = np.ones(c) if weight is None else weight.astype(np.float64)
    p = np.exp(log_softmax(logits.astype(np.float64)))
    keep = target != ignore_index
    safe_t = np.where(keep, target, 0)
    wt = w[safe_t][:, None]
    onehot = np.zeros((n, c))
    onehot[np.arange(n), safe_t] = 1
    # d/dx of -(1-eps) w_t logp_t = (1-eps) w_t (p - onehot); of -eps/C sum w_c logp_c =
    # eps/C (W p - w).
    grad = (1 - eps) * wt * (p - onehot) + eps / c * (w.sum() * p - w)
    return np.where(keep[:, None], grad * np.reshape(scale, (-1, 1)), 0.0)
