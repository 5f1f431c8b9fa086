"""Runs the CUDA kernels of kernels/*.cu on the CPU, on NumPy arrays, for tests.

A family's source (includes inlined, as CuPy gets it) is compiled by g++ with OpenMP against
``kernels/cuda_emulation.h`` into a shared library, one per (source, dtype), cached on disk
under ``$GRADFLOW_CACHE_DIR/emulation`` (default ``~/.cache/gradflow/emulation``) by a hash of
the source, the header, the flags and the compiler. The header documents the execution model:
blocks run one after another, each block's threads are one OpenMP team, ``__syncthreads()``
is an OpenMP barrier and ``__shared__`` storage is shared by the running block.

Kernel signatures are read from the preprocessed source, so each launch checks that the
arguments match the C parameter types (NumPy scalars of the exact dtype for values; NumPy
arrays of the pointee dtype, or None, for pointers): a launcher that would pass a wrong type
to the GPU fails here with a clear message instead of corrupting memory.

:class:`EmulationBackend` is a drop-in launcher backend (see gradflow/kernels/_common.py), so
tests drive the real launchers: ``activation_bwd("relu", x, g, backend=EmulationBackend())``.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gradflow.backend.routing import kernels_through
from gradflow.kernels.loader import compile_options, kernel_source_dir, read_kernel_source

COMPILER = "g++"
FLAGS = ("-O2", "-fopenmp", "-shared", "-fPIC")
_SIGNATURE = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)')
_VALUE_TYPES = {
    "float": np.float32,
    "double": np.float64,
    "int": np.int32,
    "unsigned": np.uint32,
    "unsigned int": np.uint32,
    "long long": np.int64,
    "unsigned long long": np.uint64,
    "bool": np.bool_,
}
CTYPES = {  # a scalar dtype -> the ctypes type a kernel argument of it is passed as
    np.dtype(np.float32): ctypes.c_float,
    np.dtype(np.float64): ctypes.c_double,
    np.dtype(np.int32): ctypes.c_int32,
    np.dtype(np.uint32): ctypes.c_uint32,
    np.dtype(np.int64): ctypes.c_int64,
    np.dtype(np.uint64): ctypes.c_uint64,
    np.dtype(np.bool_): ctypes.c_bool,
}
_LOCK = threading.Lock()
_MODULES: dict[str, EmulatedModule] = {}


def unavailable_reason() -> str | None:
    """Why kernels cannot be emulated here (for ``pytest.skip``), or None when they can."""
    if shutil.which(COMPILER) is None:
        return f"{COMPILER} (with OpenMP) is not on PATH; it compiles the CUDA kernel emulation"
    return None


def cache_dir() -> Path:
    """Where compiled emulation libraries are kept."""
    root = os.environ.get("GRADFLOW_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "gradflow"
    return base / "emulation"


_BARRIER = re.compile(r"\b(__syncthreads|__shared__)\b")
_CALL = re.compile(r"\b(\w+)\s*(?:<[^<>;{}]*>)?\s*\(")
_HEAD = re.compile(r"(\w+)\s*\([^{};]*\)\s*(?:const\s*)?(?:noexcept\s*)?$")


def barrier_free_kernels(preprocessed: str, kernels: Sequence[str]) -> set[str]:
    """The kernels whose threads never wait for each other: no ``__syncthreads`` and no
    ``__shared__`` in their body or in any function they call, directly or not. Their blocks
    run as a plain loop over the threads, which gives the same results as a team of threads
    (the threads are independent) at a fraction of the cost. Conservative: if a barrier sits
    outside the top-level function bodies found here, every kernel keeps its team."""
    bodies: dict[str, list[str]] = {}
    depth, start, name, last_end = 0, 0, None, 0
    outside = []
    for brace in re.finditer(r"[{}]", preprocessed):
        if brace.group() == "{":
            if depth == 0:
                head = _HEAD.search(preprocessed[last_end : brace.start()])
                name, start = (head.group(1) if head else None), brace.end()
                outside.append(preprocessed[last_end : brace.start()])
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                body = preprocessed[start : brace.start()]
                if name is None:
                    outside.append(body)
                else:
                    bodies.setdefault(name, []).append(body)
                last_end = brace.end()
    outside.append(preprocessed[last_end:])
    if any(_BARRIER.search(text) for text in outside):
        return set()
    text = {n: "\n".join(b) for n, b in bodies.items()}
    waits = {n for n, body in text.items() if _BARRIER.search(body)}
    changed = True
    while changed:  # a function calling one that waits, waits
        changed = False
        for n, body in text.items():
            if n not in waits and any(c in waits for c in _CALL.findall(body)):
                waits.add(n)
                changed = True
    return {k for k in kernels if k in text and k not in waits}


def _preprocess(source: str, defines: Sequence[str]) -> str:
    done = subprocess.run(
        [COMPILER, "-E", "-P", *defines, "-x", "c++", "-"],
        input=source,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"preprocessing the kernel source failed:\n{done.stderr}")
    return done.stdout


def kernel_signatures(source: str, defines: Sequence[str]) -> dict[str, list[str]]:
    """Kernel name -> C parameter types, read from the preprocessed source (macros expanded)."""
    return _signatures(_preprocess(source, defines))


def _signatures(preprocessed: str) -> dict[str, list[str]]:
    signatures = {}
    for name, params in _SIGNATURE.findall(preprocessed):
        types = []
        for param in params.split(","):
            words = param.replace("*", " * ").replace("__restrict__", " ").split()
            types.append(" ".join(words[:-1]))  # drop the parameter's name
        signatures[name] = types
    return signatures


class EmulatedModule:
    """A compiled emulation library: its kernels, launched like ``kernel(grid, block, args)``."""

    def __init__(
        self,
        library: Path,
        signatures: dict[str, list[str]],
        scalar: Any,
        serial: Sequence[str] = (),
    ) -> None:
        self.library = ctypes.CDLL(str(library))
        self.signatures = signatures
        self.scalar = None if scalar is None else np.dtype(scalar)
        self.serial = frozenset(serial)  # kernels whose blocks run as a loop (no barriers)

    def launch(
        self,
        kernel: str,
        grid: Sequence[int],
        block: Sequence[int],
        args: Sequence[Any],
    ) -> None:
        """Runs ``kernel`` over ``grid`` blocks of ``block`` threads (3-tuples) on ``args``."""
        if kernel not in self.signatures:
            raise ValueError(f"no kernel {kernel!r}; this module has {sorted(self.signatures)}")
        params = self.signatures[kernel]
        if len(args) != len(params):
            raise TypeError(f"{kernel} takes {len(params)} arguments, got {len(args)}")
        values = [self._convert(kernel, i, t, a) for i, (t, a) in enumerate(zip(params, args))]
        self.run(kernel, grid, block, values)

    def run(
        self,
        kernel: str,
        grid: Sequence[int],
        block: Sequence[int],
        values: Sequence[Any],
    ) -> None:
        """Runs ``kernel`` on arguments already converted to ctypes values (one per C
        parameter, pointers as ``c_void_p``); the CuPy stand-in launches through this."""
        argv = (ctypes.c_void_p * len(values))(*(ctypes.addressof(v) for v in values))
        config = (ctypes.c_uint * 7)(*grid, *block, kernel in self.serial)
        entry = getattr(self.library, f"gf_launch_{kernel}")
        entry.restype = ctypes.c_int
        if entry(config, argv):
            raise RuntimeError(f"{kernel}: OpenMP could not start a team of {block} threads")

    def dtype_of(self, c_type: str) -> np.dtype:
        """The NumPy dtype of a C parameter type (its pointee, for a pointer)."""
        base = " ".join(w for w in c_type.split() if w not in ("const", "*"))
        if base == "scalar_t":
            return self.scalar
        return np.dtype(_VALUE_TYPES[base])

    def _convert(self, kernel: str, index: int, c_type: str, arg: Any) -> Any:
        expected = self.dtype_of(c_type)
        where = f"{kernel} argument {index} ({c_type})"
        if "*" in c_type:
            if arg is None:
                return ctypes.c_void_p(0)
            if not isinstance(arg, np.ndarray) or arg.dtype != expected:
                raise TypeError(f"{where}: expected a {expected} array or None, got {arg!r:.80}")
            return ctypes.c_void_p(arg.ctypes.data)
        if not isinstance(arg, np.generic) or arg.dtype != expected:
            raise TypeError(f"{where}: expected a numpy.{expected} scalar, got {arg!r:.80}")
        return CTYPES[expected](arg.item())


def compile_emulation(source: str, defines: Sequence[str], scalar: Any = None) -> EmulatedModule:
    """Compiles CUDA ``source`` for the CPU (cached on disk and in memory) and loads it."""
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    header = kernel_source_dir() / "cuda_emulation.h"
    command = [COMPILER, *FLAGS, *defines, "-include", str(header), "-x", "c++"]
    key_text = "\0".join([source, header.read_text(), *command, _compiler_version()])
    key = hashlib.sha256(key_text.encode()).hexdigest()[:32]
    with _LOCK:
        if key not in _MODULES:
            _MODULES[key] = _build(key, source, defines, command, scalar)
        return _MODULES[key]


def _build(
    key: str, source: str, defines: Sequence[str], command: list[str], scalar: Any
) -> EmulatedModule:
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    library, sig_file = directory / f"{key}.so", directory / f"{key}.json"
    if not (library.is_file() and sig_file.is_file()):
        preprocessed = _preprocess(source, defines)
        signatures = _signatures(preprocessed)
        serial = sorted(barrier_free_kernels(preprocessed, list(signatures)))
        exports = "".join(f"\nGF_EMU_EXPORT({name})" for name in signatures)
        # Another process may build the same key at once: each writes a private temporary
        # file and renames it into place, so readers only ever see whole files.
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=directory)
        os.close(fd)
        try:
            done = subprocess.run(
                [*command, "-", "-o", tmp],
                input=source + exports + "\n",
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode:
                raise RuntimeError(f"compiling the kernel emulation failed:\n{done.stderr}")
            os.replace(tmp, library)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        _write_atomically(sig_file, json.dumps({"signatures": signatures, "serial": serial}))
    # Oversubscribed teams (256 threads on a few cores) must sleep at barriers, not spin.
    # libgomp reads this when it is loaded, so it only helps if it is not loaded yet.
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    kernels = json.loads(sig_file.read_text())
    return EmulatedModule(library, kernels["signatures"], scalar, kernels["serial"])


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


_VERSION: list[str] = []


def _compiler_version() -> str:
    if not _VERSION:
        done = subprocess.run([COMPILER, "--version"], capture_output=True, text=True, check=False)
        _VERSION.append(done.stdout)
    return _VERSION[0]


def emulated_module(family: str, dtype: Any) -> EmulatedModule:
    """The emulation of ``kernels/<family>.cu`` compiled for ``dtype`` (float32/float64)."""
    return compile_emulation(read_kernel_source(family), compile_options(dtype), dtype)


class EmulationBackend:
    """A launcher backend (gradflow/kernels/_common.py) running kernels on NumPy arrays."""

    name = "emulation"
    array_type = "numpy.ndarray"

    def __init__(self, max_grid_blocks: int = 64) -> None:
        # Small by default: every emulated block is a team of OpenMP threads, and tests use
        # a tiny cap to make the grid-stride loops do several rounds.
        self._max_grid_blocks = max_grid_blocks

    def is_array(self, x: Any) -> bool:
        return isinstance(x, np.ndarray)

    def device_of(self, x: Any) -> Hashable:
        return "cpu"

    def empty(self, shape: tuple[int, ...], dtype: Any, device: Hashable) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def ascontiguous(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x)

    def address(self, x: np.ndarray) -> int:
        return x.ctypes.data

    def upload(self, host: np.ndarray, device: Hashable) -> np.ndarray:
        return np.ascontiguousarray(host)

    def max_grid_blocks(self, device: Hashable) -> int:
        return self._max_grid_blocks

    def launch(
        self,
        family: str,
        dtype: Any,
        kernel: str,
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        args: tuple[Any, ...],
        device: Hashable,
    ) -> None:
        emulated_module(family, dtype).launch(kernel, grid, block, args)


@contextlib.contextmanager
def route_kernels(max_grid_blocks: int = 4) -> Iterator[EmulationBackend]:
    """Within the block, ops take their GPU kernel route on NumPy arrays through the emulation.

    This is how the tests hold an op's kernel path to its NumPy path without a GPU: the op code,
    the launcher and the kernel source are the ones a cuda tensor uses.
    """
    with kernels_through(EmulationBackend(max_grid_blocks)) as backend:
        yield backend
