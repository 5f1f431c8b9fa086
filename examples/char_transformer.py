"""A character-level language model with nn.TransformerEncoder and a causal mask, printing
samples as it learns.

The text is the one examples/char_lm.py learns with an LSTM: The Zen of Python, which ships
with Python, so nothing is downloaded. Each step draws --batch-size windows of --block
characters; the model reads each window with a causal mask (every position sees only the
characters before it) and predicts the next character at every position. Sampling feeds the
last --block characters back in, one new character at a time.

    python examples/char_transformer.py                 # cpu or cuda, whichever `auto` finds
    python examples/char_transformer.py --steps 600 --device cpu
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy
from char_lm import zen_of_python  # the same corpus, from the LSTM example beside this file

import gradflow
from gradflow import nn, optim
from gradflow.nn.functional import cross_entropy, softmax


class CharTransformer(nn.Module):
    """Token and learned position embeddings -> pre-norm Transformer encoder (causal) ->
    layer norm -> linear read-out of the next character's logits."""

    def __init__(self, vocab: int, block: int, d_model: int, heads: int, layers: int):
        super().__init__()
        self.block = block
        self.embed = nn.Embedding(vocab, d_model)
        self.position = nn.Parameter(gradflow.zeros(1, block, d_model))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model,
            heads,
            dim_feedforward=4 * d_model,
            dropout=0.1,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, codes: gradflow.Tensor) -> gradflow.Tensor:
        length = codes.shape[1]
        x = self.embed(codes) + self.position[:, :length]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=codes.device)
        x = self.encoder(x, mask=mask, is_causal=True)
        return self.head(self.norm(x))


def sample(model: CharTransformer, chars: list[str], prompt: str, length: int,
           temperature: float) -> str:  # fmt: skip
    """`length` characters drawn one at a time after `prompt`."""
    index = {c: i for i, c in enumerate(chars)}
    device = next(iter(model.parameters())).device
    rng = numpy.random.default_rng(0)
    codes = [index[c] for c in prompt]
    model.eval()
    with gradflow.no_grad():
        for _ in range(length):
            window = gradflow.tensor([codes[-model.block :]], device=device)
            logits = model(window)[0, -1]
            p = softmax(logits / temperature, dim=0).cpu().numpy().astype(numpy.float64)
            codes.append(int(rng.choice(len(chars), p=p / p.sum())))
    model.train()
    return "".join(chars[c] for c in codes[len(prompt) :])


def main(argv: list[str] | None = None) -> float:
    """Train for --steps optimizer steps; return the mean loss of the last report interval."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=32, help="windows per step")
    parser.add_argument("--block", type=int, default=64, help="characters per window")
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--report-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    device = gradflow.device(args.device)
    gradflow.manual_seed(args.seed)
    rng = numpy.random.default_rng(args.seed)
    text = zen_of_python()
    chars = sorted(set(text))
    codes = numpy.array([chars.index(c) for c in text], dtype=numpy.int64)
    model = CharTransformer(len(chars), args.block, args.d_model, args.heads, args.layers)
    model = model.to(device)
    optimizer = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    offsets = numpy.arange(args.block)
    print(f"{len(text)} characters, {len(chars)} distinct; Transformer encoder "
          f"{args.layers}x{args.d_model} ({args.heads} heads), causal windows of {args.block}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters on {device}")  # fmt: skip
    start, losses = time.perf_counter(), []
    for step in range(1, args.steps + 1):
        starts = rng.integers(0, len(codes) - args.block - 1, args.batch_size)
        window = starts[:, None] + offsets
        x = gradflow.tensor(codes[window], device=device)
        y = gradflow.tensor(codes[window + 1], device=device)
        loss = cross_entropy(model(x).reshape(-1, len(chars)), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if step % args.report_every == 0 or step == args.steps:
            mean = sum(losses) / len(losses)
            elapsed = time.perf_counter() - start
            print(f"step {step:5d}  loss {mean:.3f} nats/char  {elapsed:.1f} s", flush=True)
            print("   " + sample(model, chars, "Beautiful", 120, 0.7).replace("\n", "\n   "))
            losses = []
    return mean


if __name__ == "__main__":
    try:
        main()
    except gradflow.CudaUnavailableError as exc:
        sys.exit(f"error: {exc}")
