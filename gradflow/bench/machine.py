"""What a benchmark figure depends on: CPU model, cores, Python, NumPy and its BLAS, torch,
CuPy and the GPU, and the source commit. Shared by `gradflow bench`, benchmarks/_util.py and
the record-writing scripts in benchmarks/."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy

TORCH_THREADS_VARIABLE = "GRADFLOW_BENCH_TORCH_THREADS"


def torch_or_none() -> Any:
    """The torch module when it is importable, else None (torch is never a dependency); looked
    up on every call (Python caches the import), so a test that hides torch sees None.

    It sets torch's intra-op threads for the process: one unless GRADFLOW_BENCH_TORCH_THREADS
    says otherwise (gradflow.bench.model restores the caller's count when it returns):
    in one process beside NumPy's OpenBLAS pool, torch's OpenMP pool oversubscribes a 2-core
    machine (both spin-wait), and a 0.3 ms MLP step took 75 ms, for gradflow and torch alike.
    One torch thread was also torch's faster setting for the engine suite's sizes.
    """
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(int(os.environ.get(TORCH_THREADS_VARIABLE, "1")))
    return torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() where that is missing)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> str:
    """The BLAS NumPy was built against (name and version), as NumPy reports it."""
    try:
        config = numpy.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict mode
        return "unknown"


def gpu_description() -> dict:
    """The GPU's name, memory and the CUDA/CuPy versions, or {} without a usable GPU."""
    try:
        from gradflow.backend import cupy_module, device_count

        if device_count() == 0:
            return {}
        cupy = cupy_module()
        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        return {
            "gpu_name": name.decode() if isinstance(name, bytes) else str(name),
            "gpu_memory_GiB": round(props["totalGlobalMem"] / 2**30, 1),
            "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
            "cupy": cupy.__version__,
        }
    except Exception as exc:  # the description must never break a run
        return {"gpu_error": str(exc)}


def machine_description() -> dict:
    """What a benchmark figure depends on: CPU, cores, Python, NumPy/BLAS, torch, CuPy/GPU."""
    desc: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "blas": blas_info(),
    }
    torch = torch_or_none()
    if torch is not None:
        desc["torch"] = torch.__version__
        desc["torch_threads"] = torch.get_num_threads()
    try:
        import gradflow
        from gradflow.backend import blas, compiled

        desc["gradflow"] = gradflow.__version__
        desc["compiled_loops"] = compiled.status()  # "numba X.Y", or why they are off
        desc["cblas"] = blas.status()  # gemm with beta = 1 and omatcopy, or why they are off
        desc["gpu"] = gradflow.cuda.is_available()
    except Exception as exc:  # the description must never break a run
        desc["gradflow"] = f"unavailable ({exc})"
    desc.update(gpu_description())
    return desc


def describe_machine_line() -> str:
    """The machine description as one line, for result files and the README table."""
    return ", ".join(f"{k}={v}" for k, v in machine_description().items())


def source_commit() -> str:
    """The short hash of the git checkout gradflow runs from, marked when its working tree has
    changes; "unknown" outside a checkout (an installed package) or without git."""
    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return done.stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD") or "unknown"
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except OSError:
        return "unknown"
    return f"{head} (with uncommitted changes)" if dirty else head
