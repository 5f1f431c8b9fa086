"""The workloads of `gradflow bench`, one function per suite, each giving cases at a size.

A case is a name (the op), a shape, a setup building a zero-argument step on a device for a
framework ("gradflow" or "torch", the same workload on the same data), and the bytes or FLOPs
the step needs at least (for GB/s or TFLOP/s).

What a step covers:
- suites about a backward kernel (elementwise, fused, matmul) time the backward alone: the
  graph is built once and ``backward(grad, retain_graph=True)`` runs on every call, with the
  input grads cleared first, so no forward is timed and nothing is subtracted;
- engine, conv and rnn time forward + backward, as the pytest suites in benchmarks/ do;
- optim times one optimizer step on fixed grads; train one full step of a gradflow.models
  model (forward, cross-entropy, backward, Adam).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from gradflow.bench.machine import torch_or_none

SIZES = ("small", "medium", "large")
Step = Callable[[], Any]


@dataclass(frozen=True)
class Case:
    """One benchmark: `setup(framework, device)` returns the step to time."""

    suite: str
    name: str
    shape: str
    setup: Callable[[str, str], Step]
    size: float  # elements, parameters or FLOPs: the x axis of the plot
    bytes_moved: float = 0
    flops: float = 0
    torch: bool = True  # whether a torch twin exists


class _Framework:
    """The little vocabulary the workloads use, for gradflow or torch."""

    def __init__(self, name: str, device: str):
        if name == "torch":
            import torch

            self.lib, self.F = torch, torch.nn.functional
        else:
            import gradflow
            import gradflow.nn.functional

            self.lib, self.F = gradflow, gradflow.nn.functional
        self.name, self.device = name, device

    def tensor(self, array: np.ndarray, grad: bool = False) -> Any:
        return self.lib.tensor(array, device=self.device, requires_grad=grad)


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _normal(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (_rng().standard_normal(shape) * scale).astype(np.float32)


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
    is per-op bookkeeping (benchmarks/bench_engine.py times it too)."""

    def step() -> Any:
        y = x
        for _ in range(pairs):
            y = y * 1.0001
            y = y + 0.0001
        y.sum().backward()
        x.grad = None
        return y

    return step


def engine(size: str) -> list[Case]:
    """Per-op overhead (a chain of tiny ops) and a 784-128-10 MLP step, forward + backward."""
    pairs = {"small": 50, "medium": 500, "large": 2000}[size]
    batch = {"small": 8, "medium": 32, "large": 128}[size]

    def chain(fw: str, device: str) -> Step:
        return chain_step(_Framework(fw, device).tensor(np.ones(4, np.float32), grad=True), pairs)

    def mlp(fw: str, device: str) -> Step:
        f = _Framework(fw, device)
        w1, b1 = f.tensor(_normal(128, 784, scale=784**-0.5), True), f.tensor(_normal(128), True)
        w2, b2 = f.tensor(_normal(10, 128, scale=128**-0.5), True), f.tensor(_normal(10), True)
        x, y = f.tensor(_normal(batch, 784)), f.tensor(_rng().integers(0, 10, batch))

        def step() -> None:
            h = f.F.relu(f.F.linear(x, w1, b1))
            f.F.cross_entropy(f.F.linear(h, w2, b2), y).backward()
            w1.grad = b1.grad = w2.grad = b2.grad = None

        return step

    ops = 2 * pairs + 1
    mlp_flops = 3 * 2 * batch * (784 * 128 + 128 * 10)
    return [
        Case("engine", "tiny-op chain fwd+bwd", f"{ops} ops on 4 floats", chain, ops),
        Case("engine", "MLP step fwd+bwd", f"784-128-10, B={batch}", mlp, mlp_flops,
             flops=mlp_flops),
    ]  # fmt: skip


# ---- elementwise -----------------------------------------------------------------------------
ACTIVATIONS = {
    "relu": lambda f, x: f.F.relu(x),
    "gelu_tanh": lambda f, x: f.F.gelu(x, approximate="tanh"),
    "sigmoid": lambda f, x: f.lib.sigmoid(x),
    "tanh": lambda f, x: f.lib.tanh(x),
    "silu": lambda f, x: f.F.silu(x),
}


def elementwise(size: str) -> list[Case]:
    """Activation backward alone: reads the saved array and the grad, writes the input grad."""
    n = {"small": 1 << 14, "medium": 1 << 20, "large": 1 << 24}[size]

    def make(act: Callable) -> Callable[[str, str], Step]:
        def setup(fw: str, device: str) -> Step:
            f = _Framework(fw, device)
            x = f.tensor(_normal(n), grad=True)
            return _backward_only(act(f, x), [x], f.tensor(_normal(n)))

        return setup

    return [Case("elementwise", f"{name} backward", f"n={n}", make(act), n, bytes_moved=3 * n * 4)
            for name, act in ACTIVATIONS.items()]  # fmt: skip


# ---- fused -----------------------------------------------------------------------------------
def fused(size: str) -> list[Case]:
    """Bias + ReLU backward and softmax cross-entropy backward, through the ops."""
    n, c = {"small": (64, 32), "medium": (1024, 512), "large": (4096, 1024)}[size]
    rows, classes = {"small": (64, 10), "medium": (1024, 1000), "large": (4096, 1000)}[size]

    def bias_relu(fw: str, device: str) -> Step:
        f = _Framework(fw, device)
        z, b = f.tensor(_normal(n, c), True), f.tensor(_normal(c), True)
        return _backward_only(f.F.relu(z + b), [z, b], f.tensor(_normal(n, c)))

    def softmax_xent(fw: str, device: str) -> Step:
        f = _Framework(fw, device)
        logits = f.tensor(_normal(rows, classes), True)
        target = f.tensor(_rng().integers(0, classes, rows))
        return _backward_only(f.F.cross_entropy(logits, target), [logits])

    return [
        Case("fused", "bias+relu backward", f"{n}x{c}", bias_relu, n * c,
             bytes_moved=(3 * n * c + c) * 4),
        Case("fused", "softmax-xent backward", f"{rows}x{classes}", softmax_xent, rows * classes,
             bytes_moved=2 * rows * classes * 4 + rows * 8),
    ]  # fmt: skip


# ---- matmul ----------------------------------------------------------------------------------
def matmul(size: str) -> list[Case]:
    """relu(x @ w) backward alone: dX and dW, two GEMMs through the activation's grad."""
    m, k, n = {"small": (16, 24, 32), "medium": (256, 512, 512), "large": (512, 1024, 1024)}[size]

    def setup(fw: str, device: str) -> Step:
        f = _Framework(fw, device)
        x, w = f.tensor(_normal(m, k), True), f.tensor(_normal(k, n), True)
        return _backward_only(f.F.relu(x @ w), [x, w], f.tensor(_normal(m, n)))

    flops = 2 * 2 * m * n * k
    return [Case("matmul", "relu(x @ w) backward", f"M={m} K={k} N={n}", setup, flops,
                 flops=flops)]  # fmt: skip


# ---- conv ------------------------------------------------------------------------------------
CONV_SHAPES = {  # name: (N, C, H=W, O, k, stride, padding), as benchmarks/bench_conv_backward.py
    "digits_cnn": (64, 1, 8, 32, 3, 1, 1),
    "resnet_3x3_c64": (8, 64, 32, 64, 3, 1, 1),
    "resnet_3x3_c128": (16, 128, 16, 128, 3, 1, 1),
    "resnet_3x3_s2": (16, 64, 32, 128, 3, 2, 1),
}
CONV_BY_SIZE = {
    "small": ["digits_cnn"],
    "medium": ["digits_cnn", "resnet_3x3_c64"],
    "large": list(CONV_SHAPES),
}


def conv(size: str) -> list[Case]:
    """conv2d forward + backward to input, weight and bias."""
    cases = []
    for name in CONV_BY_SIZE[size]:
        n, c, h, o, k, s, p = CONV_SHAPES[name]
        out = (h + 2 * p - k) // s + 1

        def setup(fw: str, device: str, n=n, c=c, h=h, o=o, k=k, s=s, p=p, out=out) -> Step:
            f = _Framework(fw, device)
            x, w = f.tensor(_normal(n, c, h, h), True), f.tensor(_normal(o, c, k, k), True)
            b, grad = f.tensor(_normal(o), True), f.tensor(_normal(n, o, out, out))

            def step() -> None:
                x.grad = w.grad = b.grad = None
                f.F.conv2d(x, w, b, stride=s, padding=p).backward(grad)

            return step

        flops = 3 * 2 * n * o * out * out * c * k * k
        shape = f"N={n} C={c} H={h} O={o} k={k} s={s}"
        cases.append(Case("conv", f"conv2d {name} fwd+bwd", shape, setup, flops, flops=flops))
    return cases


# ---- rnn -------------------------------------------------------------------------------------
GATES = {"lstm": 4, "gru": 3}


def rnn(size: str) -> list[Case]:
    """One LSTM / GRU layer, forward over T steps and backward (loss = sum of outputs)."""
    steps, batch, hidden, n_in = {"small": (5, 4, 32, 16), "medium": (25, 16, 128, 64),
                                  "large": (100, 16, 128, 64)}[size]  # fmt: skip

    def make(mode: str) -> Callable[[str, str], Step]:
        def setup(fw: str, device: str) -> Step:
            import gradflow.nn

            ours = getattr(gradflow.nn, mode.upper())(n_in, hidden)
            model = ours
            if fw == "torch":
                torch = torch_or_none()
                model = getattr(torch.nn, mode.upper())(n_in, hidden)
                with torch.no_grad():
                    for name, p in model.named_parameters():
                        p.copy_(torch.as_tensor(np.asarray(getattr(ours, name).data)))
            model = model.to(device)
            x = _Framework(fw, device).tensor(_normal(steps, batch, n_in))

            def step() -> None:
                model(x)[0].sum().backward()
                for p in model.parameters():
                    p.grad = None

            return step

        return setup

    def flops(mode: str) -> int:
        return 3 * 2 * steps * batch * GATES[mode] * hidden * (n_in + hidden)

    shape = f"T={steps} B={batch} H={hidden} I={n_in}"
    return [Case("rnn", f"{mode} BPTT fwd+bwd", shape, make(mode), flops(mode), flops=flops(mode))
            for mode in GATES]  # fmt: skip


# ---- optim -----------------------------------------------------------------------------------
OPTIMIZERS = {  # name: (class name in both libraries, hyperparameters, arrays read + written)
    "sgd_momentum": ("SGD", {"lr": 0.01, "momentum": 0.9}, 5),
    "adam": ("Adam", {"lr": 1e-3}, 7),
}


def optim(size: str) -> list[Case]:
    """One optimizer step over the parameters of a 784-W-W-10 MLP, on fixed grads."""
    width = {"small": 64, "medium": 256, "large": 1024}[size]
    sizes = [784, width, width, 10]
    shapes = [s for a, b in pairwise(sizes) for s in ((b, a), (b,))]
    count = sum(int(np.prod(s)) for s in shapes)

    def make(kind: str) -> Callable[[str, str], Step]:
        def setup(fw: str, device: str) -> Step:
            f = _Framework(fw, device)
            cls_name, hyper, _ = OPTIMIZERS[kind]
            params = [f.tensor(_normal(*s, scale=0.05), True) for s in shapes]
            for p in params:
                p.grad = f.tensor(_normal(*p.shape, scale=0.01))
            opt = getattr(f.lib.optim, cls_name)(params, **hyper)
            opt.step()  # the state exists before the timed steps, as after the first iteration
            return opt.step

        return setup

    return [Case("optim", f"{kind} step", f"MLP 784-{width}-{width}-10, {count} params",
                 make(kind), count, bytes_moved=OPTIMIZERS[kind][2] * 4 * count)
            for kind in OPTIMIZERS]  # fmt: skip


# ---- train -----------------------------------------------------------------------------------
def train(size: str) -> list[Case]:
    """One training step of each `gradflow train` model at the digits' shape (1x8x8)."""
    from gradflow import models

    batch = {"small": 8, "medium": 64, "large": 256}[size]

    def make(name: str) -> Callable[[str, str], Step]:
        def setup(fw: str, device: str) -> Step:
            import gradflow

            f = _Framework(fw, device)
            gradflow.manual_seed(0)
            model = models.MODELS[name]()
            if fw == "torch":
                model = torch_twin(model)
            model = model.to(device)
            opt = f.lib.optim.Adam(model.parameters(), lr=1e-3)
            images = f.tensor(_rng().random((batch, 1, 8, 8), dtype=np.float32))
            labels = f.tensor(_rng().integers(0, 10, batch))

            def step() -> None:
                loss = f.F.cross_entropy(model(images), labels)
                opt.zero_grad()
                loss.backward()
                opt.step()

            return step

        return setup

    return [Case("train", f"train step {name}", f"B={batch}, 1x8x8", make(name), batch)
            for name in sorted(models.MODELS)]  # fmt: skip


def torch_twin(module: Any) -> Any:
    """The same network in torch, built from a gradflow.models module and loaded with its
    weights (parameter and buffer names match)."""
    torch = torch_or_none()
    twin = _torch_layer(torch, module)
    state = {k: torch.from_numpy(np.array(v.data)) for k, v in module.state_dict().items()}
    twin.load_state_dict(state)
    return twin


def _torch_layer(torch: Any, m: Any) -> Any:
    nn, kind = torch.nn, type(m).__name__
    if kind == "Sequential":
        return nn.Sequential(*(_torch_layer(torch, child) for child in m.children()))
    if kind == "RowReader":
        return _torch_row_reader(torch, _torch_layer(torch, m.rnn), _torch_layer(torch, m.head))
    makers = {
        "Flatten": lambda: nn.Flatten(m.start_dim, m.end_dim),
        "ReLU": nn.ReLU,
        "Dropout": lambda: nn.Dropout(m.p),
        "Linear": lambda: nn.Linear(m.in_features, m.out_features),
        "Conv2d": lambda: nn.Conv2d(
            m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups
        ),
        "BatchNorm2d": lambda: nn.BatchNorm2d(m.num_features, m.eps, m.momentum),
        "MaxPool2d": lambda: nn.MaxPool2d(m.kernel_size, m.stride, m.padding),
        "LSTM": lambda: nn.LSTM(*_recurrent_sizes(m), batch_first=m.batch_first),
        "GRU": lambda: nn.GRU(*_recurrent_sizes(m), batch_first=m.batch_first),
    }
    if kind not in makers:
        raise NotImplementedError(f"no torch twin for the gradflow layer {kind}")
    return makers[kind]()


def _recurrent_sizes(m: Any) -> tuple[int, int, int]:
    return m.input_size, m.hidden_size, m.num_layers


def _torch_row_reader(torch: Any, recurrent: Any, head: Any) -> Any:
    """gradflow.models.RowReader in torch: the rows through the recurrent layer, then the head."""

    class RowReader(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn, self.head = recurrent, head

        def forward(self, images: Any) -> Any:
            _, state = self.rnn(images.reshape(images.shape[0], images.shape[-2], -1))
            h_n = state[0] if isinstance(state, tuple) else state
            return self.head(h_n[-1])

    return RowReader()


SUITES: dict[str, Callable[[str], list[Case]]] = {
    "engine": engine,
    "elementwise": elementwise,
    "fused": fused,
    "matmul": matmul,
    "conv": conv,
    "rnn": rnn,
    "optim": optim,
    "train": train,
}


def cases(suites: list[str], sizes: list[str]) -> list[Case]:
    """Every case of the named suites at the named sizes, suite by suite."""
    return [case for suite in suites for size in sizes for case in SUITES[suite](size)]


def torch_ready(device: str) -> bool:
    """Whether torch is importable and can run on `device` ("cpu" or "cuda[:N]")."""
    torch = torch_or_none()
    return torch is not None and (device == "cpu" or torch.cuda.is_available())
