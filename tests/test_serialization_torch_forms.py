"""gradflow.save / gradflow.load called the ways PyTorch programs call torch.save / torch.load:
paths and file objects, training checkpoints, map_location forms, weights_only and mmap, and
the errors for what needs pickle (a whole Module, a torch-written file)."""

import io
import pickle
import zipfile

import numpy
import pytest

import gradflow as gf
from gradflow.serialization import CheckpointError


def _model_and_optimizer(framework):
    framework.manual_seed(0)
    model = framework.nn.Sequential(
        framework.nn.Linear(4, 8), framework.nn.ReLU(), framework.nn.Linear(8, 3)
    )
    optimizer = framework.optim.Adam(model.parameters(), lr=0.01)
    x = framework.tensor(numpy.linspace(-1, 1, 20, dtype=numpy.float32).reshape(5, 4))
    for _ in range(2):
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()
    return model, optimizer, x


def _checkpoint_round_trip(torch, path):
    """A training checkpoint written and resumed as PyTorch programs do it."""
    model, optimizer, x = _model_and_optimizer(torch)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3}, path)
    if hasattr(path, "seek"):
        path.seek(0)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    fresh, fresh_optimizer, _ = _model_and_optimizer(torch)
    fresh.load_state_dict(checkpoint["model"])
    fresh_optimizer.load_state_dict(checkpoint["optimizer"])
    for opt in (optimizer, fresh_optimizer):  # one more identical step on each
        opt.zero_grad()
    for m in (model, fresh):
        m(x).pow(2).mean().backward()
    optimizer.step()
    fresh_optimizer.step()
    with torch.no_grad():
        return checkpoint["epoch"], model(x).numpy(), fresh(x).numpy()


@pytest.mark.parametrize("form", ["str", "pathlib", "file"])
def test_checkpoint_resume_matches_torch(tmp_path, form):
    torch = pytest.importorskip("torch")
    results = []
    for framework in (torch, gf):
        path = tmp_path / f"{framework.__name__}.pt"
        if form == "str":
            results.append(_checkpoint_round_trip(framework, str(path)))
        elif form == "pathlib":
            results.append(_checkpoint_round_trip(framework, path))
        else:
            results.append(_checkpoint_round_trip(framework, io.BytesIO()))
    (epoch_t, resumed_t, fresh_t), (epoch_g, resumed_g, fresh_g) = results
    assert epoch_t == epoch_g == 3
    numpy.testing.assert_allclose(resumed_g, fresh_g, rtol=1e-6, atol=1e-7)
    numpy.testing.assert_allclose(resumed_t, fresh_t, rtol=1e-6, atol=1e-7)


def test_open_binary_file_objects(tmp_path):
    path = tmp_path / "w.pt"
    with open(path, "wb") as f:
        gf.save(gf.arange(6).reshape(2, 3), f)
    with open(path, "rb") as f:
        back = gf.load(f)
    assert back.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert back.dtype == gf.int64


def test_bytesio_round_trip_keeps_nested_structure():
    buffer = io.BytesIO()
    state = {"state": {0: {"step": gf.tensor(2.0)}}, "param_groups": [{"lr": 0.1, "params": [0]}]}
    gf.save(state, buffer)
    buffer.seek(0)
    back = gf.load(buffer)
    assert back["param_groups"] == [{"lr": 0.1, "params": [0]}]
    assert back["state"][0]["step"].item() == 2.0


@pytest.mark.parametrize("weights_only", [None, True, False])
@pytest.mark.parametrize("mmap", [None, False, True])
def test_weights_only_and_mmap_load_the_same(tmp_path, weights_only, mmap):
    # torch uses weights_only to choose how far to trust a pickle; gradflow files hold none
    gf.save({"w": gf.ones(2, 2), "epoch": 1}, tmp_path / "c.pt")
    back = gf.load(tmp_path / "c.pt", weights_only=weights_only, mmap=mmap)
    assert back["epoch"] == 1 and back["w"].tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_mmap_maps_cpu_arrays_copy_on_write(tmp_path):
    torch = pytest.importorskip("torch")
    results = []
    for framework in (torch, gf):
        path = tmp_path / f"{framework.__name__}.pt"
        framework.save({"w": framework.arange(6.0).reshape(2, 3), "i": framework.arange(3)}, path)
        mapped = framework.load(path, mmap=True)
        mapped["w"].add_(1)  # changes the mapped copy, never the file
        results.append([mapped["w"].tolist(), framework.load(path)["w"].tolist(),
                        mapped["i"].tolist()])  # fmt: skip
        with open(path, "rb") as f, pytest.raises(ValueError, match="must be a file path"):
            framework.load(f, mmap=True)
    assert results[0] == results[1]
    mapped = gf.load(tmp_path / "gradflow.pt", mmap=True)["w"]
    assert isinstance(mapped.array.base, numpy.memmap)


def test_mmap_of_a_corrupt_local_header_is_refused(tmp_path):
    path = tmp_path / "c.pt"
    gf.save({"w": gf.ones(4)}, path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        offset = archive.getinfo("arrays/0.npy").header_offset
    data[offset + 28 : offset + 30] = (0xFFFF).to_bytes(2, "little")  # a huge extra field
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"array arrays/0.npy is truncated or corrupt"):
        gf.load(path, mmap=True)


def test_pickle_load_args_are_accepted(tmp_path):
    gf.save([gf.zeros(1)], tmp_path / "c.pt", pickle_protocol=4)
    assert gf.load(tmp_path / "c.pt", "cpu", None, encoding="latin1")[0].tolist() == [0.0]
    gf.save([1], tmp_path / "d.pt", pickle_module=pickle)
    assert gf.load(tmp_path / "d.pt", pickle_module=pickle) == [1]


def test_other_pickle_module_is_refused(tmp_path):
    dill = type(pickle)("dill")
    with pytest.raises(CheckpointError, match=r"gradflow.save got pickle_module=dill: .*never"):
        gf.save({}, tmp_path / "c.pt", pickle_module=dill)
    gf.save({}, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match=r"gradflow.load got pickle_module=dill"):
        gf.load(tmp_path / "c.pt", pickle_module=dill)


# ---- map_location -------------------------------------------------------------------------
def test_map_location_forms(tmp_path, device):
    gf.save({"w": gf.tensor([1.0, 2.0])}, tmp_path / "c.pt")
    for where in (device, gf.device(device), {"cpu": device}):
        w = gf.load(tmp_path / "c.pt", map_location=where)["w"]
        assert str(w.device) == str(gf.device(device)) and w.tolist() == [1.0, 2.0]


def test_map_location_callable(tmp_path, device):
    gf.save({"w": gf.tensor([1.0, 2.0], device=device)}, tmp_path / "c.pt")
    seen = []

    def keep_on_cpu(storage, location):
        seen.append(location)
        return storage

    w = gf.load(tmp_path / "c.pt", map_location=keep_on_cpu)["w"]
    assert seen == [str(gf.device(device))] and str(w.device) == "cpu"
    moved = gf.load(tmp_path / "c.pt", map_location=lambda storage, loc: storage.to(device))
    assert str(moved["w"].device) == str(gf.device(device))
    # None means "where it was saved"
    back = gf.load(tmp_path / "c.pt", map_location=lambda storage, loc: None)["w"]
    assert str(back.device) == str(gf.device(device)) and back.tolist() == [1.0, 2.0]


def test_map_location_callable_must_return_a_tensor(tmp_path):
    gf.save({"w": gf.ones(1)}, tmp_path / "c.pt")
    with pytest.raises(TypeError, match=r"map_location returned a int for the tensor at 'w'"):
        gf.load(tmp_path / "c.pt", map_location=lambda storage, loc: 0)


# ---- what needs pickle --------------------------------------------------------------------
def test_whole_module_is_refused_with_the_two_lines():
    model = gf.nn.Linear(2, 3)
    with pytest.raises(CheckpointError) as info:
        gf.save(model, io.BytesIO())
    message = str(info.value)
    assert "can't save a whole Linear (Module) at the top level" in message
    assert "gradflow never pickles" in message
    assert "gradflow.save(model.state_dict(), path)" in message
    assert "model.load_state_dict(gradflow.load(path))" in message


def test_optimizer_and_scheduler_inside_a_dict_are_refused():
    model = gf.nn.Linear(2, 3)
    optimizer = gf.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(CheckpointError, match=r"whole SGD \(Optimizer\) at 'opt'.*\n.*"
                       r"gradflow.save\(optimizer.state_dict\(\), path\)"):  # fmt: skip
        gf.save({"opt": optimizer}, io.BytesIO())
    scheduler = gf.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    with pytest.raises(CheckpointError, match=r"scheduler.load_state_dict\(gradflow.load"):
        gf.save([scheduler], io.BytesIO())


def test_torch_written_files_are_refused_with_the_conversion(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2)}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError) as info:
        gf.load(tmp_path / "new.pt")
    message = str(info.value)
    assert (
        "not a readable checkpoint: written by torch.save or pickle (torch.save's zip format)"
        in message
    )
    assert "gradflow never unpickles" in message
    assert "save_file(torch.load(path), 'model.safetensors')" in message
    assert "gradflow.safetensors.load_file('model.safetensors')" in message
    torch.save({"w": torch.ones(2)}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match=r"torch.save's legacy format or pickle.dump"):
        gf.load(tmp_path / "old.pt")


def test_pickle_dump_file_is_refused_unread(tmp_path):
    with open(tmp_path / "p.pkl", "wb") as f:
        pickle.dump({"a": 1}, f)
    with pytest.raises(CheckpointError, match=r"gradflow never unpickles, so it can't read it"):
        gf.load(tmp_path / "p.pkl")
