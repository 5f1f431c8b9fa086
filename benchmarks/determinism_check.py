"""Check kernels/README.md's determinism table on a device: run each case twice, compare bits.

    PYTHONPATH=. python benchmarks/determinism_check.py --device cuda
    PYTHONPATH=. python benchmarks/determinism_check.py --device cpu --quick --out det.md

Every case builds fresh leaf tensors from the same seeded host arrays, runs the same forward
and backward (or optimizer step, or a short `gradflow train cnn`), and returns the gradients
(and the outputs, updated parameters or trained state) as host arrays. The runs are compared
bit for bit (same shape, dtype and bytes; no tolerance). The upstream gradients are random
floats, not ones, so that the order in which a scatter-add sums them changes the bits.

The expectation of each case is the README's: on cuda, the backward passes that scatter-add
through float atomics (embedding, x[idx], gather, reflect/replicate/circular pad) may differ
from run to run; everything else should be identical. On cpu every case is expected identical
(NumPy's add.at and bincount add sequentially).

Prints the machine, the command and a markdown table (case | expected | identical | verdict);
--out also writes it to a file. Exit status 0 when every case expected deterministic came out
identical, 1 otherwise (or when a case raised), 2 when the device is unusable. A case expected
nondeterministic that comes out identical is "as expected (identical this time)".
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import nn, optim
from gradflow.nn import fusion

DETERMINISTIC = "deterministic"
NONDETERMINISTIC = "nondeterministic"

Arrays = dict[str, numpy.ndarray]


@dataclasses.dataclass
class Case:
    """One row of the table: `run(device, quick, seed)` returns named host arrays."""

    name: str
    cuda_expectation: str  # DETERMINISTIC or NONDETERMINISTIC (kernels/README.md)
    run: Callable[[str, bool, int], Arrays]
    why: str = ""  # the README's reason, for nondeterministic cases


# ---- helpers ----------------------------------------------------------------------------
def host(t: Any) -> numpy.ndarray:
    """A host copy of a tensor's values (never a view of device or cpu memory)."""
    return numpy.array(t.detach().cpu().numpy(), copy=True)


def leaf(array: numpy.ndarray, device: str) -> gf.Tensor:
    """A fresh float leaf tensor on `device` holding a copy of `array`."""
    return gf.tensor(array, device=device, requires_grad=True)


def const(array: numpy.ndarray, device: str) -> gf.Tensor:
    """A fresh tensor on `device` (integer indices, upstream gradients) that needs no grad."""
    return gf.tensor(array, device=device)


def rng(seed: int) -> numpy.random.Generator:
    return numpy.random.default_rng(seed)


def normal(r: numpy.random.Generator, *shape: int) -> numpy.ndarray:
    return r.standard_normal(shape).astype(numpy.float32)


def grads(named: dict[str, gf.Tensor]) -> Arrays:
    """name.grad -> host copy for every named leaf (a missing gradient is an error)."""
    out = {}
    for name, t in named.items():
        if t.grad is None:
            raise RuntimeError(f"{name} got no gradient")
        out[f"{name}.grad"] = host(t.grad)
    return out


def backward_random(y: gf.Tensor, r: numpy.random.Generator, device: str) -> None:
    """y.backward with a random upstream gradient (ones would make every sum exact)."""
    y.backward(const(normal(r, *y.shape), device))


def module_grads(module: nn.Module) -> Arrays:
    return grads(dict(module.named_parameters()))


def built(factory: Callable[[], nn.Module], device: str, seed: int) -> nn.Module:
    """The module made by `factory` with cpu-seeded initial weights, moved to `device`."""
    gf.manual_seed(seed)
    return factory().to(device)


# ---- the cases: scatter-adds (nondeterministic on cuda) -----------------------------------
def run_embedding(device: str, quick: bool, seed: int) -> Arrays:
    r = rng(seed)
    vocab, dim, n = (8, 16, 1024) if quick else (16, 64, 8192)  # each row picked ~n/vocab times
    weight = leaf(normal(r, vocab, dim), device)
    indices = const(r.integers(0, vocab, size=(n // 32, 32)), device)
    out = F.embedding(indices, weight)
    backward_random(out, r, device)
    return grads({"weight": weight})


def run_getitem(device: str, quick: bool, seed: int) -> Arrays:
    r = rng(seed)
    rows, width, n = (16, 8, 1024) if quick else (32, 32, 8192)
    x = leaf(normal(r, rows, width), device)
    idx = const(r.integers(0, rows, size=n), device)
    out = x[idx]
    backward_random(out, r, device)
    return grads({"x": x})


def run_gather(device: str, quick: bool, seed: int) -> Arrays:
    r = rng(seed)
    rows, cols, picks = (4, 8, 256) if quick else (16, 16, 4096)
    x = leaf(normal(r, rows, cols), device)
    index = const(r.integers(0, cols, size=(rows, picks)), device)
    out = gf.gather(x, 1, index)
    backward_random(out, r, device)
    return grads({"x": x})


def run_take_along_dim(device: str, quick: bool, seed: int) -> Arrays:
    r = rng(seed)
    rows, cols, picks = (8, 4, 256) if quick else (16, 16, 4096)
    x = leaf(normal(r, rows, cols), device)
    index = const(r.integers(0, rows, size=(picks, cols)), device)
    out = gf.take_along_dim(x, index, 0)
    backward_random(out, r, device)
    return grads({"x": x})


def run_pad_replicate(device: str, quick: bool, seed: int) -> Arrays:
    r = rng(seed)
    n, c, side, width = (2, 2, 4, 4) if quick else (8, 8, 8, 32)  # each edge copied width+1 times
    x = leaf(normal(r, n, c, side, side), device)
    out = F.pad(x, (width, width, width, width), mode="replicate")
    backward_random(out, r, device)
    return grads({"x": x})


# ---- the cases: no atomics (deterministic) ------------------------------------------------
def run_conv2d(device: str, quick: bool, seed: int) -> Arrays:
    r = rng(seed)
    n, c, o, side = (2, 3, 4, 8) if quick else (16, 16, 32, 16)
    x = leaf(normal(r, n, c, side, side), device)
    w = leaf(normal(r, o, c, 3, 3) * 0.2, device)
    b = leaf(normal(r, o), device)
    out = F.conv2d(x, w, b, stride=1, padding=1)
    result = {"out": host(out)}
    backward_random(out, r, device)
    return {**result, **grads({"x": x, "weight": w, "bias": b})}


def _pool(pool: Callable[..., gf.Tensor]) -> Callable[[str, bool, int], Arrays]:
    def run(device: str, quick: bool, seed: int) -> Arrays:
        r = rng(seed)
        n, c, side = (2, 3, 8) if quick else (16, 16, 32)
        x = leaf(normal(r, n, c, side, side), device)
        out = pool(x, kernel_size=3, stride=2, padding=1)  # overlapping windows
        result = {"out": host(out)}
        backward_random(out, r, device)
        return {**result, **grads({"x": x})}

    return run


def _recurrent(kind: type[nn.Module]) -> Callable[[str, bool, int], Arrays]:
    def run(device: str, quick: bool, seed: int) -> Arrays:
        r = rng(seed)
        batch, steps, features, hidden = (4, 5, 8, 16) if quick else (32, 20, 32, 64)
        rnn = built(lambda: kind(features, hidden, num_layers=2, batch_first=True), device, seed)
        x = leaf(normal(r, batch, steps, features), device)
        out, _ = rnn(x)
        result = {"out": host(out)}
        backward_random(out, r, device)
        return {**result, **module_grads(rnn), **grads({"x": x})}

    return run


def run_sequential(device: str, quick: bool, seed: int) -> Arrays:
    r = rng(seed)
    batch, features, hidden = (16, 16, 32) if quick else (512, 128, 256)

    def model() -> nn.Module:
        return nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    net = built(model, device, seed)
    if fusion.fused_activation(net[0], net[1]) != "relu":
        raise RuntimeError("nn.Sequential did not fuse Linear + ReLU (gradflow.nn.fusion)")
    x = leaf(normal(r, batch, features), device)
    out = net(x)
    result = {"out": host(out)}
    backward_random(out, r, device)
    return {**result, **module_grads(net), **grads({"x": x})}


def run_cross_entropy(device: str, quick: bool, seed: int) -> Arrays:
    r = rng(seed)
    batch, classes = (16, 10) if quick else (512, 1000)
    logits = leaf(normal(r, batch, classes) * 3, device)
    target = const(r.integers(0, classes, size=batch), device)
    loss = F.cross_entropy(logits, target)
    result = {"loss": host(loss)}
    loss.backward()
    return {**result, **grads({"logits": logits})}


def run_layer_norm(device: str, quick: bool, seed: int) -> Arrays:
    r = rng(seed)
    rows, width = (16, 32) if quick else (1024, 512)
    x = leaf(normal(r, rows, width), device)
    w = leaf(1 + 0.1 * normal(r, width), device)
    b = leaf(0.1 * normal(r, width), device)
    out = F.layer_norm(x, (width,), w, b)
    result = {"out": host(out)}
    backward_random(out, r, device)
    return {**result, **grads({"x": x, "weight": w, "bias": b})}


def run_batch_norm(device: str, quick: bool, seed: int) -> Arrays:
    r = rng(seed)
    n, c, side = (4, 3, 4) if quick else (32, 32, 16)
    x = leaf(normal(r, n, c, side, side), device)
    w = leaf(1 + 0.1 * normal(r, c), device)
    b = leaf(0.1 * normal(r, c), device)
    running_mean = const(numpy.zeros(c, numpy.float32), device)
    running_var = const(numpy.ones(c, numpy.float32), device)
    out = F.batch_norm(x, running_mean, running_var, w, b, training=True)
    result = {
        "out": host(out),
        "running_mean": host(running_mean),
        "running_var": host(running_var),
    }
    backward_random(out, r, device)
    return {**result, **grads({"x": x, "weight": w, "bias": b})}


def _optimizer_steps(make: Callable[[list], optim.Optimizer]) -> Callable[[str, bool, int], Arrays]:
    """Two steps (the second one reads the state the first wrote) on three parameters whose
    gradients are set from seeded host arrays; the parameters and the optimizer state after."""

    def run(device: str, quick: bool, seed: int) -> Arrays:
        r = rng(seed)
        shapes = [(64, 32), (32,), (10, 32)] if quick else [(1024, 512), (512,), (10, 512)]
        params = [nn.Parameter(const(normal(r, *shape), device)) for shape in shapes]
        optimizer = make(params)
        for _ in range(2):
            for p in params:
                p.grad = const(normal(r, *p.shape), device)
            optimizer.step()
        result = {f"param{i}": host(p) for i, p in enumerate(params)}
        for i, p in enumerate(params):
            for key, value in optimizer.state[p].items():
                if isinstance(value, gf.Tensor):
                    result[f"param{i}.{key}"] = host(value)
        return result

    return run


def run_train_cnn(device: str, quick: bool, seed: int) -> Arrays:
    """`gradflow train cnn` for a few batches (with dropout and batch norm): the final
    state_dict."""
    from gradflow.training import TrainConfig, train

    with tempfile.TemporaryDirectory(prefix="gf-determinism-") as tmp:
        config = TrainConfig(
            model="cnn",
            device=device,
            epochs=1,
            limit_batches=5 if quick else 20,
            seed=seed,
            progress=False,
            checkpoint=str(Path(tmp) / "cnn.gfckpt"),
        )
        result = train(config, log=lambda line: None)
        return {key: host(value) for key, value in result.model.state_dict().items()}


SCATTER = "float atomicAdd in a scatter-add"
CASES: list[Case] = [
    Case("embedding backward, vocabulary << batch", NONDETERMINISTIC, run_embedding, SCATTER),
    Case("x[idx] backward, duplicate indices", NONDETERMINISTIC, run_getitem, SCATTER),
    Case("gather backward, duplicates", NONDETERMINISTIC, run_gather, SCATTER),
    Case("take_along_dim backward, duplicates", NONDETERMINISTIC, run_take_along_dim, SCATTER),
    Case("pad replicate (width >= 2) backward", NONDETERMINISTIC, run_pad_replicate, SCATTER),
    Case("conv2d fwd+bwd", DETERMINISTIC, run_conv2d),
    Case("max_pool2d fwd+bwd", DETERMINISTIC, _pool(F.max_pool2d)),
    Case("avg_pool2d fwd+bwd", DETERMINISTIC, _pool(F.avg_pool2d)),
    Case("nn.LSTM (2 layers) fwd+bwd", DETERMINISTIC, _recurrent(nn.LSTM)),
    Case("nn.GRU (2 layers) fwd+bwd", DETERMINISTIC, _recurrent(nn.GRU)),
    Case("Sequential(Linear, ReLU, Linear) fwd+bwd", DETERMINISTIC, run_sequential),
    Case("cross_entropy fwd+bwd", DETERMINISTIC, run_cross_entropy),
    Case("layer_norm fwd+bwd", DETERMINISTIC, run_layer_norm),
    Case("batch_norm (training) fwd+bwd", DETERMINISTIC, run_batch_norm),
    Case("Adam, 2 steps", DETERMINISTIC, _optimizer_steps(lambda p: optim.Adam(p, lr=1e-2))),
    Case(
        "SGD momentum 0.9, 2 steps",
        DETERMINISTIC,
        _optimizer_steps(lambda p: optim.SGD(p, lr=1e-2, momentum=0.9)),
    ),
    Case("gradflow train cnn, same seed, final state_dict", DETERMINISTIC, run_train_cnn),
]


# ---- comparing and reporting ---------------------------------------------------------------
def differences(first: Arrays, again: Arrays) -> list[str]:
    """What differs between two runs' arrays, bit for bit; [] when they are identical."""
    if list(first) != list(again):
        return [f"array names differ: {list(first)} vs {list(again)}"]
    found = []
    for name, a in first.items():
        b = again[name]
        if a.shape != b.shape or a.dtype != b.dtype:
            found.append(f"{name}: {a.shape} {a.dtype} vs {b.shape} {b.dtype}")
        elif a.tobytes() != b.tobytes():
            unequal = a != b
            if a.dtype.kind == "f":
                unequal |= numpy.signbit(a) != numpy.signbit(b)
                unequal &= ~(numpy.isnan(a) & numpy.isnan(b))
            count = int(unequal.sum())
            detail = f"{name}: {count} of {a.size} differ"
            if a.dtype.kind == "f" and count:
                with numpy.errstate(invalid="ignore", over="ignore"):
                    detail += f", max abs diff {float(numpy.max(numpy.abs(a - b))):.3g}"
            found.append(detail)
    return found


@dataclasses.dataclass
class Outcome:
    case: Case
    expected: str
    identical: bool | None  # None: the case raised
    verdict: str
    seconds: float

    @property
    def failed(self) -> bool:
        return self.identical is None or (self.expected == DETERMINISTIC and not self.identical)


def expectation(case: Case, device: str) -> str:
    return case.cuda_expectation if device.startswith("cuda") else DETERMINISTIC


def check(case: Case, device: str, quick: bool, seed: int, runs: int) -> Outcome:
    """Run `case` `runs` times with the same seed; compare every run with the first."""
    expected = expectation(case, device)
    start = time.perf_counter()
    try:
        first = case.run(device, quick, seed)
        found: list[str] = []
        for _ in range(runs - 1):
            found = found or differences(first, case.run(device, quick, seed))
    except Exception as exc:  # one broken case must not hide the others
        traceback.print_exc(file=sys.stderr)
        seconds = time.perf_counter() - start
        message = f"{type(exc).__name__}: {exc}".splitlines()[0].replace("|", "/")
        return Outcome(case, expected, None, f"UNEXPECTED: error: {message}", seconds)
    seconds = time.perf_counter() - start
    identical = not found
    detail = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")
    if identical:
        verdict = (
            "as expected" if expected == DETERMINISTIC else "as expected (identical this time)"
        )
    elif expected == NONDETERMINISTIC:
        verdict = f"as expected ({detail})"
    else:
        verdict = f"UNEXPECTED: differs ({detail})"
    return Outcome(case, expected, identical, verdict, seconds)


def expected_label(outcome: Outcome, device: str) -> str:
    if not device.startswith("cuda"):
        return f"{DETERMINISTIC} (cpu: NumPy adds sequentially)"
    if outcome.expected == NONDETERMINISTIC:
        return f"{NONDETERMINISTIC}: {outcome.case.why}" if outcome.case.why else NONDETERMINISTIC
    return DETERMINISTIC


def render(
    outcomes: Sequence[Outcome], device: str, machine: str, command: str, runs: int = 2
) -> str:
    """The markdown report: machine, command, the table and a one-line summary."""
    lines = [
        f"# Determinism check on {device}",
        "",
        f"- Machine: {machine}",
        f"- Command: `{command}`",
        f"- Each case ran {runs} times on fresh leaf tensors from the same seed; its gradients",
        "  (and outputs, updated parameters or trained state) compared bit for bit on host",
        "  copies with the first run's.",
        "",
        "| case | expected | identical | verdict |",
        "|---|---|---|---|",
    ]
    for o in outcomes:
        identical = "error" if o.identical is None else ("yes" if o.identical else "no")
        cells = [o.case.name, expected_label(o, device), identical, o.verdict]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    failed = [o.case.name for o in outcomes if o.failed]
    total = sum(o.seconds for o in outcomes)
    lines += [
        "",
        f"{len(outcomes)} cases in {total:.1f} s; "
        + (f"UNEXPECTED: {', '.join(failed)}" if failed else "every case as expected"),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="determinism_check.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--quick", action="store_true", help="small sizes, 5 training batches")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=2, help="runs per case (at least 2)")
    parser.add_argument("--only", metavar="TEXT", help="only the cases whose name contains TEXT")
    parser.add_argument("--out", metavar="FILE", help="also write the markdown report here")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error("--runs must be at least 2")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "PYTHONPATH=. python benchmarks/determinism_check.py " + shlex.join(argv)
    try:
        gf.zeros(1, device=args.device)  # CudaUnavailableError now, not in every case
    except gf.CudaUnavailableError as exc:
        print(f"determinism_check: error: {exc}", file=sys.stderr)
        return 2
    cases = [c for c in CASES if args.only is None or args.only in c.name]
    outcomes = []
    for case in cases:
        outcome = check(case, args.device, args.quick, args.seed, args.runs)
        identical = {None: "error", True: "yes", False: "no"}[outcome.identical]
        print(f"  {case.name}: identical {identical} ({outcome.seconds:.2f} s)",
              file=sys.stderr, flush=True)  # fmt: skip
        outcomes.append(outcome)
    from gradflow.bench.machine import describe_machine_line

    report = render(outcomes, args.device, describe_machine_line(), command, args.runs)
    print(report)
    if args.out:
        Path(args.out).write_text(report, encoding="utf-8")
        print(f"wrote {args.out}")
    return 1 if any(o.failed for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
