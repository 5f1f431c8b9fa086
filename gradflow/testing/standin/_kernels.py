"""The stand-in's ``RawModule`` and ``RawKernel``: our CUDA source run through the emulation.

The source is compiled for the CPU by gradflow.testing.emulation (g++ with OpenMP against
kernels/cuda_emulation.h) with the ``-D`` options CuPy would hand NVRTC. Arguments are typed
as CuPy 14.2 types them (``cupy/cuda/function.pyx``, ``_pointer``): a stand-in array is a
pointer to its first element, ``None`` a null pointer, a ``MemoryPointer`` (``x.data``) a
pointer, a Python ``int`` a ``long long`` (an ``unsigned long long`` from 2**63 up), a
``float`` a ``double``, a ``bool`` a ``bool``, a NumPy scalar its own type, a NumPy array of
size one its value (a larger one is refused); anything else, a subclass of ``int`` included,
is "Unsupported type" (``_scalar.pyx``, ``numpy_dtype_from_pyscalar`` matches exact types).
Unlike CuPy, which passes whatever it is given, the stand-in then checks each argument
against the kernel's C parameter type and raises TypeError on a mismatch (a Python int for
an ``int`` parameter, a float32 array for a ``double*``): on a GPU that reads the wrong
bytes.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from gradflow.kernels.loader import SCALAR_TYPES
from gradflow.testing.emulation import CTYPES as _CTYPES
from gradflow.testing.standin._array import _NP, MemoryPointer, ndarray
from gradflow.testing.standin._counts import COUNTS
from gradflow.testing.standin._cuda import CUDADriverError

_SCALAR_DEFINE = "-DGF_SCALAR_T="
# the C scalar type named by -DGF_SCALAR_T= -> its dtype (the loader's table, inverted)
_SCALAR_TYPES = {name: dtype for dtype, name in SCALAR_TYPES.items()}
_NULL = object()


def _cupy_value(arg: Any) -> tuple[str, Any, np.dtype | None]:
    """("pointer", address, pointee dtype or None) or ("value", value, dtype), as CuPy types
    the argument."""
    if arg is None:
        return "pointer", 0, None
    if type(arg) is ndarray:
        return "pointer", arg.data.ptr, arg.dtype
    if type(arg) is MemoryPointer:
        return "pointer", arg.ptr, None
    if isinstance(arg, _NP):
        if arg.size != 1:
            raise TypeError(
                f"You are trying to pass a numpy.ndarray of shape {arg.shape} as a kernel "
                "parameter. Only numpy.ndarrays of size one can be passed by value. If you "
                "meant to pass a pointer to __global__ memory, you need to pass a cupy.ndarray "
                "instead."
            )
        return "value", arg.reshape(()).item(), arg.dtype
    t = type(arg)
    if t is bool:
        return "value", arg, np.dtype(np.bool_)
    if t is int:
        return "value", arg, np.dtype(np.uint64 if arg >= 2**63 else np.int64)
    if t is float:
        return "value", arg, np.dtype(np.float64)
    if t is complex:
        return "value", arg, np.dtype(np.complex128)
    if isinstance(arg, np.generic):
        return "value", arg.item(), arg.dtype
    raise TypeError(f"Unsupported type {type(arg)}")


class RawKernel:
    """One kernel of a module: ``kernel(grid, block, args, shared_mem=0, stream=None)``."""

    def __init__(self, module: RawModule, name: str) -> None:
        self.module, self.name = module, name

    @property
    def attributes(self) -> dict[str, int]:
        return {"max_threads_per_block": 1024, "num_regs": 32, "shared_size_bytes": 0}

    @property
    def max_threads_per_block(self) -> int:
        return 1024

    def __call__(
        self,
        grid: Any,
        block: Any,
        args: Any,
        *,
        shared_mem: int = 0,
        stream: Any = None,
        enable_cooperative_groups: bool = False,
    ) -> None:
        for what, dims in (("grid", grid), ("block", block)):
            if not isinstance(dims, tuple):
                raise TypeError(
                    f"Argument '{what}' has incorrect type (expected tuple, got "
                    f"{type(dims).__name__})"
                )
        grid3 = tuple(max(1, int(d)) for d in (grid + (1, 1))[:3])
        block3 = tuple(max(1, int(d)) for d in (block + (1, 1))[:3])
        if block3[0] * block3[1] * block3[2] > 1024 or block3[2] > 64:
            raise CUDADriverError(
                f"CUDA_ERROR_INVALID_VALUE: invalid argument (block {block3} has more than "
                "1024 threads or more than 64 in z)"
            )
        if grid3[0] >= 2**31 or grid3[1] > 65535 or grid3[2] > 65535:
            raise CUDADriverError(f"CUDA_ERROR_INVALID_VALUE: invalid argument (grid {grid3})")
        if shared_mem:
            raise NotImplementedError("the emulation has no dynamic shared memory")
        emulated = self.module.emulated()
        params = emulated.signatures[self.name]
        if len(args) != len(params):
            raise TypeError(
                f"{self.name} takes {len(params)} arguments, got {len(args)}: on a GPU the "
                "kernel would read past the argument list"
            )
        values = [
            self._convert(emulated, i, c_type, a) for i, (c_type, a) in enumerate(zip(params, args))
        ]
        emulated.run(self.name, grid3, block3, values)
        COUNTS.raw_launches += 1

    def _convert(self, emulated: Any, index: int, c_type: str, arg: Any) -> Any:
        kind, value, dtype = _cupy_value(arg)
        expected = emulated.dtype_of(c_type)
        where = f"{self.name} argument {index} ({c_type})"
        if "*" in c_type:
            if kind == "pointer" and (dtype is None or dtype == expected):
                return ctypes.c_void_p(value)
            if kind == "value" and dtype == np.uint64 and value == 0:
                return ctypes.c_void_p(0)  # an explicit null pointer value
            got = f"a {dtype} array" if kind == "pointer" else f"a {dtype} value"
            raise TypeError(f"{where}: CuPy would pass {got} where the kernel reads {c_type}")
        if kind == "pointer":
            raise TypeError(f"{where}: CuPy would pass a pointer where the kernel reads {c_type}")
        if dtype != expected:
            hint = {
                int: "a Python int is passed as long long",
                float: "a Python float is passed as double",
            }.get(type(arg), "")
            raise TypeError(
                f"{where}: CuPy would pass a {dtype} value ({hint or 'its own type'}); pass "
                f"numpy.{expected}(...) so the kernel reads the bytes it expects"
            )
        return _CTYPES[expected](value)


class RawModule:
    """``cupy.RawModule(code=..., options=(...))``; compiled (emulated) on first use."""

    def __init__(
        self,
        *,
        code: str | None = None,
        path: str | None = None,
        options: tuple[str, ...] = (),
        backend: str = "nvrtc",
        translate_cucomplex: bool = False,
        enable_cooperative_groups: bool = False,
        name_expressions: Any = None,
        jitify: Any = None,
    ) -> None:
        if (code is None) == (path is None):
            raise TypeError("Exactly one of `code` and `path` keyword arguments must be given.")
        if code is not None and not isinstance(code, str):
            raise TypeError(
                f"Argument 'code' has incorrect type (expected str, got {type(code).__name__})"
            )
        if not isinstance(options, tuple):
            raise TypeError(
                f"Argument 'options' has incorrect type (expected tuple, got "
                f"{type(options).__name__})"
            )
        if path is not None:
            raise NotImplementedError("the CuPy stand-in compiles source code only")
        self.code, self.options, self.backend = code, options, backend
        self._emulated: Any = None

    def emulated(self) -> Any:
        if self._emulated is None:
            from gradflow.testing.emulation import compile_emulation

            defines = [o for o in self.options if o.startswith(("-D", "-U"))]
            scalar = next(
                (
                    _SCALAR_TYPES.get(o[len(_SCALAR_DEFINE) :])
                    for o in self.options
                    if o.startswith(_SCALAR_DEFINE)
                ),
                None,
            )
            self._emulated = compile_emulation(self.code, defines, scalar)
        return self._emulated

    def get_function(self, name: str) -> RawKernel:
        """A new kernel object each call, as CuPy makes one (cuModuleGetFunction): counted,
        so tests can check that launchers keep theirs."""
        COUNTS.get_function += 1
        if name not in self.emulated().signatures:
            raise CUDADriverError(f"CUDA_ERROR_NOT_FOUND: named symbol not found ({name})")
        return RawKernel(self, name)


def raw_kernel(code: str, name: str, options: tuple[str, ...] = (), **kwargs: Any) -> RawKernel:
    """``cupy.RawKernel(code, name, options)``."""
    return RawModule(code=code, options=options).get_function(name)


_ = _NULL
