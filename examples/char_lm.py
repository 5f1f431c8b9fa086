"""A character-level language model: an LSTM trained with truncated backpropagation through
time and gradient clipping, printing samples as it learns.

The text is one Python ships with every install, The Zen of Python (`import this`, by Tim
Peters), so nothing is downloaded. It is cut into --batch-size parallel streams; each
training pass runs over them in chunks of --bptt characters with
`gradflow.nn.utils.truncated_bptt`, carrying the LSTM state from chunk to chunk and cutting
the graph between them.

    python examples/char_lm.py                     # cpu or cuda, whichever `auto` finds
    python examples/char_lm.py --epochs 40 --device cpu
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import io
import sys
import time

import numpy

import gradflow
from gradflow import nn, optim
from gradflow.nn.functional import cross_entropy, softmax


def zen_of_python() -> str:
    """The Zen of Python's text (the `this` module prints it on import; keep that quiet)."""
    with contextlib.redirect_stdout(io.StringIO()):
        import this
    return codecs.decode(this.s, "rot13")


class CharLM(nn.Module):
    """Embedding -> LSTM -> linear read-out of the next character's logits."""

    def __init__(self, vocab: int, hidden_size: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, 32)
        self.lstm = nn.LSTM(32, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab)

    def forward(self, codes: gradflow.Tensor, state=None):
        out, state = self.lstm(self.embed(codes), state)
        return self.head(out), state


def sample(model: CharLM, chars: list[str], prompt: str, length: int, temperature: float) -> str:
    """`length` characters drawn one at a time after `prompt`."""
    index = {c: i for i, c in enumerate(chars)}
    device = next(iter(model.parameters())).device
    rng = numpy.random.default_rng(0)
    model.eval()
    out, state = [], None
    codes = gradflow.tensor([[index[c] for c in prompt]], device=device)
    with gradflow.no_grad():
        for _ in range(length):
            logits, state = model(codes, state)
            p = softmax(logits[0, -1] / temperature, dim=0).cpu().numpy().astype(numpy.float64)
            code = int(rng.choice(len(chars), p=p / p.sum()))
            out.append(chars[code])
            codes = gradflow.tensor([[code]], device=device)
    model.train()
    return "".join(out)


def main(argv: list[str] | None = None) -> float:
    """Train for --epochs passes over the text; return the last epoch's mean loss."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=8, help="parallel streams")
    parser.add_argument("--bptt", type=int, default=25, help="characters per truncated chunk")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--clip", type=float, default=1.0, help="gradient norm limit")
    parser.add_argument("--sample-every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    device = gradflow.device(args.device)
    gradflow.manual_seed(args.seed)
    text = zen_of_python()
    chars = sorted(set(text))
    codes = numpy.array([chars.index(c) for c in text], dtype=numpy.int64)
    steps = (len(codes) - 1) // args.batch_size  # each stream: a contiguous slice of the text
    streams = codes[: steps * args.batch_size + 1]
    inputs = streams[:-1].reshape(args.batch_size, steps)
    targets = streams[1:].reshape(args.batch_size, steps)
    x, y = gradflow.tensor(inputs, device=device), gradflow.tensor(targets, device=device)
    model = CharLM(len(chars), args.hidden).to(device)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)

    def loss_fn(logits: gradflow.Tensor, target: gradflow.Tensor) -> gradflow.Tensor:
        return cross_entropy(logits.reshape(-1, len(chars)), target.reshape(-1))

    print(f"{len(text)} characters, {len(chars)} distinct, {args.batch_size} streams of "
          f"{steps}; LSTM {args.hidden} on {device}; truncated BPTT every {args.bptt}")  # fmt: skip
    start, loss = time.perf_counter(), float("nan")
    for epoch in range(1, args.epochs + 1):
        loss, _ = nn.utils.truncated_bptt(
            model, x, y, loss_fn, optimizer, k=args.bptt, clip=args.clip, time_dim=1
        )
        if epoch % args.sample_every == 0 or epoch == args.epochs:
            elapsed = time.perf_counter() - start
            print(f"epoch {epoch:3d}  loss {loss:.3f} nats/char  {elapsed:.1f} s", flush=True)
            print("   " + sample(model, chars, "Beautiful", 120, 0.7).replace("\n", "\n   "))
    return loss


if __name__ == "__main__":
    try:
        main()
    except gradflow.CudaUnavailableError as exc:
        sys.exit(f"error: {exc}")
