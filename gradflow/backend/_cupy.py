"""Guarded CuPy import: CuPy is optional, and its import error is kept for the user."""

from __future__ import annotations

import os
import sys
from typing import Any

_INSTALL_HINT = (
    "install CuPy for your CUDA toolkit: pip install 'gradflow[cuda12]' (CUDA 12.x) "
    "or pip install 'gradflow[cuda13]' (CUDA 13.x)"
)

STANDIN_ENV = "GRADFLOW_CUDA_STANDIN"
_cupy: Any = None
_import_error: BaseException | None = None
_tried = False


class CudaUnavailableError(RuntimeError):
    """CUDA was asked for but CuPy or a usable GPU is missing."""


def cupy_module() -> Any:
    """Return the cupy module, or None when it cannot be imported (the error is kept)."""
    global _cupy, _import_error, _tried
    if not _tried:
        _tried = True
        try:
            if os.environ.get(STANDIN_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
                # The CPU stand-in of CuPy 14.2, for running the cuda path without a GPU
                # (docs/DESIGN.md §9). Imported only when asked for: backend imports nothing
                # of gradflow's otherwise.
                from gradflow.testing.standin import install

                _cupy = install()
                return _cupy
            import cupy

            _cupy = cupy
        except Exception as exc:  # ImportError, or a broken CUDA install raising at import
            _import_error = exc
    return _cupy


def loaded_cupy() -> Any:
    """Return cupy only if something has already imported it (never triggers an import)."""
    return _cupy if _cupy is not None else sys.modules.get("cupy")


def device_count() -> int:
    """Number of CUDA devices CuPy can see; 0 without CuPy or a driver."""
    cp = cupy_module()
    if cp is None:
        return 0
    try:
        return int(cp.cuda.runtime.getDeviceCount())
    except Exception:
        return 0


def require_cupy(index: int = 0) -> Any:
    """Return cupy after checking that CUDA device `index` exists; raise a clear error otherwise."""
    cp = cupy_module()
    if cp is None:
        raise CudaUnavailableError(
            f"CUDA was requested but CuPy could not be imported; {_INSTALL_HINT}. "
            f"Original error: {_import_error!r}. Use device='cpu' (or 'auto' to pick cuda only "
            "when it is available)."
        ) from _import_error
    try:
        count = int(cp.cuda.runtime.getDeviceCount())
    except Exception as exc:
        raise CudaUnavailableError(
            "CUDA was requested but no usable GPU was found: the CUDA driver reported "
            f"{exc!r}. Check the NVIDIA driver and that the GPU is visible "
            "(nvidia-smi, CUDA_VISIBLE_DEVICES), or use device='cpu'."
        ) from exc
    if count == 0:
        raise CudaUnavailableError(
            "CUDA was requested but CuPy sees no GPU (device count 0); use device='cpu'."
        )
    if not 0 <= index < count:
        raise CudaUnavailableError(
            f"CUDA device {index} was requested but only {count} device(s) exist "
            f"(valid: cuda:0 .. cuda:{count - 1})."
        )
    return cp
