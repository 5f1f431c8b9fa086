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
