"""Every user-input error of `gradflow train` and `gradflow bench` ends as
``gradflow <command>: error: <what was wrong and what to do>`` with exit status 2 and no
traceback, and the ones about output paths are found before anything trains or runs."""

import json
import os
import subprocess
import sys

import pytest

import gradflow
from gradflow import training
from gradflow.backend import device_count
from gradflow.cli import main

TRAIN = ["train", "mlp", "--device", "cpu", "--epochs", "1", "--limit-batches", "1",
         "--no-progress"]  # fmt: skip
BENCH = ["bench", "--suite", "engine", "--sizes", "small", "--device", "cpu", "--repeat", "1",
         "--no-progress"]  # fmt: skip


def run_cli(argv, capsys):
    """(exit status, stdout, stderr) of `gradflow ARGV` run in this process."""
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_usage_error(command, result, fragment):
    status, out, err = result
    assert status == 2, (out, err)
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"gradflow {command}: error: "), err
    assert fragment in err, err
    assert "epoch 1/" not in out  # nothing trained before the error


# ---- gradflow train: options -------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--lr", "-1"], "--lr must be a positive finite number such as 1e-3, got -1.0"),
        (["--lr", "nan"], "--lr must be a positive finite number such as 1e-3, got nan"),
        (["--lr", "inf"], "got inf"),
        (["--device", "tpu"], "--device: unknown device 'tpu': expected 'cpu', 'cuda', 'cuda:N'"),
        (["--device", "cuda:-1"], "--device: unknown device 'cuda:-1'"),
        (["--seed", "-1"], "--seed must be an integer, 0 or more, got -1"),
        (["--limit-batches", "0"], "--limit-batches must be at least 1, got 0"),
        (["--limit-batches", "-2"], "--limit-batches must be at least 1, got -2"),
        (["--threads", "-1"], "--threads must be 0 (the BLAS default) or more, got -1"),
    ],
)
def test_bad_train_options(tmp_path, capsys, args, fragment):
    argv = [*TRAIN, "--checkpoint", str(tmp_path / "run.gfckpt"), *args]
    assert_usage_error("train", run_cli(argv, capsys), fragment)
    assert not (tmp_path / "run.gfckpt").exists()


def test_checkpoint_that_is_a_directory_is_refused_before_training(tmp_path, capsys):
    result = run_cli([*TRAIN, "--checkpoint", str(tmp_path)], capsys)
    assert_usage_error("train", result, f"--checkpoint {tmp_path}: is a directory, not a file")


def test_checkpoint_under_a_file_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("not a directory")
    path = tmp_path / "file" / "sub" / "run.gfckpt"
    result = run_cli([*TRAIN, "--checkpoint", str(path)], capsys)
    assert_usage_error("train", result, f"{tmp_path / 'file'} is a file, not a directory")


def test_a_missing_checkpoint_directory_is_still_created(tmp_path, capsys):
    path = tmp_path / "new" / "deeper" / "run.gfckpt"
    status, _, err = run_cli([*TRAIN, "--checkpoint", str(path)], capsys)
    assert status == 0, err
    assert path.is_file()


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes to read-only directories"
)
def test_a_read_only_working_directory_is_refused_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tmp_path.chmod(0o555)
    try:
        result = run_cli(TRAIN, capsys)  # the default checkpoint, under the working directory
    finally:
        tmp_path.chmod(0o755)
    fragment = "--checkpoint gradflow_runs/mlp/checkpoint.gfckpt (the default): directory "
    assert_usage_error("train", result, fragment)
    assert "is not writable" in result[2]


def test_an_unwritable_directory_is_refused_before_training(tmp_path, monkeypatch, capsys):
    # os.access stands in for the permissions (root ignores them); see the test above.
    monkeypatch.chdir(tmp_path)
    real_access = os.access

    def access(path, mode):
        return False if os.fspath(path) == str(tmp_path) else real_access(path, mode)

    monkeypatch.setattr(training.os, "access", access)
    result = run_cli(TRAIN, capsys)
    assert_usage_error("train", result, f"directory {tmp_path} is not writable; choose a path")
    assert not (tmp_path / "gradflow_runs").exists()


def test_plot_into_a_missing_directory_is_refused_before_training(tmp_path, capsys):
    plot = tmp_path / "missing" / "curves.png"
    result = run_cli([*TRAIN, "--checkpoint", str(tmp_path / "r.gfckpt"), "--plot", str(plot)],
                     capsys)  # fmt: skip
    assert_usage_error("train", result, f"--plot {plot}: directory {plot.parent} does not exist")


def test_plot_with_a_suffix_matplotlib_cannot_write(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "curves.xyz"
    result = run_cli([*TRAIN, "--checkpoint", str(tmp_path / "r.gfckpt"), "--plot", str(plot)],
                     capsys)  # fmt: skip
    assert_usage_error("train", result, "matplotlib can't save .xyz images")


@pytest.mark.skipif(device_count() > 0, reason="a GPU is present")
@pytest.mark.parametrize("command", ["train", "bench"])
def test_cuda_without_a_gpu(tmp_path, capsys, command):
    argv = [*TRAIN, "--checkpoint", str(tmp_path / "r.gfckpt")] if command == "train" else BENCH
    argv = [*argv, "--device", "cuda"]
    assert_usage_error(command, run_cli(argv, capsys), "--device cuda: CUDA was requested")


# ---- gradflow train --resume: bad checkpoints --------------------------------------------
@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "run.gfckpt"
    config = training.TrainConfig(model="mlp", device="cpu", epochs=1, limit_batches=1,
                                  progress=False, checkpoint=str(path))  # fmt: skip
    training.train(config, log=lambda line: None)
    return path


def _set(value, *keys):
    def change(state):
        target = state
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
        return state

    return change


def _del(*keys):
    def change(state):
        target = state
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
        return state

    return change


BAD_CHECKPOINTS = {
    "root is a list": (lambda state: [state], "it holds a list, not a dict of entries"),
    "no rng": (_del("rng"), "it has no 'rng' entry"),
    "no format": (_del("format"), "it has no 'format' entry"),
    "another format": (_set(99, "format"), "its 'format' is 99, expected 1"),
    "model is a list": (_set([1, 2], "model"), "its 'model' entry is a list, not a dict"),
    "wrong-shape weight": (
        _set(gradflow.zeros(3, 4), "model", "1.weight"),
        "weight '1.weight' has shape (3, 4), the model expects (256, 64)",
    ),
    "missing weight": (_del("model", "5.bias"), "its model lacks the weights '5.bias'"),
    "extra weight": (_set(gradflow.zeros(2), "model", "9.weight"), "this model lacks: '9.weight'"),
    "weight not a tensor": (_set("w", "model", "1.bias"), "weight '1.bias' is a str, not a tensor"),
    "history not a list": (_set("x", "history"), "its 'history' entry is a str, not a list"),
    "history entry not a dict": (_set(3, "history", 0), "history entry 1 is not a dict"),
    "history entry lacks a field": (_del("history", 0, "lr"), "history entry 1 has the keys"),
    "history value not a number": (
        _set("low", "history", 0, "train_loss"),
        "history entry 1 has train_loss='low', not a number",
    ),
    "history misnumbered": (_set(7, "history", 0, "epoch"), "is numbered epoch 7, expected 1"),
    "rng not json": (_set("{not json", "rng", "shuffle"), "rng entry 'shuffle' is not a random"),
    "rng not a state": (
        _set(json.dumps({"bit_generator": "nope"}), "rng", "shuffle"),
        "rng entry 'shuffle' is not a random state",
    ),
    "rng not a string": (_set(5, "rng", "dropout"), "rng entry 'dropout' is not a random state"),
    "rng without shuffle": (_del("rng", "shuffle"), "its 'rng' entry has no 'shuffle' state"),
    "optimizer not a state dict": (
        _set([], "optimizer", "state"),
        "its 'optimizer' entry is not an optimizer's state_dict()",
    ),
    "optimizer of other groups": (
        _set([], "optimizer", "param_groups"),
        "its optimizer state does not fit: Adam.load_state_dict: the state dict has 0 parameter",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CHECKPOINTS))
def test_resume_from_a_bad_checkpoint_names_it_and_the_problem(good_checkpoint, tmp_path, capsys,
                                                               case):  # fmt: skip
    change, fragment = BAD_CHECKPOINTS[case]
    path = tmp_path / "bad.gfckpt"
    gradflow.save(change(gradflow.load(good_checkpoint)), path)
    result = run_cli([*TRAIN, "--epochs", "2", "--resume", "--checkpoint", str(path)], capsys)
    assert_usage_error("train", result, f"--resume: checkpoint {path}: ")
    assert fragment in result[2]
    assert "leave out --resume to start afresh" in result[2]


def test_resume_from_a_file_that_is_no_checkpoint(tmp_path, capsys):
    path = tmp_path / "bad.gfckpt"
    path.write_bytes(b"this is not a zip archive")
    result = run_cli([*TRAIN, "--resume", "--checkpoint", str(path)], capsys)
    assert_usage_error("train", result, f"--resume: {path}: not a readable checkpoint")


def test_resume_from_a_good_checkpoint_still_works(good_checkpoint, tmp_path, capsys):
    path = tmp_path / "copy.gfckpt"
    gradflow.save(gradflow.load(good_checkpoint), path)
    status, out, err = run_cli([*TRAIN, "--epochs", "2", "--resume", "--checkpoint", str(path)],
                               capsys)  # fmt: skip
    assert status == 0, err
    assert "resumed after epoch 1" in out and "epoch 2/2" in out


# ---- gradflow bench ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--device", "tpu"], "argument --device: unknown device 'tpu'"),
        (["--device", "cuda:-1"], "argument --device: unknown device 'cuda:-1'"),
        (["--threads", "-1"], "argument --threads: must be 0 (the BLAS default) or more, got -1"),
        (["--threads", "two"], "argument --threads: expected an integer, got 'two'"),
        (["--repeat", "x"], "argument --repeat: expected an integer, got 'x'"),
    ],
)
def test_bad_bench_options(capsys, args, fragment):
    assert_usage_error("bench", run_cli([*BENCH, *args], capsys), fragment)


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_bench_output_into_a_missing_directory_fails_before_the_run(tmp_path, capsys, option):
    path = tmp_path / "missing" / "out.json"
    status, out, err = result = run_cli([*BENCH, option, str(path)], capsys)
    assert_usage_error("bench", result, f"{option} {path}: directory {path.parent} does not exist")
    assert out == ""  # no table: nothing ran


def test_bench_json_into_a_directory_fails_before_the_run(tmp_path, capsys):
    result = run_cli([*BENCH, "--json", str(tmp_path)], capsys)
    assert_usage_error("bench", result, f"--json {tmp_path}: is a directory, not a file")
    assert result[1] == ""


def test_bench_help_prints_a_single_percent_sign(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "%%" not in out and "% of the measured ceiling" in " ".join(out.split())


# ---- as a separate process: exit status and no traceback -----------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train", "mlp", "--lr", "nan", "--no-progress"], "gradflow train: error: --lr must"),
        (["bench", "--device", "tpu"], "gradflow bench: error: argument --device: unknown"),
    ],
)
def test_the_console_script_exits_2_without_a_traceback(tmp_path, args, expected):
    done = subprocess.run([sys.executable, "-m", "gradflow.cli", *args], capture_output=True,
                          text=True, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "gradflow_runs").exists()


def test_a_checkpoint_path_that_is_a_device_or_fifo_is_refused_before_training(tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for target, kind in ((fifo, "a FIFO"), ("/dev/null", "a character device")):
        result = run_cli([*TRAIN, "--checkpoint", str(target)], capsys)
        assert_usage_error("train", result, kind)
