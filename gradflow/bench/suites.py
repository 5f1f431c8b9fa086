"""The suites of `gradflow bench`: for each suite and size (small, medium, large), the cases
it runs, each a workload of gradflow.bench.workloads (where the steps, inputs, byte and FLOP
counts and torch twins are defined) with a name.

What a step covers (see workloads.py):
- suites about a backward kernel (elementwise, fused, matmul) time the backward alone: the
  graph is built once and ``backward(grad, retain_graph=True)`` runs on every call;
- engine, conv, rnn and attention time forward + backward, as the pytest suites in
  benchmarks/ do;
- optim times one optimizer step on fixed grads; train one full step of a gradflow.models
  model (forward, cross-entropy, backward, Adam);
- ops times forward + backward (from a dense output gradient) of each of issue 17's op cases
  (gradflow/bench/op_cases.py: every op family, pointwise ops at 2^20 elements) at the
  issue's sizes, on the CPU. It is not part of "all" (a minute or more at one size).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy

from gradflow.bench import workloads
from gradflow.bench.frameworks import torch_ready
from gradflow.bench.machine import torch_or_none
from gradflow.bench.workloads import Setup, Workload

if TYPE_CHECKING:
    from gradflow.bench import op_cases

SIZES = ("small", "medium", "large")


@dataclass(frozen=True)
class Case:
    """One benchmark: `setup(framework, device)` returns the step to time."""

    suite: str
    name: str
    shape: str
    setup: Setup
    size: float  # elements, parameters or FLOPs: the x axis of the plot
    bytes_moved: float = 0
    flops: float = 0
    torch: bool = True  # whether a torch twin exists


def _case(suite: str, name: str, w: Workload) -> Case:
    return Case(suite, name, w.shape, w.setup, w.size, w.bytes_moved, w.flops, w.torch)


def engine(size: str) -> list[Case]:
    """Per-op overhead (a chain of tiny ops) and a 784-128-10 MLP step, forward + backward."""
    pairs = {"small": 50, "medium": 500, "large": 2000}[size]
    batch = {"small": 8, "medium": 32, "large": 128}[size]
    return [
        _case("engine", "tiny-op chain fwd+bwd", workloads.chain(pairs)),
        _case("engine", "MLP step fwd+bwd", workloads.mlp(batch)),
    ]


def elementwise(size: str) -> list[Case]:
    """Activation backward alone: reads the saved array and the grad, writes the input grad."""
    n = {"small": 1 << 14, "medium": 1 << 20, "large": 1 << 24}[size]
    return [_case("elementwise", f"{name} backward", workloads.activation_backward(name, n))
            for name in workloads.ACTIVATIONS]  # fmt: skip


def fused(size: str) -> list[Case]:
    """Bias + ReLU backward and softmax cross-entropy backward, through the ops."""
    n, c = {"small": (64, 32), "medium": (1024, 512), "large": (4096, 1024)}[size]
    rows, classes = {"small": (64, 10), "medium": (1024, 1000), "large": (4096, 1000)}[size]
    return [
        _case("fused", "bias+relu backward", workloads.bias_relu_backward(n, c)),
        _case("fused", "softmax-xent backward", workloads.softmax_xent_backward(rows, classes)),
    ]


def matmul(size: str) -> list[Case]:
    """relu(x @ w) backward alone: dX and dW, two GEMMs through the activation's grad."""
    m, k, n = {"small": (16, 24, 32), "medium": (256, 512, 512), "large": (512, 1024, 1024)}[size]
    return [_case("matmul", "relu(x @ w) backward", workloads.relu_matmul_backward(m, k, n))]


CONV_BY_SIZE = {
    "small": ["digits_cnn"],
    "medium": ["digits_cnn", "resnet_3x3_c64"],
    "large": list(workloads.CONV_SHAPES),
}


def conv(size: str) -> list[Case]:
    """conv2d forward + backward to input, weight and bias."""
    return [_case("conv", f"conv2d {name} fwd+bwd", workloads.conv(workloads.CONV_SHAPES[name]))
            for name in CONV_BY_SIZE[size]]  # fmt: skip


def rnn(size: str) -> list[Case]:
    """One LSTM / GRU layer, forward over T steps and backward (loss = sum of outputs)."""
    cpu = workloads.RNN_CPU_SHAPE
    steps, (batch, hidden, n_in) = {"small": (5, (4, 32, 16)), "medium": (25, cpu),
                                    "large": (100, cpu)}[size]  # fmt: skip
    return [_case("rnn", f"{mode} BPTT fwd+bwd", workloads.rnn(mode, steps, batch, hidden, n_in))
            for mode in workloads.RNN_GATES]  # fmt: skip


def optim(size: str) -> list[Case]:
    """One optimizer step over the parameters of a 784-W-W-10 MLP, on fixed grads."""
    width = {"small": 64, "medium": 256, "large": 1024}[size]
    return [_case("optim", f"{kind} step", workloads.optimizer(kind, "mlp", width))
            for kind in workloads.OPTIMIZERS]  # fmt: skip


def train(size: str) -> list[Case]:
    """One training step of each `gradflow train` model at the digits' shape (1x8x8)."""
    from gradflow import models

    batch = {"small": 8, "medium": 64, "large": 256}[size]
    return [_case("train", f"train step {name}", workloads.train(name, batch))
            for name in sorted(models.MODELS)]  # fmt: skip


ATTENTION_LENGTHS = {"small": (16,), "medium": (128, 512), "large": (128, 512, 1024)}


def attention(size: str) -> list[Case]:
    """F.scaled_dot_product_attention forward + backward (dQ, dK, dV), float32, without and
    with is_causal, at issue 16's B=8, H=8, D=64 and T = 128, 512 (medium; 1024 added in
    large); small is a smoke shape. FLOPs: the six GEMMs, 12*B*H*T*T*D, the causal mask
    counted in full (workloads.attention_flops)."""
    batch, heads, dim = (2, 2, 8) if size == "small" else workloads.ATTENTION_SHAPE
    return [_case("attention", f"sdpa{' causal' if causal else ''} fwd+bwd",
                  workloads.attention(batch, heads, seq, dim, causal))
            for seq in ATTENTION_LENGTHS[size] for causal in (False, True)]  # fmt: skip


OPS_SCALE = {"small": 1.0}  # op_cases' scale per size: the issue's sizes; one size only
OPS_DEVICES = ("cpu",)  # op_cases builds its tensors on the CPU


def ops(size: str) -> list[Case]:
    """Issue 17's op cases (op_cases.CASES), forward + backward from a dense gradient, at the
    issue's sizes ("small"; the suite has no other size); on the CPU only. A case's `size` is the
    element count of its inputs."""
    from gradflow.bench import op_cases

    if size not in OPS_SCALE:
        return []
    scale = OPS_SCALE[size]
    return [_op_case(case, scale) for case in op_cases.CASES]


def _op_case(case: op_cases.OpCase, scale: float) -> Case:
    from gradflow.bench import op_cases

    def setup(fw: str, device: str) -> workloads.Step:
        if device != "cpu":
            raise ValueError(f"the ops suite runs on the CPU only, not {device}")
        torch = torch_or_none() if fw == "torch" else None
        side = op_cases.prepare(case, torch, scale)[-1]  # torch's takes gradflow's weights
        return lambda: side.step(case.fn)

    arrays = case.make(numpy.random.default_rng(0), scale)
    return Case("ops", case.name, case.shape, setup, float(sum(a.size for a in arrays)))


SUITES: dict[str, Callable[[str], list[Case]]] = {
    "engine": engine,
    "elementwise": elementwise,
    "fused": fused,
    "matmul": matmul,
    "conv": conv,
    "rnn": rnn,
    "optim": optim,
    "train": train,
    "attention": attention,
    "ops": ops,
}
ALL = tuple(name for name in SUITES if name != "ops")  # what --suite all runs


def cases(suites: list[str], sizes: list[str]) -> list[Case]:
    """Every case of the named suites at the named sizes, suite by suite."""
    return [case for suite in suites for size in sizes for case in SUITES[suite](size)]


__all__ = ["ALL", "SIZES", "SUITES", "Case", "cases", "torch_or_none", "torch_ready"]
