"""The training loop behind `gradflow train`: data, model, optimizer, progress, checkpoints.

``train(TrainConfig(model="cnn"))`` trains one of gradflow.models on the embedded digits (or
MNIST / Fashion-MNIST from a local path), prints a progress bar per epoch and one line per
epoch, saves a checkpoint after every epoch and can resume from it. On the CPU a resumed run
gives the same numbers as an uninterrupted one: the checkpoint carries the model, the
optimizer, the epoch count and the state of both random streams (shuffling and
dropout).

Stopping criteria (gradflow.stopping.EarlyStopping: patience, a target validation accuracy, a
time limit, a non-finite loss) watch a seeded validation split of the training set; the best
epoch's checkpoint is kept as NAME.best.gfckpt and the last log line says why the run ended.
``trainer="es"`` takes each step's gradient from evolution strategies (gradflow.evolution)
instead of backprop, ``"hybrid"`` mixes the two.

Under ``mpiexec -n N`` (or with ``distributed=True``) it trains data-parallel: each process
takes every N-th sample of each epoch's order (DistributedSampler, batch_size per process) and
the model is wrapped in DistributedDataParallel, whose gradients are averaged over the
processes; rank 0 alone prints, shows the progress bar, evaluates and writes the checkpoint,
whose weights are the plain module's, so a run resumes at any number of processes. A process
that raises ends the whole job (MPI Abort) with its traceback and a non-zero status.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy

from gradflow import _files, data, models, nn, optim
from gradflow.autograd.grad_mode import no_grad
from gradflow.backend import Device, get_array_module
from gradflow.backend.threads import blas_threads
from gradflow.ops.losses import cross_entropy
from gradflow.random import Generator, default_generator, manual_seed
from gradflow.serialization import CheckpointError, load, save
from gradflow.stopping import EarlyStopping, check_loss, time_limit_reason
from gradflow.tensor import Tensor

OPTIMIZERS: dict[str, Callable[..., optim.Optimizer]] = {
    "adam": optim.Adam,
    "adamw": optim.AdamW,
    "sgd": lambda params, lr: optim.SGD(params, lr=lr, momentum=0.9, nesterov=True),
    "rmsprop": optim.RMSprop,
}
DEFAULT_LR = {"adam": 2e-3, "adamw": 2e-3, "sgd": 0.05, "rmsprop": 1e-3}
# The recurrent models train best with a larger step (measured on digits: lstm with adam at
# 2e-3 reached 92% test accuracy in 20 epochs, at 1e-2 98%).
LR_SCALE = {"lstm": 5.0, "gru": 5.0}
TRAINERS = ("backprop", "es", "hybrid")
# The default learning rates of --trainer es|hybrid, for every model (measured on the mlp,
# digits, test accuracy after 10 epochs, population 50, sigma 0.05: es with adam at 2e-3 39%
# after 5 epochs, at 0.01 86%, 0.03 92%, 0.1 86%; sgd 0.003 92% (0.01 76%, 0.2 blows up);
# rmsprop 0.01 91%. hybrid with adam at 2e-3 75%, 0.01 93%, 0.03 94%; rmsprop 0.01 95%; sgd
# 0.005 74%, 0.01 89%, 0.02 93%, 0.05 diverges: a margin below that). 30 epochs with the
# defaults: backprop 98.3% (0.1 s an epoch), es 89.2% (0.7 s), hybrid 95.8% (1.0 s).
ES_DEFAULT_LR = {
    "es": {"adam": 0.03, "adamw": 0.03, "sgd": 0.003, "rmsprop": 0.01},
    "hybrid": {"adam": 0.01, "adamw": 0.01, "sgd": 0.01, "rmsprop": 0.01},
}
DEFAULT_EPOCHS = {"mlp": 30, "cnn": 15, "lstm": 20, "gru": 20, "transformer": 15}
CHECKPOINT_FORMAT = 1


@dataclasses.dataclass
class TrainConfig:
    """What `gradflow train` was asked to do (its command-line options)."""

    model: str = "cnn"
    device: str = "auto"
    epochs: int | None = None  # None: the model's default (DEFAULT_EPOCHS)
    batch_size: int = 64
    lr: float | None = None  # None: DEFAULT_LR of the optimizer, times the model's LR_SCALE
    optimizer: str = "adam"
    seed: int = 0
    checkpoint: str | None = None  # None: gradflow_runs/<model>/checkpoint.gfckpt
    resume: bool = False
    plot: str | None = None
    data: str = "digits"
    limit_batches: int | None = None  # stop each epoch after this many batches (smoke runs)
    progress: bool = True
    threads: int = 1  # BLAS threads on the CPU; 0 leaves the BLAS library's default
    distributed: bool | None = None  # None: when mpiexec started more than one process
    # Stopping criteria (gradflow.stopping); they watch a validation split of the training set
    patience: int | None = None  # stop after this many epochs without improvement of monitor
    min_delta: float = 0.0  # an improvement is a change of more than this
    monitor: str = "val_loss"  # or "val_accuracy"
    target_accuracy: float | None = None  # stop once the validation accuracy reaches this
    max_time: float | None = None  # seconds of training, checked after every batch
    val_fraction: float | None = None  # None: 0.1 with patience or target_accuracy, else 0
    restore_best: bool = True  # a run stopped on a criterion returns the best epoch's weights
    # How a step gets its gradient: backprop, evolution strategies (gradflow.evolution), or both
    trainer: str = "backprop"  # "es": OpenAI-ES alone (no backward); "hybrid": both, mixed
    population: int = 50  # ES: perturbed networks evaluated per step (even: antithetic pairs)
    sigma: float = 0.05  # ES: the perturbations' standard deviation
    es_weight: float = 0.5  # hybrid: grad = (1 - w) * backprop's + w * ES's


@dataclasses.dataclass
class EpochRecord:
    """One line of the training history."""

    epoch: int
    train_loss: float
    test_accuracy: float
    samples_per_second: float
    seconds: float
    lr: float
    val_loss: float = math.nan  # nan without a validation split
    val_accuracy: float = math.nan


@dataclasses.dataclass
class TrainResult:
    """What train() returns. `stop_reason` says why the run ended early (None: it ran every
    epoch); `diverged` is True when that was a non-finite training loss; `best_epoch` is the
    epoch whose weights `model` holds when a stop restored the best ones; `rank` is the
    process's rank under mpiexec (0 otherwise: the one that reports)."""

    model: nn.Module
    history: list[EpochRecord]
    checkpoint: Path
    device: Device
    stop_reason: str | None = None
    diverged: bool = False
    best_epoch: int | None = None
    rank: int = 0

    @property
    def test_accuracy(self) -> float:
        """The test accuracy of the returned weights (the best epoch's when restored)."""
        if not self.history:
            return math.nan
        return self.history[(self.best_epoch or len(self.history)) - 1].test_accuracy

    @property
    def best_checkpoint(self) -> Path:
        return best_checkpoint_path(self.checkpoint)


class TrainingError(ValueError):
    """A `gradflow train` option or checkpoint that can't be used (the message says why)."""


def load_datasets(spec: str, device: Device) -> tuple[data.TensorDataset, data.TensorDataset]:
    """(train, test) datasets for ``--data``: "digits", "mnist:PATH" or "fashion-mnist:PATH"."""
    if spec == "digits":
        return data.Digits(train=True, device=device), data.Digits(train=False, device=device)
    name, _, root = spec.partition(":")
    loaders = {"mnist": data.MNIST, "fashion-mnist": data.FashionMNIST}
    if name not in loaders or not root:
        raise TrainingError(
            f"--data {spec!r}: expected 'digits', 'mnist:PATH' or 'fashion-mnist:PATH' (PATH: "
            "a directory with the IDX files)"
        )
    dataset = loaders[name]
    return dataset(root, train=True, device=device), dataset(root, train=False, device=device)


def build(config: TrainConfig, image_size: int) -> tuple[nn.Module, optim.Optimizer]:
    """The model and its optimizer."""
    _check_model(config.model)
    if config.optimizer not in OPTIMIZERS:
        raise TrainingError(
            f"unknown optimizer {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"
        )
    model = models.MODELS[config.model](image_size=image_size)
    lr = config.lr
    if lr is None and config.trainer in ES_DEFAULT_LR:
        lr = ES_DEFAULT_LR[config.trainer][config.optimizer]
    elif lr is None:
        lr = DEFAULT_LR[config.optimizer] * LR_SCALE.get(config.model, 1.0)
    return model, OPTIMIZERS[config.optimizer](model.parameters(), lr=lr)


def _check_model(name: str) -> None:
    if name not in models.MODELS:
        raise TrainingError(f"unknown model {name!r}; choose one of {', '.join(models.MODELS)}")


def cosine_lr(base_lr: float, epoch: int, epochs: int) -> float:
    """The learning rate of `epoch` (1-based) on a cosine from base_lr down to base_lr / 100.

    A closed form of the epoch, not a scheduler's state, so a run resumed with a larger
    --epochs simply continues on the longer schedule.
    """
    floor = base_lr / 100
    return floor + (base_lr - floor) * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))


def _epochs(config: TrainConfig) -> int:
    _check_model(config.model)
    epochs = config.epochs if config.epochs is not None else DEFAULT_EPOCHS[config.model]
    if epochs < 1:
        raise TrainingError(f"--epochs must be at least 1, got {epochs}")
    return epochs


def evaluate(model: nn.Module, dataset: data.Dataset, batch_size: int = 512) -> float:
    """The fraction of `dataset` that `model` classifies correctly (in eval mode)."""
    return _evaluate(model, dataset, batch_size, with_loss=False)[1]


def validate(model: nn.Module, dataset: data.Dataset, batch_size: int = 512) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) of `model` on `dataset`, in eval mode."""
    return _evaluate(model, dataset, batch_size, with_loss=True)


def _evaluate(
    model: nn.Module, dataset: data.Dataset, batch_size: int, with_loss: bool
) -> tuple[float, float]:
    was_training = model.training
    model.eval()
    correct = 0
    loss_sum = 0.0
    with no_grad():
        for images, labels in data.DataLoader(dataset, batch_size=batch_size):
            output = model(images)
            if with_loss:
                loss_sum += float(cross_entropy(output, labels, reduction="sum").array)
            correct += int((output.array.argmax(axis=1) == labels.array).sum())
    model.train(was_training)
    return loss_sum / len(dataset), correct / len(dataset)


def validation_split(
    dataset: data.Dataset, fraction: float, seed: int
) -> tuple[data.Dataset, data.Dataset | None]:
    """(train, validation) Subsets of the training set `dataset`: a seeded random `fraction`
    of it (at least one sample) held out for the stopping criteria; (dataset, None) for 0."""
    if not fraction:
        return dataset, None
    count = len(dataset)
    held = min(max(1, round(count * fraction)), count - 1)
    order = numpy.random.default_rng(seed).permutation(count)
    return data.Subset(dataset, numpy.sort(order[held:])), data.Subset(
        dataset, numpy.sort(order[:held])
    )


def best_checkpoint_path(checkpoint: Path) -> Path:
    """Where the best epoch's checkpoint goes: run.gfckpt -> run.best.gfckpt."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.best{checkpoint.suffix or '.gfckpt'}")


def _val_fraction(config: TrainConfig) -> float:
    """The validation fraction config asks for, checked (its default depends on the criteria)."""
    fraction = config.val_fraction
    wanted = config.patience is not None or config.target_accuracy is not None
    if fraction is None:
        return 0.1 if wanted else 0.0
    if not (_is_number(fraction) and 0 <= fraction < 1):
        raise TrainingError(
            f"--val-fraction must be a number from 0 up to (not including) 1, got {fraction!r}"
        )
    if wanted and fraction == 0:
        raise TrainingError(
            "--patience and --target-accuracy watch a validation split: --val-fraction must be "
            "above 0 (leave it out for 0.1)"
        )
    return float(fraction)


def _check_config(config: TrainConfig) -> tuple[Device, int, Path]:
    """The device, epoch count and checkpoint path of `config`, after checking every option
    that can be checked before the data is loaded, so that none fails after an epoch has
    trained (a checkpoint that can't be written, a plot that can't be saved)."""
    try:
        device = Device(config.device)
    except ValueError as exc:
        raise TrainingError(f"--device: {exc}") from None
    epochs = _epochs(config)
    if config.batch_size < 1:
        raise TrainingError(f"--batch-size must be at least 1, got {config.batch_size}")
    if config.lr is not None and not (_is_number(config.lr) and 0 < config.lr < math.inf):
        raise TrainingError(
            f"--lr must be a positive finite number such as 1e-3, got {config.lr!r} (leave it "
            "out for the optimizer's default)"
        )
    seed = config.seed
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise TrainingError(f"--seed must be an integer, 0 or more, got {config.seed!r}")
    if config.threads < 0:
        raise TrainingError(f"--threads must be 0 (the BLAS default) or more, got {config.threads}")
    if config.limit_batches is not None and config.limit_batches < 1:
        raise TrainingError(f"--limit-batches must be at least 1, got {config.limit_batches}")
    _check_stopping(config)
    _check_trainer(config)
    default = config.checkpoint is None
    checkpoint = Path(config.checkpoint or f"gradflow_runs/{config.model}/checkpoint.gfckpt")
    problem = output_path_problem(checkpoint, make_parents=True)
    if problem:
        where = f"{checkpoint} (the default)" if default else str(checkpoint)
        raise TrainingError(f"--checkpoint {where}: {problem}")
    if config.resume and not checkpoint.exists():
        raise TrainingError(
            f"--resume: no checkpoint at {checkpoint}; train without --resume first or pass "
            "--checkpoint PATH"
        )
    if config.plot:
        if problem := output_path_problem(config.plot):
            raise TrainingError(f"--plot {config.plot}: {problem}")
        _pyplot()  # fail before training, not after it, when matplotlib is missing
        if problem := plot_format_problem(config.plot):
            raise TrainingError(f"--plot {config.plot}: {problem}")
    if device.type == "cuda":
        get_array_module(device)  # CudaUnavailableError now, not after loading the data
    return device, epochs, checkpoint


def _check_stopping(config: TrainConfig) -> None:
    """TrainingError naming the option when a stopping criterion is out of range."""
    patience = config.patience
    if patience is not None and not (
        isinstance(patience, numbers.Integral) and not isinstance(patience, bool) and patience >= 1
    ):
        raise TrainingError(f"--patience must be an integer, 1 or more, got {patience!r}")
    if not (_is_number(config.min_delta) and 0 <= config.min_delta < math.inf):
        raise TrainingError(
            f"--min-delta must be a finite number, 0 or more, got {config.min_delta!r}"
        )
    if config.monitor not in ("val_loss", "val_accuracy"):
        raise TrainingError(f"--monitor must be val_loss or val_accuracy, got {config.monitor!r}")
    target = config.target_accuracy
    if target is not None and not (_is_number(target) and 0 < target <= 1):
        raise TrainingError(
            f"--target-accuracy must be a fraction above 0 and at most 1 (0.95 for 95%), got "
            f"{target!r}"
        )
    if config.max_time is not None and not (
        _is_number(config.max_time) and 0 < config.max_time < math.inf
    ):
        raise TrainingError(
            f"--max-time must be a positive number of seconds, got {config.max_time!r}"
        )
    _val_fraction(config)


def _check_trainer(config: TrainConfig) -> None:
    """TrainingError naming the option when --trainer or an ES setting is out of range."""
    if config.trainer not in TRAINERS:
        raise TrainingError(
            f"--trainer must be one of {', '.join(TRAINERS)}, got {config.trainer!r}"
        )
    if config.trainer == "backprop":
        return
    population = config.population
    if not (isinstance(population, numbers.Integral) and population >= 2 and population % 2 == 0):
        raise TrainingError(
            f"--population must be an even integer, 2 or more (antithetic pairs), got "
            f"{population!r}"
        )
    if not (_is_number(config.sigma) and 0 < config.sigma < math.inf):
        raise TrainingError(f"--sigma must be a positive finite number, got {config.sigma!r}")
    if not (_is_number(config.es_weight) and 0 <= config.es_weight <= 1):
        raise TrainingError(f"--es-weight must be from 0 to 1, got {config.es_weight!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def output_path_problem(path: str | os.PathLike, make_parents: bool = False) -> str | None:
    """Why a file can't be written at `path`, or None when it looks writable: checked before
    a long run so that it does not fail at the end. `make_parents`: missing directories on
    the way will be created (then the nearest existing one must be writable)."""
    path = Path(path)
    if path.is_dir():
        return "is a directory, not a file; give the path of a file"
    if path.exists() and not path.is_file():
        kind = _files.kind_of(os.stat(path).st_mode)
        return f"is {kind}, not a regular file; give the path of a file"
    directory = Path(os.path.abspath(path)).parent
    if make_parents:
        while not directory.exists() and directory != directory.parent:
            directory = directory.parent
    if not directory.exists():
        return f"directory {directory} does not exist; create it first or choose another path"
    if not directory.is_dir():
        return f"{directory} is a file, not a directory; choose another path"
    if not os.access(directory, os.W_OK | os.X_OK):
        return (
            f"directory {directory} is not writable; choose a path in a writable directory "
            "(or make it writable)"
        )
    if path.exists() and not os.access(path, os.W_OK):
        return "the file exists and is not writable; choose another path"
    return None


def plot_format_problem(path: str) -> str | None:
    """Why matplotlib can't save an image at `path` (an unknown suffix), or None."""
    from matplotlib.backend_bases import FigureCanvasBase

    suffix = Path(path).suffix[1:].lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix and suffix not in formats:
        return (
            f"matplotlib can't save .{suffix} images; use a suffix such as "
            f"{', '.join('.' + f for f in sorted(formats))}"
        )
    return None


def mpi_world_size(environ: dict | None = None) -> int:
    """How many processes mpiexec started, from its environment (MPICH's PMI_SIZE, Open
    MPI's OMPI_COMM_WORLD_SIZE); 1 when not under mpiexec."""
    environ = os.environ if environ is None else environ
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS"):
        if environ.get(name, "").isdigit():
            return int(environ[name])
    return 1


def train(config: TrainConfig, log: Callable[[str], None] = print) -> TrainResult:
    """Train ``config.model`` and return it with its history and checkpoint path."""
    distributed = config.distributed
    if distributed is None:
        distributed = mpi_world_size() > 1
    if not distributed:
        return _train(config, log, None)
    if config.trainer != "backprop":  # before MPI starts: a plain error, not an MPI abort
        raise _es_not_data_parallel(config)
    from gradflow import distributed as dist

    started = not dist.is_initialized()
    if started:
        dist.init_process_group("mpi")
    try:
        return _train(config, log, (dist.get_rank(), dist.get_world_size()))
    except BaseException:
        if dist.get_world_size() > 1:  # the other ranks wait in a collective: end them all
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            # Abort kills the launcher's proxies at once: give them a moment to pass on the
            # traceback just written (without it, 1 run in 5 under mpiexec lost it)
            time.sleep(0.5)
            from mpi4py import MPI

            MPI.COMM_WORLD.Abort(1)
        raise
    finally:
        if started and dist.is_initialized():
            dist.destroy_process_group()


def _es_not_data_parallel(config: TrainConfig) -> TrainingError:
    return TrainingError(
        f"--trainer {config.trainer} does not run data-parallel under mpiexec; run it in one "
        "process, or split the ES population over the ranks in your own script with "
        "gradflow.evolution.OpenAIES(..., distributed=True)"
    )


def _train(config: TrainConfig, log: Callable[[str], None], world: tuple | None) -> TrainResult:
    """train() in one process (world None) or as rank `world[0]` of `world[1]`."""
    rank, size = world if world is not None else (0, 1)
    if rank != 0:
        log = _silent
        config = dataclasses.replace(config, progress=False)
    device, epochs, checkpoint = _check_config(config)
    config = dataclasses.replace(config, val_fraction=_val_fraction(config))
    manual_seed(config.seed)
    train_set, test_set = load_datasets(config.data, device)
    image_size = train_set[0][0].shape[-1]
    train_set, val_set = validation_split(train_set, config.val_fraction, config.seed)
    model, optimizer = build(config, image_size)
    base_lr = optimizer.param_groups[0]["lr"]
    model.to(device)
    shuffle = Generator("cpu", config.seed)
    stopper = None  # tracks the best epoch (and the patience) when there is a validation split
    if val_set is not None:
        stopper = EarlyStopping(
            config.monitor, patience=config.patience, min_delta=config.min_delta,
            restore_best=config.restore_best,
        )  # fmt: skip
    es = None  # the evolution-strategies estimator of --trainer es|hybrid
    if config.trainer != "backprop":
        if world is not None:
            raise _es_not_data_parallel(config)
        from gradflow.evolution import OpenAIES

        # hybrid mixes two estimates of the same gradient: the raw losses keep ES's in the
        # loss's units (centered ranks would rescale it, and --es-weight would not mean what it
        # says); ES alone takes the ranks, robust to outliers (OpenAI-ES's default)
        shaping = None if config.trainer == "hybrid" else "centered_rank"
        es = OpenAIES(list(model.parameters()), sigma=config.sigma,
                      population_size=config.population, fitness_shaping=shaping,
                      seed=config.seed)  # fmt: skip
    history: list[EpochRecord] = []
    if config.resume:
        history = _resume(checkpoint, config, model, optimizer, shuffle, stopper, es)
    sampler = None
    runs = model  # what the steps call: the model, or its DistributedDataParallel wrapper
    if world is not None:
        sampler = data.DistributedSampler(train_set, size, rank, shuffle=True, seed=config.seed)
        loader = data.DataLoader(train_set, config.batch_size, sampler=sampler)
        runs = nn.parallel.DistributedDataParallel(model)
    else:
        loader = data.DataLoader(train_set, config.batch_size, shuffle=True, generator=shuffle)
    held_out = f"{len(val_set)} validation / " if val_set is not None else ""
    log(
        f"training {config.model} on {config.data} ({len(train_set)} train / {held_out}"
        f"{len(test_set)} test images) on {device}, {epochs} epochs, {config.optimizer} lr "
        f"{base_lr:.3g} (cosine decay)"
        + (f", resumed after epoch {len(history)}" if history else "")
        + (f"; {_trainer_words(config)}" if es is not None else "")
        + (f"; data-parallel over {size} processes (MPI), batch {config.batch_size} each"
           if world is not None else "")
    )  # fmt: skip
    if criteria := _criteria(config):
        log(f"stopping {criteria}")
    if len(history) >= epochs:
        log(f"the checkpoint already holds {len(history)} epochs; pass a larger --epochs to go on")
    deadline = None if config.max_time is None else time.perf_counter() + config.max_time
    reason, diverged = None, False
    for epoch in range(len(history) + 1, epochs + 1):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(base_lr, epoch, epochs)
        if sampler is not None:
            sampler.set_epoch(epoch)
        with blas_threads(config.threads if device.type == "cpu" else 0):
            record, reason, diverged = _train_epoch(
                runs, optimizer, loader, epoch, epochs, config, world, deadline=deadline, es=es
            )
            if diverged:  # no record, no checkpoint: the last ones are those of good weights
                break
            if rank == 0:  # the processes hold the same weights: one evaluates
                record.test_accuracy = evaluate(model, test_set)
                if val_set is not None:
                    record.val_loss, record.val_accuracy = validate(model, val_set)
        if world is not None:
            _share_evaluation(record)
        history.append(record)
        log(_epoch_line(record, epochs, val_set is not None))
        if stopper is not None:  # on every rank: the same numbers give the same decision
            metrics = {"val_loss": record.val_loss, "val_accuracy": record.val_accuracy}
            if stopper.step(metrics, model, epoch) and reason is None:
                reason = stopper.stop_reason
            target = config.target_accuracy
            if reason is None and target is not None and record.val_accuracy >= target:
                reason = f"val_accuracy reached the target {target:g} at epoch {epoch}"
        if rank == 0:
            if stopper is not None and stopper.improved(epoch):
                _save(best_checkpoint_path(checkpoint), config, model, optimizer, shuffle, history,
                      stopper, es)  # fmt: skip
            _save(checkpoint, config, model, optimizer, shuffle, history, stopper, es)
        if reason is not None:
            break
    best_epoch = None
    if reason is not None and config.restore_best and stopper and stopper.best_state is not None:
        stopper.restore(model)
        best_epoch = stopper.best_epoch
    result = TrainResult(model, history, checkpoint, device, reason, diverged, best_epoch, rank)
    if history:
        weights = (
            f" (epoch {best_epoch}'s weights, the best {config.monitor})" if best_epoch else ""
        )
        log(f"final test accuracy {result.test_accuracy:.2%}{weights}; checkpoint: {checkpoint}"
            + (f", best epoch: {result.best_checkpoint}" if stopper else ""))  # fmt: skip
    if config.plot and rank == 0 and history:
        plot_history(history, config.plot)
        log(f"plot: {config.plot}")
    if reason is None:
        log("ran the one epoch" if epochs == 1 else f"ran all {epochs} epochs")
    elif diverged:
        log(f"stopped in epoch {len(history) + 1}/{epochs}: {reason}")
    else:
        log(f"stopped after epoch {len(history)}/{epochs}: {reason}")
    return result


def _trainer_words(config: TrainConfig) -> str:
    """--trainer es|hybrid in words, for the run's first line."""
    es = f"OpenAI-ES, population {config.population}, sigma {config.sigma:g}"
    if config.trainer == "es":
        return f"gradients by {es} (no backward)"
    return f"gradients {1 - config.es_weight:g} backprop + {config.es_weight:g} {es}"


def _criteria(config: TrainConfig) -> str:
    """The stopping criteria of `config` in words, for the run's first lines ("" for none)."""
    parts = []
    if config.patience is not None:
        by = f" by more than {config.min_delta:g}" if config.min_delta else ""
        epochs = "epoch" if config.patience == 1 else "epochs"
        parts.append(f"when {config.monitor} has not improved{by} for {config.patience} {epochs}")
    if config.target_accuracy is not None:
        parts.append(f"at {config.target_accuracy:.2%} validation accuracy")
    if config.max_time is not None:
        parts.append(f"after {config.max_time:g} s")
    return " or ".join(parts)


def _epoch_line(record: EpochRecord, epochs: int, validation: bool) -> str:
    val = (f"val loss {record.val_loss:.4f}  val acc {record.val_accuracy:.2%}  "
           if validation else "")  # fmt: skip
    return (
        f"epoch {record.epoch:>{len(str(epochs))}}/{epochs}  train loss {record.train_loss:.4f}  "
        f"{val}test acc {record.test_accuracy:.2%}  {record.samples_per_second:,.0f} samples/s  "
        f"{record.seconds:.1f} s"
    )


def _share_evaluation(record: EpochRecord) -> None:
    """Rank 0's test and validation numbers into `record` on every rank (data-parallel)."""
    from gradflow import distributed as dist

    values = [record.test_accuracy, record.val_loss, record.val_accuracy]
    shared = Tensor._wrap(numpy.array(values, dtype=numpy.float64))
    dist.broadcast(shared, src=0)
    record.test_accuracy, record.val_loss, record.val_accuracy = (float(v) for v in shared.array)


def _silent(line: str) -> None:
    """The log of a rank other than 0."""


def _train_epoch(
    model: nn.Module,
    optimizer: optim.Optimizer,
    loader: data.DataLoader,
    epoch: int,
    epochs: int,
    config: TrainConfig,
    world: tuple | None = None,
    deadline: float | None = None,
    es: Any = None,
) -> tuple[EpochRecord, str | None, bool]:
    """One epoch: (its record, why the run must stop now or None, whether that is a
    non-finite training loss). The loss and the time limit are checked after every batch
    on the CPU, every 10th on a GPU (a host read waits for the device). `es`: the
    evolution-strategies estimator of --trainer es (its gradient alone) or hybrid (mixed with
    backprop's)."""
    model.train()
    lr = optimizer.param_groups[0]["lr"]
    total = len(loader) if config.limit_batches is None else min(len(loader), config.limit_batches)
    bar = _progress(loader, total, f"epoch {epoch}/{epochs}", config.progress)
    loss_sum: Any = 0.0  # summed on the device: one host read per progress update
    samples = steps = 0
    check_every = 1 if next(iter(model.parameters())).device.type == "cpu" else 10
    unchecked: list = []  # the losses since the last check
    reason, diverged = None, False
    start = time.perf_counter()
    backward = es is None or config.trainer == "hybrid"
    for images, labels in bar:
        optimizer.zero_grad()
        if backward:
            loss = cross_entropy(model(images), labels)
            loss.backward()
        else:
            with no_grad():  # the loss of the unperturbed weights, for the log
                loss = cross_entropy(model(images), labels)
        steps += 1
        unchecked.append(loss.array)
        if steps % check_every == 0 or steps == total:
            reason, diverged = _check_steps(unchecked, epoch, steps, deadline, config, world)
            unchecked = []
        if diverged:  # checked before the step: the weights stay those of the last good one
            break
        if es is not None:
            es.estimate(
                lambda outputs, labels=labels: population_loss(outputs, labels),
                model=model, inputs=images, vectorized=True,
                mix=config.es_weight if backward else None,
            )  # fmt: skip
        optimizer.step()
        loss_sum = loss_sum + loss.array
        samples += len(labels)
        if steps % 10 == 0 and hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{float(loss_sum) / steps:.4f}", refresh=False)
        if steps == total or reason is not None:
            break
    if hasattr(bar, "close"):
        bar.close()
    seconds = time.perf_counter() - start
    loss_total = float(loss_sum)
    if world is not None:  # the epoch's loss and throughput over every process
        from gradflow import distributed as dist

        totals = Tensor._wrap(numpy.array([loss_total, steps, samples], dtype=numpy.float64))
        dist.all_reduce(totals)
        loss_total, steps, samples = (float(v) for v in totals.array)
    record = EpochRecord(epoch, loss_total / max(steps, 1), math.nan, samples / seconds,
                         seconds, lr)  # fmt: skip
    return record, reason, diverged


def population_loss(outputs: Tensor, labels: Tensor) -> Tensor:
    """The mean cross-entropy of each population member: outputs (members, batch, classes)
    and the batch's labels give (members,) losses (the objective of --trainer es|hybrid)."""
    members, batch, classes = outputs.shape
    each = cross_entropy(outputs.reshape(members * batch, classes), labels.repeat(members),
                         reduction="none")  # fmt: skip
    return each.reshape(members, batch).mean(dim=1)


def _check_steps(
    losses: list,
    epoch: int,
    steps: int,
    deadline: float | None,
    config: TrainConfig,
    world: tuple | None,
) -> tuple[str | None, bool]:
    """(why to stop, diverged) after the steps whose `losses` are given (the last is step
    `steps`): a non-finite loss (naming the first such step) or the time limit. Data-parallel,
    every rank gets the same answer: the first bad step over all ranks, rank 0's clock."""
    first_bad, reason = math.inf, None
    if not math.isfinite(float(sum(losses))):
        for number, value in enumerate(losses, steps - len(losses) + 1):
            if reason := check_loss(value, epoch, number):
                first_bad = number
                break
        else:  # finite losses whose sum overflowed
            first_bad, reason = steps, check_loss(math.inf, epoch, steps)
    time_up = deadline is not None and time.perf_counter() >= deadline
    if world is not None:
        from gradflow import distributed as dist

        flags = numpy.array([first_bad, 0.0 if time_up and world[0] == 0 else 1.0])
        shared = Tensor._wrap(flags)
        dist.all_reduce(shared, op=dist.ReduceOp.MIN)
        bad_step, time_up = float(shared.array[0]), float(shared.array[1]) == 0.0
        if bad_step < first_bad:
            first_bad = bad_step
            reason = f"the training loss is not finite at epoch {epoch}, step {int(bad_step)}"
    if first_bad < math.inf:
        return reason, True
    if time_up:
        return time_limit_reason(config.max_time), False
    return None, False


def _progress(loader: Iterable, total: int, desc: str, enabled: bool) -> Iterable:
    """A tqdm bar over `loader` (on stderr) when tqdm is installed and progress is wanted."""
    if not enabled:
        return loader
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return loader
    return tqdm(loader, total=total, desc=desc, unit="batch", leave=False, file=sys.stderr)


def _rng_state(generator: Generator) -> str:
    return json.dumps(generator.get_state())


def _save(
    path: Path,
    config: TrainConfig,
    model: nn.Module,
    optimizer: optim.Optimizer,
    shuffle: Generator,
    history: list[EpochRecord],
    stopper: EarlyStopping | None = None,
    es: Any = None,
) -> None:
    state = {
        "format": CHECKPOINT_FORMAT,
        "config": {k: v for k, v in dataclasses.asdict(config).items() if v is not None},
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "history": [dataclasses.asdict(r) for r in history],
        "rng": {"shuffle": _rng_state(shuffle)},
    }
    if stopper is not None:  # its best weights are in the best checkpoint, not here again
        state["stopping"] = {k: v for k, v in stopper.state_dict().items() if k != "best_state"}
    if es is not None:  # its random stream: a resumed run draws the same perturbations
        state["es"] = json.dumps(es.state_dict())
    dropout_rng = default_generator(Device("cpu"))
    if next(iter(model.parameters())).device.type == "cpu":
        state["rng"]["dropout"] = _rng_state(dropout_rng)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save(state, path)
    except OSError as exc:  # checked before training; the disk filled or the path changed
        raise TrainingError(f"can't write the checkpoint {path}: {exc}") from exc


def _resume(
    path: Path,
    config: TrainConfig,
    model: nn.Module,
    optimizer: optim.Optimizer,
    shuffle: Generator,
    stopper: EarlyStopping | None = None,
    es: Any = None,
) -> list[EpochRecord]:
    try:  # _check_config has checked that it exists
        state = load(path, map_location="cpu")
    except CheckpointError as exc:
        raise TrainingError(f"--resume: {exc}") from exc
    _check_layout(path, state)
    saved = state["config"]
    saved.setdefault("trainer", "backprop")  # checkpoints from before --trainer
    for key in ("model", "data", "optimizer", "trainer"):
        if saved.get(key) != getattr(config, key):
            raise TrainingError(
                f"--resume: the checkpoint at {path} was trained with {key}="
                f"{saved.get(key)!r}, this run asks for {getattr(config, key)!r}"
            )
    saved_fraction = saved.get("val_fraction", 0.0)
    if saved_fraction != config.val_fraction:
        raise TrainingError(
            f"--resume: the checkpoint at {path} held out a validation fraction of "
            f"{saved_fraction:g}, this run asks for {config.val_fraction:g} (pass --val-fraction "
            f"{saved_fraction:g}, or leave out --resume to start afresh)"
        )
    if config.val_fraction and saved.get("seed") != config.seed:
        raise TrainingError(
            f"--resume: the checkpoint at {path} split its validation set with seed "
            f"{saved.get('seed')!r}, this run asks for {config.seed!r}"
        )
    _check_weights(path, state["model"], model)
    _check_history(path, state["history"])
    _check_rng(path, state["rng"])
    saved_optimizer = state["optimizer"]
    groups = saved_optimizer.get("param_groups")
    if not (
        isinstance(saved_optimizer.get("state"), dict)
        and all(isinstance(v, dict) for v in saved_optimizer["state"].values())
        and isinstance(groups, list)
        and all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups)
    ):
        raise _bad_checkpoint(
            path, "its 'optimizer' entry is not an optimizer's state_dict() (state, param_groups)"
        )
    try:  # checks every entry before it changes the optimizer
        optimizer.load_state_dict(saved_optimizer)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise _bad_checkpoint(path, f"its optimizer state does not fit: {exc}") from exc
    model.load_state_dict(state["model"])  # names and shapes checked above
    shuffle.set_state(json.loads(state["rng"]["shuffle"]))
    if "dropout" in state["rng"]:
        default_generator(Device("cpu")).set_state(json.loads(state["rng"]["dropout"]))
    if es is not None and "es" in state:
        try:
            es.load_state_dict(json.loads(state["es"]))
        except (ValueError, TypeError, KeyError) as exc:
            raise _bad_checkpoint(path, f"its 'es' entry is not an ES state ({exc})") from exc
    if stopper is not None and isinstance(state.get("stopping"), dict):  # older runs have none
        _resume_stopper(path, state["stopping"], stopper)
    return [EpochRecord(**record) for record in state["history"]]


def _resume_stopper(path: Path, state: dict, stopper: EarlyStopping) -> None:
    """The stopper's progress from the checkpoint, and the best weights from the best one."""
    try:
        stopper.load_state_dict(state)
    except (ValueError, TypeError) as exc:
        raise TrainingError(
            f"--resume: {exc} (checkpoint {path}); pass the same --monitor, or leave out "
            "--resume to start afresh"
        ) from None
    best = best_checkpoint_path(path)
    if stopper.best_epoch is not None and best.is_file():
        try:
            saved = load(best, map_location="cpu")
            if len(saved["history"]) == stopper.best_epoch:  # not one of another run
                stopper.best_state = saved["model"]
        except (CheckpointError, KeyError, TypeError):
            pass  # unreadable: the run goes on without the restore


def _bad_checkpoint(path: Path, problem: str) -> TrainingError:
    return TrainingError(
        f"--resume: checkpoint {path}: {problem}. It is not a checkpoint `gradflow train` "
        "wrote for this model, or a damaged one; pass another --checkpoint, or leave out "
        "--resume to start afresh (overwriting it)"
    )


_SECTIONS = {"config": dict, "model": dict, "optimizer": dict, "history": list, "rng": dict}


def _check_layout(path: Path, state: Any) -> None:
    """TrainingError, naming `path` and what is wrong, unless `state` is a dict with the
    entries _save writes. (_check_weights, _check_history and _check_rng check them; the
    optimizer state is checked as it is loaded.)"""
    if not isinstance(state, dict):
        raise _bad_checkpoint(path, f"it holds a {type(state).__name__}, not a dict of entries")
    if "format" not in state:
        raise _bad_checkpoint(path, "it has no 'format' entry")
    if state["format"] != CHECKPOINT_FORMAT:
        raise _bad_checkpoint(
            path, f"its 'format' is {state.get('format')!r}, expected {CHECKPOINT_FORMAT}"
        )
    for key, kind in _SECTIONS.items():
        if key not in state:
            raise _bad_checkpoint(path, f"it has no {key!r} entry")
        if not isinstance(state[key], kind):
            raise _bad_checkpoint(
                path, f"its {key!r} entry is a {type(state[key]).__name__}, not a {kind.__name__}"
            )


def _check_rng(path: Path, rng: dict) -> None:
    for name, value in rng.items():
        try:
            if not isinstance(value, str):
                raise TypeError(f"a {type(value).__name__}, not the JSON text of one")
            Generator("cpu", 0).set_state(json.loads(value))  # a scratch generator
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            problem = f"rng entry {name!r} is not a random state ({exc})"
            raise _bad_checkpoint(path, problem) from exc
    if "shuffle" not in rng:
        raise _bad_checkpoint(path, "its 'rng' entry has no 'shuffle' state")


def _check_weights(path: Path, weights: dict, model: nn.Module) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"lacks the weights {_names(missing)}")
        if unexpected:
            parts.append(f"has weights this model lacks: {_names(unexpected)}")
        raise _bad_checkpoint(path, f"its model {' and '.join(parts)}")
    for key, target in expected.items():
        value = weights[key]
        if not isinstance(value, Tensor):
            raise _bad_checkpoint(path, f"weight {key!r} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != tuple(target.shape):
            raise _bad_checkpoint(
                path,
                f"weight {key!r} has shape {tuple(value.shape)}, the model expects "
                f"{tuple(target.shape)}",
            )


def _names(keys: list[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:3])
    return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def _check_history(path: Path, history: list) -> None:
    fields = [f.name for f in dataclasses.fields(EpochRecord)]
    optional = {"val_loss", "val_accuracy"}  # checkpoints from before the validation split
    for number, record in enumerate(history, 1):
        if isinstance(record, dict) and not optional & set(record):
            record.update(dict.fromkeys(optional, math.nan))
        problem = None
        if not isinstance(record, dict):
            problem = f"is not a dict (it is a {type(record).__name__})"
        elif sorted(record) != sorted(fields):
            problem = f"has the keys {sorted(record)}, expected {fields}"
        elif not all(_is_number(v) for v in record.values()):
            bad = next(k for k, v in record.items() if not _is_number(v))
            problem = f"has {bad}={record[bad]!r}, not a number"
        elif record["epoch"] != number:
            problem = f"is numbered epoch {record['epoch']!r}, expected {number}"
        if problem:
            raise _bad_checkpoint(path, f"history entry {number} {problem}")


def _pyplot() -> Any:
    """matplotlib.pyplot, or a TrainingError saying what to install."""
    from gradflow.plotting import PlotUnavailableError, pyplot

    try:
        return pyplot()
    except PlotUnavailableError as exc:
        raise TrainingError(str(exc)) from exc


def plot_history(history: list[EpochRecord], path: str) -> None:
    """Loss and accuracy per epoch, side by side (train loss and test accuracy, with the
    validation ones when there is a split), saved as an image at `path`."""
    plt = _pyplot()
    epochs = [r.epoch for r in history]
    validation = any(math.isfinite(r.val_loss) for r in history)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, [r.train_loss for r in history], marker="o", label="train")
    left.set(xlabel="epoch", ylabel="loss", yscale="log", title="loss")
    right.plot(epochs, [100 * r.test_accuracy for r in history], marker="o", color="tab:green",
               label="test")  # fmt: skip
    right.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    if validation:
        left.plot(epochs, [r.val_loss for r in history], marker="s", label="validation")
        right.plot(epochs, [100 * r.val_accuracy for r in history], marker="s",
                   color="tab:orange", label="validation")  # fmt: skip
        left.legend(), right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
