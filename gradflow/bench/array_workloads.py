"""Backward passes on raw arrays, each written three ways on the same inputs, for the kernel
benchmarks (benchmarks/bench_{elementwise,fused,matmul}_backward.py):

- "unfused": the NumPy expression gradflow's ops use (written with out= to avoid temporaries),
  run on NumPy arrays on the CPU and on CuPy arrays on a GPU;
- "kernel": gradflow.kernels' fused CUDA kernel (a GPU only);
- "torch": torch's own backward kernel (aten) on the same data (where torch can run).

Each builder gives an ArrayWorkload on a device with the least traffic the pass needs (each
input read once, each output written once) and, for GEMMs, its FLOPs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradflow.backend import Device, get_array_module
from gradflow.bench.frameworks import rng, torch_ready
from gradflow.bench.machine import torch_or_none
from gradflow.bench.timing import Side
from gradflow.bench.workloads import BENCHMARKED_ACTIVATIONS
from gradflow.kernels.activations import SAVES_OUTPUT

Step = Callable[[], Any]


@dataclass(frozen=True)
class ArrayWorkload:
    """The ways of one backward pass on `device` (see the module docstring)."""

    device: str
    unfused: Step
    kernel: Step | None  # None on the CPU
    torch: Step | None  # None where torch can't run on the device
    bytes_moved: float
    flops: float = 0
    more: dict[str, Step] = field(default_factory=dict)  # further GPU sides (cuBLAS alone)

    def sides(self) -> dict[str, Side | None]:
        """The sides to compare, ours first: "numpy" and "torch" on the CPU; on a GPU
        "kernel", "cupy_unfused", any further sides and "torch"."""
        torch = None if self.torch is None else Side(self.torch, self.device, "torch")
        if self.kernel is None:
            return {"numpy": Side(self.unfused, self.device), "torch": torch}
        sides = {"kernel": self.kernel, "cupy_unfused": self.unfused, **self.more}
        return {**{k: Side(fn, self.device) for k, fn in sides.items()}, "torch": torch}


class _Inputs:
    """Seeded float32 host arrays placed on the device, and torch views of them."""

    def __init__(self, device: str):
        self.device, self.cuda = device, device.startswith("cuda")
        self.xp = get_array_module(Device(device))
        self.torch = torch_or_none() if torch_ready(device) else None
        self.rng = rng()

    def normal(self, *shape: int) -> Any:
        return self.xp.asarray(self.rng.standard_normal(shape).astype(np.float32))

    def place(self, array: np.ndarray) -> Any:
        return self.xp.asarray(array)

    def twin(self, fn: Callable[..., Any], *arrays: Any) -> Step | None:
        """``fn(torch, *tensors)`` as a step on torch views of `arrays`, or None."""
        if self.torch is None:
            return None
        tensors = [self.torch.as_tensor(a, device=self.device) for a in arrays]
        return lambda: fn(self.torch, *tensors)

    def kernel(self, fn: Step) -> Step | None:
        return fn if self.cuda else None


# ---- activations -----------------------------------------------------------------------------
# The activations benchmarked, by their names in kernels/activations.py's table (SAVES_OUTPUT:
# those whose backward reads the output y, the others the input x).
ACTIVATIONS = list(BENCHMARKED_ACTIVATIONS)


def unfused_activation_bwd(name: str, s: Any, g: Any, xp: Any = np) -> Any:
    """grad_in from the saved array s (x, or y for sigmoid/tanh) and grad_out g."""
    if name == "relu":
        return xp.multiply(g, s > 0)
    if name == "sigmoid":
        out = 1 - s
        out *= s
        out *= g
        return out
    if name == "tanh":
        out = s * s
        xp.subtract(1, out, out=out)
        out *= g
        return out
    if name == "silu":
        sig = xp.exp(-s)
        sig += 1
        xp.reciprocal(sig, out=sig)
        out = 1 - sig
        out *= s
        out += 1
        out *= sig
        out *= g
        return out
    if name == "gelu_tanh":
        k = math.sqrt(2 / math.pi)
        s2 = s * s
        t = s2 * 0.044715
        t += 1
        t *= s
        t *= k
        xp.tanh(t, out=t)
        inner = s2 * (3 * 0.044715)
        inner += 1
        inner *= k
        inner *= s
        inner *= 1 - t * t
        t += 1
        t += inner
        t *= 0.5
        t *= g
        return t
    raise KeyError(name)


TORCH_ACTIVATION_BWD = {  # name: torch's backward kernel, (aten, g, s) -> grad_in
    "relu": lambda aten, g, s: aten.threshold_backward(g, s, 0),
    "gelu_tanh": lambda aten, g, s: aten.gelu_backward(g, s, approximate="tanh"),
    "sigmoid": lambda aten, g, s: aten.sigmoid_backward(g, s),
    "tanh": lambda aten, g, s: aten.tanh_backward(g, s),
    "silu": lambda aten, g, s: aten.silu_backward(g, s),
}


def activation_backward(name: str, n: int, device: str = "cpu") -> ArrayWorkload:
    """An activation's backward over n elements: reads s and g, writes grad_in."""
    from gradflow.kernels import activation_bwd

    inp = _Inputs(device)
    x = inp.rng.standard_normal(n).astype(np.float32)
    s = inp.place(np.tanh(x) if name in SAVES_OUTPUT else x)
    g = inp.normal(n)
    torch_bwd = TORCH_ACTIVATION_BWD[name]
    return ArrayWorkload(
        device,
        unfused=lambda: unfused_activation_bwd(name, s, g, inp.xp),
        kernel=inp.kernel(lambda: activation_bwd(name, s, g)),
        torch=inp.twin(lambda torch, ts, tg: torch_bwd(torch.ops.aten, tg, ts), s, g),
        bytes_moved=3 * n * 4,
    )


def mul_backward(n: int, device: str = "cpu") -> ArrayWorkload:
    """a * b backward over n elements: reads a, b and g, writes both grads."""
    from gradflow.kernels import binary_bwd

    inp = _Inputs(device)
    a, b = inp.normal(n), inp.normal(n)
    g = inp.xp.ones_like(a)
    return ArrayWorkload(
        device,
        unfused=lambda: (inp.xp.multiply(g, b), inp.xp.multiply(g, a)),
        kernel=inp.kernel(lambda: binary_bwd("mul", a, b, g)),
        torch=inp.twin(lambda torch, ta, tb, tg: (torch.mul(tg, tb), torch.mul(tg, ta)), a, b, g),
        bytes_moved=5 * n * 4,
    )


# ---- fused -----------------------------------------------------------------------------------
def unfused_bias_relu_bwd(dy: Any, z: Any) -> tuple[Any, Any]:
    dz = dy * (z > 0)
    return dz, dz.sum(axis=0)


def bias_relu_backward(n: int, c: int, device: str = "cpu") -> ArrayWorkload:
    """relu(z + b) backward on [n, c]: dZ and the bias grad (reads dY, Z; writes dZ, db)."""
    from gradflow.kernels import bias_act_bwd

    inp = _Inputs(device)
    dy, z = inp.normal(n, c), inp.normal(n, c)

    def torch_bwd(torch: Any, tdy: Any, tz: Any) -> Any:
        dz = torch.ops.aten.threshold_backward(tdy, tz, 0)
        return dz, dz.sum(0)

    return ArrayWorkload(
        device,
        unfused=lambda: unfused_bias_relu_bwd(dy, z),
        kernel=inp.kernel(lambda: bias_act_bwd(dy, z, "relu")),
        torch=inp.twin(torch_bwd, dy, z),
        bytes_moved=(3 * n * c + c) * 4,
    )


def unfused_softmax_xent(logits: Any, target: Any, xp: Any = np) -> tuple[Any, Any]:
    """Mean cross-entropy and its logits gradient, as the NumPy op computes them."""
    m = logits.max(axis=1, keepdims=True)
    shifted = logits - m
    lse = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    rows = xp.arange(logits.shape[0])
    loss = (lse[:, 0] - shifted[rows, target]).mean()
    grad = xp.exp(shifted - lse)
    grad[rows, target] -= 1
    grad /= logits.shape[0]
    return loss, grad


def softmax_xent(n: int, c: int, device: str = "cpu") -> ArrayWorkload:
    """Softmax cross-entropy forward and backward on [n, c] logits with int64 targets."""
    from gradflow.kernels import softmax_xent_bwd, softmax_xent_fwd

    inp = _Inputs(device)
    logits = inp.normal(n, c)
    target = inp.place(inp.rng.integers(0, c, n).astype(np.int64))

    def kernel() -> Any:
        loss, lse = softmax_xent_fwd(logits, target)
        return loss.mean(), softmax_xent_bwd(logits, lse, target, 1.0 / n)

    def torch_xent(torch: Any, tl: Any, tt: Any) -> tuple[Any, Any]:
        tl.requires_grad_()  # once in effect: the flag of the same leaf on every call
        loss = torch.nn.functional.cross_entropy(tl, tt)
        return loss, torch.autograd.grad(loss, tl)[0]

    return ArrayWorkload(
        device,
        unfused=lambda: unfused_softmax_xent(logits, target, inp.xp),
        kernel=inp.kernel(kernel),
        torch=inp.twin(torch_xent, logits, target),
        bytes_moved=2 * n * c * 4 + n * 8,
    )


# ---- matmul ----------------------------------------------------------------------------------
def relu_matmul_backward(m: int, n: int, k: int, device: str = "cpu") -> ArrayWorkload:
    """The input grad through an activation, dX = (dY * relu'(Z)) @ W^T: dY, Z [m, n], W [k, n].
    On a GPU also "cublas_only": dY @ W^T alone, the GEMM without the activation."""
    from gradflow.kernels import fused_act_matmul_bwd

    inp = _Inputs(device)
    dy, z, w = inp.normal(m, n), inp.normal(m, n), inp.normal(k, n)

    def torch_bwd(torch: Any, tdy: Any, tz: Any, tw: Any) -> Any:
        return torch.ops.aten.threshold_backward(tdy, tz, 0) @ tw.T

    return ArrayWorkload(
        device,
        unfused=lambda: (dy * (z > 0)) @ w.T,
        kernel=inp.kernel(lambda: fused_act_matmul_bwd(dy, z, w, "relu")),
        torch=inp.twin(torch_bwd, dy, z, w),
        bytes_moved=(2 * m * n + k * n + m * k) * 4,
        flops=2 * m * n * k,
        more={"cublas_only": lambda: dy @ w.T} if inp.cuda else {},
    )
