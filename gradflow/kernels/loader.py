"""Finds the CUDA kernel sources and compiles them through CuPy, once per (family, dtype).

The sources live in the repository's top-level ``kernels/`` directory. Two layouts are searched:

- an installed wheel carries them inside the package, at ``gradflow/_kernel_sources``
  (pyproject.toml force-includes ``kernels/`` there);
- a source tree (editable install, ``PYTHONPATH=.``) has them at ``<repo>/kernels``.

A ``.cu`` file may ``#include "x.cuh"`` a sibling file; :func:`read_kernel_source` inlines such
includes so that the text handed to the compiler is the whole program (CuPy's on-disk cache is
keyed by that text, so editing a shared header invalidates it). Each family is compiled with
``-DGF_SCALAR_T=float`` or ``double``: one module per dtype, kernels named alike in both.

Nothing here imports CuPy at import time; :class:`CupyBackend` imports it on first use.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

FAMILIES = ("elementwise", "fused", "matmul", "optim", "rnn_cells", "conv", "pooling", "attention")
SCALAR_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"[ \t]*$', re.MULTILINE)
# Inlined once already; left in, it would warn "#pragma once in main file".
_PRAGMA_ONCE = re.compile(r"^[ \t]*#[ \t]*pragma[ \t]+once[ \t]*$", re.MULTILINE)
# A directory holds our sources only if it has these (a stray "kernels" dir does not count).
_MARKERS = ("cuda_emulation.h", "elementwise.cu")


def source_dir_candidates(package_dir: Path | None = None) -> list[Path]:
    """The directories searched for kernel sources, in order: wheel layout, then source tree."""
    package_dir = Path(package_dir) if package_dir is not None else _PACKAGE_DIR
    return [package_dir / "_kernel_sources", package_dir.parent / "kernels"]


def kernel_source_dir(package_dir: Path | None = None) -> Path:
    """The directory holding ``kernels/*.cu`` for the gradflow package at ``package_dir``."""
    candidates = source_dir_candidates(package_dir)
    for candidate in candidates:
        if all((candidate / marker).is_file() for marker in _MARKERS):
            return candidate
    searched = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"gradflow kernel sources not found (looked in {searched}); reinstall gradflow, or run "
        "from a checkout that has the top-level kernels/ directory"
    )


def read_kernel_source(family: str, source_dir: Path | None = None) -> str:
    """The text of ``<family>.cu`` with its local ``#include "..."`` files inlined once each."""
    if family not in FAMILIES:
        raise ValueError(f"unknown kernel family {family!r}; expected one of {FAMILIES}")
    source_dir = Path(source_dir) if source_dir is not None else kernel_source_dir()
    return expand_includes(source_dir / f"{family}.cu")


def expand_includes(path: Path, _seen: set[Path] | None = None) -> str:
    """``path``'s text with ``#include "name"`` of files beside it replaced by their text."""
    seen = set() if _seen is None else _seen
    directory = path.parent

    def inline(match: re.Match[str]) -> str:
        included = (directory / match.group(1)).resolve()
        if not included.is_file():
            return match.group(0)  # not ours: leave it to the compiler
        if included in seen:
            return f"// {match.group(1)} already included"
        seen.add(included)
        return _PRAGMA_ONCE.sub("", expand_includes(included, seen))

    return _INCLUDE.sub(inline, path.read_text())


def scalar_type(dtype: Any) -> str:
    """The C type name for a supported dtype (``float`` or ``double``)."""
    try:
        return SCALAR_TYPES[np.dtype(dtype)]
    except (KeyError, TypeError):
        raise TypeError(f"kernels support float32 and float64, not {dtype}") from None


def compile_options(dtype: Any) -> tuple[str, ...]:
    """Compiler options shared by NVRTC, nvcc and the CPU emulation for one dtype."""
    return ("-std=c++17", f"-DGF_SCALAR_T={scalar_type(dtype)}")


_MODULES: dict[tuple[str, str], Any] = {}
_FUNCTIONS: dict[tuple[str, Any, str], Any] = {}


def cupy_module(family: str, dtype: Any) -> Any:
    """The ``cupy.RawModule`` for one family and dtype, compiled on first use and kept."""
    key = (family, scalar_type(dtype))
    module = _MODULES.get(key)
    if module is None:
        import cupy

        module = cupy.RawModule(code=read_kernel_source(family), options=compile_options(dtype))
        _MODULES[key] = module
    return module


def cupy_function(family: str, dtype: Any, kernel: str) -> Any:
    """The kernel ``kernel`` of one family and dtype, kept once fetched: CuPy's
    ``RawModule.get_function`` builds a new kernel object (cuModuleGetFunction) each call."""
    key = (family, dtype, kernel)
    function = _FUNCTIONS.get(key)
    if function is None:
        function = _FUNCTIONS[key] = cupy_module(family, dtype).get_function(kernel)
    return function


class CupyBackend:
    """Runs kernels on CUDA devices through CuPy; the default backend of every launcher."""

    name = "cuda"
    array_type = "cupy.ndarray"

    def __init__(self, max_grid_blocks: int | None = None) -> None:
        self._max_grid_blocks = max_grid_blocks
        self._grid_caps: dict[int, int] = {}

    def is_array(self, x: Any) -> bool:
        import cupy

        return isinstance(x, cupy.ndarray)

    def device_of(self, x: Any) -> int:
        return x.device.id

    def empty(self, shape: tuple[int, ...], dtype: Any, device: int) -> Any:
        import cupy

        with cupy.cuda.Device(device):
            return cupy.empty(shape, dtype=dtype)

    def ascontiguous(self, x: Any) -> Any:
        import cupy

        with x.device:
            return cupy.ascontiguousarray(x)

    def address(self, x: Any) -> int:
        return x.data.ptr

    def upload(self, host: np.ndarray, device: int) -> Any:
        import cupy

        with cupy.cuda.Device(device):
            return cupy.asarray(host)

    def max_grid_blocks(self, device: int) -> int:
        """Grid-stride kernels launch at most this many blocks: 32 per multiprocessor."""
        if self._max_grid_blocks is not None:
            return self._max_grid_blocks
        if device not in self._grid_caps:
            import cupy

            sm_count = cupy.cuda.Device(device).attributes["MultiProcessorCount"]
            self._grid_caps[device] = 32 * sm_count
        return self._grid_caps[device]

    def launch(
        self,
        family: str,
        dtype: Any,
        kernel: str,
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        args: tuple[Any, ...],
        device: int,
    ) -> None:
        import cupy

        with cupy.cuda.Device(device):
            cupy_function(family, dtype, kernel)(grid, block, launch_args(args))


def launch_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The kernel arguments as CuPy must get them: an absent optional array (None) becomes a
    null pointer value, an 8-byte zero. CuPy passes None as a null *pointer to the argument*,
    so the kernel reads an undefined address (0xffffffff was seen: cupy/cupy issue 9046), and
    every ``if (ptr)`` test in our kernels would take the wrong branch."""
    if not any(a is None for a in args):
        return args
    return tuple(_NULL_POINTER if a is None else a for a in args)


_NULL_POINTER = np.uint64(0)


_DEFAULT_BACKEND: CupyBackend | None = None


def default_backend() -> CupyBackend:
    """The process-wide CuPy backend used when a launcher is given no backend."""
    global _DEFAULT_BACKEND
    if _DEFAULT_BACKEND is None:
        _DEFAULT_BACKEND = CupyBackend()
    return _DEFAULT_BACKEND
