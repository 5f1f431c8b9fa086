"""Every kernel family compiles with nvcc for sm_80 and sm_90, both dtypes, warning-free."""

import shutil
import subprocess

import pytest

from gradflow.kernels.loader import FAMILIES, compile_options, read_kernel_source

ARCHS = ("80", "90")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("family", FAMILIES)
def test_family_compiles_with_nvcc(tmp_path, family, dtype):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH")
    source = tmp_path / f"{family}.cu"
    source.write_text(read_kernel_source(family))  # the exact text CuPy compiles
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in ARCHS]
    command = [
        nvcc,
        *compile_options(dtype),
        *gencode,
        "-fatbin",
        "-Werror",
        "all-warnings",
        "-o",
        str(tmp_path / f"{family}.fatbin"),
        str(source),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""
    assert (tmp_path / f"{family}.fatbin").stat().st_size > 0
