"""gradflow.safetensors: safetensors.torch's names on gradflow Tensors; files torch writes
load into the equivalent gradflow model and give torch's outputs, and the other way round."""

import builtins
import sys

import numpy
import pytest

import gradflow as gf
from gradflow import safetensors as gst


def _net(framework):
    nn = framework.nn
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 5 * 5, 3),
    )


def _input():
    return numpy.random.default_rng(0).standard_normal((2, 1, 5, 5)).astype(numpy.float32)


def test_torch_writes_gradflow_reads(tmp_path):
    torch = pytest.importorskip("torch")
    torch_st = pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    source = _net(torch)
    source(torch.tensor(_input()))  # one training-mode pass moves BatchNorm's running stats
    source.eval()
    torch_st.save_file(source.state_dict(), tmp_path / "m.safetensors")
    target = _net(gf)
    target.load_state_dict(gst.load_file(tmp_path / "m.safetensors"))
    target.eval()
    with torch.no_grad():
        expected = source(torch.tensor(_input())).numpy()
    with gf.no_grad():
        got = target(gf.tensor(_input())).numpy()
    numpy.testing.assert_allclose(got, expected, atol=1e-5)


def test_gradflow_writes_torch_reads(tmp_path):
    torch = pytest.importorskip("torch")
    torch_st = pytest.importorskip("safetensors.torch")
    source = _net(gf)
    source(gf.tensor(_input()))
    source.eval()
    gst.save_model(source, tmp_path / "m.safetensors", metadata={"format": "pt"})
    target = _net(torch)
    missing, unexpected = torch_st.load_model(target, tmp_path / "m.safetensors")
    assert not missing and not unexpected
    target.eval()
    with torch.no_grad():
        got = target(torch.tensor(_input())).numpy()
    numpy.testing.assert_allclose(got, source(gf.tensor(_input())).detach().numpy(), atol=1e-5)
    assert target[1].num_batches_tracked.dtype == torch.int64


def test_round_trip_dtypes_and_metadata(tmp_path, device):
    pytest.importorskip("safetensors")
    tensors = {
        "f32": gf.randn(2, 3, device=device),
        "f64": gf.tensor([1.5, -2.0], dtype=gf.float64, device=device),
        "i64": gf.arange(4, device=device),
        "mask": gf.tensor([True, False], device=device),
        "scalar": gf.tensor(3.0, device=device),
        "transposed": gf.arange(6.0, device=device).reshape(2, 3).t(),  # saved contiguous
    }
    path = tmp_path / "t.safetensors"
    gst.save_file(tensors, path, metadata={"epoch": "3"})
    back = gst.load_file(path, device=device)
    assert sorted(back) == sorted(tensors)
    for key, value in tensors.items():
        assert back[key].dtype == value.dtype and tuple(back[key].shape) == tuple(value.shape)
        assert str(back[key].device) == str(value.device)
        numpy.testing.assert_array_equal(back[key].cpu().numpy(), value.cpu().numpy())
    safetensors = pytest.importorskip("safetensors")
    with safetensors.safe_open(path, framework="np") as handle:
        assert handle.metadata() == {"epoch": "3"}
    assert gst.load(gst.save(tensors))["f64"].tolist() == [1.5, -2.0]


def test_load_model_strict_and_not(tmp_path):
    pytest.importorskip("safetensors")
    gst.save_file({"weight": gf.ones(3, 2)}, tmp_path / "w.safetensors")
    model = gf.nn.Linear(2, 3)
    with pytest.raises(
        RuntimeError, match=r'for Linear:\n    Missing key\(s\) in state_dict: "bias"'
    ):
        gst.load_model(model, tmp_path / "w.safetensors")
    missing, unexpected = gst.load_model(model, tmp_path / "w.safetensors", strict=False)
    assert (missing, unexpected) == (["bias"], [])
    assert model.weight.tolist() == [[1.0, 1.0]] * 3


def test_bad_arguments_are_named():
    pytest.importorskip("safetensors")
    with pytest.raises(ValueError, match=r"Key `w` is invalid, expected gradflow.Tensor but"):
        gst.save({"w": 3})
    with pytest.raises(TypeError, match=r"safetensors keys must be str, got int \(1\)"):
        gst.save({1: gf.ones(1)})
    with pytest.raises(TypeError, match=r"expected a dict of str to Tensor .* got list"):
        gst.save([gf.ones(1)])
    with pytest.raises(TypeError, match=r"load\(\) takes the file's bytes, got str; use"):
        gst.load("model.safetensors")


def test_bfloat16_file_names_the_conversion(tmp_path):
    torch = pytest.importorskip("torch")
    torch_st = pytest.importorskip("safetensors.torch")
    tensors = {"w": torch.ones(2, dtype=torch.bfloat16)}
    torch_st.save_file(tensors, tmp_path / "bf16.safetensors")
    with pytest.raises(TypeError, match=r"tensor 'w' has a dtype NumPy can't hold .*v.float\(\)"):
        gst.load_file(tmp_path / "bf16.safetensors")
    with pytest.raises(TypeError, match=r"a tensor has a dtype NumPy can't hold"):
        gst.load(torch_st.save(tensors))


def test_missing_package_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_safetensors(name, *args, **kwargs):
        if name == "safetensors" or name.startswith("safetensors."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    for name in list(sys.modules):
        if name == "safetensors" or name.startswith("safetensors."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(builtins, "__import__", no_safetensors)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'gradflow\[safetensors\]'"):
        gst.save_file({"w": gf.ones(1)}, "unused.safetensors")


def test_safe_open_reads_tensors_one_at_a_time(tmp_path, device):
    torch = pytest.importorskip("torch")
    torch_st = pytest.importorskip("safetensors.torch")
    path = tmp_path / "t.safetensors"
    torch_st.save_file({"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2)}, path,
                       metadata={"epoch": "3"})  # fmt: skip
    with gst.safe_open(path, framework="pt", device=device) as f:
        assert sorted(f.keys()) == ["b", "w"] and f.metadata() == {"epoch": "3"}
        w = f.get_tensor("w")
        part = f.get_slice("w")
        assert part.get_shape() == [2, 3] and part.get_dtype() == "F32"
        row = part[1:]
    assert str(w.device) == str(gf.device(device)) and w.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert str(row.device) == str(gf.device(device)) and row.tolist() == [[3.0, 4.0, 5.0]]


def test_safe_open_refuses_other_frameworks(tmp_path):
    pytest.importorskip("safetensors")
    with pytest.raises(ValueError, match=r"framework='tf' is not one .* pass 'pt'"):
        gst.safe_open(tmp_path / "x.safetensors", framework="tf")
