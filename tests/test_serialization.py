"""gradflow.serialization: round trips, atomic writes, devices, and every refusal to load
(missing, truncated, corrupt, inconsistent, pickled)."""

import io
import json
import math
import os
import zipfile

import numpy
import pytest
from checkpoint_support import assert_same
from numpy.lib import format as npy_format

import gradflow as gf
from gradflow import serialization
from gradflow.serialization import MANIFEST_NAME, CheckpointError, load, save


def _nested():
    return {
        "model": {
            "weight": gf.tensor(numpy.arange(6, dtype=numpy.float32).reshape(2, 3)),
            "bias": gf.tensor(numpy.array([0.5, -1.5])),  # float64
            "steps": gf.tensor(numpy.array([1, 2, 3], dtype=numpy.int64)),
            "scale": gf.tensor(2.5),  # 0-d
        },
        "state": {0: {"step": 3, "exp_avg": gf.zeros(2, 3)}, 1: {"step": 3}},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1], "amsgrad": False}],
        "name": "run-1",
        "nothing": None,
        "numbers": [0, -7, 2**70, 0.1, float("inf"), float("-inf")],
        "empty": {"list": [], "tuple": (), "dict": {}},
        "numpy": {"array": numpy.arange(4, dtype=numpy.uint32), "scalar": numpy.float32(0.25)},
    }


def _rewrite(path, edit_manifest=None, replace=None):
    """Rewrite a checkpoint with its manifest edited and/or entries replaced (raw bytes)."""
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    if edit_manifest:
        manifest = json.loads(entries[MANIFEST_NAME])
        edit_manifest(manifest)
        entries[MANIFEST_NAME] = json.dumps(manifest).encode()
    entries.update(replace or {})
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            if data is not None:
                archive.writestr(name, data)


# ---- round trips -------------------------------------------------------------------------
def test_round_trip_nested(tmp_path):
    obj = _nested()
    save(obj, tmp_path / "c.ckpt")
    back = load(tmp_path / "c.ckpt")
    assert_same(obj, back)
    assert list(back["state"]) == [0, 1]  # int keys stay ints
    assert isinstance(back["param_groups"][0]["betas"], tuple)
    assert math.isinf(back["numbers"][4]) and back["numbers"][2] == 2**70


def test_nan_round_trips(tmp_path):
    save([float("nan")], tmp_path / "c")
    assert math.isnan(load(tmp_path / "c")[0])


def test_requires_grad_preserved_and_tensors_load_as_leaves(tmp_path):
    w = gf.randn(3, requires_grad=True)
    y = w * 2  # not a leaf
    save({"w": w, "y": y, "frozen": gf.ones(2)}, tmp_path / "c")
    back = load(tmp_path / "c")
    assert back["w"].requires_grad and back["w"].is_leaf and back["w"].grad is None
    assert back["y"].requires_grad and back["y"].is_leaf
    assert not back["frozen"].requires_grad
    assert numpy.allclose(back["y"].detach().numpy(), 2 * w.detach().numpy())


def test_shared_arrays_are_stored_once(tmp_path):
    shared = gf.ones(4)
    save({"a": shared, "b": shared, "c": gf.Tensor._wrap(shared.array)}, tmp_path / "c")
    with zipfile.ZipFile(tmp_path / "c") as archive:
        assert sorted(archive.namelist()) == ["arrays/0.npy", MANIFEST_NAME]
    back = load(tmp_path / "c")
    assert back["a"].array is back["b"].array is back["c"].array


def test_file_objects_and_numpy_can_read_it(tmp_path):
    buffer = io.BytesIO()
    save({"x": gf.ones(2)}, buffer)
    buffer.seek(0)
    assert load(buffer)["x"].tolist() == [1.0, 1.0]
    save({"x": gf.ones(2)}, tmp_path / "c")
    with numpy.load(tmp_path / "c", allow_pickle=False) as npz:  # an open format
        assert numpy.array_equal(npz["arrays/0.npy"], [1.0, 1.0])
        assert json.loads(npz[MANIFEST_NAME])["format"] == "gradflow-checkpoint"


def test_saved_file_honours_the_umask(tmp_path):
    save(1, tmp_path / "c")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o666 & ~umask


# ---- devices -----------------------------------------------------------------------------
def test_device_round_trip(tmp_path, device):
    x = gf.randn(2, 3, device=device, requires_grad=True)
    save({"x": x, "n": 1}, tmp_path / "c")
    back = load(tmp_path / "c")
    assert back["x"].device == device and back["x"].requires_grad
    assert_same(x, back["x"])
    on_cpu = load(tmp_path / "c", map_location="cpu")["x"]
    assert on_cpu.device == "cpu" and on_cpu.requires_grad
    assert load(tmp_path / "c", map_location=gf.Device(device))["x"].device == device
    assert load(tmp_path / "c", map_location={str(x.device): "cpu"})["x"].device == "cpu"


def test_cuda_checkpoint_without_that_gpu_suggests_map_location(tmp_path):
    save({"state": [gf.ones(2)]}, tmp_path / "c")

    def on_missing_gpu(manifest):
        manifest["root"]["values"][0]["items"][0]["device"] = "cuda:99"

    _rewrite(tmp_path / "c", on_missing_gpu)
    with pytest.raises(CheckpointError, match=r"saved on cuda:99 .*map_location='cpu'.*'state.0'"):
        load(tmp_path / "c")
    assert load(tmp_path / "c", map_location="cpu")["state"][0].tolist() == [1.0, 1.0]


# ---- atomic writes -----------------------------------------------------------------------
@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch, error):
    path = tmp_path / "c.ckpt"
    save({"epoch": 1, "w": gf.ones(3), "v": gf.zeros(3)}, path)
    before = path.read_bytes()
    real_write = serialization._write_array
    calls = []

    def write_then_fail(archive, name, array):
        calls.append(name)
        if len(calls) == 2:
            raise error
        real_write(archive, name, array)

    monkeypatch.setattr(serialization, "_write_array", write_then_fail)
    with pytest.raises(type(error)):
        save({"epoch": 2, "w": gf.full((3,), 5.0), "v": gf.ones(3)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.ckpt"]  # no stray temporary file
    assert load(path)["epoch"] == 1


def test_save_into_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="directory .*absent does not exist"):
        save(1, tmp_path / "absent" / "c")


# ---- refusing to save --------------------------------------------------------------------
def test_unsupported_type_names_the_key_path(tmp_path):
    obj = {"state": {3: {"exp_avg": object()}}}
    with pytest.raises(
        CheckpointError,
        match=r"type object at 'state.3.exp_avg'; supported types are dict \(str or int keys\)",
    ):
        save(obj, tmp_path / "c")
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
    with pytest.raises(CheckpointError, match="type set at the top level"):
        save({1, 2}, tmp_path / "c")
    with pytest.raises(CheckpointError, match=r"dict key of type tuple \(\(1, 2\)\) at 'a'"):
        save({"a": {(1, 2): 0}}, tmp_path / "c")
    with pytest.raises(CheckpointError, match="dtype object at 'x'.*never Python objects"):
        save({"x": numpy.array([None])}, tmp_path / "c")
    loop = []
    loop.append(loop)
    with pytest.raises(CheckpointError, match="contains itself"):
        save(loop, tmp_path / "c")


def test_an_int_too_long_for_text_is_refused_naming_the_key(tmp_path):
    # before: Python's own "Exceeds the limit (4300 digits) for integer string conversion"
    with pytest.raises(CheckpointError, match=r"can't save the int at 'a': an int of more than"):
        save({"a": 10**5000}, tmp_path / "c")
    with pytest.raises(CheckpointError, match=r"the int at 'run.steps.1': .*4300 digits"):
        save({"run": {"steps": [1, -(10**4300)]}}, tmp_path / "c")
    with pytest.raises(CheckpointError, match=r"can't save a dict key at 'state': an int of"):
        save({"state": {10**5000: 1}}, tmp_path / "c")
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
    largest = 10**4300 - 1  # 4300 digits: what json reads back under the default limit
    save({"a": largest, "b": -largest, largest: 0}, tmp_path / "c")
    assert load(tmp_path / "c") == {"a": largest, "b": -largest, largest: 0}


# ---- refusing to load --------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load(tmp_path / "nope")


def test_not_a_zip(tmp_path):
    (tmp_path / "c").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="zip archive is truncated or corrupt"):
        load(tmp_path / "c")


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_file(tmp_path, keep):
    save({"w": gf.randn(64, 64)}, tmp_path / "c")
    data = (tmp_path / "c").read_bytes()
    (tmp_path / "c").write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load(tmp_path / "c")


def test_flipped_bytes_in_array_data(tmp_path):
    w = gf.tensor(numpy.arange(256, dtype=numpy.float32))
    save({"w": w}, tmp_path / "c")
    data = bytearray((tmp_path / "c").read_bytes())
    at = data.find(w.numpy().tobytes()) + 100
    data[at] ^= 0xFF
    (tmp_path / "c").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"arrays/0.npy is truncated or corrupt .*CRC"):
        load(tmp_path / "c")


def test_flipped_bytes_in_manifest(tmp_path):
    save({"w": gf.ones(2)}, tmp_path / "c")
    data = bytearray((tmp_path / "c").read_bytes())
    data[data.find(b'"format"') + 3] ^= 0x01
    (tmp_path / "c").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"{MANIFEST_NAME} is corrupt .*CRC"):
        load(tmp_path / "c")


def test_missing_and_malformed_manifest(tmp_path):
    path = tmp_path / "c"
    save({"w": gf.ones(2)}, path)
    _rewrite(path, replace={MANIFEST_NAME: None})
    with pytest.raises(CheckpointError, match=f"no {MANIFEST_NAME} in the archive"):
        load(path)
    _rewrite(path, replace={MANIFEST_NAME: b"{not json"})
    with pytest.raises(CheckpointError, match="is not valid JSON"):
        load(path)
    _rewrite(path, replace={MANIFEST_NAME: b'{"format": "other"}'})
    with pytest.raises(CheckpointError, match="does not describe a gradflow-checkpoint"):
        load(path)
    _rewrite(path, replace={MANIFEST_NAME: b'{"format": "gradflow-checkpoint", "version": 9}'})
    with pytest.raises(CheckpointError, match="format version 9 is newer"):
        load(path)
    bad_node = b'{"format": "gradflow-checkpoint", "version": 1, "root": {"type": "eval"}}'
    _rewrite(path, replace={MANIFEST_NAME: bad_node})
    with pytest.raises(CheckpointError, match="unknown node"):
        load(path)


def test_array_disagreeing_with_manifest(tmp_path):
    path = tmp_path / "c"
    save({"w": gf.ones(2, 3)}, path)

    def wrong_shape(manifest):
        manifest["root"]["values"][0]["shape"] = [3, 2]

    _rewrite(path, wrong_shape)
    with pytest.raises(
        CheckpointError,
        match=r"has dtype float32 and shape \[2, 3\] but checkpoint.json says dtype float32 "
        r"and shape \[3, 2\] \(at 'w'\)",
    ):
        load(path)

    def wrong_dtype(manifest):
        manifest["root"]["values"][0].update(shape=[2, 3], dtype="float64")

    _rewrite(path, wrong_dtype)
    with pytest.raises(CheckpointError, match="dtype float32 .* says dtype float64"):
        load(path)
    _rewrite(path, replace={"arrays/0.npy": None})
    with pytest.raises(CheckpointError, match="arrays/0.npy is missing"):
        load(path)


class Planted:
    """Unpickling this object would create the marker file (stands for any code a pickle runs)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("claimed_dtype", ["float32", "|O"])
def test_planted_pickle_is_refused_and_never_runs(tmp_path, claimed_dtype):
    marker = tmp_path / "pwned"
    payload = io.BytesIO()
    planted = numpy.empty(1, dtype=object)
    planted[0] = Planted(str(marker))
    npy_format.write_array(payload, planted, allow_pickle=True)
    path = tmp_path / "c"
    save({"x": numpy.zeros(1, numpy.float32)}, path)

    def claim(manifest):
        manifest["root"]["values"][0]["dtype"] = claimed_dtype

    _rewrite(path, claim, replace={"arrays/0.npy": payload.getvalue()})
    with pytest.raises(CheckpointError, match="pickled Python objects|refusing to load"):
        load(path)
    assert not marker.exists()
    # The payload is live: unpickling it really would have run code.
    payload.seek(0)
    npy_format.read_array(payload, allow_pickle=True)
    assert marker.exists()
