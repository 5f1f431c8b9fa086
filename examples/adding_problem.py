"""The adding problem (Hochreiter & Schmidhuber, 1997): an LSTM learns to add two numbers
marked somewhere in a long sequence, which needs memory across the whole sequence.

Each sequence has T steps of two features: a value drawn from U(0, 1) and a marker that is 1
at exactly two steps (one in each half) and 0 elsewhere. The target is the sum of the two
marked values. Predicting the mean (1.0) scores an MSE of about 0.167; the LSTM gets below
0.01. Fresh training batches every step; a fixed test set of 1,000 sequences.

    python examples/adding_problem.py                          # T = 100, until test MSE < 0.01
    python examples/adding_problem.py --seq-len 50 --device cpu
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy

import gradflow
from gradflow import nn, optim
from gradflow.nn.functional import mse_loss


def adding_batch(
    rng: numpy.random.Generator, batch: int, seq_len: int
) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Inputs (batch, seq_len, 2) float32 and targets (batch, 1) float32."""
    values = rng.random((batch, seq_len), dtype=numpy.float32)
    markers = numpy.zeros((batch, seq_len), dtype=numpy.float32)
    half = seq_len // 2
    rows = numpy.arange(batch)
    first, second = rng.integers(0, half, batch), rng.integers(half, seq_len, batch)
    markers[rows, first] = markers[rows, second] = 1.0
    targets = (values[rows, first] + values[rows, second])[:, None]
    return numpy.stack([values, markers], axis=2), targets


class Adder(nn.Module):
    """An LSTM over the sequence and a linear read-out of its last hidden state."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.lstm = nn.LSTM(2, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: gradflow.Tensor) -> gradflow.Tensor:
        _, (h_n, _) = self.lstm(x)
        return self.head(h_n[-1])


def main(argv: list[str] | None = None) -> float:
    """Train until the test MSE is below --target (or --max-steps); return the last test MSE."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--max-steps", type=int, default=5000)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--target", type=float, default=0.01, help="stop below this test MSE")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    device = gradflow.device(args.device)
    gradflow.manual_seed(args.seed)
    rng = numpy.random.default_rng(args.seed)
    test_x, test_y = (
        gradflow.tensor(a, device=device) for a in adding_batch(rng, 1000, args.seq_len)
    )
    model = Adder(args.hidden).to(device)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    print(f"adding problem, T = {args.seq_len}, LSTM hidden {args.hidden}, on {device}; "
          f"predicting the mean scores about 0.167")  # fmt: skip
    start = time.perf_counter()
    test_mse = float("nan")
    for step in range(1, args.max_steps + 1):
        x, y = (gradflow.tensor(a, device=device)
                for a in adding_batch(rng, args.batch_size, args.seq_len))  # fmt: skip
        loss = mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % args.eval_every == 0:
            with gradflow.no_grad():
                test_mse = mse_loss(model(test_x), test_y).item()
            elapsed = time.perf_counter() - start
            print(f"step {step:5d}  train MSE {loss.item():.4f}  test MSE {test_mse:.4f}  "
                  f"{elapsed:.1f} s", flush=True)  # fmt: skip
            if test_mse < args.target:
                print(f"reached test MSE {test_mse:.4f} < {args.target} after {step} steps "
                      f"({step * args.batch_size:,} sequences) in {elapsed:.1f} s")  # fmt: skip
                return test_mse
    print(f"stopped after {args.max_steps} steps at test MSE {test_mse:.4f}")
    return test_mse


if __name__ == "__main__":
    try:
        main()
    except gradflow.CudaUnavailableError as exc:
        sys.exit(f"error: {exc}")
