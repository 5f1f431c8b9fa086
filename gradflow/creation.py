"""Factories: tensor(), zeros/ones/full/empty, arange/linspace/eye, random tensors, *_like."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy

from gradflow import dtypes
from gradflow.backend import CPU, Device, device_of, get_array_module, move_array
from gradflow.layout import check_factory_options
from gradflow.random import Generator, seed_for
from gradflow.tensor import Tensor


def _to_array(data: Any, dtype: Any, device: Any) -> Any:
    """Copy `data` (nested lists, scalars, NumPy/CuPy arrays, Tensors) into a new array."""
    if isinstance(data, Tensor):
        data = data.array
    target = Device(device) if device is not None else None
    if hasattr(data, "__cuda_array_interface__") or (
        hasattr(data, "shape") and not isinstance(data, numpy.ndarray | numpy.generic)
    ):
        source = device_of(data)
    else:
        source = CPU
        data = _from_python(data, dtype)
    target = target or source
    d = dtypes.as_dtype(dtype) if dtype is not None else _default_dtype_of(data)
    array = move_array(data, target)
    # On target's GPU: CuPy copies an array of another device onto the current one.
    with _on(target):
        return get_array_module(target).array(array, dtype=d, copy=True)


def _from_python(data: Any, dtype: Any) -> numpy.ndarray:
    if isinstance(data, numpy.ndarray):
        return data
    try:
        array = numpy.asarray(data)
    except ValueError as exc:
        raise ValueError(f"can't make a tensor from {type(data).__name__}: {exc}") from exc
    if array.dtype == object:
        raise TypeError(
            f"can't make a tensor from {type(data).__name__} of mixed or ragged contents; "
            "pass nested lists of numbers with a regular shape"
        )
    if array.dtype.kind == "f" and dtype is None and not isinstance(data, numpy.generic):
        array = array.astype(dtypes.get_default_dtype())  # Python floats -> default float
    return array


def _default_dtype_of(array: Any) -> numpy.dtype:
    kind = array.dtype.kind
    if kind in "iu" and array.dtype not in dtypes._SUPPORTED:
        return dtypes.int64
    if kind == "U" or kind == "S" or kind == "O":
        raise TypeError(f"can't make a tensor from data of dtype {array.dtype}")
    return dtypes.as_dtype(array.dtype)


def tensor(
    data: Any,
    dtype: Any = None,
    device: str | Device | None = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """A new leaf tensor holding a copy of `data` (lists, scalars, NumPy/CuPy arrays).

    Python floats become float32 (the default float), Python ints int64, bools bool; NumPy
    arrays keep their dtype.

    >>> gradflow.tensor([[1.0, 2.0]], requires_grad=True).shape
    gradflow.Size([1, 2])
    """
    check_factory_options("tensor", options)
    t = Tensor._wrap(_to_array(data, dtype, device))
    if requires_grad:
        t.requires_grad = True
    return t


def _new(array: Any, requires_grad: bool) -> Tensor:
    t = Tensor._wrap(array)
    if requires_grad:
        t.requires_grad = True
    return t


def _size(size: Sequence[Any], op: str = "size") -> tuple:
    if len(size) == 1 and isinstance(size[0], list | tuple):
        size = size[0]
    out = []
    for s in size:
        if isinstance(s, bool) or not hasattr(s, "__index__"):
            raise TypeError(
                f"{op}: sizes must be ints, got {s!r} ({type(s).__name__}) in {tuple(size)}"
            )
        out.append(operator.index(s))
    out = tuple(out)
    if any(s < 0 for s in out):
        raise ValueError(f"sizes must be non-negative, got {out}")
    return out


_MAX_BYTES = 2**63 - 1  # what an array's byte count can be (a signed 64-bit size)


def _allocate(op: str, shape: tuple, dtype: Any, make: Any) -> Any:
    """make() (an array of `shape` and `dtype`), with errors that name the op: a size no
    array can hold is refused up front, and running out of memory says how much was asked."""
    nbytes = math.prod(shape) * numpy.dtype(dtype).itemsize
    if nbytes > _MAX_BYTES:
        raise RuntimeError(
            f"{op}: a tensor of shape {shape} and dtype {numpy.dtype(dtype)} would take "
            f"{nbytes} bytes, more than any array can hold (at most 2**63 - 1); check the sizes"
        )
    try:
        return make()
    except MemoryError as exc:
        raise MemoryError(
            f"{op}: out of memory allocating a tensor of shape {shape} and dtype "
            f"{numpy.dtype(dtype)} ({nbytes / 2**30:.2f} GiB)"
        ) from exc


def _keyword_size(size: tuple, options: dict, op: str) -> tuple:
    """The sizes of ``zeros(2, 3)``, ``zeros((2, 3))`` or PyTorch's keyword form
    ``zeros(size=(2, 3))`` (taken out of `options`)."""
    if "size" not in options:
        return size
    if size:
        raise TypeError(f"{op}() got its size both positionally and as size=")
    return (options.pop("size"),)


def _float_dtype(dtype: Any) -> numpy.dtype:
    return dtypes.as_dtype(dtype) if dtype is not None else dtypes.get_default_dtype()


def _draw_float(rng: Any, method: str, size: tuple, dtype: Any) -> Any:
    """rng.<method>(size) in `dtype`: NumPy's and CuPy's generators draw only float32 and
    float64, so float16 is drawn in float32 and cast, as random_ops does."""
    d = _float_dtype(dtype)
    drawn = getattr(rng, method)(size, dtype=d if d in (dtypes.float32, dtypes.float64) else "f4")
    return drawn.astype(d, copy=False)


def zeros(
    *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False, **options: Any
):
    """A tensor of zeros (default float dtype)."""
    size = _keyword_size(size, options, "zeros")
    check_factory_options("zeros", options)
    dev = Device(device)
    xp = get_array_module(dev)
    with _on(dev):
        shape, dt = _size(size, "zeros"), _float_dtype(dtype)
        return _new(_allocate("zeros", shape, dt, lambda: xp.zeros(shape, dt)), requires_grad)


def ones(
    *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False, **options: Any
):
    """A tensor of ones (default float dtype)."""
    size = _keyword_size(size, options, "ones")
    check_factory_options("ones", options)
    dev = Device(device)
    xp = get_array_module(dev)
    with _on(dev):
        shape, dt = _size(size, "ones"), _float_dtype(dtype)
        return _new(_allocate("ones", shape, dt, lambda: xp.ones(shape, dt)), requires_grad)


def empty(
    *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False, **options: Any
):
    """An uninitialized tensor (its contents are arbitrary)."""
    size = _keyword_size(size, options, "empty")
    check_factory_options("empty", options)
    dev = Device(device)
    xp = get_array_module(dev)
    with _on(dev):
        shape, dt = _size(size, "empty"), _float_dtype(dtype)
        return _new(_allocate("empty", shape, dt, lambda: xp.empty(shape, dt)), requires_grad)


def full(
    size: Sequence[int],
    fill_value: Any,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """A tensor filled with `fill_value` (its dtype follows the value unless given)."""
    check_factory_options("full", options)
    if dtype is None:
        dtype = _scalar_dtype(fill_value)
    dev = Device(device)
    xp = get_array_module(dev)
    with _on(dev):
        shape, dt = _size((size,), "full"), dtypes.as_dtype(dtype)
        array = _allocate("full", shape, dt, lambda: xp.full(shape, fill_value, dt))
        return _new(array, requires_grad)


def _scalar_dtype(value: Any) -> numpy.dtype:
    if isinstance(value, bool):
        return dtypes.bool
    if isinstance(value, int):
        return dtypes.int64
    return dtypes.get_default_dtype()


def arange(
    start: Any = None,
    end: Any = None,
    step: Any = 1,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """Values from `start` to `end` (exclusive) by `step`; int64 when all are integers."""
    check_factory_options("arange", options)
    if start is None and end is None:
        raise TypeError("arange() missing its end: arange(end), arange(start, end[, step])")
    if end is None:
        start, end = 0, start
    elif start is None:  # arange(end=5)
        start = 0
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        ints = all(isinstance(v, int) for v in (start, end, step))
        dtype = dtypes.int64 if ints else dtypes.get_default_dtype()
    dev = Device(device)
    xp = get_array_module(dev)
    with _on(dev):
        return _new(xp.arange(start, end, step, dtype=dtypes.as_dtype(dtype)), requires_grad)


def linspace(
    start: float,
    end: float,
    steps: int,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """`steps` evenly spaced values from `start` to `end` inclusive."""
    if steps < 0:
        raise ValueError(f"linspace: steps must be non-negative, got {steps}")
    dev = Device(device)
    xp = get_array_module(dev)
    with _on(dev):
        return _new(xp.linspace(start, end, steps, dtype=_float_dtype(dtype)), requires_grad)


def eye(
    n: int,
    m: int | None = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """An n x m identity matrix."""
    for name, value in (("n", n), ("m", m)):
        if value is None and name == "m":
            continue
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise TypeError(f"eye: {name} must be an int, got {value!r} ({type(value).__name__})")
        if operator.index(value) < 0:
            raise RuntimeError(f"eye: {name} must be greater or equal to 0, got {value}")
    dev = Device(device)
    xp = get_array_module(dev)
    with _on(dev):
        return _new(xp.eye(n, m, dtype=_float_dtype(dtype)), requires_grad)


def rand(
    *size: Any,
    generator: Generator | None = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """Uniform samples from [0, 1)."""
    size = _keyword_size(size, options, "rand")
    check_factory_options("rand", options)
    dev = Device(device)
    rng = seed_for(generator, dev)
    with _on(dev):
        return _new(_draw_float(rng, "random", _size(size), dtype), requires_grad)


def randn(
    *size: Any,
    generator: Generator | None = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """Standard normal samples."""
    size = _keyword_size(size, options, "randn")
    check_factory_options("randn", options)
    dev = Device(device)
    rng = seed_for(generator, dev)
    with _on(dev):
        return _new(_draw_float(rng, "standard_normal", _size(size), dtype), requires_grad)


def randint(
    low: int | None = None,
    high: Any = None,
    size: Any = None,
    generator: Generator | None = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """Random integers in [low, high) (int64 by default). PyTorch's call forms:
    ``randint(high, size)`` and ``randint(low, high, size)``, size a tuple."""
    check_factory_options("randint", options)
    if low is None:  # randint(high=10, size=(3,))
        if high is None:
            raise TypeError("randint() missing its high: randint(high, size) or "
                            "randint(low, high, size)")  # fmt: skip
        low = 0
    if size is None and isinstance(high, list | tuple):
        low, high, size = 0, low, high  # randint(high, size)
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError(
            "randint() missing its size argument: randint(high, size) or "
            "randint(low, high, size), size a tuple such as (3,)"
        )
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    if requires_grad:
        raise RuntimeError("randint: only floating-point tensors can require gradients")
    dev = Device(device)
    rng = seed_for(generator, dev)
    d = dtypes.as_dtype(dtype) if dtype is not None else dtypes.int64
    with _on(dev):
        drawn = rng.integers(low, high, size=_size((size,)), dtype=d if d.kind in "iu" else "int64")
        return Tensor._wrap(drawn.astype(d, copy=False))  # a float dtype: integral values


def randperm(
    n: int,
    generator: Generator | None = None,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """A random permutation of 0 .. n-1 (int64 unless `dtype` says otherwise); n must be a
    non-negative int."""
    check_factory_options("randperm", options)
    try:
        if isinstance(n, bool | numpy.bool_):
            raise TypeError
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"randperm: n must be an int, got {type(n).__name__} {n!r}") from None
    if n < 0:
        raise ValueError(f"randperm: n must be non-negative, got {n}")
    dev = Device(device)
    rng = seed_for(generator, dev)
    with _on(dev):
        d = dtypes.as_dtype(dtype) if dtype is not None else dtypes.int64
        return _new(_permutation(rng, n, get_array_module(dev)).astype(d), requires_grad)


def _permutation(rng: Any, n: int, xp: Any) -> Any:
    """0 .. n-1 in random order from a NumPy or CuPy Generator. CuPy's Generator has no
    permutation() (only distributions: random, integers, standard_normal, ...), so on cuda the
    order that sorts n uniform draws gives the permutation."""
    if xp is numpy:
        return rng.permutation(n)
    return xp.argsort(rng.random(n))


def _like(input: Tensor, dtype: Any, device: Any) -> dict:
    return {
        "dtype": dtype if dtype is not None else input.dtype,
        "device": device if device is not None else input.device,
    }


def zeros_like(
    input: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False,
    **options: Any,
) -> Tensor:  # fmt: skip
    check_factory_options("zeros_like", options)
    return zeros(input.shape, **_like(input, dtype, device), requires_grad=requires_grad)


def ones_like(
    input: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False,
    **options: Any,
) -> Tensor:  # fmt: skip
    check_factory_options("ones_like", options)
    return ones(input.shape, **_like(input, dtype, device), requires_grad=requires_grad)


def empty_like(
    input: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False,
    **options: Any,
) -> Tensor:  # fmt: skip
    check_factory_options("empty_like", options)
    return empty(input.shape, **_like(input, dtype, device), requires_grad=requires_grad)


def full_like(
    input: Tensor,
    fill_value: Any,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    check_factory_options("full_like", options)
    return full(input.shape, fill_value, **_like(input, dtype, device),
                requires_grad=requires_grad)  # fmt: skip


def rand_like(
    input: Tensor,
    generator: Generator | None = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    check_factory_options("rand_like", options)
    return rand(
        input.shape, generator=generator, **_like(input, dtype, device),
        requires_grad=requires_grad,
    )  # fmt: skip


def randn_like(
    input: Tensor,
    generator: Generator | None = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    check_factory_options("randn_like", options)
    return randn(
        input.shape, generator=generator, **_like(input, dtype, device),
        requires_grad=requires_grad,
    )  # fmt: skip


def from_numpy(array: numpy.ndarray) -> Tensor:
    """A cpu tensor sharing memory with a NumPy array (no copy)."""
    if not isinstance(array, numpy.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    dtypes.as_dtype(array.dtype)  # rejects unsupported dtypes with a clear message
    return Tensor._wrap(array)


def from_dlpack(ext_tensor: Any, *, device: Any = None, copy: bool | None = None) -> Tensor:
    """A tensor sharing memory with any DLPack producer (NumPy, CuPy, PyTorch, ...).

    As in PyTorch: ``copy=True`` always copies, ``device`` moves the result there (a copy
    when it is another device); ``copy=False`` refuses a move that would need a copy."""
    out = _shared_from_dlpack(ext_tensor)
    if device is not None and out.device != Device(device):
        if copy is False:
            raise ValueError(
                f"from_dlpack: the tensor lives on {out.device}, and moving it to {device} "
                "needs a copy, which copy=False forbids"
            )
        return out.to(device)
    return out.clone() if copy else out


def _shared_from_dlpack(obj: Any) -> Tensor:
    if isinstance(obj, Tensor):
        return Tensor._wrap(obj.array)
    if not hasattr(obj, "__dlpack_device__"):
        raise TypeError(
            f"from_dlpack expects an object with __dlpack__ and __dlpack_device__, "
            f"got {type(obj).__name__}"
        )
    device_type, device_id = obj.__dlpack_device__()
    if int(device_type) == 1:  # kDLCPU
        return Tensor._wrap(numpy.from_dlpack(obj))
    if int(device_type) in (2, 3):  # kDLCUDA, kDLCUDAHost
        cp = get_array_module(Device(f"cuda:{int(device_id)}"))
        return Tensor._wrap(cp.from_dlpack(obj))
    raise RuntimeError(f"from_dlpack: unsupported DLPack device type {device_type}")


class _on:
    """Make `device` current for CuPy allocations (a no-op on cpu)."""

    def __init__(self, device: Device):
        cuda = device.type == "cuda"
        self.ctx = get_array_module(device).cuda.Device(device.index) if cuda else None

    def __enter__(self) -> None:
        if self.ctx is not None:
            self.ctx.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self.ctx is not None:
            self.ctx.__exit__(*exc)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """`data` as a Tensor, sharing memory where it can (a Tensor or NumPy array already of
    that dtype and device), copying otherwise: PyTorch's ``as_tensor``."""
    if isinstance(data, Tensor):
        out = data
        if dtype is not None:
            out = out.to(dtypes.as_dtype(dtype))
        return out.to(device) if device is not None else out
    on_cpu = device is None or Device(device).type == "cpu"
    same_dtype = dtype is None or dtypes.as_dtype(dtype) == getattr(data, "dtype", None)
    if isinstance(data, numpy.ndarray) and on_cpu and same_dtype and data.dtype.kind in "fiub":
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def logspace(
    start: float,
    end: float,
    steps: int,
    base: float = 10.0,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """`steps` values from base**start to base**end, evenly spaced in the exponent."""
    check_factory_options("logspace", options)
    exponents = linspace(start, end, steps, dtype=dtypes.float64, device=device).array
    array = (base**exponents).astype(_float_dtype(dtype))
    return _new(array, requires_grad)


def normal(
    mean: Any,
    std: Any = 1.0,
    size: Any = None,
    *,
    generator: Generator | None = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """Normal samples: ``normal(mean, std, size)`` with numbers, or ``normal(mean, std)`` with
    tensors of means and/or standard deviations (broadcast), as PyTorch's."""
    check_factory_options("normal", options)
    like = mean if isinstance(mean, Tensor) else std if isinstance(std, Tensor) else None
    if like is not None:
        m = mean.array if isinstance(mean, Tensor) else mean
        s = std.array if isinstance(std, Tensor) else std
        shape = numpy.broadcast_shapes(numpy.shape(m), numpy.shape(s))
        noise = randn(shape, generator=generator, dtype=like.dtype, device=like.device).array
        return _new(noise * s + m, requires_grad)
    if size is None:
        raise TypeError("normal(mean, std, size): size is required when mean and std are numbers")
    noise = randn(size, generator=generator, dtype=dtype, device=device).array
    return _new(noise * std + mean, requires_grad)


def randint_like(
    input: Tensor,
    low: int = 0,
    high: int | None = None,
    *,
    generator: Generator | None = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """Random integers shaped like `input`: ``randint_like(input, high)`` or
    ``(input, low, high)``, in input's dtype and device unless given."""
    check_factory_options("randint_like", options)
    if high is None:
        low, high = 0, low
    out = randint(low, high, tuple(input.shape), generator=generator,
                  **_like(input, dtype, device))  # fmt: skip
    return out.requires_grad_() if requires_grad else out
