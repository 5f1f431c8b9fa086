"""gradflow.kernels.dispatch: per-architecture, per-shape-class choice of implementation."""

import json
from types import SimpleNamespace

import numpy
import pytest

from gradflow.kernels import dispatch


def _gpu_array(compute_capability="90", device_id=7):
    """Stands in for a CuPy array: what dispatch reads is array.device.{id,compute_capability}."""
    return SimpleNamespace(
        device=SimpleNamespace(id=device_id, compute_capability=compute_capability)
    )


@pytest.fixture
def table(monkeypatch):
    """Replace the shipped table with one that says 'fused' for small sm_90 work only."""
    data = {
        "architectures": {
            "sm_90": {
                "measured_on": "test",
                "choices": {
                    "act_matmul_bwd": {"small": "fused", "medium": "cublas"},
                    "bias_sum": {"large": "kernel"},
                },
            }
        }
    }
    monkeypatch.setattr(dispatch, "_table", dispatch.parse_table(data, "test"))
    monkeypatch.setattr(dispatch, "_arch_of_device", {})


def test_shape_classes_split_at_the_bounds():
    small, medium = dispatch.BOUNDS["act_matmul_bwd"]
    assert dispatch.shape_class("act_matmul_bwd", small) == "small"
    assert dispatch.shape_class("act_matmul_bwd", small + 1) == "medium"
    assert dispatch.shape_class("act_matmul_bwd", medium) == "medium"
    assert dispatch.shape_class("act_matmul_bwd", medium + 1) == "large"


def test_table_choices_per_architecture_and_class(table):
    small, medium = dispatch.BOUNDS["act_matmul_bwd"]
    gpu = _gpu_array()
    assert dispatch.choose("act_matmul_bwd", small, gpu) == "fused"
    assert dispatch.choose("act_matmul_bwd", medium, gpu) == "cublas"
    assert dispatch.choose("act_matmul_bwd", medium * 2, gpu) == "cublas"  # class not in table
    assert dispatch.choose("bias_sum", 1 << 30, gpu) == "kernel"
    assert dispatch.choose("bias_sum", 10, gpu) == "cupy"
    other = _gpu_array("80", device_id=8)  # an architecture the table lacks: the defaults
    assert dispatch.choose("act_matmul_bwd", small, other) == dispatch.DEFAULTS["act_matmul_bwd"]
    assert dispatch.architecture(gpu) == "sm_90" and dispatch.architecture(other) == "sm_80"


def test_numpy_arrays_get_the_defaults(table):
    a = numpy.zeros(3)
    assert dispatch.architecture(a) is None
    for op, default in dispatch.DEFAULTS.items():
        assert dispatch.choose(op, 1, a) == default


def test_forced_overrides_and_restores(table):
    gpu = _gpu_array()
    with dispatch.forced("act_matmul_bwd", "cublas"):
        assert dispatch.choose("act_matmul_bwd", 1, gpu) == "cublas"
        with dispatch.forced("act_matmul_bwd", "fused"):
            assert dispatch.choose("act_matmul_bwd", 1 << 40, gpu) == "fused"
        assert dispatch.choose("act_matmul_bwd", 1, gpu) == "cublas"
    assert dispatch.choose("act_matmul_bwd", 1, gpu) == "fused"
    with pytest.raises(ValueError, match=r"'bias_sum' has choices \('kernel', 'cupy'\)"):
        dispatch.forced("bias_sum", "fused").__enter__()


def test_unknown_op_is_a_clear_error():
    with pytest.raises(ValueError, match="dispatch: unknown op 'conv'"):
        dispatch.choose("conv", 1, numpy.zeros(1))


@pytest.mark.parametrize(
    "data,message",
    [
        ([], "expected an object with an 'architectures' object"),
        ({"architectures": {"sm_90": {}}}, "architecture 'sm_90' has no 'choices' object"),
        ({"architectures": {"sm_90": {"choices": {"conv": {}}}}}, "unknown op 'conv'"),
        (
            {"architectures": {"sm_90": {"choices": {"bias_sum": {"huge": "kernel"}}}}},
            r"sm_90.bias_sum: 'huge' -> 'kernel'",
        ),
        (
            {"architectures": {"sm_90": {"choices": {"bias_sum": {"small": "fused"}}}}},
            r"'small' -> 'fused'; expected a class in",
        ),
    ],
)
def test_a_malformed_table_is_refused_with_where(data, message):
    with pytest.raises(ValueError, match=message):
        dispatch.parse_table(data, "the-table.json")


def test_the_shipped_table_parses():
    data = json.loads(dispatch.TABLE_PATH.read_text())
    archs = dispatch.parse_table(data, str(dispatch.TABLE_PATH))
    for entry in archs.values():  # a measured entry says where its numbers are
        assert entry.get("measured_on") and entry.get("record")
