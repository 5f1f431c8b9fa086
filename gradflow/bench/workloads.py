"""The workloads `gradflow bench` (suites.py) and the pytest suites in benchmarks/ time, each
defined once: the step to time, built for gradflow or torch on a device from the same seeded
data, and the least bytes or FLOPs it needs (for GB/s, FLOP/s and the fraction of a ceiling).

What a step covers:
- the backward of one op (``*_backward``) re-runs the backward of a graph built once, with
  ``retain_graph=True`` and the input grads cleared first, so no forward is timed;
- chain, mlp, conv, rnn, linear_relu and attention run forward + backward;
- optimizer runs one optimizer step on fixed grads; train one full training step of a
  gradflow.models model (forward, cross-entropy, backward, Adam).

The same backward math on raw arrays (NumPy, CuPy, the CUDA kernels, torch's aten) is in
array_workloads.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from gradflow.bench.frameworks import FRAMEWORKS, Framework, normal, rng, torch_ready
from gradflow.bench.timing import Side

Step = Callable[[], Any]
Setup = Callable[[str, str], Step]  # (framework, device) -> step


@dataclass(frozen=True)
class Workload:
    """`setup(framework, device)` returns the step to time; `size` is the workload's natural
    count (elements, ops, parameters, FLOPs or batch: the x axis of a plot); `gemm` is the
    (rows, inner, cols) of the GEMM it is made of, where it is made of one."""

    setup: Setup
    shape: str
    size: float
    bytes_moved: float = 0
    flops: float = 0
    gemm: tuple[int, int, int] | None = None
    torch: bool = True  # whether a torch twin exists

    def sides(self, device: str, frameworks: tuple = FRAMEWORKS) -> dict[str, Side | None]:
        """The steps of `frameworks` on `device` as sides to compare (gradflow.bench.figures),
        gradflow's first; torch's is None where torch can't run or the workload has no twin."""
        sides: dict[str, Side | None] = {}
        for fw in frameworks:
            usable = fw == "gradflow" or (self.torch and torch_ready(device))
            sides[fw] = Side(self.setup(fw, device), device, fw) if usable else None
        return sides


def _backward_only(out: Any, leaves: list, grad: Any = None) -> Step:
    """A step re-running the backward of an already built graph (see the module docstring)."""

    def step() -> None:
        for t in leaves:
            t.grad = None
        out.backward(grad, retain_graph=True)

    return step


# ---- engine ----------------------------------------------------------------------------------
def chain_step(x: Any, pairs: int) -> Step:
    """A step running `pairs` (mul, add) pairs and a sum forward from the leaf `x` (a gradflow
    or torch tensor), then backward; it returns the chain's last tensor. Almost all its time
    is per-op bookkeeping."""

    def step() -> Any:
        y = x
        for _ in range(pairs):
            y = y * 1.0001
            y = y + 0.0001
        y.sum().backward()
        x.grad = None
        return y

    return step


def chain(pairs: int) -> Workload:
    """Per-op overhead: a chain of 2 * pairs + 1 tiny ops on 4 floats, forward + backward."""

    def setup(fw: str, device: str) -> Step:
        return chain_step(Framework(fw, device).tensor(np.ones(4, np.float32), grad=True), pairs)

    ops = 2 * pairs + 1
    return Workload(setup, f"{ops} ops on 4 floats", ops)


MLP_SIZES = (784, 128, 10)


def mlp(batch: int) -> Workload:
    """One step of a 784-128-10 MLP: linear, relu, linear, cross-entropy, backward."""
    n_in, n_hidden, n_out = MLP_SIZES

    def setup(fw: str, device: str) -> Step:
        f = Framework(fw, device)
        w1 = f.tensor(normal(n_hidden, n_in, scale=n_in**-0.5), True)
        w2 = f.tensor(normal(n_out, n_hidden, scale=n_hidden**-0.5), True)
        b1 = f.tensor(np.zeros(n_hidden, np.float32), True)
        b2 = f.tensor(np.zeros(n_out, np.float32), True)
        x, y = f.tensor(normal(batch, n_in)), f.tensor(rng().integers(0, n_out, batch))

        def step() -> Any:
            loss = f.F.cross_entropy(f.F.linear(f.F.relu(f.F.linear(x, w1, b1)), w2, b2), y)
            loss.backward()
            w1.grad = b1.grad = w2.grad = b2.grad = None
            return loss

        return step

    flops = 3 * 2 * batch * (n_in * n_hidden + n_hidden * n_out)  # forward GEMMs, dX and dW
    return Workload(setup, f"{n_in}-{n_hidden}-{n_out}, B={batch}", flops, flops=flops)


# ---- the backward of one op ------------------------------------------------------------------
# Keyed by the names of kernels/activations.py's table.
ACTIVATIONS = {
    "relu": lambda f, x: f.F.relu(x),
    "gelu_tanh": lambda f, x: f.F.gelu(x, approximate="tanh"),
    "sigmoid": lambda f, x: f.lib.sigmoid(x),
    "tanh": lambda f, x: f.lib.tanh(x),
    "silu": lambda f, x: f.F.silu(x),
}
BENCHMARKED_ACTIVATIONS = tuple(ACTIVATIONS)


def activation_backward(name: str, n: int) -> Workload:
    """An activation's backward alone: reads the saved array and the grad, writes the input's."""

    def setup(fw: str, device: str) -> Step:
        f = Framework(fw, device)
        x = f.tensor(normal(n), grad=True)
        return _backward_only(ACTIVATIONS[name](f, x), [x], f.tensor(normal(n)))

    return Workload(setup, f"n={n}", n, bytes_moved=3 * n * 4)


def bias_relu_backward(n: int, c: int) -> Workload:
    """relu(z + b) backward: dZ and the bias grad (a column sum)."""

    def setup(fw: str, device: str) -> Step:
        f = Framework(fw, device)
        z, b = f.tensor(normal(n, c), True), f.tensor(normal(c), True)
        return _backward_only(f.F.relu(z + b), [z, b], f.tensor(normal(n, c)))

    return Workload(setup, f"{n}x{c}", n * c, bytes_moved=(3 * n * c + c) * 4)


def softmax_xent_backward(rows: int, classes: int) -> Workload:
    """Softmax cross-entropy backward: the logits' grad from the saved softmax."""

    def setup(fw: str, device: str) -> Step:
        f = Framework(fw, device)
        logits = f.tensor(normal(rows, classes), True)
        target = f.tensor(rng().integers(0, classes, rows))
        return _backward_only(f.F.cross_entropy(logits, target), [logits])

    nbytes = 2 * rows * classes * 4 + rows * 8
    return Workload(setup, f"{rows}x{classes}", rows * classes, bytes_moved=nbytes)


def relu_matmul_backward(m: int, k: int, n: int) -> Workload:
    """relu(x @ w) backward: dX and dW, two GEMMs through the activation's grad."""

    def setup(fw: str, device: str) -> Step:
        f = Framework(fw, device)
        x, w = f.tensor(normal(m, k), True), f.tensor(normal(k, n), True)
        return _backward_only(f.F.relu(x @ w), [x, w], f.tensor(normal(m, n)))

    flops = 2 * 2 * m * n * k
    return Workload(setup, f"M={m} K={k} N={n}", flops, flops=flops)


# ---- layers ----------------------------------------------------------------------------------
CONV_SHAPES = {  # name: (N, C, H=W, O, k, stride, padding)
    "digits_cnn": (64, 1, 8, 32, 3, 1, 1),  # the digits CNN's first layer
    "resnet_3x3_c64": (8, 64, 32, 64, 3, 1, 1),  # ResNet-style 3x3 layers, scaled down
    "resnet_3x3_c128": (16, 128, 16, 128, 3, 1, 1),
    "resnet_3x3_s2": (16, 64, 32, 128, 3, 2, 1),
}


def conv(shape: tuple[int, ...]) -> Workload:
    """conv2d forward + backward to input, weight and bias; shape (N, C, H=W, O, k, stride,
    padding). FLOPs: the forward, dX and dW GEMMs, each [O, C*k*k] @ [C*k*k, N*OH*OW]."""
    n, c, h, o, k, s, p = shape
    out = (h + 2 * p - k) // s + 1

    def setup(fw: str, device: str) -> Step:
        f = Framework(fw, device)
        x, b = f.tensor(normal(n, c, h, h), True), f.tensor(normal(o), True)
        w = f.tensor(normal(o, c, k, k, scale=(c * k * k) ** -0.5), True)
        grad = f.tensor(np.ones((n, o, out, out), np.float32))

        def step() -> Any:
            x.grad = w.grad = b.grad = None
            y = f.F.conv2d(x, w, b, stride=s, padding=p)
            y.backward(grad)
            return y

        return step

    flops = 3 * 2 * n * o * out * out * c * k * k
    return Workload(setup, f"N={n} C={c} H=W={h} O={o} k={k} s={s} p={p}", flops, flops=flops,
                    gemm=(o, c * k * k, n * out * out))  # fmt: skip


RNN_GATES = {"lstm": 4, "gru": 3}
RNN_CPU_SHAPE = (16, 128, 64)  # batch, hidden, input: DeepBench's RNN training shapes, scaled
RNN_GPU_SHAPE = (64, 512, 512)  # the target shape of docs/DESIGN.md §7 (T=100 the target)


def rnn(mode: str, steps: int, batch: int, hidden: int, n_in: int) -> Workload:
    """One LSTM / GRU layer, forward over T steps and backward (loss = sum of the outputs).
    FLOPs: the GEMMs of forward and backward, 3 * 2 * T * B * G*H * (I + H), G the gates."""
    import gradflow.nn

    def setup(fw: str, device: str) -> Step:
        f = Framework(fw, device)
        model = f.module(lambda: getattr(gradflow.nn, mode.upper())(n_in, hidden))
        x = f.tensor(normal(steps, batch, n_in))

        def step() -> Any:
            loss = model(x)[0].sum()
            loss.backward()
            for p in model.parameters():
                p.grad = None
            return loss

        return step

    gates = RNN_GATES[mode]
    flops = 3 * 2 * steps * batch * gates * hidden * (n_in + hidden)
    return Workload(setup, f"T={steps} B={batch} H={hidden} I={n_in}", flops, flops=flops,
                    gemm=(steps * batch, n_in, gates * hidden))  # fmt: skip


def linear_relu(rows: int, n_in: int, n_out: int, fused: bool = True) -> Workload:
    """nn.Sequential(Linear, ReLU) forward + backward: one fused LinearActivation node, or
    (fused=False, gradflow only) the pair unfused under gradflow.nn.fusion.disabled()."""
    from gradflow import nn
    from gradflow.nn import fusion

    def setup(fw: str, device: str) -> Step:
        f = Framework(fw, device)
        layer = f.module(lambda: nn.Sequential(nn.Linear(n_in, n_out), nn.ReLU()))
        x = f.tensor(normal(rows, n_in), True)

        def step() -> None:
            if fused or fw == "torch":
                layer(x).sum().backward()
                return
            with fusion.disabled():
                layer(x).sum().backward()

        return step

    flops = 6 * rows * n_in * n_out  # the forward GEMM and the two backward GEMMs
    return Workload(setup, f"{rows}x{n_in}x{n_out}", flops, flops=flops)


# ---- attention -------------------------------------------------------------------------------
ATTENTION_SHAPE = (8, 8, 64)  # batch, heads, head dim: issue 16's shape (T = 128 and 512)


def attention_flops(batch: int, heads: int, seq: int, dim: int, keys: int | None = None) -> int:
    """The GEMM FLOPs of attention forward + backward for q (B, H, T, D), k and v (B, H, S, D):
    forward 4*B*H*T*S*D (S = Q K^T and O = P V, 2*B*H*T*S*D each), backward twice that,
    8*B*H*T*S*D (dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q): 12*B*H*T*S*D in all. The
    softmax and its backward (a few passes over B*H*T*S) are left out. A causal mask does not
    change the count: the full T x S matrix is counted, as gradflow computes all of it and
    masks (a kernel that skips the masked blocks does about half the work at the same count)."""
    keys = seq if keys is None else keys
    return 12 * batch * heads * seq * keys * dim


def attention(batch: int, heads: int, seq: int, dim: int, causal: bool = False) -> Workload:
    """F.scaled_dot_product_attention forward + backward, self-attention on float32 q, k, v of
    shape (B, H, T, D), with or without is_causal: out.backward(g) for a fixed g (the grad of
    loss = (out * g).sum()), dQ, dK and dV computed. The step returns (out, dQ, dK, dV) and
    leaves the leaves' grads cleared, so each call starts with no grad alive (and peak memory
    is measured from the same point on every call and either side). FLOPs: attention_flops."""
    shape = (batch, heads, seq, dim)
    q, k, v, g = rng().standard_normal((4, *shape), dtype=np.float32)

    def setup(fw: str, device: str) -> Step:
        f = Framework(fw, device)
        leaves = [f.tensor(a, True) for a in (q, k, v)]
        grad = f.tensor(g)
        sdpa = f.F.scaled_dot_product_attention

        def step() -> Any:
            out = sdpa(*leaves, is_causal=causal)
            out.backward(grad)
            grads = tuple(t.grad for t in leaves)
            for t in leaves:
                t.grad = None
            return (out, *grads)

        return step

    flops = attention_flops(batch, heads, seq, dim)
    label = f"B={batch} H={heads} T={seq} D={dim}"
    return Workload(setup, label, flops, flops=flops, gemm=(seq, dim, seq))


# ---- optimizers and training -----------------------------------------------------------------
def cnn_shapes(width: int) -> list[tuple[int, ...]]:
    """Conv weights/biases of five 3x3 layers and a two-layer head; `width` scales channels."""
    channels = [3, width, 2 * width, 4 * width, 8 * width, 8 * width]
    shapes: list[tuple[int, ...]] = []
    for c_in, c_out in pairwise(channels):
        shapes += [(c_out, c_in, 3, 3), (c_out,)]
    hidden, flat = 16 * width, 8 * width * 2 * 2
    return [*shapes, (hidden, flat), (hidden,), (10, hidden), (10,)]


def mlp_shapes(width: int) -> list[tuple[int, ...]]:
    """784-width-width-10 linear layers, weights and biases."""
    shapes: list[tuple[int, ...]] = []
    for n_in, n_out in pairwise([784, width, width, 10]):
        shapes += [(n_out, n_in), (n_out,)]
    return shapes


PARAMETER_LISTS = {  # name: (the shapes at a width, its description)
    "cnn": (cnn_shapes, "CNN 3-{w}-{w2}-{w4}-{w8}-{w8} 3x3 + head"),
    "mlp": (mlp_shapes, "MLP 784-{w}-{w}-10"),
}
OPTIMIZERS = {  # name: (class name in both libraries, hyperparameters, arrays read + written)
    "sgd_momentum": ("SGD", {"lr": 0.01, "momentum": 0.9}, 5),  # p, g, buf in; p, buf out
    "adam": ("Adam", {"lr": 1e-3}, 7),  # p, g, m, v in; p, m, v out
}


def optimizer(kind: str, model: str, width: int, foreach: bool | None = None) -> Workload:
    """One optimizer step over a model's parameters (PARAMETER_LISTS) on fixed grads, the state
    allocated before the timed steps. `foreach` goes to torch's optimizer (None: its default;
    False: one tensor at a time; True: its multi-tensor path)."""
    make_shapes, label = PARAMETER_LISTS[model]
    shapes = make_shapes(width)
    r = rng()
    params = [(r.standard_normal(s) * 0.05).astype(np.float32) for s in shapes]
    grads = [(r.standard_normal(s) * 0.01).astype(np.float32) for s in shapes]
    count = sum(p.size for p in params)
    cls_name, hyper, arrays = OPTIMIZERS[kind]

    def setup(fw: str, device: str) -> Step:
        f = Framework(fw, device)
        tensors = [f.tensor(p, True) for p in params]
        for t, g in zip(tensors, grads):
            t.grad = f.tensor(g)
        options = {} if fw == "gradflow" or foreach is None else {"foreach": foreach}
        opt = getattr(f.lib.optim, cls_name)(tensors, **hyper, **options)
        opt.step()  # the state exists before the timed steps, as after the first iteration
        return opt.step

    shape = label.format(w=width, w2=2 * width, w4=4 * width, w8=8 * width)
    return Workload(setup, f"{shape}, {count} params", count, bytes_moved=arrays * 4 * count)


def train(name: str, batch: int) -> Workload:
    """One training step of a `gradflow train` model at the digits' shape (1x8x8, 10 classes):
    forward, cross-entropy, backward, Adam step."""
    from gradflow import models

    def setup(fw: str, device: str) -> Step:
        f = Framework(fw, device)
        model = f.module(models.MODELS[name])
        opt = f.lib.optim.Adam(model.parameters(), lr=1e-3)
        images = f.tensor(rng().random((batch, 1, 8, 8), dtype=np.float32))
        labels = f.tensor(rng(1).integers(0, 10, batch))

        def step() -> Any:
            loss = f.F.cross_entropy(model(images), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        return step

    return Workload(setup, f"B={batch}, 1x8x8", batch)
