"""Every kernel family compiles with NVRTC, the runtime compiler CuPy's RawModule uses.

nvcc (test_nvcc_compile.py) and NVRTC differ in what they provide without an #include (NVRTC
has only its builtin headers: the vector types, math functions), so this is the check that
the text the loader hands CuPy compiles as CuPy will compile it; no GPU is needed. The family
tests pass no -I, so a kernel that starts to need a CUDA header fails here until the options
(and CuPy's) carry it: cuda_include_dir() has the directory for that.

libnvrtc comes from the dev extra's ``nvidia-cuda-nvrtc`` wheel (or GRADFLOW_NVRTC, a CUDA
toolkit, the system library path); gradflow.testing.nvrtc finds and loads it. Without any the
tests skip, except where the wheel is installed or GRADFLOW_NVRTC set: then failing to load
it is a failure.
"""

import ctypes
import importlib.metadata
import os
import sys

import numpy
import pytest

from gradflow.kernels.loader import FAMILIES, compile_options, read_kernel_source
from gradflow.testing.nvrtc import ENV_VAR, cuda_include_dir, load_nvrtc

NVRTC_WHEELS = ("nvidia-cuda-nvrtc", "nvidia-cuda-nvrtc-cu12")


def _wheel_installed() -> str | None:
    for name in NVRTC_WHEELS:
        try:
            return f"{name} {importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


@pytest.fixture(scope="module")
def nvrtc():
    lib, detail = load_nvrtc()
    if lib is None:
        if os.environ.get(ENV_VAR):
            pytest.fail(f"{ENV_VAR} is set but NVRTC could not be loaded: {detail}")
        wheel = _wheel_installed()
        if wheel and sys.platform.startswith("linux"):
            pytest.fail(f"{wheel} is installed but NVRTC could not be loaded: {detail}")
        pytest.skip(detail)
    print(detail)
    return lib


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


def test_cuda_fp16_header_compiles_with_the_wheel_headers(nvrtc):
    include = cuda_include_dir()
    if include is None:
        pytest.skip("no CUDA headers with cuda_fp16.h (pip install nvidia-cuda-runtime)")
    source = (
        "#include <cuda_fp16.h>\n"
        'extern "C" __global__ void add_one(__half* x) {\n'
        "    x[threadIdx.x] = __hadd(x[threadIdx.x], __float2half(1.0f));\n"
        "}\n"
    )
    options = ["-std=c++17", "--gpu-architecture=compute_80", f"-I{include}"]
    rc, log = _compile(nvrtc, source, "fp16.cu", options)
    assert rc == 0, f"NVRTC could not compile cuda_fp16.h from {include}:\n{log}"
