"""gradflow.bench.tune: the choice rule, the table update and the record (no GPU needed)."""

import json
import math

import pytest

from gradflow.bench import tune
from gradflow.kernels import dispatch


def test_every_case_shape_lies_in_its_class():
    for op, by_class in tune.CASES.items():
        assert set(by_class) == set(dispatch.CLASSES)
        for cls, shapes in by_class.items():
            assert shapes and all(dispatch.shape_class(op, math.prod(s)) == cls for s in shapes)


def test_ours_is_kept_only_when_clearly_faster():
    timings = {
        "small": [(1.0, 2.0), (1.0, 1.5)],  # ours faster on both
        "medium": [(0.98, 1.0), (0.99, 1.0)],  # within the margin: the library side stays
        "large": [(0.5, 1.0), (3.0, 1.0)],  # geometric mean 1.22: library
    }
    assert tune.decide(timings, "act_matmul_bwd") == {
        "small": "fused",
        "medium": "cublas",
        "large": "cublas",
    }
    assert tune.decide({"small": [(1.0, 2.0)]}, "bias_sum") == {"small": "kernel"}


def test_updated_table_keeps_other_architectures_and_is_checked():
    data = {"about": "x", "architectures": {"sm_80": {"choices": {}}}}
    entry = {"measured_on": "GPU", "record": "r.md", "choices": {"bias_sum": {"small": "kernel"}}}
    out = tune.updated_table(data, "sm_90", entry)
    assert out["about"] == "x" and set(out["architectures"]) == {"sm_80", "sm_90"}
    assert data["architectures"].keys() == {"sm_80"}  # the input is not modified
    with pytest.raises(ValueError, match="'small' -> 'fused'"):
        tune.updated_table(data, "sm_90", {"choices": {"bias_sum": {"small": "fused"}}})


def test_record_lists_every_timing_and_the_choice():
    results = {"bias_sum": {"small": [((64, 256), (2e-6, 4e-6))]}}
    meta = {"gpu_name": "Some GPU", "arch": "sm_90", "date": "2026-11-21", "cuda_runtime": 13000,
            "cupy": "14.0", "command": "python -m gradflow.bench.tune", "repeats": 50}  # fmt: skip
    text = tune.render_record(meta, results, {"bias_sum": {"small": "kernel"}})
    assert "Some GPU (sm_90)" in text and "CuPy 14.0" in text
    assert "| small | 64x256 | 2.0 | 4.0 | 0.500 |" in text
    assert "small: **kernel**" in text


def test_without_a_gpu_it_says_so_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("gradflow.bench.machine.gpu_description", lambda: {})
    table = tmp_path / "table.json"
    table.write_text(json.dumps({"architectures": {}}))
    with pytest.raises(SystemExit) as exc:
        tune.main(["--write", "--table", str(table), "--record-dir", str(tmp_path / "r")])
    assert exc.value.code == 2
    assert "needs CuPy and a CUDA GPU" in capsys.readouterr().err
    assert json.loads(table.read_text()) == {"architectures": {}}
    assert not (tmp_path / "r").exists()
