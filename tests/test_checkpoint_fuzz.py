"""Fuzzing gradflow.load: truncated, bit-flipped, inconsistent, hostile and oversized checkpoints
must all end in a CheckpointError with a message (never another exception, never code run
from the file), or load intact where a change touched nothing that matters (zip timestamps).

GRADFLOW_FUZZ_EXAMPLES=N runs N truncation offsets and N byte flips per family instead of
the defaults (200 offsets, 300 flips); GRADFLOW_FUZZ_EXAMPLES=all cuts at every offset, flips
every byte three ways (XOR 0x01, 0x80, 0xFF) and every header byte all 255 ways (a few
minutes). ``pytest -s`` prints the counts.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy
import pytest
from checkpoint_support import assert_same
from numpy.lib import format as npy_format

import gradflow as gf
from gradflow import models
from gradflow.serialization import MANIFEST_NAME, MAX_DEPTH, CheckpointError, load, save

EXAMPLES = os.environ.get("GRADFLOW_FUZZ_EXAMPLES", "")
EXHAUSTIVE = EXAMPLES == "all"
TRUNCATIONS = 1 << 62 if EXHAUSTIVE else int(EXAMPLES or 200)
FLIPS = None if EXHAUSTIVE else int(EXAMPLES or 300)  # None: every position, see above
LOCAL_HEADER, CENTRAL_HEADER = b"PK\x03\x04", b"PK\x01\x02"


# ---- the checkpoint under attack and how to judge a load -----------------------------------
def _original() -> dict:
    """An object with every node kind the format has: tensors of several dtypes (one shared,
    one requiring grad, one 0-d), NumPy arrays and scalars, containers, numbers, strings."""
    shared = gf.tensor(numpy.arange(12, dtype=numpy.float32).reshape(3, 4))
    return {
        "model": {"weight": shared, "bias": gf.tensor([0.5, -1.5], dtype=gf.float64)},
        "tied": shared,
        "steps": gf.tensor(numpy.array([1, 2, 3], dtype=numpy.int64)),
        "scale": gf.tensor(2.5, requires_grad=True),
        "numpy": [numpy.arange(5, dtype=numpy.uint8), numpy.float32(0.25)],
        "state": {0: {"step": 7, "betas": (0.9, 0.999)}},
        "misc": [None, True, "run-1", float("inf"), -3],
    }


def _checkpoint() -> bytes:
    buffer = io.BytesIO()
    save(_original(), buffer)
    return buffer.getvalue()


def _outcome(data: bytes, expected: Any = None) -> str:
    """Load `data`: 'refused' (a CheckpointError with a message) or 'intact' (equal to
    `expected`). Any other exception propagates and fails the test."""
    try:
        loaded = load(io.BytesIO(data))
    except CheckpointError as exc:
        message = str(exc)
        assert message.startswith("<file object>: ") and len(message) > 30, message
        return "refused"
    assert_same(loaded, _original() if expected is None else expected, nan_equal=True)
    return "intact"


def _refused(data: bytes, match: str) -> None:
    """The checkpoint is refused with a CheckpointError whose message matches `match`."""
    with pytest.raises(CheckpointError, match=match):
        load(io.BytesIO(data))


# ---- building altered archives -------------------------------------------------------------
def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(entries: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    """An archive holding `entries` in order (duplicates allowed), compressed as asked."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, payload in entries:
            archive.writestr(zipfile.ZipInfo(name), payload, compress_type=compression)
    return buffer.getvalue()


def _with_manifest(edit: Callable[[dict], Any], data: bytes | None = None) -> bytes:
    """The checkpoint with its manifest edited in place by `edit` (or replaced by its result)."""
    entries = _entries(data or _checkpoint())
    manifest = json.loads(entries[MANIFEST_NAME])
    replaced = edit(manifest)
    entries[MANIFEST_NAME] = json.dumps(manifest if replaced is None else replaced).encode()
    return _zip(list(entries.items()))


def _array_nodes(node: Any) -> list[dict]:
    """The manifest's array-holding nodes (tensor and ndarray), depth first."""
    if isinstance(node, dict):
        if node.get("type") in ("tensor", "ndarray"):
            return [node]
        return [n for value in node.values() for n in _array_nodes(value)]
    if isinstance(node, list):
        return [n for value in node for n in _array_nodes(value)]
    return []


def _npy(array: numpy.ndarray) -> bytes:
    buffer = io.BytesIO()
    npy_format.write_array(buffer, array, allow_pickle=array.dtype.hasobject)
    return buffer.getvalue()


def _npy_header(shape: tuple, descr: str = "<f4", text: str | None = None) -> bytes:
    """A bare version-1.0 .npy header claiming `shape` and `descr` (or holding `text`), with
    no data after it."""
    text = text or repr({"descr": descr, "fortran_order": False, "shape": shape})
    text += " " * (-(len(text) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def _metadata_positions(data: bytes) -> list[int]:
    """Offsets of the bytes that are not array or manifest payload: zip local headers, the
    central directory and its end records, and each .npy header."""
    payload = numpy.zeros(len(data), bool)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
            start = info.header_offset + 30 + name_length + extra_length
            end = start + info.compress_size
            if info.filename.endswith(".npy"):
                start += 10 + struct.unpack_from("<H", data, start + 8)[0]
            payload[start:end] = True
    return [int(i) for i in numpy.flatnonzero(~payload)]


# ---- truncation and flipped bytes ----------------------------------------------------------
def truncation_outcomes(count: int = TRUNCATIONS) -> Counter:
    """Load the checkpoint cut at `count` offsets (all of them when count >= its length)."""
    data = _checkpoint()
    if count >= len(data):
        offsets = range(len(data))
    else:
        offsets = sorted({int(i) for i in numpy.linspace(0, len(data) - 1, count)})
    return Counter(_outcome(data[:cut]) for cut in offsets)


def flip_outcomes(count: int | None = FLIPS, metadata_only: bool = False, seed: int = 0) -> Counter:
    """Load the checkpoint with one byte changed (XOR a nonzero value), `count` times at
    positions and values drawn by a seeded generator, anywhere or only in headers; count None
    changes every position (headers all 255 ways, other bytes three). Counts (region,
    outcome), region "header" (zip and .npy headers) or "payload" (the rest)."""
    data = _checkpoint()
    headers = set(_metadata_positions(data))
    positions = sorted(headers) if metadata_only else list(range(len(data)))
    if count is None:
        changes = [
            (position, value)
            for position in positions
            for value in (range(1, 256) if position in headers else (0x01, 0x80, 0xFF))
        ]
    else:
        rng = numpy.random.default_rng(seed)
        changes = list(zip(rng.choice(positions, count), rng.integers(1, 256, count)))
    outcomes: Counter = Counter()
    for position, value in changes:
        altered = bytearray(data)
        altered[position] ^= int(value)
        region = "header" if position in headers else "payload"
        outcomes[region, _outcome(bytes(altered))] += 1
    return outcomes


def test_original_round_trips():
    assert _outcome(_checkpoint()) == "intact"


def test_every_truncation_is_refused():
    outcomes = truncation_outcomes()
    print(f"truncations: {dict(outcomes)}")
    assert set(outcomes) == {"refused"}, outcomes


def test_flipped_bytes_anywhere_are_refused_or_harmless():
    outcomes = flip_outcomes()
    print(f"byte flips anywhere: {dict(outcomes)}")
    # The manifest and the array data are under the zip's CRC: a change there never loads.
    assert outcomes["payload", "intact"] == 0 and outcomes["payload", "refused"] > 0, outcomes


def test_flipped_header_bytes_are_refused_or_harmless():
    # Some header bytes don't matter (timestamps, "version made by"); the rest are refused.
    if FLIPS is None:
        pytest.skip("GRADFLOW_FUZZ_EXAMPLES=all: the run over every byte covers the headers")
    outcomes = flip_outcomes(metadata_only=True, seed=1)
    print(f"byte flips in headers: {dict(outcomes)}")
    assert outcomes["header", "refused"] > 0 and not outcomes["payload", "intact"], outcomes


def test_truncated_file_on_disk(tmp_path):
    data = _checkpoint()
    (tmp_path / "c").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"c: not a readable checkpoint.*truncated"):
        load(tmp_path / "c")


def test_empty_file(tmp_path):
    (tmp_path / "c").write_bytes(b"")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load(tmp_path / "c")


def test_directory_instead_of_a_file(tmp_path):
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load(tmp_path)


# ---- the manifest disagreeing with the arrays, or malformed --------------------------------
def _set_first_array(**fields: Any) -> Callable[[dict], None]:
    def edit(manifest: dict) -> None:
        _array_nodes(manifest["root"])[0].update(fields)

    return edit


def _set_root(root: Any) -> Callable[[dict], None]:
    def edit(manifest: dict) -> None:
        manifest["root"] = root

    return edit


def _drop(field: str) -> Callable[[dict], None]:
    def edit(manifest: dict) -> None:
        del manifest[field]

    return edit


_TENSOR = {
    "type": "tensor",
    "array": "arrays/0.npy",
    "dtype": "float32",
    "shape": [3, 4],
    "device": "cpu",
    "requires_grad": False,
}
MANIFEST_CASES: dict[str, tuple[Callable[[dict], Any], str]] = {
    # dtype and shape disagreeing with the array
    "wrong dtype": (_set_first_array(dtype="float64"), "says dtype float64"),
    "wrong int dtype": (_set_first_array(dtype="int32"), "says dtype int32"),
    "wrong shape": (_set_first_array(shape=[4, 3]), r"says dtype float32 and shape \[4, 3\]"),
    "fewer dims": (_set_first_array(shape=[12]), r"shape \[12\]"),
    "scalar shape": (_set_first_array(shape=[]), r"shape \[\]"),
    "negative shape": (_set_first_array(shape=[-3, -4]), r"shape \[-3, -4\]"),
    "huge shape": (_set_first_array(shape=[10**12, 10**12]), "shape"),
    "enormous int": (_set_first_array(shape=[2**200]), "shape"),
    "shape of strings": (_set_first_array(shape=["3", "4"]), "shape"),
    "shape not a list": (_set_first_array(shape="3,4"), "needs 'array' and 'shape'"),
    "shape null": (_set_first_array(shape=None), "needs 'array' and 'shape'"),
    "nested shape": (_set_first_array(shape=[[3], [4]]), "shape"),
    "float shape": (_set_first_array(shape=[3.5, 4]), "shape"),
    # dtypes that are not numbers, or not dtypes at all
    "object dtype": (_set_first_array(dtype="|O"), "not numeric|not supported|bad dtype"),
    "string dtype": (_set_first_array(dtype="<U4"), "not numeric|not supported|bad dtype"),
    "void dtype": (_set_first_array(dtype="V16"), "not numeric|not supported|bad dtype"),
    "struct dtype": (_set_first_array(dtype="f4,i4"), "not numeric|not supported|bad dtype"),
    "subarray dtype": (_set_first_array(dtype="(2,)f4"), "not numeric|not supported|bad dtype"),
    "huge subarray": (_set_first_array(dtype="(99999999999,)f4"), "bad dtype|not numeric"),
    "datetime dtype": (_set_first_array(dtype="M8[s]"), "not numeric|not supported|bad dtype"),
    "unknown dtype": (_set_first_array(dtype="float99"), "bad dtype"),
    "empty dtype": (_set_first_array(dtype=""), "bad dtype"),
    "dtype a number": (_set_first_array(dtype=4), "needs a 'dtype' string"),
    "dtype a list": (_set_first_array(dtype=[["a", "<f4"]]), "needs a 'dtype' string"),
    # entries that are not there, or are the wrong kind of entry
    "entry missing": (_set_first_array(array="arrays/99.npy"), "arrays/99.npy is missing"),
    "entry empty name": (_set_first_array(array=""), "is missing"),
    "entry path escape": (_set_first_array(array="../../etc/passwd"), "is missing"),
    "entry the manifest": (_set_first_array(array=MANIFEST_NAME), "corrupt"),
    "entry name a number": (_set_first_array(array=0), "needs 'array' and 'shape'"),
    # tensor fields
    "device unknown": (_set_first_array(device="tpu"), "bad device"),
    "device empty": (_set_first_array(device=""), "bad device"),
    "device index huge": (_set_first_array(device="cuda:99999999999999999999"), "device|CUDA"),
    "device a number": (_set_first_array(device=0), "needs 'device', 'requires_grad'"),
    "requires_grad a string": (_set_first_array(requires_grad="yes"), "requires_grad"),
    "int tensor requires grad": (
        _set_root(
            {
                **_TENSOR,
                "array": "arrays/2.npy",
                "dtype": "int64",
                "shape": [3],
                "requires_grad": True,
            }
        ),
        "a int64 tensor requires grad",
    ),
    # nodes
    "root missing": (_drop("root"), "has no 'root'"),
    "root a string": (_set_root("none"), "unknown node"),
    "root a list": (_set_root([]), "unknown node"),
    "root null": (_set_root(None), "unknown node"),
    "node type unknown": (_set_root({"type": "pickle", "value": "cos\nsystem"}), "unknown node"),
    "node type missing": (_set_root({"value": 1}), "unknown node"),
    "int holding a string": (_set_root({"type": "int", "value": "1"}), "int node holds"),
    "int holding a bool": (_set_root({"type": "int", "value": True}), "int node holds"),
    "bool holding an int": (_set_root({"type": "bool", "value": 1}), "bool node holds"),
    "str holding a list": (_set_root({"type": "str", "value": ["a"]}), "str node holds"),
    "float holding a string": (_set_root({"type": "float", "value": "1.5"}), "float node holds"),
    "float holding null": (_set_root({"type": "float"}), "float node holds"),
    "list without items": (_set_root({"type": "list"}), "list node without 'items'"),
    "tuple items a dict": (_set_root({"type": "tuple", "items": {}}), "without 'items'"),
    "dict keys missing": (_set_root({"type": "dict", "values": []}), "equal 'keys' and 'values'"),
    "dict keys longer": (
        _set_root({"type": "dict", "keys": ["a", "b"], "values": [{"type": "none"}]}),
        "equal 'keys' and 'values'",
    ),
    "dict key a float": (
        _set_root({"type": "dict", "keys": [1.5], "values": [{"type": "none"}]}),
        "is not str or int",
    ),
    "dict key null": (
        _set_root({"type": "dict", "keys": [None], "values": [{"type": "none"}]}),
        "is not str or int",
    ),
    "dict key twice": (
        _set_root({"type": "dict", "keys": ["a", "a"], "values": [{"type": "none"}] * 2}),
        "key 'a' twice",
    ),
    # the manifest itself
    "manifest a list": (lambda m: [m], "does not describe a gradflow-checkpoint"),
    "manifest a string": (lambda m: "gradflow-checkpoint", "does not describe"),
    "manifest null": (lambda m: 0, "does not describe"),
    "format missing": (_drop("format"), "does not describe"),
    "version missing": (_drop("version"), "no valid 'version'"),
    "version a string": (lambda m: m.update(version="1"), "no valid 'version'"),
    "version a bool": (lambda m: m.update(version=True), "no valid 'version'"),
    "version a float": (lambda m: m.update(version=1.0), "no valid 'version'"),
    "version zero": (lambda m: m.update(version=0), "no valid 'version'"),
    "version from the future": (lambda m: m.update(version=2), "version 2 is newer"),
}


@pytest.mark.parametrize("case", list(MANIFEST_CASES))
def test_malformed_manifest_is_refused(case):
    edit, match = MANIFEST_CASES[case]
    _refused(_with_manifest(edit), match)


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"{",
        b"\xff\xfe{}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"format": NaN}',
        b"\x80\x04\x95cos\nsystem\n.",
        b'{"a": 1e99999}' * 2,
    ],
    ids=["empty", "unclosed", "not utf-8", "deep arrays", "no format", "a pickle", "two objects"],
)
def test_manifest_that_is_not_json_is_refused(text):
    entries = _entries(_checkpoint())
    entries[MANIFEST_NAME] = text
    _refused(_zip(list(entries.items())), "not valid JSON|nested too deeply|does not describe")


def _manifest_text(root_text: str) -> bytes:
    head = json.dumps({"format": "gradflow-checkpoint", "version": 1})[:-1]
    return _zip([(MANIFEST_NAME, f'{head}, "root": {root_text}}}'.encode())])


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 400, 100_000])
@pytest.mark.parametrize("kind", ["list", "dict"])
def test_deeply_nested_manifest_is_refused(kind, depth):
    opening = (
        '{"type": "list", "items": ['
        if kind == "list"
        else '{"type": "dict", "keys": ["k"], "values": ['
    )
    text = opening * depth + '{"type": "none"}' + "]}" * depth
    _refused(_manifest_text(text), f"nested more than {MAX_DEPTH} levels deep|nested too deeply")


def _nested(depth: int) -> Any:
    deep: Any = None
    for level in range(depth):
        deep = {"k": deep} if level % 2 else [deep]
    return deep


def test_nesting_up_to_the_limit_round_trips_and_deeper_is_not_saved():
    buffer = io.BytesIO()
    save(_nested(MAX_DEPTH), buffer)
    assert _outcome(buffer.getvalue(), _nested(MAX_DEPTH)) == "intact"
    with pytest.raises(CheckpointError, match=f"nested more than {MAX_DEPTH} levels deep"):
        save(_nested(MAX_DEPTH + 1), io.BytesIO())


def _second_naming(**fields: Any) -> Callable[[dict], None]:
    """Edit the second node naming the shared array (the original's 'tied')."""

    def edit(manifest: dict) -> None:
        nodes = _array_nodes(manifest["root"])
        names = [node["array"] for node in nodes]
        second = next(n for i, n in enumerate(nodes) if n["array"] in names[:i])
        second.update(fields)

    return edit


@pytest.mark.parametrize(
    "fields",
    [{"shape": [4, 3]}, {"shape": [12]}, {"dtype": "float64"}, {"dtype": "int32"}],
    ids=["transposed", "flat", "float64", "int32"],
)
def test_an_array_named_twice_with_another_dtype_or_shape_is_refused(fields):
    # before: the second node got the first one's array, whatever it claimed
    _refused(
        _with_manifest(_second_naming(**fields)),
        r"array arrays/0.npy is named twice with different dtypes or shapes: dtype float32 "
        r"and shape \[3, 4\] at 'model.weight', .* \(at 'tied'\)",
    )


def test_an_array_shared_by_a_tensor_and_a_numpy_array_loads():
    weight = gf.tensor(numpy.arange(6, dtype=numpy.float32).reshape(2, 3))
    buffer = io.BytesIO()
    save({"tensor": weight, "array": weight.array, "again": weight}, buffer)
    loaded = load(io.BytesIO(buffer.getvalue()))
    assert isinstance(loaded["array"], numpy.ndarray) and loaded["array"].shape == (2, 3)
    assert loaded["tensor"].array is loaded["again"].array


# ---- entries: extra, missing, doubled, compressed, encrypted, oversized --------------------
def _replace_entry(name: str, payload: bytes | None) -> bytes:
    entries = _entries(_checkpoint())
    entries[name] = payload
    return _zip([(n, p) for n, p in entries.items() if p is not None])


def _claim(payload: bytes, **fields: Any) -> bytes:
    """The checkpoint with arrays/0.npy replaced by `payload` and its manifest node edited."""
    return _with_manifest(_set_first_array(**fields), _replace_entry("arrays/0.npy", payload))


def test_extra_entries_are_refused():
    entries = list(_entries(_checkpoint()).items())
    for extra in ["arrays/99.npy", "evil.py", "arrays/", "checkpoint.json.bak"]:
        _refused(_zip([*entries, (extra, _npy(numpy.zeros(2)))]), f"'{extra}'.*not named")


def test_missing_entries_are_refused():
    _refused(_replace_entry("arrays/1.npy", None), "arrays/1.npy is missing from the archive")
    _refused(_replace_entry(MANIFEST_NAME, None), f"no {MANIFEST_NAME} in the archive")


@pytest.mark.filterwarnings("ignore:Duplicate name")  # zipfile warns as it writes the test file
def test_an_entry_stored_twice_is_refused():
    entries = list(_entries(_checkpoint()).items())
    doubled = [*entries, ("arrays/0.npy", _npy(numpy.zeros((3, 4), numpy.float32)))]
    _refused(_zip(doubled), "holds 'arrays/0.npy' twice")
    _refused(_zip([entries[0], *entries]), f"holds '{MANIFEST_NAME}' twice")


@pytest.mark.parametrize(
    "method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA], ids=str
)
def test_compressed_entries_are_refused(method):
    _refused(_zip(list(_entries(_checkpoint()).items()), method), "is compressed .*method")


def test_zip_bomb_is_refused_without_decompressing():
    # 64 MiB of zeros deflate to about 64 KiB; a consistent manifest and .npy header claim them
    count = 2**24
    bomb = _npy_header((count,)) + bytes(4 * count)
    data = _with_manifest(_set_first_array(shape=[count]), _replace_entry("arrays/0.npy", b""))
    entries = [(n, bomb if n == "arrays/0.npy" else p) for n, p in _entries(data).items()]
    _refused(_zip(entries, zipfile.ZIP_DEFLATED), "is compressed .*method 8")


def test_encrypted_flag_is_refused():
    data = bytearray(_checkpoint())
    central = data.find(CENTRAL_HEADER)
    data[central + 8] |= 0x01  # general purpose flag: encrypted
    _refused(bytes(data), f"'{MANIFEST_NAME}' is encrypted")


@pytest.mark.parametrize(
    ("offset", "value", "match"),
    [
        (6, 0xFF, "truncated or corrupt.*zip file version"),  # version needed to extract
        (8, 0x20, "compressed patched data"),  # general purpose flags
        (8, 0x40, "encrypted|strong encryption"),
        (10, 99, "is compressed .*method 99"),
    ],
    ids=["version", "patched data flag", "strong encryption flag", "compression method"],
)
def test_unsupported_zip_features_are_refused(offset, value, match):
    # zipfile raised NotImplementedError for each of these, and load let it through
    data = bytearray(_checkpoint())
    data[data.find(CENTRAL_HEADER) + offset] = value
    _refused(bytes(data), match)


def test_central_directory_offset_past_the_start_is_refused():
    # the manifest's read then seeks before the start of the file: zipfile raised ValueError
    data = bytearray(_checkpoint())
    end_record = data.rfind(b"PK\x05\x06")
    data[end_record + 18] ^= 0x01
    _refused(bytes(data), "corrupt")


def _patch_central_sizes(data: bytes, name: str, size: int) -> bytes:
    """Set the compressed and uncompressed sizes the central directory declares for `name`."""
    altered = bytearray(data)
    at = altered.find(CENTRAL_HEADER + b"", altered.find(CENTRAL_HEADER))
    while altered[at + 46 : at + 46 + len(name)] != name.encode():
        at = altered.find(CENTRAL_HEADER, at + 4)
    struct.pack_into("<II", altered, at + 20, size, size)
    return bytes(altered)


@pytest.mark.parametrize("size", [0, 10, 2**31, 2**32 - 2])
def test_declared_entry_size_that_lies_is_refused(size):
    _refused(_patch_central_sizes(_checkpoint(), "arrays/1.npy", size), "arrays/1.npy")


def test_huge_array_claimed_by_header_and_manifest_is_refused_before_allocating():
    for shape in [(10**6, 10**6), (2**40, 2**40), (2**31,)]:
        header = _npy_header(shape)
        _refused(_claim(header, shape=list(shape)), "arrays/0.npy .*(holds|declares|size)")


def test_npy_header_that_disagrees_with_its_size_is_refused():
    short = _npy(numpy.zeros((3, 4), numpy.float32))[:-8]
    _refused(_claim(short), "arrays/0.npy")
    long = _npy(numpy.zeros((3, 4), numpy.float32)) + b"\0" * 8
    _refused(_claim(long), "arrays/0.npy")


@pytest.mark.parametrize(
    "header",
    [
        b"\x93NUMPY\x09\x00" + _npy_header((3, 4))[8:],
        b"NOTNUMPY" + _npy_header((3, 4))[8:],
        _npy_header((3, 4))[:20],
        b"\x93NUMPY\x01\x00\xff\xff{",
        _npy_header((3, 4), descr="<f4'"),
    ],
    ids=["version 9", "bad magic", "cut header", "header length past the end", "bad literal"],
)
def test_corrupt_npy_header_is_refused(header):
    _refused(_claim(header + bytes(48)), "arrays/0.npy is corrupt|arrays/0.npy")


def test_fortran_ordered_arrays_round_trip():
    fortran = numpy.asfortranarray(numpy.arange(12, dtype=numpy.float64).reshape(3, 4))
    obj = {"t": gf.tensor(fortran), "a": fortran}
    assert _npy(fortran)[:80].count(b"'fortran_order': True") == 1
    buffer = io.BytesIO()
    save(obj, buffer)
    assert _outcome(buffer.getvalue(), obj) == "intact"


# ---- no code runs on load ------------------------------------------------------------------
class Planted:
    """Unpickling this creates the marker file: it stands for any code a pickle could run."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def _pickled_npy(marker: str, dtype: Any = object) -> bytes:
    planted = numpy.empty(1, dtype=dtype)
    planted[0] = Planted(marker) if dtype is object else (Planted(marker),)
    return _npy(planted)


def test_the_planted_pickle_is_live(tmp_path):
    marker = tmp_path / "pwned"
    planted = npy_format.read_array(io.BytesIO(_pickled_npy(str(marker))), allow_pickle=True)
    planted[0].close()  # the file the payload opened
    assert marker.exists()


@pytest.mark.parametrize(
    "claim",
    [
        {"dtype": "float32", "shape": [1]},
        {"dtype": "|O", "shape": [1]},
        {"type": "ndarray", "dtype": "|O", "shape": [1], "scalar": False},
        {"type": "ndarray", "dtype": "<f4", "shape": [1], "scalar": False},
    ],
    ids=["as float32 tensor", "as object tensor", "as object ndarray", "as float ndarray"],
)
@pytest.mark.parametrize("field", [False, True], ids=["object array", "object field"])
def test_planted_pickle_never_runs(tmp_path, claim, field):
    marker = tmp_path / "pwned"
    dtype = [("a", object)] if field else object
    message = "pickled Python objects|refusing to load|dtype object is not supported"
    _refused(_claim(_pickled_npy(str(marker), dtype), **claim), message)
    assert not marker.exists()


def test_pickle_in_place_of_the_archive_or_manifest_never_runs(tmp_path):
    import pickle

    marker = tmp_path / "pwned"
    payload = pickle.dumps(Planted(str(marker)))
    _refused(payload, "not a readable checkpoint")
    _refused(_replace_entry(MANIFEST_NAME, payload), "not valid JSON")
    assert not marker.exists()


@pytest.mark.parametrize("cut", [None, -30], ids=["whole", "cut short"])
def test_npy_header_with_code_in_it_never_runs(tmp_path, cut):
    marker = tmp_path / "pwned"
    code = f"__import__('builtins').open({str(marker)!r}, 'w')"
    text = f"{{'descr': {code}, 'fortran_order': False, 'shape': (3, 4), }}"[:cut]
    # cut short, numpy's header parser raised tokenize.TokenError (not a ValueError)
    _refused(_claim(_npy_header((), text=text) + bytes(48)), "arrays/0.npy is corrupt")
    assert not marker.exists()


# ---- loading a module's state from a checkpoint --------------------------------------------
def _model_state(**changes: Any) -> dict:
    state = dict(models.mlp().state_dict())
    state.update(changes)
    buffer = io.BytesIO()
    save({k: v for k, v in state.items() if v is not None}, buffer)
    return load(io.BytesIO(buffer.getvalue()))


def test_load_state_dict_after_load_wrong_shape():
    state = _model_state(**{"1.weight": gf.zeros(256, 65)})
    with pytest.raises(ValueError, match=r"size mismatch for '1.weight'.*\(256, 65\).*\(256, 64\)"):
        models.mlp().load_state_dict(state)


def test_load_state_dict_after_load_missing_and_unexpected_keys():
    model = models.mlp()
    with pytest.raises(KeyError, match=r"missing keys: 5.bias.*strict=False"):
        model.load_state_dict(_model_state(**{"5.bias": None}))
    with pytest.raises(KeyError, match=r"unexpected keys: 6.weight"):
        model.load_state_dict(_model_state(**{"6.weight": gf.zeros(2)}))
    assert model.load_state_dict(_model_state(**{"5.bias": None}), strict=False).missing_keys == [
        "5.bias"
    ]


def test_load_state_dict_after_load_value_not_a_tensor():
    with pytest.raises(TypeError, match=r"state_dict\['1.bias'\] is a str; expected a Tensor"):
        models.mlp().load_state_dict(_model_state(**{"1.bias": "zeros"}))


def test_failed_load_state_dict_leaves_the_model_unchanged():
    model = models.mlp()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="size mismatch"):
        model.load_state_dict(_model_state(**{"5.bias": gf.zeros(11)}))
    for key, value in model.state_dict().items():
        assert numpy.array_equal(value.numpy(), before[key])
