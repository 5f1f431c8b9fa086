"""gradflow.bench.model and `gradflow bench --model`: the regions timed (whole model and every
leaf layer, forward and backward), torch's side and the weights copied into it, the table and
the JSON, and clear errors. A fixed repeat keeps it fast; no timing is asserted."""

import json
import sys
from pathlib import Path

import numpy
import pytest

import gradflow
from gradflow import bench, cli
from gradflow.bench import user_model
from gradflow.bench.user_model import Region

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


def test_each_distinct_call_of_a_layer_is_a_row_and_the_rest_is_outside_any_layer():
    report = bench.model(user_model.load_callable(f"{NETS}:Shared"), "2,8", repeat=1)
    act = [r for r in report.layers if r.name == "act" and r.phase == "forward"]
    # act(x) on the model's input, then act(fc(.) + x) on data that requires grad
    assert [(r.shape, r.input_grad, r.calls) for r in act] == [("2x8", False, 1), ("2x8", True, 1)]
    assert [r.phase for r in report.layers if r.name == "act"] == ["forward", "forward", "backward"]
    fc = next(r for r in report.layers if r.name == "fc" and r.phase == "forward")
    expected = sum(r.gradflow.cpu_median for r in act) + fc.gradflow.cpu_median
    assert report.layer_sum("forward") == (pytest.approx(expected), None)
    table = report.table()
    assert "2x8 grad" in table and "sum of layers" in table and "outside any layer" in table
    whole = report.whole[0].gradflow.cpu_median
    outside = report.to_dict()["outside_layers"]["forward"]["gradflow"]
    assert outside == pytest.approx(whole - expected)
    assert "fixed cost of one backward() call" in table and report.empty_backward is not None


def test_a_module_with_parameters_of_its_own_is_a_layer_and_its_children_are_not_summed_twice():
    report = bench.model(user_model.load_callable(f"{NETS}:OwnWeight"), (3, 4), repeat=1)
    names = [r.name for r in report.layers if r.phase == "forward"]
    assert names == ["block.inner", "block"]  # the child is called first, inside block
    block = next(r for r in report.layers if r.name == "block" and r.phase == "forward")
    assert report.layer_sum("forward")[0] == pytest.approx(block.gradflow.cpu_median)
    assert "  block.inner" in report.table()  # indented: inside the layer above


def test_an_in_place_layer_is_timed_on_a_clone():
    model = gradflow.nn.Sequential(gradflow.nn.Linear(8, 4), gradflow.nn.ReLU(inplace=True))
    report = bench.model(model, (2, 8), repeat=2)
    relu = [r for r in report.layers if r.name == "1"]
    assert [r.phase for r in relu] == ["forward", "backward"]
    assert all(p.grad is None for p in model.parameters())


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
    from gradflow.bench.op_cases import copy_state

    assert copy_state(ours, theirs, torch) is None
    x = numpy.random.default_rng(0).standard_normal((3, 8)).astype(numpy.float32)
    expected = theirs(torch.tensor(x)).detach().numpy()
    numpy.testing.assert_allclose(ours(gradflow.tensor(x)).detach().numpy(), expected,
                                  rtol=1e-5, atol=1e-6)  # fmt: skip


def test_torch_model_with_other_names_is_timed_without_weights():
    pytest.importorskip("torch")
    report = bench.model(f"{NETS}:mlp", (4, 8), torch_factory=f"{NETS}:torch_renamed", repeat=1)
    assert any("not copied" in n for n in report.notes)
    assert any("no torch layer named" in n for n in report.notes)
    assert [r.torch is None for r in report.layers if r.name == "2"] == [True, True]


def test_a_torch_in_place_layer_is_timed_on_a_clone_beside_gradflows():
    pytest.importorskip("torch")
    report = bench.model(f"{NETS}:mlp", (4, 8), torch_factory=f"{NETS}:torch_inplace", repeat=1)
    relu = [r for r in report.layers if r.name == "1"]
    assert [r.phase for r in relu] == ["forward", "backward"]
    assert all(r.torch is not None for r in report.layers)
    assert not any("cannot run alone" in n for n in report.notes)


@pytest.mark.parametrize(
    ("spec", "shape", "kwargs", "error", "message"),
    [
        ("bench_model_nets", (2, 8), {}, ValueError, "expected module:callable"),
        (":mlp", (2, 8), {}, ValueError, "expected module:callable"),
        ("no_such_module_xyz:mlp", (2, 8), {}, ValueError, "no module named"),
        (f"{NETS}:missing", (2, 8), {}, ValueError, "has no attribute"),
        (f"{NETS}:NOT_CALLABLE", (2, 8), {}, ValueError, "not a callable"),
        (
            f"{NETS}:not_a_model",
            (2, 8),
            {},
            TypeError,
            "returned an object of type Tensor, not a gradflow",
        ),
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
        model = gradflow.nn.Sequential(gradflow.nn.Linear(3, 3), gradflow.nn.Flatten(0))
        bench.model(model, (2, 3), loss="cross_entropy", repeat=1)


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


def _file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return f"{path}:build"


BUILD = "from gradflow import nn\n\ndef build():\n    return nn.Linear(2, 2)\n"


@pytest.mark.parametrize(
    ("text", "shape", "message"),
    [
        ("raise RuntimeError('boom at import')\n", "2,2",
         "importing .*raises.py: RuntimeError: boom at import"),
        ("def build(:\n", "2,2", "importing .*raises.py: SyntaxError"),
        ("import no_such_module_xyz\n", "2,2", "importing .*ModuleNotFoundError"),
        ("from gradflow import nn\n\ndef build(width):\n    return nn.Linear(width, 2)\n",
         "2,2", "build needs arguments .*called with no arguments; wrap it in functools.partial"),
        ("def build():\n    raise KeyError('in factory')\n", "2,2",
         "calling build\\(\\): KeyError"),
        (BUILD, "2,3", "the gradflow model's forward on input \\(2, 3\\): "),
        ("from gradflow import nn\n\ndef build():\n    m = nn.Linear(2, 2)\n"
         "    m.requires_grad_(False)\n    return m\n", "2,2", "no parameter that requires grad"),
        ("from gradflow import nn\n\ndef build():\n    return nn.ReLU()\n", "2,2",
         "no parameter that requires grad"),
        (BUILD, "100000,100000,100", "GiB of float32, more than a quarter"),
    ],
)  # fmt: skip
def test_user_code_problems_are_one_line_errors_naming_the_phase(tmp_path, capsys, text, shape,
                                                                   message):  # fmt: skip
    spec = _file(tmp_path, "raises.py", text)
    with pytest.raises(user_model.ModelError, match=message):
        bench.model(spec, shape, repeat=1)
    args = ["bench", "--device", "cpu", "--repeat", "1", "--model", spec, "--input-shape", shape]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradflow bench: error: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_a_torch_twin_that_is_another_model_is_a_one_line_error(tmp_path):
    pytest.importorskip("torch")
    twin = _file(tmp_path, "twin.py", "import torch\n\ndef build():\n"
                 "    return torch.nn.Linear(3, 2)\n")  # fmt: skip
    with pytest.raises(user_model.ModelError, match="the torch model's forward on input"):
        bench.model(_file(tmp_path, "ours.py", BUILD), (2, 2), torch_factory=twin, repeat=1)


def test_gradflows_own_errors_keep_their_traceback(monkeypatch):
    def bug(*args, **kwargs):
        raise ValueError("a bug inside gradflow")

    monkeypatch.setattr(user_model, "_time_whole", bug)
    with pytest.raises(ValueError, match="a bug inside gradflow"):
        cli.main(["bench", "--device", "cpu", "--repeat", "1", "--model", f"{NETS}:mlp",
                  "--input-shape", "2,8"])  # fmt: skip


def test_a_model_file_imports_its_siblings_and_sys_path_is_restored(tmp_path):
    (tmp_path / "blocks_sibling_xyz.py").write_text(BUILD.replace("build", "block"))
    spec = _file(tmp_path, "nets.py", "from blocks_sibling_xyz import block\n\n"
                 "def build():\n    return block()\n")  # fmt: skip
    before = list(sys.path)
    report = bench.model(spec, (2, 2), repeat=1, layers=False)
    assert report.whole and sys.path == before


def test_torch_threads_are_restored():
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        bench.model(f"{NETS}:mlp", (4, 8), torch_factory=f"{NETS}:torch_mlp", repeat=1,
                    layers=False)  # fmt: skip
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_the_model_runs_on_the_steady_heap_and_says_so(monkeypatch):
    import gradflow.backend.heap as heap

    calls = []
    monkeypatch.setattr(heap, "steady_heap", lambda: calls.append(1) or True)
    report = bench.model(f"{NETS}:mlp", (4, 8), repeat=1, layers=False)
    assert calls == [1] and report.heap == "steady" and report.to_dict()["heap"] == "steady"
    assert "heap held steady" in report.table().splitlines()[0]


def test_more_than_one_blas_thread_compares_wall_time():
    report = bench.model(f"{NETS}:mlp", (4, 8), repeat=1, threads=0, layers=False)
    step = report.whole[2]
    assert report.wall and step.wall and "medians of wall time" in report.table()
    assert report.to_dict()["clock"] == "wall"
    assert Region.seconds(step.gradflow, step.wall) == step.gradflow.median
    assert not bench.model(f"{NETS}:mlp", (4, 8), repeat=1, layers=False).wall


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--suite", "ops"], "--suite do not go with --model"),
        (["--sizes", "large"], "--sizes do not go with --model"),
        (["--input-shape=-1,2"], "input shape '-1,2'"),
    ],
)
def test_options_that_do_not_apply_to_a_model_are_refused(extra, message, capsys):
    shape = [] if any(a.startswith("--input-shape") for a in extra) else ["--input-shape", "4,8"]
    args = ["bench", "--device", "cpu", "--repeat", "1", "--model", f"{NETS}:mlp", *shape, *extra]
    assert cli.main(args) == 2
    assert message in capsys.readouterr().err


class _Embed(gradflow.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = gradflow.nn.Embedding(10, 4)
        self.fc = gradflow.nn.Linear(4, 3)

    def forward(self, ids):
        return self.fc(self.embed(ids))


def test_an_integer_input_below_input_high_feeds_an_embedding(capsys):
    report = bench.model(_Embed, (4, 5), input_dtype="int64", input_high=10, repeat=1)
    embed = [r for r in report.layers if r.name == "embed"]
    assert [r.phase for r in embed] == ["forward", "backward"] and embed[0].shape == "4x5"
    with pytest.raises(user_model.ModelError, match="needs input_high"):
        bench.model(_Embed, (4, 5), input_dtype="int64", repeat=1)
    with pytest.raises(user_model.ModelError, match="goes with an int64 input"):
        bench.model(_Embed, (4, 5), input_high=10, repeat=1)
    args = ["bench", "--device", "cpu", "--repeat", "1", "--model", f"{NETS}:mlp",
            "--input-shape", "4,8", "--input-high", "3"]  # fmt: skip
    assert cli.main(args) == 2 and "goes with an int64 input" in capsys.readouterr().err


def test_a_dotted_module_raising_at_import_is_a_one_line_error(tmp_path, monkeypatch):
    (tmp_path / "raises_dotted_xyz.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.chdir(tmp_path)
    before = list(sys.path)
    with pytest.raises(user_model.ModelError, match="importing raises_dotted_xyz: RuntimeError"):
        bench.model("raises_dotted_xyz:build", (2, 2), repeat=1)
    assert sys.path == before and "raises_dotted_xyz" not in sys.modules
