"""The stand-in's ``ndarray``: a NumPy buffer that refuses what a CuPy 14.2 array refuses.

It is a distinct type (not a NumPy subclass). Implicit conversion to NumPy raises TypeError
(``np.asarray(x)``), NumPy ufuncs and functions given one dispatch to the stand-in's own (as
CuPy's ``__array_ufunc__``/``__array_function__`` do) and refuse NumPy arrays mixed in,
``float(x)``/``bool(x)``/``x.item()`` are host syncs, reductions return 0-d arrays, integer
array indices wrap around instead of raising (CuPy does not check bounds), ``broadcast_to``
views are writable (writes through them race on a GPU), ``empty`` memory holds garbage (NaN,
not zeros). Each behaviour cites CuPy v14.2.0's ``cupy/_core/core.pyx`` or
``_routines_indexing.pyx`` where it comes from.
"""

from __future__ import annotations

import copy as _copy
import threading
import warnings
import weakref
from typing import Any

import numpy as np

from gradflow.testing.standin import _counts
from gradflow.testing.standin._counts import COUNTS

_NP = np.ndarray
_SCALARS = (bool, int, float, complex, np.generic)
_IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. "
    "Please use `.get()` to construct a NumPy array explicitly."
)  # core.pyx, ndarray.__array__
_live: dict[int, int] = {}  # id(owning NumPy buffer) -> bytes, for the memory pool's figures


class DeviceSynchronized(RuntimeError):
    """Raised on a host sync inside ``cupyx.allow_synchronize(False)`` (as CuPy does)."""


_sync_state = threading.local()  # per thread, as syncdetect.py keeps it


def sync_allowed() -> list[bool]:
    """This thread's stack of ``allow_synchronize`` settings (innermost last)."""
    try:
        return _sync_state.allowed
    except AttributeError:
        _sync_state.allowed = [True]
        return _sync_state.allowed


def declare_sync(what: str) -> None:
    """Refuses a host sync inside ``allow_synchronize(False)`` (syncdetect's
    ``_declare_synchronize``) without counting one."""
    if not sync_allowed()[-1]:
        raise DeviceSynchronized(f"device synchronization was detected: {what}")


def count_sync(what: str) -> None:
    """Records a host sync (and refuses it inside ``allow_synchronize(False)``)."""
    declare_sync(what)
    COUNTS.syncs += 1


def unsupported(x: Any) -> TypeError:
    return TypeError(f"Unsupported type {type(x)}")


def _root(a: _NP) -> _NP:
    while isinstance(a.base, _NP):
        a = a.base
    return a


_memory_hooks: list[Any] = []  # active cupy.cuda.memory_hook.MemoryHook objects


def _track(a: _NP) -> None:
    key = id(a)
    if key not in _live:
        _live[key] = a.nbytes
        weakref.finalize(a, _release, key)
        for hook in _memory_hooks:
            hook.malloc_postprocess(
                device_id=0, size=a.nbytes, mem_size=a.nbytes,
                mem_ptr=a.__array_interface__["data"][0], pmem_id=0,
            )  # fmt: skip


def _release(key: int) -> None:
    size = _live.pop(key, None)
    if size is not None:
        for hook in _memory_hooks:
            hook.free_postprocess(device_id=0, mem_size=size, mem_ptr=key, pmem_id=0)


def allocated_bytes() -> int:
    return sum(_live.values())


def _new(a: _NP, base: ndarray | None = None) -> ndarray:
    x = object.__new__(ndarray)
    x._a = a
    x._base = base
    if base is None:
        _track(_root(a))
    return x


def _view_base(x: ndarray) -> ndarray:
    """The array a view of ``x`` has as its base (CuPy: the base of x, or x itself)."""
    return x._base if x._base is not None else x


def wrap(out: Any, inputs: tuple[ndarray, ...] = (), kernel: bool = True) -> Any:
    """NumPy results as stand-in results: arrays wrapped (a view of an input keeps that input
    as its base), NumPy scalars as 0-d arrays; counts one kernel when new memory was written."""
    wrote = [False]
    result = _wrap_one(out, inputs, wrote)
    if wrote[0] and kernel:
        COUNTS.kernels += 1
    return result


def _wrap_one(r: Any, inputs: tuple[ndarray, ...], wrote: list[bool]) -> Any:
    # A module-level function, not a closure calling itself: such a closure is a reference
    # cycle that would keep ``inputs`` alive until the garbage collector runs, so arrays
    # would outlive their last reference (CuPy frees device memory at once).
    if isinstance(r, _NP):
        root = _root(r)
        for x in inputs:
            if _root(x._a) is root:
                return _new(r, _view_base(x))
        wrote[0] = True
        return _new(r)
    if isinstance(r, np.generic):
        wrote[0] = True
        return _new(np.asarray(r))
    if isinstance(r, tuple | list):
        # NumPy's named results (QRResult, SVDResult, EighResult) as CuPy's plain tuples
        kind = tuple if isinstance(r, tuple) else list
        return kind(_wrap_one(v, inputs, wrote) for v in r)
    return r


def unwrap(x: Any, inputs: list[ndarray] | None = None) -> Any:
    """A stand-in argument as NumPy gets it; NumPy arrays refused (CuPy: "Unsupported type")."""
    t = type(x)
    if t is ndarray:
        if inputs is not None:
            inputs.append(x)
        return x._a
    if isinstance(x, _NP):
        raise unsupported(x)
    if t is list or t is tuple:
        return t(unwrap(v, inputs) for v in x)
    return x


def from_host(x: Any, dtype: Any = None) -> _NP:
    """Host data (a NumPy array, list, scalar) copied to the device: one h2d copy."""
    COUNTS.h2d += 1
    return np.array(unwrap_host(x), dtype=dtype)


def unwrap_host(x: Any) -> Any:
    """Like unwrap, but host arrays are accepted (for array()/asarray() and indices)."""
    t = type(x)
    if t is ndarray:
        return x._a
    if t is list or t is tuple:
        return t(unwrap_host(v) for v in x)
    return x


def garbage(shape: Any, dtype: Any, order: str = "C") -> _NP:
    """Uninitialized device memory: NaN for floats, a large value for integers (CuPy's pool
    hands back whatever a freed block held, so code that reads it before writing is wrong)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "fc":
        return np.full(shape, np.nan, dtype=dtype, order=order)
    if dtype.kind in "iu":
        return np.full(shape, np.iinfo(dtype).max // 3, dtype=dtype, order=order)
    if dtype.kind == "b":
        return np.ones(shape, dtype=dtype, order=order)
    return np.empty(shape, dtype=dtype, order=order)


def writable_broadcast(a: _NP, shape: Any) -> _NP:
    """``broadcast_to`` as CuPy makes it: a view with zero strides that can be written (a
    write through it races on a GPU; NumPy's read-only view would hide the bug)."""
    view = np.broadcast_to(a, shape)
    return np.lib.stride_tricks.as_strided(
        a, shape=view.shape, strides=view.strides, writeable=a.flags.writeable
    )


# --- indexing ------------------------------------------------------------------------------


def _index_parts(key: Any) -> tuple[tuple[Any, ...], bool, bool]:
    """(key as NumPy gets it, has an advanced index, has a boolean mask); host index arrays
    and lists are copied to the device (CuPy does, with core.array)."""
    parts = key if type(key) is tuple else (key,)
    out, advanced, mask = [], False, False
    for p in parts:
        t = type(p)
        if t is ndarray:
            p = p._a
        elif isinstance(p, _NP) or t is list:
            COUNTS.h2d += 1
            p = np.asarray(p)
        if isinstance(p, _NP):
            if p.dtype == np.bool_:
                mask = True
            elif p.dtype.kind not in "iu":
                raise IndexError(
                    f"arrays used as indices must be of integer (or boolean) type, not {p.dtype}"
                )
            advanced = True
        out.append(p)
    return tuple(out), advanced, mask


def _wrap_indices(shape: tuple[int, ...], parts: tuple[Any, ...]) -> tuple[Any, ...]:
    """Integer-array indices taken modulo their dimension: CuPy wraps out-of-bounds indices
    around where NumPy raises (see ndarray.__getitem__'s note in core.pyx)."""
    consumed = [
        0
        if p is None or p is Ellipsis
        else (p.ndim if isinstance(p, _NP) and p.dtype == np.bool_ else 1)
        for p in parts
    ]
    fill = len(shape) - sum(consumed)
    dim, out = 0, []
    for p, used in zip(parts, consumed):
        if p is Ellipsis:
            dim += fill
        elif isinstance(p, _NP) and p.dtype.kind in "iu" and dim < len(shape) and shape[dim] > 0:
            p = np.mod(p, shape[dim])
        dim += used
        out.append(p)
    return tuple(out)


# --- the array -----------------------------------------------------------------------------


class Flags:
    """``ndarray.flags`` as CuPy has it: c_contiguous, f_contiguous, owndata."""

    __slots__ = ("c_contiguous", "f_contiguous", "owndata")

    def __init__(self, c: bool, f: bool, own: bool) -> None:
        self.c_contiguous, self.f_contiguous, self.owndata = c, f, own

    def __getitem__(self, name: str) -> bool:
        keys = {"C_CONTIGUOUS": "c_contiguous", "F_CONTIGUOUS": "f_contiguous"}
        return getattr(self, keys.get(name, name.lower()))


class MemoryPointer:
    """``ndarray.data``: the device address of the array's first element."""

    __slots__ = ("device", "ptr")

    def __init__(self, ptr: int) -> None:
        from gradflow.testing.standin._cuda import Device

        self.ptr = ptr
        self.device = Device(0)

    @property
    def device_id(self) -> int:
        return 0

    def __int__(self) -> int:
        return self.ptr


class ndarray:
    """A CuPy 14.2 array on the stand-in device (device 0), backed by a NumPy buffer."""

    __slots__ = ("__weakref__", "_a", "_base")
    __hash__ = None  # type: ignore[assignment]
    _a: _NP
    _base: ndarray | None

    def __init__(
        self,
        shape: Any,
        dtype: Any = float,
        memptr: Any = None,
        strides: Any = None,
        order: str = "C",
    ) -> None:
        if memptr is not None or strides is not None:
            raise NotImplementedError("the CuPy stand-in does not take memptr/strides")
        self._a = garbage(shape, dtype, order)
        self._base = None
        _track(self._a)

    # --- attributes (core.pxd: size, dtype, data, base are readonly) ---
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    base = property(lambda self: self._base)

    @property
    def flags(self) -> Flags:
        f = self._a.flags
        return Flags(f.c_contiguous, f.f_contiguous, self._base is None)

    @property
    def data(self) -> MemoryPointer:
        return MemoryPointer(self._a.__array_interface__["data"][0])

    @property
    def device(self) -> Any:
        from gradflow.testing.standin._cuda import Device

        return Device(0)

    @property
    def T(self) -> ndarray:
        return _new(self._a.T, _view_base(self))

    @property
    def mT(self) -> ndarray:
        return _new(self._a.mT, _view_base(self))

    @property
    def real(self) -> ndarray:
        return wrap(self._a.real, (self,))

    @property
    def imag(self) -> ndarray:
        return wrap(self._a.imag, (self,))

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        return {
            "shape": self.shape,
            "typestr": self.dtype.str,
            "data": (self.data.ptr, False),
            "version": 3,
            "strides": None if self._a.flags.c_contiguous else self.strides,
            "descr": self.dtype.descr,
        }

    # --- conversion to the host (each a sync) ---
    def __array__(self, dtype: Any = None, copy: Any = None) -> _NP:
        raise TypeError(_IMPLICIT)

    def get(
        self, stream: Any = None, order: str = "C", out: Any = None, blocking: bool = True
    ) -> _NP:
        """A host copy: one device-to-host copy and (``blocking``) a sync. As core.pyx's
        ``get``: ``out`` must match in dtype and shape, and an empty array without ``out``
        copies nothing and does not sync."""
        if out is not None:
            if not isinstance(out, _NP):
                raise TypeError("Only numpy.ndarray can be obtained from cupy.ndarray")
            if out.dtype != self.dtype:
                raise TypeError(f"{out.dtype} array cannot be obtained from {self.dtype} array")
            if out.shape != self.shape:
                raise ValueError(
                    f"Shape mismatch. Expected shape: {self.shape}, actual shape: {out.shape}"
                )
            if not (out.flags.c_contiguous or out.flags.f_contiguous):
                raise RuntimeError(
                    "`out` cannot be specified when copying to non-contiguous ndarray"
                )
        elif self.size == 0:
            return np.ndarray(self.shape, dtype=self.dtype)
        declare_sync("ndarray.get")
        if blocking:
            COUNTS.syncs += 1
        COUNTS.d2h += 1
        if out is not None:
            out[...] = self._a
            return out
        if order.upper() == "A":
            order = "F" if self._a.flags.f_contiguous else "C"
        return np.array(self._a, order=order)

    def set(self, arr: Any, stream: Any = None) -> None:
        """A host array copied in (core.pyx's ``set``): same dtype, same shape, and a
        contiguous destination."""
        if not isinstance(arr, _NP):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if arr.dtype != self.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self.dtype} array")
        if arr.shape != self.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self.shape}, new shape: {arr.shape}")
        if not (self._a.flags.c_contiguous or self._a.flags.f_contiguous):
            raise RuntimeError("Cannot set to non-contiguous array")
        COUNTS.h2d += 1
        self._a[...] = arr

    def item(self) -> Any:
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self.get().item()

    def tolist(self) -> Any:
        return self.get().tolist()

    def tobytes(self, order: str = "C") -> bytes:
        return self.get().tobytes(order)

    def __float__(self) -> float:
        return float(self.get())

    def __int__(self) -> int:
        return int(self.get())

    def __complex__(self) -> complex:
        return complex(self.get())

    def __bool__(self) -> bool:
        if self.size == 0:
            warnings.warn(
                "The truth value of an empty array is ambiguous. Returning False, but in "
                "future this will result in an error. Use `array.size > 0` to check that an "
                "array is not empty.",
                DeprecationWarning,
                stacklevel=2,
            )
            return False
        if self.size == 1:
            return bool(self.get())
        raise ValueError(
            "The truth value of an array with more than one element is ambiguous. Use "
            "a.any() or a.all()"
        )

    def __repr__(self) -> str:
        return repr(self.get())

    def __str__(self) -> str:
        return str(self.get())

    def __format__(self, spec: str) -> str:
        return format(self.get(), spec)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self) -> Any:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __reduce__(self) -> Any:
        return (_from_pickle, (self.get(),))

    def __copy__(self) -> ndarray:
        return self.copy()

    def __deepcopy__(self, memo: Any) -> ndarray:
        return self.copy()

    def __dlpack_device__(self) -> tuple[int, int]:
        return (2, 0)  # kDLCUDA, device 0

    def __dlpack__(self, *, stream: Any = None, max_version: Any = None, **kwargs: Any) -> Any:
        raise BufferError(
            "the CuPy stand-in holds host memory but says it is on a CUDA device; DLPack "
            "consumers other than the stand-in itself cannot read it"
        )

    # --- NumPy interoperability (core.pyx: __array_ufunc__, __array_function__) ---
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        from gradflow.testing.standin import _module

        f = _module.UFUNCS.get(ufunc.__name__)
        if f is None:
            return NotImplemented
        if "out" in kwargs:
            out = kwargs["out"]
            if len(out) != 1:
                raise ValueError("The 'out' parameter must have exactly one array value")
            kwargs["out"] = out[0]
        if method != "__call__":
            f = getattr(f, method, None)
            if f is None:
                return NotImplemented
        return f(*inputs, **kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        from gradflow.testing.standin import _module

        target = _module.function_for(func)
        if target is None:
            return NotImplemented
        return target(*args, **kwargs)

    # --- indexing (_routines_indexing.pyx) ---
    def __getitem__(self, key: Any) -> ndarray:
        parts, advanced, mask = _index_parts(key)
        if mask:
            count_sync("boolean-mask indexing")
        if advanced:
            parts = _wrap_indices(self.shape, parts)
        return wrap(self._a[parts], (self,))

    def __setitem__(self, key: Any, value: Any) -> None:
        parts, advanced, mask = _index_parts(key)
        if mask:
            count_sync("boolean-mask assignment")
        if advanced:
            parts = _wrap_indices(self.shape, parts)
        if type(value) is ndarray:
            value = value._a
        elif isinstance(value, _NP | list | tuple):
            if not advanced:
                # _scatter_op 'update' with a non-CuPy value calls fill(), which refuses
                # non-scalar host arrays ("Refuse assignment from CPU arrays, see gh-2079").
                value = np.asarray(value)
                if value.shape != ():
                    raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
                value = value[()]
            else:
                value = from_host(value)
        elif not isinstance(value, _SCALARS):
            raise unsupported(value)
        self._a[parts] = value
        COUNTS.kernels += 1

    # --- methods ---
    def fill(self, value: Any) -> None:
        if type(value) is ndarray:
            if value.shape != ():
                raise ValueError("non-scalar cupy.ndarray cannot be used for fill")
            value = value._a[()]
        else:
            host = np.asarray(value, dtype=self.dtype)
            if host.shape != ():
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            value = host[()]
        self._a.fill(value)
        COUNTS.kernels += 1

    def astype(
        self,
        dtype: Any,
        order: str = "K",
        casting: Any = None,
        subok: Any = None,
        copy: bool = True,
    ) -> ndarray:
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        out = self._a.astype(dtype, order=order, copy=True)
        COUNTS.kernels += 1
        return _new(out)

    def copy(self, order: str = "C") -> ndarray:
        COUNTS.kernels += 1
        return _new(self._a.copy(order=order))

    def view(self, dtype: Any = None, array_class: Any = None) -> ndarray:
        if array_class is not None:
            raise TypeError("the CuPy stand-in does not take array_class")
        return _new(self._a.view() if dtype is None else self._a.view(dtype), _view_base(self))

    def dot(self, b: ndarray, out: ndarray | None = None) -> ndarray:
        from gradflow.testing.standin import _module

        return _module.dot(self, b, out=out)

    def nonzero(self) -> tuple[ndarray, ...]:
        count_sync("ndarray.nonzero")
        return wrap(self._a.nonzero(), (self,))

    def take(self, indices: Any, axis: Any = None, out: Any = None) -> ndarray:
        from gradflow.testing.standin import _module

        return _module.take(self, indices, axis=axis, out=out)

    def scatter_add(self, slices: Any, value: Any) -> None:
        warnings.warn(
            "`ndarray.scatter_add` is deprecated. Please use `cupy.add.at` instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        from gradflow.testing.standin import _module

        _module.scatter_op(self, slices, value, np.add)

    def reduced_view(self, dtype: Any = None) -> ndarray:
        return self.view()

    def toDlpack(self) -> Any:
        return self.__dlpack__()

    def __matmul__(self, other: Any) -> ndarray:
        from gradflow.testing.standin import _module

        return _module.matmul(self, other)

    def __rmatmul__(self, other: Any) -> ndarray:
        from gradflow.testing.standin import _module

        return _module.matmul(other, self)

    def __imatmul__(self, other: Any) -> ndarray:
        from gradflow.testing.standin import _module

        return _module.matmul(self, other, out=self)


def _from_pickle(host: _NP) -> ndarray:
    COUNTS.h2d += 1
    return _new(np.array(host))


def _array_method(name: str) -> Any:
    """ndarray.<name> as a NumPy method on the buffer, its arguments unwrapped and its result
    wrapped (a new result counts one kernel)."""
    numpy_method = getattr(_NP, name)

    def method(self: ndarray, *args: Any, **kwargs: Any) -> Any:
        inputs = [self]
        args = unwrap(args, inputs)
        kwargs = {k: unwrap(v, inputs) for k, v in kwargs.items()}
        if "out" in kwargs and kwargs["out"] is None:
            del kwargs["out"]
        return wrap(numpy_method(self._a, *args, **kwargs), tuple(inputs))

    method.__name__ = name
    return method


_NO_UFUNC = object()


def _should_use_rop(x: Any, y: Any) -> bool:
    """core.pyx's ``_should_use_rop``: defer to ``y``'s reflected operator when ``y`` opts
    out of NumPy's ufuncs (``__array_ufunc__ = None``, as gradflow's Tensor does) or, lacking
    ``__array_ufunc__``, has a higher ``__array_priority__``."""
    y_ufunc = getattr(y, "__array_ufunc__", _NO_UFUNC)
    if y_ufunc is not _NO_UFUNC:
        return y_ufunc is None
    return getattr(x, "__array_priority__", 0) < getattr(y, "__array_priority__", 0)


def _operator(ufunc_name: str, reflected: bool = False, inplace: bool = False) -> Any:
    """A binary operator as core.pyx writes them: another stand-in array goes straight to the
    ufunc; otherwise defer (``_should_use_rop``) or go through NumPy's ufunc, which dispatches
    back here by ``__array_ufunc__`` and refuses NumPy arrays. In-place and reflected
    operators call the ufunc directly (the reflected one is "cupy's last chance")."""

    def op(self: ndarray, other: Any) -> Any:
        from gradflow.testing.standin import _module

        f = _module.UFUNCS[ufunc_name]
        if inplace:
            return f(self, other, out=self)
        if reflected:
            return f(other, self)
        if type(other) is ndarray or isinstance(other, _SCALARS):
            return f(self, other)  # what NumPy's ufunc would dispatch back to
        if _should_use_rop(self, other):
            return NotImplemented
        return getattr(np, ufunc_name)(self, other)

    return op


def _comparison(ufunc_name: str) -> Any:
    """``__richcmp__`` (core.pyx): a 0-d NumPy array compares as its scalar, and ``==``/``!=``
    against None or an object with the default ``__eq__`` give all-False/all-True arrays."""

    def op(self: ndarray, other: Any) -> Any:
        from gradflow.testing.standin import _module

        f = _module.UFUNCS[ufunc_name]
        if type(other) is ndarray or isinstance(other, _SCALARS):
            return f(self, other)
        if _should_use_rop(self, other):
            return NotImplemented
        if isinstance(other, _NP) and other.ndim == 0:
            other = other.item()
        if ufunc_name in ("equal", "not_equal") and (
            other is None
            or (
                type(other).__eq__ is object.__eq__
                and (ufunc_name == "equal" or type(other).__ne__ is object.__ne__)
            )
        ):
            COUNTS.kernels += 1
            fill = np.zeros if ufunc_name == "equal" else np.ones
            return _new(fill(self.shape, dtype=np.bool_))
        return getattr(np, ufunc_name)(self, other)

    return op


def _unary(ufunc_name: str) -> Any:
    def op(self: ndarray) -> ndarray:
        from gradflow.testing.standin import _module

        return _module.UFUNCS[ufunc_name](self)

    return op


_BINARY = {
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "truediv": "true_divide",
    "floordiv": "floor_divide",
    "mod": "remainder",
    "pow": "power",
    "and": "bitwise_and",
    "or": "bitwise_or",
    "xor": "bitwise_xor",
    "lshift": "left_shift",
    "rshift": "right_shift",
}
for _name, _uf in _BINARY.items():
    setattr(ndarray, f"__{_name}__", _operator(_uf))
    setattr(ndarray, f"__r{_name}__", _operator(_uf, reflected=True))
    setattr(ndarray, f"__i{_name}__", _operator(_uf, inplace=True))
for _name, _uf in {
    "lt": "less",
    "le": "less_equal",
    "gt": "greater",
    "ge": "greater_equal",
    "eq": "equal",
    "ne": "not_equal",
}.items():
    setattr(ndarray, f"__{_name}__", _comparison(_uf))
for _name, _uf in {
    "neg": "negative",
    "pos": "positive",
    "abs": "absolute",
    "invert": "invert",
}.items():
    setattr(ndarray, f"__{_name}__", _unary(_uf))
ndarray.__divmod__ = lambda self, other: (self // other, self % other)  # type: ignore[attr-defined]

# The remaining methods CuPy's ndarray has, as NumPy's on the buffer. Names CuPy's ndarray
# lacks are absent here too, so gradflow code calling them fails as it would on a GPU.
_GENERIC_METHODS = (
    "all",
    "any",
    "argmax",
    "argmin",
    "argpartition",
    "argsort",
    "choose",
    "clip",
    "compress",
    "conj",
    "conjugate",
    "cumprod",
    "cumsum",
    "diagonal",
    "flatten",
    "max",
    "mean",
    "min",
    "partition",
    "prod",
    "ptp",
    "put",
    "ravel",
    "repeat",
    "reshape",
    "round",
    "searchsorted",
    "sort",
    "squeeze",
    "std",
    "sum",
    "swapaxes",
    "trace",
    "transpose",
    "var",
)
for _name in _GENERIC_METHODS:
    if _name == "ptp":
        ndarray.ptp = lambda self, *a, **k: wrap(np.ptp(self._a, *a, **k), (self,))  # type: ignore[attr-defined]
    else:
        setattr(ndarray, _name, _array_method(_name))

_ = (_copy, _counts)
