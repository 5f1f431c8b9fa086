"""Rank script for tests/distributed/test_evolution.py: ``mpiexec -n 2 python -m mpi4py
evolution_cases.py CASE``; each case asserts on its rank and prints "ok <rank>"."""

from __future__ import annotations

import numpy
import rank_cases

import gradflow as gf
from gradflow import nn
from gradflow.evolution import OpenAIES


def model_and_data(rank: int):
    gf.manual_seed(100 + rank)  # different weights per rank: the estimator broadcasts rank 0's
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    gf.manual_seed(7)  # the same data everywhere
    return model, gf.randn(16, 5), gf.randn(16, 2)


def split_population(rank: int, size: int) -> None:
    """Each rank evaluates its share; the gradient equals one process's with the same seed."""
    model, x, y = model_and_data(rank)
    es = OpenAIES(model.parameters(), sigma=0.1, population_size=12, seed=3, distributed=True)
    seen = []

    def loss(out):
        seen.append(1)
        return ((out - y) ** 2).mean()

    values = es.estimate(loss, model=nn.Sequential(*model), inputs=x)  # batched
    loop_values = es.estimate(lambda: loss(model(x)))  # the loop form, the next generation
    assert es.population_evaluations == 12 * 2 // size, es.population_evaluations
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    # one process, rank 0's weights, the same seed: the same values and gradients
    reference, _, _ = model_and_data(0)
    for p in reference.parameters():
        p.grad = None
    alone = OpenAIES(reference.parameters(), sigma=0.1, population_size=12, seed=3)
    numpy.testing.assert_allclose(
        values.numpy(),
        alone.estimate(lambda out: ((out - y) ** 2).mean(), model=reference, inputs=x).numpy(),
        rtol=1e-6,
    )
    numpy.testing.assert_allclose(
        loop_values.numpy(),
        alone.estimate(lambda: ((reference(x) - y) ** 2).mean()).numpy(),
        rtol=1e-6,
    )
    for g, p in zip(grads, reference.parameters(), strict=True):
        numpy.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert len(seen) == 12 * 2 // size


CASES = {"split_population": split_population}

if __name__ == "__main__":
    rank_cases.main(CASES)  # its runner: init, the case, "ok <rank>"
