"""The `gradflow` command: `gradflow train` (and `gradflow bench`, see its help)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gradflow.backend import CudaUnavailableError
from gradflow.bench import cli as bench_cli


def _train_parser(sub: argparse._SubParsersAction) -> None:
    from gradflow import models, training

    p = sub.add_parser(
        "train",
        help="train a model on the embedded digits (or MNIST) with a progress bar",
        description="Train a classifier; a checkpoint is written after every epoch.",
    )
    p.add_argument("model", choices=sorted(models.MODELS), help="which model to train")
    p.add_argument("--device", default="auto",
                   help="auto (cuda if usable, else cpu), cpu, cuda, cuda:N")  # fmt: skip
    p.add_argument("--epochs", type=int, help="number of epochs (default: per model)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, help="learning rate (default: per optimizer)")
    p.add_argument("--optimizer", default="adam", choices=sorted(training.OPTIMIZERS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", help="checkpoint path (default gradflow_runs/MODEL/...)")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--plot", help="save loss and accuracy curves to this image (matplotlib)")
    p.add_argument("--data", default="digits",
                   help="digits (embedded), mnist:PATH or fashion-mnist:PATH")  # fmt: skip
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads on the CPU (default 1: fastest for these small models; "
                   "0: the BLAS library's default)")  # fmt: skip
    stop = p.add_argument_group(
        "stopping criteria",
        "they watch a seeded validation split of the training set (never the test set); the "
        "best epoch's checkpoint is kept beside --checkpoint as NAME.best.SUFFIX",
    )
    stop.add_argument(
        "--patience", type=int, help="stop after N epochs in a row without improvement of --monitor"
    )
    stop.add_argument(
        "--min-delta",
        type=float,
        default=0.0,
        help="an improvement is a change of more than this (default 0)",
    )
    stop.add_argument(
        "--monitor",
        default="val_loss",
        choices=["val_loss", "val_accuracy"],
        help="what --patience and the best checkpoint watch (default val_loss)",
    )
    stop.add_argument(
        "--target-accuracy",
        type=float,
        metavar="A",
        help="stop once the validation accuracy reaches A (0.95 for 95%%)",
    )
    stop.add_argument(
        "--max-time",
        type=float,
        metavar="SECONDS",
        help="stop after this much training time (the epoch ends early and is evaluated)",
    )
    stop.add_argument(
        "--val-fraction",
        type=float,
        metavar="F",
        help="hold out this fraction of the training set for validation (default "
        "0.1 with --patience or --target-accuracy, else 0)",
    )
    es = p.add_argument_group(
        "evolution strategies",
        "--trainer es takes each step's gradient from OpenAI-ES (population forwards of "
        "perturbed weights, no backward); hybrid mixes it with backprop's",
    )
    es.add_argument("--trainer", default="backprop", choices=training.TRAINERS)
    es.add_argument("--population", type=int, default=50,
                    help="ES: perturbed networks per step, even (default 50)")  # fmt: skip
    es.add_argument("--sigma", type=float, default=0.05,
                    help="ES: the perturbations' standard deviation (default 0.05)")  # fmt: skip
    es.add_argument("--es-weight", type=float, default=0.5, metavar="W",
                    help="hybrid: gradient = (1 - W) backprop + W ES (default 0.5)")  # fmt: skip
    p.add_argument("--limit-batches", type=int, help=argparse.SUPPRESS)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--distributed",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="data-parallel over the processes mpiexec started (default: on when "
        "started by mpiexec -n N with N > 1): mpiexec -n 2 gradflow train cnn",
    )


def _run_train(args: argparse.Namespace) -> int:
    from gradflow import training

    config = training.TrainConfig(
        model=args.model,
        device=args.device,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer=args.optimizer,
        seed=args.seed,
        checkpoint=args.checkpoint,
        resume=args.resume,
        plot=args.plot,
        data=args.data,
        limit_batches=args.limit_batches,
        progress=not args.no_progress,
        threads=args.threads,
        distributed=args.distributed,
        patience=args.patience,
        min_delta=args.min_delta,
        monitor=args.monitor,
        target_accuracy=args.target_accuracy,
        max_time=args.max_time,
        val_fraction=args.val_fraction,
        trainer=args.trainer,
        population=args.population,
        sigma=args.sigma,
        es_weight=args.es_weight,
    )
    result = training.train(config, log=lambda line: print(line, flush=True))
    if result.diverged:  # the run failed; its checkpoints are those of the last good epoch
        if result.rank == 0:
            kept = (
                f"{result.checkpoint} holds epoch {len(result.history)}, the last good one"
                if result.history
                else "no epoch finished, so no checkpoint was written"
            )
            print(
                f"gradflow train: error: {result.stop_reason}; {kept} (a smaller --lr may help)",
                file=sys.stderr,
            )
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gradflow` console script; returns the exit status."""
    parser = argparse.ArgumentParser(prog="gradflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    bench_cli.add_parser(sub)
    args = parser.parse_args(argv)
    from gradflow.data import DatasetFileError
    from gradflow.serialization import CheckpointError
    from gradflow.training import TrainingError

    try:
        if args.command == "bench":
            return bench_cli.run(args)
        return _run_train(args)
    except CudaUnavailableError as exc:
        print(f"gradflow {args.command}: error: --device {args.device}: {exc}", file=sys.stderr)
        return 2
    except (TrainingError, CheckpointError, DatasetFileError) as exc:
        print(f"gradflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gradflow {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
