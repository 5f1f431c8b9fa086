"""Evolution strategies on the CPU (issue 19): (a) population evaluations per second of
gradflow.evolution.OpenAIES, batched (the whole population in one batched forward) against the
loop form (one forward per member), for a few MLP sizes and population sizes; (b) test accuracy
against wall time of backprop, ES alone and the hybrid (backprop and ES gradients mixed) training
the same 64-32-10 MLP on the embedded digits.

(a) times ``es.estimate`` (the forwards, the objective, and forming the gradient from the seeds)
on a batch of 64 random inputs, cross-entropy against random labels as the objective; members/s
is population_size / the median estimate time. (b) gives each trainer the same wall-time budget
(evaluations excluded) on the full 1,437-image training set and records the held-out test
accuracy as it goes. Everything runs on one BLAS thread (threadpoolctl).

    python benchmarks/bench_evolution.py                  # measure: about 2 minutes
    python benchmarks/bench_evolution.py --smoke          # tiny sizes, a second per trainer
    python benchmarks/bench_evolution.py --markdown benchmarks/results/DATE-cpu-evolution.md \\
        --plot benchmarks/results/DATE-cpu-evolution.png
    pytest benchmarks/bench_evolution.py --benchmark-disable   # the smoke run, as CI runs it

``--markdown`` writes both tables with the command, the commit and the machine; ``--plot`` the
figure (needs matplotlib: without it the plot is skipped with a message).
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradflow
from gradflow import evolution, nn, optim
from gradflow.backend.threads import blas_threads
from gradflow.bench.machine import describe_machine_line, source_commit
from gradflow.data import load_digits
from gradflow.nn.functional import cross_entropy, log_softmax
from gradflow.plotting import PlotUnavailableError, pyplot

SIZES = [(64, 32, 10), (64, 256, 10), (784, 256, 10)]  # in, hidden, out of the MLP
POPULATIONS = [20, 100, 400]
SMOKE_SIZES, SMOKE_POPULATIONS = [(64, 32, 10)], [4, 8]
THROUGHPUT_BATCH = 64  # inputs per forward in (a)
BUDGET_S, SMOKE_BUDGET_S = 15.0, 0.5  # (b): wall time per trainer
EVAL_GROWTH = 1.15  # (b): the next test evaluation after 15% more training time


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, outputs))


def member_losses(outputs: gradflow.Tensor, labels: gradflow.Tensor) -> gradflow.Tensor:
    """Each member's cross-entropy: logits (members, N, classes), labels (N,) -> (members,)."""
    picked = log_softmax(outputs, dim=-1).gather(
        -1, labels.reshape(1, -1, 1).expand(outputs.shape[0], -1, 1)
    )
    return -picked.reshape(outputs.shape[0], -1).mean(dim=-1)


def accuracy(outputs: gradflow.Tensor, labels: gradflow.Tensor) -> gradflow.Tensor:
    """The fraction of correct argmax predictions along the last dim (one per leading index)."""
    return (outputs.argmax(dim=-1) == labels).float().mean(dim=-1)


# -- (a) population evaluations per second -------------------------------------------------


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm up (first-call allocations)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def throughput(sizes: list, populations: list[int], repeats: int) -> list[dict]:
    """One row per (size, population): members/s batched and in the loop form."""
    rows = []
    for size in sizes:
        gradflow.manual_seed(0)
        model = mlp(*size)
        x = gradflow.randn(THROUGHPUT_BATCH, size[0])
        y = gradflow.randint(0, size[2], (THROUGHPUT_BATCH,))
        for population in populations:
            es = evolution.OpenAIES(model.parameters(), sigma=0.05,
                                    population_size=population, seed=0)  # fmt: skip

            def batched(es=es, model=model, x=x, y=y) -> None:
                es.estimate(lambda out: member_losses(out, y), model=model, inputs=x,
                            vectorized=True)  # fmt: skip

            def loop(es=es, model=model, x=x, y=y) -> None:
                es.estimate(lambda: cross_entropy(model(x), y))

            batched_s = _median_seconds(batched, repeats)
            loop_s = _median_seconds(loop, repeats)
            rows.append({
                "size": "-".join(map(str, size)),
                "parameters": es.num_parameters,
                "population": population,
                "batched_members_per_s": population / batched_s,
                "loop_members_per_s": population / loop_s,
            })  # fmt: skip
            row = rows[-1]
            print(
                f"MLP {row['size']:>10} ({row['parameters']:6d} parameters), population "
                f"{population:4d}: batched {row['batched_members_per_s']:9.0f} members/s, loop "
                f"{row['loop_members_per_s']:8.0f} members/s, "
                f"{row['batched_members_per_s'] / row['loop_members_per_s']:.1f}x"
            )
    return rows


# -- (b) accuracy against wall time --------------------------------------------------------


class Trainer:
    """One way of training the digits MLP: ``step()`` computes the gradients and steps."""

    def __init__(self, name: str, data: tuple, seed: int = 0):
        gradflow.manual_seed(seed)  # the same initial weights for every trainer
        self.name = name
        self.model = nn.Sequential(nn.Flatten(), *mlp(64, 32, 10))  # batchable
        self.x, self.y = data
        params = list(self.model.parameters())
        if name == "backprop":  # Adam on the cross-entropy
            self.optimizer = optim.Adam(params, lr=0.01)
        elif name == "ES":  # examples/es_digits.py: training accuracy as the fitness
            self.optimizer = optim.Adam(params, lr=0.05)
            self.es = evolution.OpenAIES(params, sigma=0.1, population_size=200,
                                         maximize=True, seed=seed)  # fmt: skip
        else:  # hybrid: the cross-entropy's backprop gradient and its ES estimate, half each
            self.optimizer = optim.Adam(params, lr=0.01)
            self.es = evolution.OpenAIES(params, sigma=0.05, population_size=50, seed=seed)

    def step(self) -> None:
        self.optimizer.zero_grad()
        if self.name == "ES":
            self.es.estimate(lambda out: accuracy(out, self.y), model=self.model,
                             inputs=self.x, vectorized=True)  # fmt: skip
        else:
            cross_entropy(self.model(self.x), self.y).backward()
            if self.name == "hybrid":
                self.es.estimate(lambda out: member_losses(out, self.y), model=self.model,
                                 inputs=self.x, vectorized=True, mix=0.5)  # fmt: skip
        self.optimizer.step()


def curves(budget_s: float) -> dict[str, list[tuple[float, int, float]]]:
    """{trainer: [(training seconds, steps, test accuracy), ...]} within ``budget_s`` each,
    evaluated at geometrically spaced times (every 15% more training time: the plot's time
    axis is logarithmic, backprop passes 90% in well under a second, ES takes seconds)."""
    train, (test_x, test_y) = load_digits(train=True), load_digits(train=False)
    found = {}
    for name in ("backprop", "ES", "hybrid"):
        trainer = Trainer(name, train)
        spent, steps, curve = 0.0, 0, []
        next_eval = 0.0
        while spent < budget_s:
            start = time.perf_counter()
            trainer.step()
            spent += time.perf_counter() - start
            steps += 1
            if spent >= next_eval or spent >= budget_s:
                with gradflow.no_grad():
                    curve.append((spent, steps, accuracy(trainer.model(test_x), test_y).item()))
                next_eval = spent * EVAL_GROWTH
        found[name] = curve
        best = max(a for _, _, a in curve)
        print(f"{name:>8}: {steps:5d} steps in {spent:.1f} s, test accuracy {curve[-1][2]:.3f} "
              f"(best {best:.3f})")  # fmt: skip
    return found


def time_to(curve: list[tuple[float, int, float]], target: float) -> str:
    reached = [(s, n) for s, n, a in curve if a >= target]
    return f"{reached[0][0]:.2f} s ({reached[0][1]} steps)" if reached else "not reached"


# -- the record ----------------------------------------------------------------------------


def write_markdown(path: str, rows: list[dict], found: dict, argv: list[str], budget: float,
                   plot: str | None, load: str) -> None:  # fmt: skip
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    command = shlex.join(["python", "benchmarks/bench_evolution.py", *argv])
    lines = [
        f"# Evolution strategies on the CPU, {today} (issue 19)",
        "",
        f"- command: `{command}` (one BLAS thread, set through threadpoolctl)",
        f"- commit: {source_commit()}",
        f"- machine: {describe_machine_line()}",
        f"- load average (1 min) before, after the run: {load}",
        "",
        "## Population evaluations per second, batched against the loop form",
        "",
        f"`OpenAIES.estimate` on an MLP in-hidden-out (ReLU), {THROUGHPUT_BATCH} random inputs, "
        "cross-entropy as the objective, antithetic, all parameters evolved; members/s = "
        "population / median estimate time (the forwards plus the gradient from the seeds). "
        "Batched: `estimate(f, model=m, inputs=x, vectorized=True)`, the population in batched "
        "matrix products; loop: `estimate(lambda: loss(m(x)))`, one forward per member.",
        "",
        "| MLP | parameters | population | batched members/s | loop members/s | batched / loop |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r["batched_members_per_s"] / r["loop_members_per_s"]
        lines.append(f"| {r['size']} | {r['parameters']} | {r['population']} | "
                     f"{r['batched_members_per_s']:.0f} | {r['loop_members_per_s']:.0f} | "
                     f"{ratio:.1f}x |")  # fmt: skip
    lines += [
        "",
        "## Test accuracy against wall time on digits",
        "",
        f"The same 64-32-10 MLP (same initial weights), full-batch steps on the 1,437 training "
        f"images, {budget:g} s of training each (test evaluations not counted), test accuracy "
        "on the 360 held-out images. backprop: Adam lr 0.01 on the cross-entropy. ES: OpenAIES "
        "(population 200, sigma 0.1) with training accuracy as the fitness, Adam lr 0.05 "
        "(examples/es_digits.py). hybrid: the cross-entropy's backprop gradient mixed half and "
        "half with its ES estimate (`mix=0.5`, population 50, sigma 0.05), Adam lr 0.01.",
        "",
        "| trainer | steps | final test accuracy | best | time to 80% | time to 90% |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, curve in found.items():
        best = max(a for _, _, a in curve)
        reach = f"{time_to(curve, 0.8)} | {time_to(curve, 0.9)}"
        lines.append(f"| {name} | {curve[-1][1]} | {100 * curve[-1][2]:.1f}% | "
                     f"{100 * best:.1f}% | {reach} |")  # fmt: skip
    if plot:
        lines += ["", f"![test accuracy against wall time]({Path(plot).name})"]
    Path(path).write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


def write_plot(path: str, rows: list[dict], found: dict) -> bool:
    """The two panels as a PNG; False (with a message) when matplotlib is missing."""
    try:
        plt = pyplot()
    except PlotUnavailableError as exc:
        print(f"skipping the plot: {exc}")
        return False
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for size in dict.fromkeys(r["size"] for r in rows):
        mine = [r for r in rows if r["size"] == size]
        pops = [r["population"] for r in mine]
        (line,) = left.plot(pops, [r["batched_members_per_s"] for r in mine], "o-",
                            label=f"{size} batched")  # fmt: skip
        left.plot(pops, [r["loop_members_per_s"] for r in mine], "s--", color=line.get_color(),
                  label=f"{size} loop")  # fmt: skip
    left.set(xscale="log", yscale="log", xlabel="population size", ylabel="members / s",
             title="(a) population evaluations per second (1 thread)")  # fmt: skip
    populations = sorted({r["population"] for r in rows})
    left.set_xticks(populations, [str(p) for p in populations])
    left.minorticks_off()
    left.grid(alpha=0.3)
    bottom, top = left.get_ylim()
    left.set_ylim(bottom / 5, top)  # room for the legend below the lines
    left.legend(fontsize=7, ncol=3, loc="lower center")
    for name, curve in found.items():
        right.plot([s for s, _, _ in curve], [100 * a for _, _, a in curve], label=name)
    right.set(xscale="log", xlabel="training wall time (s, log scale)",
              ylabel="test accuracy (%)", ylim=(0, 100),
              title="(b) digits, 64-32-10 MLP")  # fmt: skip
    right.grid(alpha=0.3)
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"wrote {path}")
    return True


def main(argv: list[str] | None = None) -> tuple[list[dict], dict]:
    """Run (a) and (b), print them and write the record; return (throughput rows, curves)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat")
    parser.add_argument("--budget", type=float, default=None, help="(b): seconds per trainer")
    parser.add_argument("--repeats", type=int, default=5, help="(a): timed estimates per row")
    parser.add_argument("--markdown", metavar="PATH", help="write the tables to PATH")
    parser.add_argument("--plot", metavar="PATH", help="write the figure (PNG) to PATH")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    budget = args.budget or (SMOKE_BUDGET_S if args.smoke else BUDGET_S)
    load_before = os.getloadavg()[0]
    with blas_threads(1):
        rows = throughput(SMOKE_SIZES if args.smoke else SIZES,
                          SMOKE_POPULATIONS if args.smoke else POPULATIONS,
                          1 if args.smoke else args.repeats)  # fmt: skip
        found = curves(budget)
    plotted = bool(args.plot) and write_plot(args.plot, rows, found)
    if args.markdown:
        argv_text = sys.argv[1:] if argv is None else argv
        load = f"{load_before:.2f}, {os.getloadavg()[0]:.2f}"
        write_markdown(args.markdown, rows, found, argv_text, budget,
                       args.plot if plotted else None, load)  # fmt: skip
    return rows, found


def test_evolution(benchmark: Any, bench: Any, tmp_path: Path) -> None:
    """Both parts once (pedantic, one round): tiny sizes in the smoke run, full otherwise."""
    table = tmp_path / "evolution.md"
    argv = ["--smoke"] if bench.smoke else []
    argv += ["--markdown", str(table), "--plot", str(tmp_path / "evolution.png")]
    rows, found = benchmark.pedantic(main, args=(argv,), rounds=1, iterations=1)
    assert rows and all(r["batched_members_per_s"] > 0 and r["loop_members_per_s"] > 0
                        for r in rows)  # fmt: skip
    assert set(found) == {"backprop", "ES", "hybrid"} and all(found.values())
    text = table.read_text()
    assert "| backprop |" in text and "batched / loop" in text and "commit: " in text
    for r in rows:
        key = f"{r['size']}_p{r['population']}"
        benchmark.extra_info[f"batched_members_per_s_{key}"] = round(r["batched_members_per_s"])
        benchmark.extra_info[f"loop_members_per_s_{key}"] = round(r["loop_members_per_s"])
    for name, curve in found.items():
        benchmark.extra_info[f"test_accuracy_{name}"] = round(curve[-1][2], 3)


if __name__ == "__main__":
    main()
