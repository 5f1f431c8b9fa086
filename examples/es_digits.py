"""Train an MLP on the 8x8 digits by evolution strategies alone: accuracy is the fitness, no
backward pass at all.

Classification accuracy has no gradient (it is a step function of the weights), so backprop
cannot optimize it directly; OpenAI-ES (gradflow.evolution.OpenAIES) can. Each step draws
--population Gaussian perturbations of all 2,410 parameters of a 64-32-10 MLP (antithetic
pairs), evaluates the TRAINING-set accuracy of every perturbed network in one batched forward
(the Sequential of Linear layers runs the whole population as batched matrix products), turns
the centered ranks of those accuracies into a gradient estimate in ``param.grad`` and lets
optim.Adam take the step, as it would with a backprop gradient.

The fitness is the accuracy on the 1,437 training images; the 360 test images are only looked
at once, at the end, so the test accuracy printed is an honest held-out number (the issue
wrote "test accuracy as the fitness": optimizing on the test set would make that number
meaningless). --target is the test accuracy the run must reach: below it the script exits
with status 1.

    python examples/es_digits.py                       # 400 steps of 200 members: >= 85%
    python examples/es_digits.py --steps 150 --population 100 --target 0.6   # a short run

Measured when this file was added (the 2-core AMD EPYC VM, OPENBLAS_NUM_THREADS=1): the
default run reaches 96.1% test accuracy (99.5% training) in 21.7 s, 80,000 forward passes;
the short run above 76.9% in 3.6 s. docs/evolution.md says when to use ES instead of (or
beside) backprop and what it costs.
"""

from __future__ import annotations

import argparse
import sys
import time

import gradflow
from gradflow import evolution, nn, optim
from gradflow.data import load_digits


def accuracy(outputs: gradflow.Tensor, labels: gradflow.Tensor) -> gradflow.Tensor:
    """The fraction of correct argmax predictions along the last dim; outputs (..., N, 10)
    give one accuracy per leading index (one per population member when batched)."""
    return (outputs.argmax(dim=-1) == labels).float().mean(dim=-1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--population", type=int, default=200, help="members per step (even)")
    parser.add_argument("--sigma", type=float, default=0.1, help="perturbation scale")
    parser.add_argument("--lr", type=float, default=0.05, help="Adam's learning rate")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=None, help="default: steps / 8")
    parser.add_argument(
        "--target", type=float, default=0.85, help="test accuracy to reach (exit 1 below it)"
    )
    return parser.parse_args(argv)


def train(args: argparse.Namespace) -> float:
    """Train by ES, print progress and the final test accuracy; return the test accuracy."""
    gradflow.manual_seed(args.seed)
    train_x, train_y = load_digits(train=True)
    test_x, test_y = load_digits(train=False)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(64, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 10)
    )
    params = list(model.parameters())
    es = evolution.OpenAIES(
        params, sigma=args.sigma, population_size=args.population, maximize=True, seed=args.seed
    )
    optimizer = optim.Adam(params, lr=args.lr)
    n_params = sum(p.numel() for p in params)
    log_every = args.log_every or max(1, args.steps // 8)
    print(
        f"OpenAI-ES on digits: MLP 64-{args.hidden}-10 ({n_params} parameters), population "
        f"{args.population}, sigma {args.sigma}, Adam lr {args.lr}; fitness: training accuracy "
        f"({len(train_y)} images), batched forward: {evolution.batchable(model)}"
    )

    start = time.perf_counter()
    for step in range(args.steps):
        optimizer.zero_grad()
        fitness = es.estimate(
            lambda out: accuracy(out, train_y), model=model, inputs=train_x, vectorized=True
        )
        optimizer.step()
        if step % log_every == 0 or step == args.steps - 1:
            with gradflow.no_grad():
                train_accuracy = accuracy(model(train_x), train_y).item()
            print(
                f"step {step:4d}  population mean fitness {fitness.mean().item():.3f}  "
                f"train accuracy {train_accuracy:.3f}  {time.perf_counter() - start:.1f} s"
            )
    seconds = time.perf_counter() - start
    with gradflow.no_grad():
        test_accuracy = accuracy(model(test_x), test_y).item()
    print(
        f"test accuracy {100 * test_accuracy:.1f}% ({len(test_y)} held-out images) after "
        f"{args.steps} steps, {args.steps * args.population} forward passes, no backward; "
        f"wall time {seconds:.1f} s"
    )
    return test_accuracy


def main(argv: list[str] | None = None) -> int:
    """Run the example; the exit status: 0 when the test accuracy reached --target, else 1."""
    args = parse_args(argv)
    test_accuracy = train(args)
    if test_accuracy < args.target:
        print(f"below the target test accuracy {100 * args.target:.1f}%")
        return 1
    print(f"reached the target test accuracy {100 * args.target:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
