"""A stand-in for CuPy 14.2 on machines without a GPU: runs gradflow's cuda path on the CPU.

``GRADFLOW_CUDA_STANDIN=1`` makes gradflow import this instead of CuPy (see
gradflow/backend/_cupy.py); then ``gradflow.cuda.is_available()`` is True, one cuda device
exists, and every test marked ``gpu`` runs its cuda variant here. :func:`install` does the same
from Python. What it is:

- A ``cupy`` module (with ``cupy.cuda``, ``cupy.random``, ``cupy.linalg``, ``cupyx`` and
  ``cupyx.scipy.special``) exposing only names CuPy 14.2 has (``cupy_14_2_names.json``, read
  from CuPy's source by ``names.py``); a name CuPy has that the stand-in does not implement
  raises AttributeError saying so.
- A distinct ``ndarray`` over NumPy buffers that refuses what CuPy refuses (``_array.py``).
- ``RawModule`` kernels run through the CPU emulation with CuPy's argument typing, checked
  against the kernel's C signature (``_kernels.py``).
- Counters of kernel launches, cuBLAS calls, host syncs and copies (``counting()``).

What it cannot show: speed (nothing here is timed meaningfully), CUDA's math library rounding
(``expf``, ``__expf``), ``-ftz`` and FMA contraction (the emulation compiles with g++), real
concurrency between streams or between blocks (blocks run one after another), races inside
a kernel beyond what the emulation's OpenMP teams expose, out-of-memory, multi-GPU, and
cuBLAS's own algorithms (GEMMs are NumPy's).
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any

from gradflow.testing.standin._counts import COUNTS, Counts, counting, snapshot

ENV = "GRADFLOW_CUDA_STANDIN"
__all__ = ["COUNTS", "ENV", "Counts", "counting", "enabled", "install", "is_standin", "snapshot"]
_MODULES: dict[str, types.ModuleType] = {}


def enabled() -> bool:
    """True when ``GRADFLOW_CUDA_STANDIN`` asks for the stand-in (``1``, ``true``, ``yes``)."""
    return os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")


def is_standin(module: Any) -> bool:
    """True for the stand-in ``cupy`` module."""
    return getattr(module, "__gradflow_standin__", False)


class _Module(types.ModuleType):
    """A module that explains a missing name: absent from CuPy, or not in the stand-in."""

    _cupy_names: frozenset[str] = frozenset()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name in self._cupy_names:
            raise AttributeError(
                f"the CuPy stand-in does not implement {self.__name__}.{name} (CuPy 14.2 has "
                "it): add it to gradflow/testing/standin"
            )
        raise AttributeError(
            f"module '{self.__name__}' has no attribute '{name}': CuPy 14.2 has no such name, "
            "so this code would fail on a GPU as well"
        )


def _make(name: str, names: frozenset[str], members: dict[str, Any]) -> _Module:
    module = _Module(name)
    module._cupy_names = names
    module.__gradflow_standin__ = True
    for key, value in members.items():
        setattr(module, key, value)
    return module


def module(name: str = "cupy") -> types.ModuleType:
    """The stand-in ``cupy`` module, or another of its modules by name (``"cupyx"``,
    ``"cupy.cuda"``, ...): built on first use, not installed into ``sys.modules``, so tests
    can use the stand-in without turning gradflow's cuda path on."""
    if "cupy" not in _MODULES:
        _build()
    return _MODULES[name]


def _build() -> None:
    import numpy as np

    from gradflow.testing.standin import _cuda, _kernels, _module, _random, names

    lists = names.load()
    top = lists["cupy"]
    members = _module.build(top)
    _module.register_dispatch(members)
    linalg_names = lists["cupy.linalg"]
    linalg = _make(
        "cupy.linalg",
        linalg_names,
        {
            n: _module._gemm(n) if n in ("matmul",) else _module._generic(n, getattr(np.linalg, n))
            for n in linalg_names
            if callable(getattr(np.linalg, n, None))
        },
    )
    for n in linalg_names:
        target = getattr(np.linalg, n, None)
        if target is not None and callable(target):
            _module._FUNCTIONS[target] = getattr(linalg, n)
    cuda = _cuda.build(lists["cupy.cuda"])
    cuda.__class__ = _Module
    cuda._cupy_names = lists["cupy.cuda"]
    random = _random.build(lists["cupy.random"])
    random.__class__ = _Module
    random._cupy_names = lists["cupy.random"]
    pool = _cuda.MemoryPool()
    pinned = _cuda.PinnedMemoryPool()
    members.update(
        __version__="14.2.0",
        cuda=cuda,
        random=random,
        linalg=linalg,
        is_available=lambda: True,
        RawModule=_kernels.RawModule,
        RawKernel=_kernels.raw_kernel,
        get_default_memory_pool=lambda: pool,
        get_default_pinned_memory_pool=lambda: pinned,
        show_config=lambda **kw: print(
            "CuPy stand-in (gradflow.testing.standin), CuPy 14.2 surface"
        ),
    )
    unknown = set(members) - top - {"__version__"}
    if unknown:
        raise AssertionError(f"the stand-in defines names CuPy 14.2 lacks: {sorted(unknown)}")
    cupy = _make("cupy", top, members)
    special = _make(
        "cupyx.scipy.special", lists["cupyx.scipy.special"], dict(_module.SPECIAL_FUNCTIONS)
    )
    scipy = _make("cupyx.scipy", frozenset({"special"}), {"special": special})
    cupyx_members = {
        "scatter_add": _module.scatter_add,
        "scatter_max": _module.scatter_max,
        "scatter_min": _module.scatter_min,
        "rsqrt": _module.rsqrt,
        "scipy": scipy,
        "allow_synchronize": _allow_synchronize,
        "DeviceSynchronized": _device_synchronized(),
        "errstate": np.errstate,
        "geterr": np.geterr,
        "seterr": np.seterr,
    }
    cupyx = _make("cupyx", lists["cupyx"], cupyx_members)
    _MODULES.update(
        {
            "cupy": cupy,
            "cupy.cuda": cuda,
            "cupy.cuda.runtime": cuda.runtime,
            "cupy.cuda.memory_hook": cuda.memory_hook,
            "cupy.random": random,
            "cupy.linalg": linalg,
            "cupyx": cupyx,
            "cupyx.scipy": scipy,
            "cupyx.scipy.special": special,
        }
    )


def _device_synchronized() -> type:
    from gradflow.testing.standin._array import DeviceSynchronized

    return DeviceSynchronized


class _allow_synchronize:
    """``cupyx.allow_synchronize(False)``: a host sync inside the block raises
    DeviceSynchronized (CuPy's own sync detector, cupy/_core/syncdetect.py): per thread, and
    with the UserWarning CuPy gives on entering (the API is deprecated since CuPy v10)."""

    def __init__(self, allow: bool) -> None:
        self.allow = bool(allow)

    def __enter__(self) -> None:
        import warnings

        from gradflow.testing.standin._array import sync_allowed

        warnings.warn(
            "cupyx.allow_synchronize will be removed in future releases as it is not possible "
            "to reliably detect synchronizations.",
            stacklevel=2,
        )
        sync_allowed().append(self.allow)

    def __exit__(self, *exc: Any) -> None:
        from gradflow.testing.standin._array import sync_allowed

        sync_allowed().pop()


def install() -> types.ModuleType:
    """Puts the stand-in into ``sys.modules`` as ``cupy`` (and the submodules gradflow uses);
    returns it. Refuses when a real CuPy is already imported: the two cannot share arrays."""
    current = sys.modules.get("cupy")
    if current is not None and not is_standin(current):
        raise RuntimeError(
            f"{ENV}: the real CuPy is already imported ({current!r}); set the variable before "
            "anything imports cupy, or unset it to use the GPU"
        )
    cupy = module()
    sys.modules.update(_MODULES)
    return cupy
