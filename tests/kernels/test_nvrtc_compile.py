"""Every kernel family compiles with NVRTC, the runtime compiler CuPy's RawModule uses.

nvcc (test_nvcc_compile.py) and NVRTC differ in what they provide without an #include (NVRTC
has only its builtin headers: the vector types, math functions), so this is the check that
the text the loader hands CuPy compiles as CuPy will compile it; no GPU is needed. It runs
where libnvrtc can be found: GRADFLOW_NVRTC (a path to libnvrtc.so), the system library path,
or an NVIDIA wheel (``pip install nvidia-cuda-nvrtc-cu12``, or ``nvidia-cuda-nvrtc`` for 13.x).
"""

import ctypes
import ctypes.util
import importlib.util
import os
from pathlib import Path

import numpy
import pytest

from gradflow.kernels.loader import FAMILIES, compile_options, read_kernel_source


def _find_nvrtc() -> str | None:
    if os.environ.get("GRADFLOW_NVRTC"):
        return os.environ["GRADFLOW_NVRTC"]
    found = ctypes.util.find_library("nvrtc")
    if found:
        return found
    spec = importlib.util.find_spec("nvidia")  # the wheels: nvidia/cuda_nvrtc/lib, nvidia/cu13/lib
    for root in spec.submodule_search_locations if spec else ():
        for lib in sorted(Path(root).glob("*/lib/libnvrtc.so*")):
            return str(lib)
    return None


@pytest.fixture(scope="module")
def nvrtc():
    path = _find_nvrtc()
    if path is None:
        pytest.skip("libnvrtc not found (pip install nvidia-cuda-nvrtc, or set GRADFLOW_NVRTC)")
    return ctypes.CDLL(path)


def _compile(nvrtc, source: str, name: str, options: list[str]) -> tuple[int, str]:
    """(NVRTC's result code, its log) for one program."""
    prog = ctypes.c_void_p()
    rc = nvrtc.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None)
    assert rc == 0, f"nvrtcCreateProgram failed with {rc}"
    try:
        opts = (ctypes.c_char_p * len(options))(*(o.encode() for o in options))
        rc = nvrtc.nvrtcCompileProgram(prog, len(options), opts)
        size = ctypes.c_size_t()
        nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        nvrtc.nvrtcGetProgramLog(prog, log)
        return rc, log.value.decode(errors="replace")
    finally:
        nvrtc.nvrtcDestroyProgram(ctypes.byref(prog))


@pytest.mark.parametrize("arch", ["compute_80", "compute_90"])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("family", FAMILIES)
def test_family_compiles_with_nvrtc(nvrtc, family, dtype, arch):
    options = [*compile_options(dtype), f"--gpu-architecture={arch}"]
    rc, log = _compile(nvrtc, read_kernel_source(family), f"{family}.cu", options)
    assert rc == 0, f"NVRTC could not compile {family} ({dtype.__name__}, {arch}):\n{log}"
    assert "warning" not in log.lower(), f"NVRTC warned on {family}:\n{log}"


def test_a_broken_source_fails(nvrtc):
    rc, log = _compile(nvrtc, "__global__ void k() { undefined_name(); }", "bad.cu", [])
    assert rc != 0 and "undefined_name" in log
