"""gradflow.kernels.loader: finding the sources in a source tree and in a built wheel."""

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy
import pytest

import gradflow.kernels.loader as loader

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted(p.name for p in (REPO / "kernels").iterdir() if p.suffix in (".cu", ".cuh", ".h"))


def test_sources_are_found_in_the_source_tree():
    assert loader.kernel_source_dir() == REPO / "kernels"
    assert {"cuda_emulation.h", "activation.cuh", *(f"{f}.cu" for f in loader.FAMILIES)} <= set(
        SOURCES
    )


def test_read_kernel_source_inlines_local_includes():
    text = loader.read_kernel_source("fused")
    assert '#include "activation.cuh"' not in text
    assert "act_grad(int act, scalar_t z)" in text  # from activation.cuh
    assert 'extern "C" __global__ void softmax_xent_fwd' in text
    assert text.count("__device__ __forceinline__ scalar_t gelu_erf_grad") == 1


def test_unknown_family_and_missing_sources_are_reported(tmp_path):
    with pytest.raises(ValueError, match=r"unknown kernel family 'conv3d'; expected one of"):
        loader.read_kernel_source("conv3d")
    package = tmp_path / "gradflow"
    package.mkdir()
    (tmp_path / "kernels").mkdir()  # a directory of that name without our sources
    with pytest.raises(FileNotFoundError, match=r"gradflow kernel sources not found \(looked in "):
        loader.kernel_source_dir(package)


def test_wheel_layout_is_preferred(tmp_path):
    package = tmp_path / "gradflow"
    wheel_dir = package / "_kernel_sources"
    for directory in (wheel_dir, tmp_path / "kernels"):
        directory.mkdir(parents=True)
        for name in ("cuda_emulation.h", "elementwise.cu"):
            (directory / name).write_text("// " + str(directory))
    assert loader.kernel_source_dir(package) == wheel_dir


def test_compile_options_name_the_scalar_type():
    assert loader.compile_options("float32") == ("-std=c++17", "-DGF_SCALAR_T=float")
    assert loader.compile_options("float64")[1] == "-DGF_SCALAR_T=double"
    with pytest.raises(TypeError, match=r"kernels support float32 and float64, not int32"):
        loader.compile_options("int32")


def test_import_neither_imports_cupy_nor_compiles():
    code = (
        "import sys, gradflow.kernels, gradflow.kernels.loader as l; "
        "assert 'cupy' not in sys.modules, 'cupy imported'; assert not l._MODULES"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory):
    if importlib.util.find_spec("hatchling") is None:
        pytest.skip("hatchling is not installed (pip install hatchling) to build the wheel")
    # Build from a staging copy of what the wheel is made of, so the build writes nothing into
    # the checkout; the README is stubbed only while the project has none yet.
    stage = tmp_path_factory.mktemp("stage")
    shutil.copy(REPO / "pyproject.toml", stage)
    for directory in ("gradflow", "kernels"):
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(REPO / directory, stage / directory, ignore=ignore)
    readme = REPO / "README.md"
    if readme.is_file():
        shutil.copy(readme, stage)
    else:
        (stage / "README.md").write_text("gradflow\n")
    out = tmp_path_factory.mktemp("wheel")
    command = [
        *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"),
        *("-w", str(out), str(stage)),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (wheel,) = out.glob("gradflow-*.whl")
    unpacked = out / "unpacked"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    return unpacked


def test_wheel_ships_the_sources_and_the_loader_finds_them(unpacked_wheel):
    shipped = unpacked_wheel / "gradflow" / "_kernel_sources"
    assert sorted(p.name for p in shipped.iterdir() if p.name in SOURCES) == SOURCES
    assert loader.kernel_source_dir(unpacked_wheel / "gradflow") == shipped
    for family in loader.FAMILIES:
        assert loader.read_kernel_source(family, shipped) == loader.read_kernel_source(family)


def test_wheel_ships_the_dispatch_table(unpacked_wheel):
    from gradflow.kernels import dispatch

    shipped = unpacked_wheel / "gradflow" / "kernels" / dispatch.TABLE_PATH.name
    assert shipped.read_text() == dispatch.TABLE_PATH.read_text()


def test_absent_arrays_reach_cupy_as_null_pointer_values():
    a = numpy.zeros(3)
    args = (a, None, numpy.int64(5), None, numpy.int32(1))
    out = loader.launch_args(args)
    assert out[0] is a and out[2] is args[2] and out[4] is args[4]
    for null in (out[1], out[3]):  # an 8-byte zero, as a pointer parameter expects
        assert isinstance(null, numpy.generic) and null.itemsize == 8 and int(null) == 0
    plain = (a, numpy.int64(1))
    assert loader.launch_args(plain) is plain
