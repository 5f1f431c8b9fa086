"""gradflow.bench.model and `gradflow bench --model`: the regions timed (whole model and every
leaf layer, forward and backward), torch's side and the weights copied into it, the table and
the JSON, and clear errors. A fixed repeat keeps it fast; no timing is asserted."""

import json
from pathlib import Path

import numpy
import pytest

import gradflow
from gradflow import bench, cli
from gradflow.bench import user_model

HERE = Path(__file__).parent
NETS = "bench_model_nets"  # tests/bench is on sys.path (pytest's rootdir-less test modules)


def test_whole_model_and_each_leaf_layer_forward_and_backward():
    report = bench.model(f"{NETS}:mlp", (4, 8), repeat=2)
    assert [r.phase for r in report.whole] == ["forward", "backward", "step"]
    assert all(r.gradflow.repeat == 2 and r.torch is None for r in report.whole)
    assert [(r.name, r.kind, r.phase) for r in report.layers] == [
        ("0", "Linear", "forward"), ("0", "Linear", "backward"),
        ("1", "ReLU", "forward"), ("1", "ReLU", "backward"),
        ("2", "Linear", "forward"), ("2", "Linear", "backward"),
    ]  # fmt: skip
    assert [r.shape for r in report.layers[::2]] == ["4x8", "4x16", "4x16"]
    assert all(len(r.gradflow.cpu_times) == 2 for r in report.layers)  # CPU time on the CPU
    table = report.table()
    assert "whole model (sum loss)" in table and "Linear" in table and "torch" not in table
    data = json.loads(json.dumps(report.to_dict()))
    assert data["input_shape"] == [4, 8] and len(data["layers"]) == 6


def test_a_layer_is_timed_on_its_recorded_input_and_counted_per_call():
    report = bench.model(user_model.load_callable(f"{NETS}:Shared"), "2,8", repeat=1)
    act = [r for r in report.layers if r.name == "act"]
    assert act and all(r.calls == 2 for r in act) and act[0].shape == "2x8"  # its first call
    assert "act (x2)" in report.table() and "sum of layers" in report.table()
    fc = next(r for r in report.layers if r.name == "fc" and r.phase == "forward")
    expected = 2 * act[0].gradflow.cpu_median + fc.gradflow.cpu_median
    assert report.layer_sum("forward") == (pytest.approx(expected), None)


def test_layers_backward_compute_parameter_grads_and_leave_none_behind():
    model = gradflow.nn.Sequential(gradflow.nn.Linear(3, 2))
    report = bench.model(model, [5, 3], loss="cross_entropy", repeat=1)
    assert [r.phase for r in report.layers] == ["forward", "backward"]
    assert all(p.grad is None for p in model.parameters())  # cleared after timing


def test_torch_side_gets_gradflow_weights_and_ratios():
    torch = pytest.importorskip("torch")
    report = bench.model(f"{NETS}:mlp", (4, 8), loss="cross_entropy",
                         torch_factory=f"{NETS}:torch_mlp", repeat=2)  # fmt: skip
    assert all(r.torch is not None and r.ratio_to_torch > 0 for r in report.whole)
    assert all(r.torch is not None for r in report.layers)
    assert any("weights copied" in n for n in report.notes)
    assert "torch fwd" in report.table()
    import bench_model_nets as nets

    gradflow.manual_seed(0)
    ours, theirs = nets.mlp(), nets.torch_mlp()
    note = user_model._copy_state(ours, theirs, torch)
    x = numpy.random.default_rng(0).standard_normal((3, 8)).astype(numpy.float32)
    expected = theirs(torch.tensor(x)).detach().numpy()
    numpy.testing.assert_allclose(ours(gradflow.tensor(x)).detach().numpy(), expected,
                                  rtol=1e-5, atol=1e-6)  # fmt: skip
    assert "copied" in note


def test_torch_model_with_other_names_is_timed_without_weights():
    pytest.importorskip("torch")
    report = bench.model(f"{NETS}:mlp", (4, 8), torch_factory=f"{NETS}:torch_renamed", repeat=1)
    assert any("not copied" in n for n in report.notes)
    assert any("no torch layer named" in n for n in report.notes)
    assert [r.torch is None for r in report.layers if r.name == "2"] == [True, True]


def test_a_torch_layer_that_cannot_run_alone_leaves_gradflow_alone_in_its_rows():
    pytest.importorskip("torch")
    report = bench.model(f"{NETS}:mlp", (4, 8), torch_factory=f"{NETS}:torch_inplace", repeat=1)
    relu = [r for r in report.layers if r.name == "1"]
    assert relu and all(r.torch is None for r in relu)
    assert all(r.torch is not None for r in report.layers if r.name != "1")
    assert any("layer 1 cannot run alone" in n for n in report.notes)
    assert report.layer_sum("forward")[1] is None  # no torch sum over a partial set


@pytest.mark.parametrize(
    ("spec", "shape", "kwargs", "error", "message"),
    [
        ("bench_model_nets", (2, 8), {}, ValueError, "expected module:callable"),
        (":mlp", (2, 8), {}, ValueError, "expected module:callable"),
        ("no_such_module_xyz:mlp", (2, 8), {}, ValueError, "no module named"),
        (f"{NETS}:missing", (2, 8), {}, ValueError, "has no attribute"),
        (f"{NETS}:NOT_CALLABLE", (2, 8), {}, ValueError, "not a callable"),
        (f"{NETS}:not_a_model", (2, 8), {}, TypeError, "returned a Tensor, not a gradflow"),
        ("no/such/file.py:mlp", (2, 8), {}, ValueError, "no file"),
        (f"{NETS}:mlp", "2,x", {}, ValueError, "input shape"),
        (f"{NETS}:mlp", (2, 0), {}, ValueError, "input shape"),
        (f"{NETS}:mlp", "", {}, ValueError, "input shape"),
        (f"{NETS}:mlp", (2, 8), {"loss": "mse"}, ValueError, "loss"),
        (f"{NETS}:mlp", (2, 8), {"dtype": "int8"}, ValueError, "dtype"),
        (42, (2, 8), {}, TypeError, "expected a gradflow.nn.Module"),
    ],
)
def test_bad_specs_are_refused_clearly(spec, shape, kwargs, error, message):
    with pytest.raises(error, match=message):
        bench.model(spec, shape, repeat=1, **kwargs)


def test_cross_entropy_needs_a_class_dimension():
    with pytest.raises(ValueError, match="cross_entropy needs"):
        bench.model(lambda: gradflow.nn.Flatten(0), (2, 3), loss="cross_entropy", repeat=1)


def test_cli_model_from_a_file_prints_table_and_writes_json(tmp_path, capsys):
    path = tmp_path / "model.json"
    args = ["bench", "--model", f"{HERE / 'bench_model_nets.py'}:mlp", "--input-shape", "4,8",
            "--loss", "cross_entropy", "--dtype", "float64", "--repeat", "1", "--device", "cpu",
            "--json", str(path)]  # fmt: skip
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "whole model (cross_entropy loss)" in out and "float64" in out
    data = json.loads(path.read_text())
    assert data["dtype"] == "float64" and data["loss"] == "cross_entropy"
    assert {"machine", "command", "whole", "layers"} <= set(data)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--input-shape", "4,8"], "only go with --model"),
        (["--model", f"{NETS}:mlp"], "needs --input-shape"),
        (["--model", f"{NETS}:mlp", "--input-shape", "4,8", "--compare", "torch"],
         "needs --torch-model"),
        (["--model", "nope", "--input-shape", "4,8"], "expected module:callable"),
        (["--model", f"{NETS}:mlp", "--input-shape", "4,-1"], "input shape"),
    ],
)  # fmt: skip
def test_cli_model_errors(extra, message, capsys):
    assert cli.main(["bench", "--device", "cpu", "--repeat", "1", *extra]) == 2
    assert message in capsys.readouterr().err
