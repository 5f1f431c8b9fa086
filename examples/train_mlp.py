"""Train a 2-layer MLP on three interleaved 2-D spirals and print the loss falling.

The whole loop written out the way a PyTorch user writes it: an nn.Sequential model,
cross-entropy, backward(), and optim.SGD with momentum. (`gradflow train` runs such a loop for
you, with checkpoints; this file shows the pieces.)

    python examples/train_mlp.py                     # cpu or cuda, whichever `auto` finds
    python examples/train_mlp.py --device cpu --steps 300 --seed 1
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterable

import numpy
from tqdm import tqdm

import gradflow
from gradflow import nn, optim
from gradflow.nn.functional import cross_entropy


def make_spirals(
    points_per_class: int, classes: int, seed: int
) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Interleaved noisy spiral arms, one per class: inputs (N, 2) float32, labels (N,) int64."""
    rng = numpy.random.default_rng(seed)
    radius = numpy.linspace(0.05, 1.0, points_per_class)
    inputs, labels = [], []
    for k in range(classes):
        angle = numpy.linspace(0.0, 3.0 * math.pi, points_per_class) + 2 * math.pi * k / classes
        angle = angle + rng.normal(0.0, 0.2, points_per_class)
        inputs.append(numpy.stack([radius * numpy.sin(angle), radius * numpy.cos(angle)], axis=1))
        labels.append(numpy.full(points_per_class, k))
    return numpy.concatenate(inputs).astype(numpy.float32), numpy.concatenate(labels)


def progress(steps: int) -> Iterable[int]:
    """range(steps), with a tqdm bar on an interactive terminal."""
    return tqdm(range(steps), leave=False) if sys.stderr.isatty() else range(steps)


def main(argv: list[str] | None = None) -> float:
    """Train and print loss and accuracy every --log-every steps; return the final loss."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--log-every", type=int, default=None, help="default: steps / 10")
    args = parser.parse_args(argv)

    device = gradflow.device(args.device)  # "auto": cuda when CuPy sees a GPU, else cpu
    gradflow.manual_seed(args.seed)
    inputs, labels = make_spirals(points_per_class=200, classes=3, seed=args.seed)
    x = gradflow.tensor(inputs, device=device)
    y = gradflow.tensor(labels, device=device)
    model = nn.Sequential(nn.Linear(2, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 3))
    model.to(device)
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    log_every = args.log_every or max(1, args.steps // 10)
    print(f"device {device}, {len(labels)} points in 3 spirals, MLP 2-{args.hidden}-3")

    start = time.perf_counter()
    loss_value = float("nan")
    for step in progress(args.steps):
        logits = model(x)
        loss = cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % log_every == 0 or step == args.steps - 1:
            loss_value = loss.item()
            accuracy = (logits.argmax(dim=1) == y).float().mean().item()
            print(f"step {step:5d}  loss {loss_value:.4f}  accuracy {accuracy:.3f}", flush=True)
    print(f"done: {args.steps} steps in {time.perf_counter() - start:.2f} s")
    return loss_value


if __name__ == "__main__":
    try:
        main()
    except gradflow.CudaUnavailableError as exc:  # e.g. --device cuda without CuPy or a GPU
        sys.exit(f"error: {exc}")
