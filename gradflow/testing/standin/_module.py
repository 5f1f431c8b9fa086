"""The stand-in's module-level functions and ufuncs, limited to the names CuPy 14.2 has.

A name in CuPy's list (cupy_14_2_names.json) that NumPy also has becomes the NumPy function on
the arrays' buffers, with CuPy's rules around it: stand-in arrays in, stand-in arrays out
(NumPy scalars become 0-d arrays), NumPy arrays refused except by the functions that copy
host data to the device (``array``, ``asarray``, ...). A few functions differ from NumPy in a
way gradflow can trip on, and are written out: ``take`` wraps indices, ``where`` with one
argument and ``nonzero``/``unique`` sync, the GEMM family counts cuBLAS calls, ``empty``
returns garbage, ``broadcast_to`` returns a writable view.
"""

from __future__ import annotations

import functools
import math
import types
from typing import Any

import numpy as np

from gradflow.testing.standin._array import (
    _NP,
    _SCALARS,
    _new,
    _view_base,
    count_sync,
    from_host,
    garbage,
    ndarray,
    unsupported,
    unwrap,
    unwrap_host,
    wrap,
    writable_broadcast,
)
from gradflow.testing.standin._counts import COUNTS

UFUNC_KWARGS = frozenset({"out", "dtype", "casting"})  # _kernel.pyx, ufunc.__call__


class ufunc:
    """A CuPy ufunc: stand-in arrays, Python scalars and NumPy scalars only."""

    def __init__(self, numpy_ufunc: np.ufunc, name: str | None = None) -> None:
        self._f = numpy_ufunc
        self.__name__ = name or numpy_ufunc.__name__
        self.nin, self.nout, self.nargs = numpy_ufunc.nin, numpy_ufunc.nout, numpy_ufunc.nargs
        self.types = numpy_ufunc.types

    def __repr__(self) -> str:
        return f"<ufunc '{self.__name__}'>"

    @staticmethod
    def _arg(x: Any, inputs: list[ndarray]) -> Any:
        if type(x) is ndarray:
            inputs.append(x)
            return x._a
        if isinstance(x, _SCALARS):
            return x
        raise unsupported(x)

    def _out(self, kwargs: dict[str, Any], inputs: list[ndarray]) -> dict[str, Any]:
        extra = set(kwargs) - UFUNC_KWARGS
        if extra:
            raise TypeError(f"Wrong arguments { ({k: kwargs[k] for k in extra}) }")
        out = kwargs.get("out")
        if out is not None:
            if type(out) is not ndarray:
                raise TypeError("Output arguments must be cupy.ndarray")
            inputs.append(out)
            kwargs = {**kwargs, "out": out._a}
        elif "out" in kwargs:
            kwargs = {k: v for k, v in kwargs.items() if k != "out"}
        return kwargs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        inputs: list[ndarray] = []
        arrays = [self._arg(a, inputs) for a in args]
        out = kwargs.get("out")
        kwargs = self._out(kwargs, inputs)
        result = self._f(*arrays, **kwargs)
        COUNTS.kernels += 1
        if out is not None:
            return out
        return wrap(result, tuple(inputs), kernel=False)

    def reduce(
        self, array: Any, axis: Any = 0, dtype: Any = None, out: Any = None, keepdims: bool = False
    ) -> Any:
        inputs: list[ndarray] = []
        result = self._f.reduce(
            self._arg(array, inputs),
            axis=axis,
            dtype=dtype,
            keepdims=keepdims,
            **self._out({"out": out}, inputs),
        )
        COUNTS.kernels += 1
        return out if out is not None else wrap(result, (), kernel=False)

    def accumulate(self, array: Any, axis: int = 0, dtype: Any = None, out: Any = None) -> Any:
        inputs: list[ndarray] = []
        result = self._f.accumulate(
            self._arg(array, inputs), axis=axis, dtype=dtype, **self._out({"out": out}, inputs)
        )
        COUNTS.kernels += 1
        return out if out is not None else wrap(result, (), kernel=False)

    def outer(self, a: Any, b: Any, **kwargs: Any) -> Any:
        inputs: list[ndarray] = []
        result = self._f.outer(
            self._arg(a, inputs), self._arg(b, inputs), **self._out(kwargs, inputs)
        )
        COUNTS.kernels += 1
        return kwargs.get("out") or wrap(result, (), kernel=False)

    def at(self, a: ndarray, indices: Any, b: Any = None) -> None:
        if type(a) is not ndarray:
            raise unsupported(a)
        index = _device_index(indices, a.shape)
        if b is None:
            self._f.at(a._a, index)
        else:
            self._f.at(a._a, index, self._arg(b, []))
        COUNTS.kernels += 1


def _device_index(indices: Any, shape: tuple[int, ...]) -> Any:
    from gradflow.testing.standin._array import _index_parts, _wrap_indices

    parts, advanced, mask = _index_parts(indices)
    if mask:
        count_sync("boolean-mask indexing")
    if advanced:
        parts = _wrap_indices(shape, parts)
    return parts if type(indices) is tuple else parts[0]


def scatter_op(a: ndarray, slices: Any, value: Any, numpy_ufunc: np.ufunc) -> None:
    """cupyx.scatter_add/max/min: unbuffered ``ufunc.at`` on the device."""
    if type(a) is not ndarray:
        raise unsupported(a)
    if isinstance(value, _NP):
        raise unsupported(value)
    value = value._a if type(value) is ndarray else value
    numpy_ufunc.at(a._a, _device_index(slices, a.shape), value)
    COUNTS.kernels += 1


# --- functions that differ from "NumPy on the buffer" --------------------------------------


def array(
    obj: Any,
    dtype: Any = None,
    copy: bool = True,
    order: str = "K",
    subok: bool = False,
    ndmin: int = 0,
    *,
    blocking: bool = False,
) -> ndarray:
    if type(obj) is ndarray:
        out = np.array(obj._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin)
        return wrap(out, (obj,))
    out = from_host(obj, dtype)
    if order in ("C", "F") or ndmin:
        out = np.array(out, order=order, ndmin=ndmin, copy=False)
    return _new(out)


def asarray(a: Any, dtype: Any = None, order: Any = None, *, blocking: bool = False) -> ndarray:
    if type(a) is ndarray:
        if (dtype is None or np.dtype(dtype) == a.dtype) and order in (None, "K", "A"):
            return a
        return wrap(np.asarray(a._a, dtype=dtype, order=order), (a,))
    out = from_host(a, dtype)
    return _new(np.asarray(out, order=order))


def asanyarray(a: Any, dtype: Any = None, order: Any = None) -> ndarray:
    return asarray(a, dtype, order)


def ascontiguousarray(a: Any, dtype: Any = None) -> ndarray:
    a = asarray(a, dtype)
    if a._a.flags.c_contiguous:
        return a
    COUNTS.kernels += 1
    return _new(np.ascontiguousarray(a._a))


def asfortranarray(a: Any, dtype: Any = None) -> ndarray:
    a = asarray(a, dtype)
    if a._a.flags.f_contiguous:
        return a
    COUNTS.kernels += 1
    return _new(np.asfortranarray(a._a))


def asnumpy(
    a: Any, stream: Any = None, order: str = "C", out: Any = None, *, blocking: bool = True
) -> _NP:
    if type(a) is ndarray:
        return a.get(order=order, out=out)
    return np.asarray(a, order=order)


def empty(shape: Any, dtype: Any = float, order: str = "C") -> ndarray:
    return _new(garbage(shape, dtype, order))


def empty_like(
    prototype: Any, dtype: Any = None, order: str = "K", subok: Any = None, shape: Any = None
) -> ndarray:
    if type(prototype) is not ndarray:
        raise unsupported(prototype)
    dtype = prototype.dtype if dtype is None else dtype
    shape = prototype.shape if shape is None else shape
    order = (
        "F"
        if order in ("K", "A") and prototype._a.flags.f_contiguous and prototype.ndim > 1
        else "C"
    )
    return _new(garbage(shape, dtype, order))


def broadcast_to(a: Any, shape: Any) -> ndarray:
    if type(a) is not ndarray:
        raise unsupported(a)
    return _new(writable_broadcast(a._a, shape), _view_base(a))


def broadcast_arrays(*args: Any) -> list[ndarray]:
    shape = np.broadcast_shapes(*(unwrap(a).shape for a in args))
    return [broadcast_to(a, shape) for a in args]


def where(condition: Any, x: Any = None, y: Any = None) -> Any:
    if x is None and y is None:
        return nonzero(condition)
    inputs: list[ndarray] = []
    return wrap(np.where(*(unwrap(v, inputs) for v in (condition, x, y))), tuple(inputs))


def _syncing(name: str, syncs: int = 1) -> Any:
    numpy_function = getattr(np, name)

    def function(*args: Any, **kwargs: Any) -> Any:
        for _ in range(syncs):
            count_sync(f"cupy.{name} (the output size is read on the host)")
        inputs: list[ndarray] = []
        args = unwrap(args, inputs)
        kwargs = {k: unwrap(v, inputs) for k, v in kwargs.items()}
        return wrap(numpy_function(*args, **kwargs), tuple(inputs))

    function.__name__ = name
    return function


def _gemm_copies(name: str, operands: list[_NP]) -> int:
    """The kernels CuPy launches around a GEMM-family call (cupy/_core/_routines_linalg.pyx,
    cupy/linalg/_einsum.py): a copy of each operand cuBLAS cannot read in place (neither C- nor
    F-contiguous), three pointer-table kernels for a batched matmul, and for einsum a transpose
    copy of each operand (counted always: einsum lays its operands out for one batched GEMM)."""
    if name == "einsum":
        return len(operands)
    copies = sum(1 for a in operands if not (a.flags.c_contiguous or a.flags.f_contiguous))
    if name == "matmul" and any(a.ndim > 2 for a in operands):
        copies += 3
    return copies


def _gemm(name: str) -> Any:
    numpy_function = getattr(np, name)

    def function(*args: Any, **kwargs: Any) -> Any:
        inputs: list[ndarray] = []
        args = unwrap(args, inputs)
        out = kwargs.get("out")
        kwargs = {k: unwrap(v, inputs) for k, v in kwargs.items() if v is not None}
        result = numpy_function(*args, **kwargs)
        COUNTS.cublas += 1
        COUNTS.kernels += _gemm_copies(name, [x._a for x in inputs if x is not out])
        return out if out is not None else wrap(result, tuple(inputs), kernel=False)

    function.__name__ = name
    return function


def take(a: Any, indices: Any, axis: Any = None, out: Any = None) -> ndarray:
    """CuPy's take wraps out-of-range indices around (NumPy raises)."""
    if type(a) is not ndarray:
        raise unsupported(a)
    idx = indices._a if type(indices) is ndarray else indices
    if isinstance(idx, _NP) and type(indices) is not ndarray:
        raise unsupported(indices)
    result = np.take(a._a, idx, axis=axis, mode="wrap")
    COUNTS.kernels += 1
    if out is not None:
        out._a[...] = result
        return out
    return _new(result)


def take_along_axis(a: Any, indices: Any, axis: Any) -> ndarray:
    if type(a) is not ndarray or type(indices) is not ndarray:
        raise unsupported(a if type(a) is not ndarray else indices)
    size = a.size if axis is None else a.shape[axis]
    idx = np.mod(indices._a, size) if size else indices._a
    COUNTS.kernels += 1
    return _new(np.take_along_axis(a._a, idx, axis))


def get_array_module(*args: Any) -> Any:
    import sys

    if any(type(a) is ndarray for a in args):
        return sys.modules[__name__.rsplit(".", 1)[0]].module()
    return np


def from_dlpack(x: Any, *, device: Any = None, copy: Any = None) -> ndarray:
    if type(x) is ndarray:
        return _new(x._a, _view_base(x))
    kind = x.__dlpack_device__()[0] if hasattr(x, "__dlpack_device__") else None
    raise BufferError(
        f"the CuPy stand-in imports only its own arrays through DLPack (device type {kind}); "
        "CuPy reads CUDA DLPack tensors only"
    )


# --- host-side routines CuPy writes itself (cupy/__init__.py, _misc/memory_ranges.py,
# _logic/type_testing.py, _manipulation/shape.py, _io/formatting.py): they read a CuPy array's
# dtype or shape, where NumPy's would convert it -----------------------------------------


def _dtype_of(x: Any) -> Any:
    return x.dtype if type(x) is ndarray else x


def can_cast(from_: Any, to: Any, casting: str = "safe") -> bool:
    return np.can_cast(_dtype_of(from_), to, casting=casting)


def result_type(*arrays_and_dtypes: Any) -> np.dtype:
    return np.result_type(*(_dtype_of(a) for a in arrays_and_dtypes))


def common_type(*arrays: Any) -> type:
    if not arrays:
        return np.float16
    dtypes = []
    for a in arrays:
        if a.dtype.kind == "b":
            raise TypeError("can't get common type for non-numeric array")
        dtypes.append(np.dtype("float64") if a.dtype.kind in "iu" else a.dtype)
    return functools.reduce(np.promote_types, dtypes).type


def min_scalar_type(a: Any) -> np.dtype:
    if type(a) is ndarray:
        return a.dtype
    return np.min_scalar_type(a)


def ndim(a: Any) -> int:
    try:
        return a.ndim
    except AttributeError:
        return np.ndim(a)


def shape(a: Any) -> tuple[int, ...]:
    return a.shape if type(a) is ndarray else np.shape(a)


def size(a: Any, axis: Any = None) -> int:
    """``cupy.size`` takes CuPy arrays only (``_routines_manipulation.pyx``)."""
    if type(a) is not ndarray:
        raise TypeError(
            f"Argument 'a' has incorrect type (expected cupy._core.core._ndarray_base, got "
            f"{type(a).__name__})"
        )
    if axis is None:
        return a.size
    index = axis + a.ndim if axis < 0 else axis
    if not 0 <= index < a.ndim:
        raise IndexError("index out of range")
    return a.shape[index]


def iscomplexobj(x: Any) -> bool:
    return x.dtype.kind == "c" if type(x) is ndarray else np.iscomplexobj(x)


def isrealobj(x: Any) -> bool:
    return x.dtype.kind != "c" if type(x) is ndarray else np.isrealobj(x)


def may_share_memory(a: Any, b: Any, max_work: Any = None) -> bool:
    """Byte bounds only, on the host (``_memory_range.may_share_bounds``)."""
    if max_work is not None:
        raise NotImplementedError("Only supported for `max_work` is `None`")
    if type(a) is not ndarray or type(b) is not ndarray:
        raise unsupported(a if type(a) is not ndarray else b)
    return bool(np.may_share_memory(a._a, b._a))


def shares_memory(a: Any, b: Any, max_work: Any = None) -> bool:
    """Exact overlap, found on the device: element addresses of both (two kernels), a sort,
    two searchsorted, ``!=`` and ``any`` (five more), and ``bool()`` of the result (a sync)."""
    if a is b and a.size != 0:
        return True
    if type(a) is not ndarray or type(b) is not ndarray:
        raise unsupported(a if type(a) is not ndarray else b)
    if max_work == "MAY_SHARE_BOUNDS":
        return may_share_memory(a, b)
    if max_work not in (None, "MAY_SHARE_EXACT"):
        raise NotImplementedError("Not supported for integer `max_work`.")
    COUNTS.kernels += 7
    count_sync("cupy.shares_memory")
    COUNTS.d2h += 1
    return bool(np.shares_memory(a._a, b._a))


def _formatting(name: str) -> Any:
    """``cupy.array_repr`` and friends: NumPy's on ``cupy.asnumpy(x)`` (a copy and a sync)."""
    numpy_function = getattr(np, name)

    def function(x: Any, *args: Any, **kwargs: Any) -> Any:
        return numpy_function(asnumpy(x), *args, **kwargs)

    function.__name__ = name
    return function


_ZERO_D = ("array_equal", "array_equiv", "allclose", "count_nonzero")  # 0-d arrays in CuPy


def _zero_d(name: str) -> Any:
    numpy_function = getattr(np, name)

    def function(*args: Any, **kwargs: Any) -> ndarray:
        inputs: list[ndarray] = []
        result = numpy_function(
            *unwrap(args, inputs), **{k: unwrap(v, inputs) for k, v in kwargs.items()}
        )
        COUNTS.kernels += 1
        return wrap(np.asarray(result), (), kernel=False) if np.ndim(result) == 0 else wrap(result)

    function.__name__ = name
    return function


def _generic(name: str, numpy_function: Any) -> Any:
    def function(*args: Any, **kwargs: Any) -> Any:
        inputs: list[ndarray] = []
        args = unwrap(args, inputs)
        out = kwargs.get("out")
        kwargs = {k: unwrap(v, inputs) for k, v in kwargs.items()}
        if "out" in kwargs and kwargs["out"] is None:
            del kwargs["out"]
        result = numpy_function(*args, **kwargs)
        if out is not None:
            COUNTS.kernels += 1
            return out
        return wrap(result, tuple(inputs))

    function.__name__ = name
    return function


SPECIAL: dict[str, Any] = {
    "array": array,
    "asarray": asarray,
    "asanyarray": asanyarray,
    "ascontiguousarray": ascontiguousarray,
    "asfortranarray": asfortranarray,
    "asnumpy": asnumpy,
    "empty": empty,
    "empty_like": empty_like,
    "broadcast_to": broadcast_to,
    "broadcast_arrays": broadcast_arrays,
    "where": where,
    "take": take,
    "take_along_axis": take_along_axis,
    "get_array_module": get_array_module,
    "from_dlpack": from_dlpack,
    "fromDlpack": from_dlpack,
    "ndarray": ndarray,
    "can_cast": can_cast,
    "result_type": result_type,
    "common_type": common_type,
    "min_scalar_type": min_scalar_type,
    "ndim": ndim,
    "shape": shape,
    "size": size,
    "iscomplexobj": iscomplexobj,
    "isrealobj": isrealobj,
    "may_share_memory": may_share_memory,
    "shares_memory": shares_memory,
}
for _name in (
    "array_repr",
    "array_str",
    "array2string",
    "format_float_positional",
    "format_float_scientific",
):
    SPECIAL[_name] = _formatting(_name)
for _name in ("nonzero", "argwhere", "flatnonzero", "unique", "extract", "compress"):
    SPECIAL[_name] = _syncing(_name)
# cupy/_statistics/histogram.py: `(x < 0).any()` is checked on the host, then int(max(x))
SPECIAL["bincount"] = _syncing("bincount", syncs=2)
for _name in ("matmul", "dot", "tensordot", "einsum", "inner", "vdot"):
    SPECIAL[_name] = _gemm(_name)
for _name in _ZERO_D:
    SPECIAL[_name] = _zero_d(_name)
nonzero = SPECIAL["nonzero"]
matmul = SPECIAL["matmul"]
dot = SPECIAL["dot"]

# Pass-through names that are not array functions: dtypes, constants, type predicates.
_HOST_FUNCTIONS = frozenset(
    {
        "dtype",
        "finfo",
        "iinfo",
        "isscalar",
        "issubdtype",
        "promote_types",
        "binary_repr",
        "base_repr",
        "typename",
        "mintypecode",
        "obj2sctype",
        "issctype",
        "issubclass_",
        "issubsctype",
        "sctype2char",
        "get_printoptions",
        "set_printoptions",
        "printoptions",
        "errstate",
        "geterr",
        "seterr",
    }
)

UFUNCS: dict[str, ufunc] = {}


def build(names: frozenset[str]) -> dict[str, Any]:
    """The attributes of the stand-in ``cupy`` module for CuPy's top-level ``names``."""
    namespace: dict[str, Any] = {}
    for name in names:
        if name in SPECIAL:
            namespace[name] = SPECIAL[name]
            continue
        target = getattr(np, name, None)
        if target is None or isinstance(target, types.ModuleType):
            continue
        if isinstance(target, np.ufunc):
            namespace[name] = UFUNCS.setdefault(target.__name__, ufunc(target))
        elif isinstance(target, type) or not callable(target) or name in _HOST_FUNCTIONS:
            namespace[name] = target
        else:
            namespace[name] = _generic(name, target)
    # aliases CuPy binds to the same ufunc under another name (e.g. pow, concat)
    for name in names:
        target = getattr(np, name, None)
        if isinstance(target, np.ufunc) and name not in SPECIAL:
            namespace[name] = UFUNCS[target.__name__]
    for alias, real in (("divide", "true_divide"),):
        UFUNCS.setdefault(real, namespace.get(alias))
    return namespace


_FUNCTIONS: dict[Any, Any] = {}


def function_for(numpy_function: Any) -> Any:
    """The stand-in function a NumPy function dispatches to (``__array_function__``)."""
    return _FUNCTIONS.get(numpy_function)


def register_dispatch(namespace: dict[str, Any]) -> None:
    """NumPy function -> the stand-in's, for ``__array_function__``. A name CuPy takes from
    NumPy unchanged (``promote_types``) is left out: core.pyx's ``__array_function__``
    returns NotImplemented when the CuPy function is the NumPy one ("avoid NumPy func")."""
    for name, value in namespace.items():
        target = getattr(np, name, None)
        if (
            callable(value)
            and target is not None
            and value is not target
            and not isinstance(target, type)
        ):
            _FUNCTIONS[target] = value


# --- cupyx ---------------------------------------------------------------------------------


def scatter_add(a: ndarray, slices: Any, value: Any) -> None:
    scatter_op(a, slices, value, np.add)


def scatter_max(a: ndarray, slices: Any, value: Any) -> None:
    scatter_op(a, slices, value, np.maximum)


def scatter_min(a: ndarray, slices: Any, value: Any) -> None:
    scatter_op(a, slices, value, np.minimum)


def _special_dtype(x: Any) -> np.dtype:
    """The output dtype of cupyx.scipy.special's erf family, typed ('e->d', 'f->f', 'd->d')
    (cupyx/scipy/special/_erf.py): float16 comes back as float64."""
    dtype = x.dtype if isinstance(x, _NP | np.generic) else np.result_type(x)
    for source, result in (("e", "d"), ("f", "f"), ("d", "d")):
        if np.can_cast(dtype, source):
            return np.dtype(result)
    raise TypeError(f"ufunc does not support the input type {dtype}")


def _math_ufunc(name: str, function: Any) -> ufunc:
    vectorized = np.frompyfunc(function, 1, 1)

    class _Special(ufunc):
        def __call__(self, x: Any, out: Any = None, dtype: Any = None) -> Any:
            a = self._arg(x, [])
            result = vectorized(a).astype(dtype or _special_dtype(a))
            COUNTS.kernels += 1
            if out is not None:
                out._a[...] = result
                return out
            return wrap(np.asarray(result), (), kernel=False)

    special = _Special(np.negative, name)
    special.nin, special.nout, special.nargs = 1, 1, 2
    return special


SPECIAL_FUNCTIONS = {
    "erf": _math_ufunc("erf", math.erf),
    "erfc": _math_ufunc("erfc", math.erfc),
    "gammaln": _math_ufunc("gammaln", math.lgamma),
}


def rsqrt(x: Any, out: Any = None) -> Any:
    return UFUNCS["reciprocal"](UFUNCS["sqrt"](x), out=out)


_ = (unwrap_host,)
