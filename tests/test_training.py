"""`gradflow train` end to end on the CPU: the loop, checkpoints, resume, determinism, errors."""

import subprocess
import sys
from pathlib import Path

import numpy
import pytest

import gradflow
from gradflow import models, training
from gradflow.cli import main

SMOKE = {"epochs": 1, "limit_batches": 3, "progress": False}


def _config(tmp_path, **overrides):
    options = {"model": "mlp", "device": "cpu", "checkpoint": str(tmp_path / "run.gfckpt")}
    options.update(SMOKE)
    options.update(overrides)
    return training.TrainConfig(**options)


def _parameters(model):
    return [p.array.copy() for p in model.parameters()]


def test_cli_trains_one_tiny_epoch_and_writes_a_loadable_checkpoint(tmp_path, capsys):
    path = tmp_path / "mlp.gfckpt"
    status = main(["train", "mlp", "--device", "cpu", "--epochs", "1", "--limit-batches", "3",
                   "--checkpoint", str(path), "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    assert "training mlp on digits (1437 train / 360 test images) on cpu" in out
    assert "epoch 1/1  train loss" in out and "test acc" in out and "samples/s" in out
    assert "final test accuracy" in out and str(path) in out
    state = gradflow.load(path)
    model = models.mlp()
    model.load_state_dict(state["model"])  # strict: every key present, shapes right
    assert state["history"][0]["epoch"] == 1 and 0 <= state["history"][0]["test_accuracy"] <= 1


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_model_trains_a_few_batches_and_reloads(tmp_path, name):
    result = training.train(_config(tmp_path, model=name), log=lambda s: None)
    assert len(result.history) == 1 and numpy.isfinite(result.history[0].train_loss)
    fresh = models.MODELS[name]()
    fresh.load_state_dict(gradflow.load(result.checkpoint)["model"])
    images = gradflow.data.Digits(train=False).tensors[0][:5]
    fresh.eval(), result.model.eval()
    numpy.testing.assert_array_equal(fresh(images).array, result.model(images).array)


def test_loss_falls_during_a_short_run(tmp_path):
    result = training.train(_config(tmp_path, epochs=3, limit_batches=None), log=lambda s: None)
    losses = [r.train_loss for r in result.history]
    assert losses[-1] < losses[0] / 3, losses
    assert result.test_accuracy > 0.85


def test_the_same_seed_gives_the_same_run_on_cpu(tmp_path):
    first = training.train(_config(tmp_path / "a", epochs=2), log=lambda s: None)
    second = training.train(_config(tmp_path / "b", epochs=2), log=lambda s: None)
    assert [r.train_loss for r in first.history] == [r.train_loss for r in second.history]
    for a, b in zip(_parameters(first.model), _parameters(second.model)):
        numpy.testing.assert_array_equal(a, b)
    other = training.train(_config(tmp_path / "c", epochs=2, seed=1), log=lambda s: None)
    assert [r.train_loss for r in other.history] != [r.train_loss for r in first.history]


def test_an_interrupted_run_resumes_to_the_same_parameters(tmp_path):
    # cnn has dropout, so the resumed run must also restore the dropout stream.
    whole = training.train(_config(tmp_path / "whole", model="cnn", epochs=2), log=lambda s: None)

    def interrupt_in_epoch_two(line):
        if line.startswith("epoch 2/2"):
            raise KeyboardInterrupt  # after epoch 1's checkpoint, before epoch 2's

    parted = _config(tmp_path / "parted", model="cnn", epochs=2)
    with pytest.raises(KeyboardInterrupt):
        training.train(parted, log=interrupt_in_epoch_two)
    assert gradflow.load(parted.checkpoint)["history"][-1]["epoch"] == 1
    parted.resume = True
    resumed = training.train(parted, log=lambda s: None)
    assert [r.epoch for r in resumed.history] == [1, 2]
    assert resumed.history[1].train_loss == whole.history[1].train_loss
    for a, b in zip(_parameters(resumed.model), _parameters(whole.model)):
        numpy.testing.assert_array_equal(a, b)


def test_resuming_a_finished_run_says_so_and_trains_nothing(tmp_path):
    config = _config(tmp_path)
    training.train(config, log=lambda s: None)
    config.resume = True
    lines = []
    result = training.train(config, log=lines.append)
    assert "the checkpoint already holds 1 epochs; pass a larger --epochs to go on" in lines
    assert [r.epoch for r in result.history] == [1]


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path, capsys):
    training.train(_config(tmp_path), log=lambda s: None)
    args = ["train", "cnn", "--device", "cpu", "--checkpoint", str(tmp_path / "run.gfckpt"),
            "--resume", "--no-progress"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "was trained with model='mlp', this run asks for 'cnn'" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resume", "--checkpoint", "{tmp}/none.gfckpt"], "--resume: no checkpoint at"),
        (["--data", "imagenet"], "expected 'digits', 'mnist:PATH' or 'fashion-mnist:PATH'"),
        (["--data", "mnist:{tmp}/missing"], "missing"),
        (["--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    ],
)
def test_bad_options_give_a_clear_error_and_exit_status_2(tmp_path, capsys, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    base = ["train", "mlp", "--device", "cpu", "--no-progress", "--limit-batches", "1"]
    if "--checkpoint" not in args:
        base += ["--checkpoint", str(tmp_path / "x.gfckpt")]
    assert main(base + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradflow train: error: ") and message in err


@pytest.mark.parametrize(
    ("option", "message"),
    [({"model": "vgg"}, "unknown model 'vgg'; choose one of mlp, cnn, lstm, gru, transformer"),
     ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'; choose one of")],
)  # fmt: skip
def test_the_python_api_names_a_bad_model_or_optimizer(tmp_path, option, message):
    with pytest.raises(training.TrainingError, match=message):
        training.train(_config(tmp_path, **option), log=lambda s: None)


def test_plot_without_matplotlib_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(training.TrainingError, match=r"--plot needs matplotlib: pip install"):
        training.train(_config(tmp_path, plot=str(tmp_path / "p.png")), log=lambda s: None)


def test_plot_writes_an_image(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.png"
    training.train(_config(tmp_path, epochs=2, plot=str(path)), log=lambda s: None)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_console_script_module_runs(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "gradflow.cli", "train", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "--checkpoint" in done.stdout and "--resume" in done.stdout


def test_blas_threads_limits_numpy_blas_inside_the_block_only():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    before = blas_threads()
    with training.blas_threads(1):
        assert blas_threads() == {1}
    assert blas_threads() == before
    with training.blas_threads(0):
        assert blas_threads() == before
    with pytest.raises(ValueError, match=r"BLAS threads must be 0 \(the library's default\)"):
        training.blas_threads(-1)
    with pytest.raises(training.TrainingError, match=r"--threads must be 0 \(the BLAS default\)"):
        training.train(_config(Path("unused"), threads=-1), log=lambda s: None)


@pytest.mark.parametrize(
    ("option", "message"),
    [({"lr": float("nan")}, r"--lr must be a positive finite number"),
     ({"lr": -1.0}, r"--lr must be a positive finite number"),
     ({"seed": -1}, r"--seed must be an integer, 0 or more, got -1"),
     ({"limit_batches": 0}, r"--limit-batches must be at least 1, got 0"),
     ({"device": "tpu"}, r"--device: unknown device 'tpu'")],
)  # fmt: skip
def test_the_python_api_checks_options_before_loading_data(tmp_path, option, message):
    with pytest.raises(training.TrainingError, match=message):
        training.train(_config(tmp_path, **option), log=lambda s: None)
    assert not (tmp_path / "run.gfckpt").exists()


# Stopping criteria (issue 19): the validation split, EarlyStopping in the loop, the best
# checkpoint, a non-finite loss, the time limit.


def _scripted_validation(monkeypatch, losses):
    """training.validate returns (losses[i], 1 - losses[i]) on its i-th call."""
    calls = iter(losses)

    def validate(model, dataset, batch_size=512):
        loss = next(calls)
        return loss, 1 - loss

    monkeypatch.setattr(training, "validate", validate)


def test_patience_stops_at_the_right_epoch_and_returns_the_best_weights(tmp_path, monkeypatch):
    _scripted_validation(monkeypatch, [1.0, 0.5, 0.7, 0.8, 0.1])
    lines = []
    config = _config(tmp_path, epochs=10, patience=2, limit_batches=2)
    result = training.train(config, log=lines.append)
    assert [r.epoch for r in result.history] == [1, 2, 3, 4]
    assert [r.val_loss for r in result.history] == [1.0, 0.5, 0.7, 0.8]
    assert result.stop_reason == "val_loss did not improve for 2 epochs (best 0.5 at epoch 2)"
    assert lines[-1] == f"stopped after epoch 4/10: {result.stop_reason}"
    assert not result.diverged and result.best_epoch == 2
    best = gradflow.load(result.best_checkpoint)
    assert result.best_checkpoint == tmp_path / "run.best.gfckpt"
    assert len(best["history"]) == 2 and best["stopping"]["best_epoch"] == 2
    last = gradflow.load(result.checkpoint)
    assert len(last["history"]) == 4 and last["stopping"]["wait"] == 2
    for name, value in result.model.state_dict().items():
        numpy.testing.assert_array_equal(value.array, best["model"][name].array)
    assert any(
        not numpy.array_equal(value.array, last["model"][name].array)
        for name, value in result.model.state_dict().items()
    )


def test_the_best_checkpoint_passes_the_resume_checks(tmp_path, monkeypatch):
    _scripted_validation(monkeypatch, [1.0, 0.5, 0.7, 0.8])
    result = training.train(_config(tmp_path, epochs=10, patience=2), log=lambda s: None)
    monkeypatch.undo()
    config = _config(tmp_path, epochs=3, patience=2, checkpoint=str(result.best_checkpoint))
    config.resume = True
    resumed = training.train(config, log=lambda s: None)
    assert [r.epoch for r in resumed.history] == [1, 2, 3]


def test_a_run_without_criteria_runs_all_epochs_and_has_no_validation(tmp_path):
    lines = []
    result = training.train(_config(tmp_path, epochs=2), log=lines.append)
    assert lines[-1] == "ran all 2 epochs" and result.stop_reason is None
    assert all(numpy.isnan(r.val_loss) and numpy.isnan(r.val_accuracy) for r in result.history)
    assert not result.best_checkpoint.exists()


def test_the_validation_split_is_seeded_disjoint_and_from_the_training_set():
    train_set = gradflow.data.Digits(train=True)
    rest, held = training.validation_split(train_set, 0.1, seed=0)
    assert (len(rest), len(held)) == (1293, 144)
    assert rest.dataset is train_set and held.dataset is train_set  # never the test set
    assert not set(rest.indices) & set(held.indices)
    assert set(rest.indices) | set(held.indices) == set(range(len(train_set)))
    again = training.validation_split(train_set, 0.1, seed=0)[1]
    numpy.testing.assert_array_equal(again.indices, held.indices)
    other = training.validation_split(train_set, 0.1, seed=1)[1]
    assert set(other.indices) != set(held.indices)
    assert training.validation_split(train_set, 0, seed=0) == (train_set, None)


def test_the_cli_holds_out_a_validation_split_and_reports_the_target(tmp_path, capsys):
    args = ["train", "mlp", "--device", "cpu", "--no-progress", "--epochs", "20",
            "--target-accuracy", "0.8", "--checkpoint", str(tmp_path / "t.gfckpt")]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert "(1293 train / 144 validation / 360 test images)" in out[0]
    assert out[1] == "stopping at 80.00% validation accuracy"
    assert "val loss" in out[2] and "val acc" in out[2]
    epoch = len(gradflow.load(tmp_path / "t.gfckpt")["history"])
    assert out[-1] == (
        f"stopped after epoch {epoch}/20: val_accuracy reached the target 0.8 at epoch {epoch}"
    )
    assert (tmp_path / "t.best.gfckpt").exists()


def test_an_interrupted_run_resumes_with_its_stopper_state(tmp_path):
    whole = training.train(_config(tmp_path / "whole", epochs=30, patience=2), log=lambda s: None)
    assert whole.stop_reason is not None and len(whole.history) < 30

    def interrupt_after_epoch_three(line):
        if line.startswith("epoch  4/30"):
            raise KeyboardInterrupt

    parted = _config(tmp_path / "parted", epochs=30, patience=2)
    with pytest.raises(KeyboardInterrupt):
        training.train(parted, log=interrupt_after_epoch_three)
    state = gradflow.load(parted.checkpoint)
    assert len(state["history"]) == 3 and state["stopping"]["epochs"] == 3
    parted.resume = True
    resumed = training.train(parted, log=lambda s: None)
    assert resumed.stop_reason == whole.stop_reason
    assert [r.val_loss for r in resumed.history] == [r.val_loss for r in whole.history]
    assert resumed.best_epoch == whole.best_epoch  # the best weights came from the best file
    for a, b in zip(_parameters(resumed.model), _parameters(whole.model)):
        numpy.testing.assert_array_equal(a, b)


def test_a_checkpoint_from_before_the_stopping_criteria_still_resumes(tmp_path):
    config = _config(tmp_path)
    training.train(config, log=lambda s: None)
    state = gradflow.load(config.checkpoint)
    for record in state["history"]:
        del record["val_loss"], record["val_accuracy"]
    del state["config"]["val_fraction"]
    gradflow.save(state, config.checkpoint)
    config.resume, config.epochs = True, 2
    result = training.train(config, log=lambda s: None)
    assert [r.epoch for r in result.history] == [1, 2]
    assert numpy.isnan(result.history[0].val_loss)


def test_resume_refuses_another_validation_split(tmp_path):
    config = _config(tmp_path, patience=2)
    training.train(config, log=lambda s: None)
    config.resume, config.epochs, config.val_fraction = True, 2, 0.2
    with pytest.raises(training.TrainingError, match="held out a validation fraction of 0.1"):
        training.train(config, log=lambda s: None)


def test_a_non_finite_loss_stops_at_once_and_the_cli_exits_1(tmp_path, monkeypatch, capsys):
    steps = []

    def cross_entropy(output, labels, **kwargs):
        loss = losses.cross_entropy(output, labels, **kwargs)
        if kwargs:  # validate's summed loss
            return loss
        steps.append(1)
        return loss * float("nan") if len(steps) == 5 else loss  # epoch 2, step 2

    from gradflow.ops import losses

    monkeypatch.setattr(training, "cross_entropy", cross_entropy)
    path = tmp_path / "n.gfckpt"
    args = ["train", "mlp", "--device", "cpu", "--no-progress", "--epochs", "5", "--patience",
            "3", "--limit-batches", "3", "--checkpoint", str(path)]  # fmt: skip
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == (
        "stopped in epoch 2/5: the training loss is nan at epoch 2, step 2"
    )
    assert captured.err == (
        "gradflow train: error: the training loss is nan at epoch 2, step 2; "
        f"{path} holds epoch 1, the last good one (a smaller --lr may help)\n"
    )
    assert len(gradflow.load(path)["history"]) == 1
    best = gradflow.load(tmp_path / "n.best.gfckpt")
    assert all(numpy.isfinite(v.array).all() for v in best["model"].values())


def test_max_time_ends_the_epoch_after_a_batch_and_evaluates_it(tmp_path):
    lines = []
    config = _config(tmp_path, epochs=5, limit_batches=None, max_time=1e-9)
    result = training.train(config, log=lines.append)
    assert len(result.history) == 1
    record = result.history[0]
    assert round(record.samples_per_second * record.seconds) == 64  # one batch of 64
    assert 0 <= record.test_accuracy <= 1
    assert result.stop_reason == "the time limit of 1e-09 s was reached"
    assert lines[-1] == "stopped after epoch 1/5: the time limit of 1e-09 s was reached"


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--patience", "0"], "--patience must be an integer, 1 or more, got 0"),
     (["--min-delta", "-1"], "--min-delta must be a finite number, 0 or more"),
     (["--target-accuracy", "95"], "--target-accuracy must be a fraction above 0 and at most 1"),
     (["--max-time", "0"], "--max-time must be a positive number of seconds, got 0.0"),
     (["--val-fraction", "1"], "--val-fraction must be a number from 0 up to (not including) 1"),
     (["--patience", "3", "--val-fraction", "0"], "--val-fraction must be above 0")],
)  # fmt: skip
def test_bad_stopping_options_exit_2_before_training(tmp_path, capsys, args, message):
    path = tmp_path / "x.gfckpt"
    base = ["train", "mlp", "--device", "cpu", "--no-progress", "--checkpoint", str(path)]
    assert main(base + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradflow train: error: ") and message in err
    assert not path.exists()


# --trainer es|hybrid (issue 19): the gradient from gradflow.evolution, alone or mixed.


@pytest.mark.parametrize("trainer", ["es", "hybrid"])
def test_es_and_hybrid_trainers_lower_the_loss_in_a_few_short_epochs(tmp_path, trainer):
    lines = []
    config = _config(tmp_path, epochs=3, limit_batches=6, trainer=trainer, population=20)
    result = training.train(config, log=lines.append)
    assert "OpenAI-ES, population 20, sigma 0.05" in lines[0]
    losses = [r.train_loss for r in result.history]
    assert losses[2] < losses[0], losses
    assert gradflow.load(result.checkpoint)["config"]["trainer"] == trainer


def test_es_without_backward_leaves_no_graph_and_resumes_to_the_same_weights(tmp_path):
    whole = training.train(
        _config(tmp_path / "whole", epochs=2, limit_batches=2, trainer="es", population=10),
        log=lambda s: None,
    )

    def interrupt_in_epoch_two(line):
        if line.startswith("epoch 2/2"):
            raise KeyboardInterrupt

    parted = _config(tmp_path / "parted", epochs=2, limit_batches=2, trainer="es", population=10)
    with pytest.raises(KeyboardInterrupt):
        training.train(parted, log=interrupt_in_epoch_two)
    parted.resume = True
    resumed = training.train(parted, log=lambda s: None)
    for a, b in zip(_parameters(resumed.model), _parameters(whole.model)):
        numpy.testing.assert_array_equal(a, b)  # the ES stream resumed where it was
    parted.trainer = "backprop"
    with pytest.raises(training.TrainingError, match="trained with trainer='es', this run asks"):
        training.train(parted, log=lambda s: None)


def test_population_loss_is_each_members_cross_entropy():
    outputs = gradflow.randn(3, 5, 10)
    labels = gradflow.tensor([1, 2, 3, 4, 0])
    want = [float(gradflow.nn.functional.cross_entropy(outputs[i], labels)) for i in range(3)]
    numpy.testing.assert_allclose(training.population_loss(outputs, labels).array, want, rtol=1e-6)


def test_es_trainers_refuse_to_run_data_parallel(tmp_path):
    config = _config(tmp_path, trainer="es", distributed=True)
    with pytest.raises(training.TrainingError, match=r"OpenAIES\(\.\.\., distributed=True\)"):
        training.train(config, log=lambda s: None)  # before MPI is started
    with pytest.raises(training.TrainingError, match=r"does not run data-parallel under mpiexec"):
        training._train(config, lambda s: None, (0, 2))


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--trainer", "es", "--population", "3"], "--population must be an even integer, 2 or"),
     (["--trainer", "es", "--sigma", "0"], "--sigma must be a positive finite number, got 0.0"),
     (["--trainer", "hybrid", "--es-weight", "2"], "--es-weight must be from 0 to 1, got 2.0")],
)  # fmt: skip
def test_bad_es_options_exit_2_before_training(tmp_path, capsys, args, message):
    path = tmp_path / "x.gfckpt"
    base = ["train", "mlp", "--device", "cpu", "--no-progress", "--checkpoint", str(path)]
    assert main(base + args) == 2
    assert message in capsys.readouterr().err and not path.exists()


def test_es_runs_a_model_the_population_forward_cannot_batch(tmp_path):
    # cnn: convolutions, batch norm and dropout, so ES evaluates the members one by one
    config = _config(tmp_path, model="cnn", limit_batches=1, trainer="es", population=4)
    result = training.train(config, log=lambda s: None)
    assert numpy.isfinite(result.history[0].train_loss)
    assert all(numpy.isfinite(p).all() for p in _parameters(result.model))


@pytest.mark.gpu
def test_on_a_gpu_the_loss_is_read_every_tenth_step_and_the_first_bad_one_named(
    tmp_path, monkeypatch
):
    if not gradflow.cuda.is_available():
        pytest.skip("needs CUDA (GRADFLOW_CUDA_STANDIN=1 runs it on the CuPy stand-in)")
    from gradflow.ops import losses

    steps = []

    def cross_entropy(output, labels, **kwargs):
        steps.append(1)
        loss = losses.cross_entropy(output, labels, **kwargs)
        return loss * float("inf") if len(steps) == 4 else loss

    monkeypatch.setattr(training, "cross_entropy", cross_entropy)
    config = _config(tmp_path, device="cuda", limit_batches=15)
    result = training.train(config, log=lambda s: None)
    assert result.diverged and result.history == []
    assert result.stop_reason == "the training loss is inf at epoch 1, step 4"
    assert len(steps) == 10  # found at the tenth step's read, without a read per step


def _mpiexec_train(tmp_path, *args):
    """``mpiexec -n 2 python -m gradflow.cli train mlp ...``, skipped without MPI."""
    pytest.importorskip("mpi4py")
    from gradflow.distributed import launch

    if launch.find_mpiexec() is None:
        pytest.skip("needs mpiexec: pip install -e '.[mpi]'")
    command = ["-m", "gradflow.cli", "train", "mlp", "--no-progress", "--checkpoint",
               str(tmp_path / "run.gfckpt"), *args]  # fmt: skip
    try:
        return launch.run(command, 2, timeout=120)
    except TimeoutError as exc:  # a rank that took another decision waits forever
        pytest.fail(f"the ranks disagreed and hung: {exc.output}")


def test_data_parallel_ranks_stop_together_on_a_criterion_and_on_a_nan(tmp_path):
    done = _mpiexec_train(tmp_path, "--patience", "2", "--epochs", "30")
    assert done.returncode == 0, done.stdout
    assert done.stdout.count("stopped after epoch") == 1  # rank 0 alone prints
    assert "val_loss did not improve for 2 epochs" in done.stdout
    assert gradflow.load(tmp_path / "run.best.gfckpt")["stopping"]["best_epoch"] >= 1
    done = _mpiexec_train(tmp_path, "--optimizer", "sgd", "--lr", "1e200")
    assert done.returncode != 0
    assert done.stdout.count("gradflow train: error: the training loss is nan at epoch 1") == 1
