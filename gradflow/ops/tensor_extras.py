"""The rarer Tensor methods PyTorch programs call: storage queries (data_ptr, storage_offset,
is_set_to), resize_/resize_as_, the deprecated ``Tensor.new`` constructor, new_empty_strided,
sum_to_size, split_with_sizes and the unsafe_* splits, H/mH/adjoint, cholesky_solve and
cholesky_inverse, and apply_/map_ (Python callables per element, CPU only).

A gradflow tensor's storage is its NumPy/CuPy array's base buffer: ``storage_offset`` counts
elements from the start of the array that owns the memory, ``data_ptr`` is the address of the
first element, as in PyTorch."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import Any

import numpy

from gradflow import dtypes
from gradflow.autograd import grad_mode
from gradflow.backend import get_array_module, is_cuda_array
from gradflow.tensor import Size, Tensor


# ---- storage -------------------------------------------------------------------------------------
def _address(a: Any) -> int:
    """The address of a NumPy/CuPy array's first element."""
    if is_cuda_array(a) or not isinstance(a, numpy.ndarray):
        data = getattr(a, "data", None)
        ptr = getattr(data, "ptr", None)
        if ptr is not None:
            return int(ptr)
    return int(a.__array_interface__["data"][0])


def _owner(a: Any) -> Any:
    """The array that owns a's memory (a itself when it owns it)."""
    while True:
        base = getattr(a, "base", None)
        if base is None or not hasattr(base, "shape") or not hasattr(base, "dtype"):
            return a
        a = base


def data_ptr(t: Tensor) -> int:
    """The address of the tensor's first element (PyTorch's ``data_ptr``); 0 for no elements."""
    return 0 if t.array.size == 0 else _address(t.array)


def storage_offset(t: Tensor) -> int:
    """How many elements into its storage the tensor starts (0 for a tensor owning its data)."""
    owner = _owner(t.array)
    if owner is t.array:
        return 0
    return (_address(t.array) - _address(owner)) // t.array.itemsize


def is_set_to(t: Tensor, tensor: Tensor) -> bool:
    """True when both tensors view the same memory with the same sizes and strides."""
    if not isinstance(tensor, Tensor):
        raise TypeError(
            f"is_set_to(): argument 'tensor' must be Tensor, not {type(tensor).__name__}"
        )
    a, b = t.array, tensor.array
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and a.strides == b.strides
        and _address(a) == _address(b)
        and _owner(a) is _owner(b)
    )


# ---- resizing ------------------------------------------------------------------------------------
def _sizes(what: str, sizes: tuple) -> tuple:
    if len(sizes) == 1 and isinstance(sizes[0], Sequence | Size):
        sizes = tuple(sizes[0])
    out = []
    for n in sizes:
        if isinstance(n, bool) or not isinstance(n, int | numpy.integer):
            raise TypeError(f"{what}: sizes must be ints, got {type(n).__name__} ({n!r})")
        if n < 0:
            raise RuntimeError(
                f"{what}: sizes must be non-negative, got {list(sizes)}; PyTorch refuses negative "
                "sizes (there is no -1 inference in resize_)"
            )
        out.append(int(n))
    return tuple(out)


def resize_(t: Tensor, sizes: tuple) -> Tensor:
    """PyTorch's resize_: the tensor becomes a contiguous tensor of `sizes` over its storage
    from its storage offset on; the elements already there keep their values (in storage
    order), the storage grows (new elements uninitialized; zeros here) when it is too small.
    A tensor that requires grad can't be resized, as in PyTorch. gradflow's storage is the
    array's memory: when it has to grow, the tensor gets a new buffer and other views of the
    old one no longer see its writes (PyTorch's views do)."""
    if t.requires_grad:
        raise RuntimeError(
            "cannot resize variables that require grad; resize a detached copy "
            "(x.detach().resize_(...)) or build a new tensor"
        )
    shape = _sizes("resize_", sizes)
    n = int(numpy.prod(shape, dtype=numpy.int64))
    a = t.array
    xp = get_array_module(a)
    if a.shape == shape:
        return t
    if a.flags.c_contiguous and a.size == n:
        t.array = a.reshape(shape)
        return t
    owner = _owner(a)
    offset = storage_offset(t)
    if owner.flags.c_contiguous and owner.dtype == a.dtype and offset + n <= owner.size:
        t.array = owner.reshape(-1)[offset : offset + n].reshape(shape)
        return t
    # grow: the old storage's elements from the offset on, then zeros
    old = owner.reshape(-1) if owner.flags.c_contiguous and owner.dtype == a.dtype else None
    if old is None:  # storage not readable in order: keep this tensor's own elements
        old, offset = xp.ascontiguousarray(a).reshape(-1), 0
    new = xp.zeros(offset + n, dtype=a.dtype)
    keep = builtins.min(old.size, offset + n)
    new[:keep] = old[:keep]
    t.array = new[offset:].reshape(shape)
    return t


def resize_as_(t: Tensor, other: Tensor) -> Tensor:
    if not isinstance(other, Tensor):
        raise TypeError(
            f"resize_as_(): argument 'the_template' must be Tensor, not {type(other).__name__}"
        )
    return resize_(t, tuple(other.shape))


# ---- constructors --------------------------------------------------------------------------------
def new(t: Tensor, args: tuple, device: Any = None) -> Tensor:
    """The deprecated ``Tensor.new(...)``: no argument, an empty 1-D tensor; ints or a Size, an
    uninitialized tensor of that shape; a sequence, a tensor of its values; a tensor of the same
    dtype, that tensor's storage (an alias) — all in this tensor's dtype and device."""
    from gradflow import creation

    device = t.device if device is None else device
    if not args:
        return creation.empty(0, dtype=t.dtype, device=device)
    if len(args) == 1 and isinstance(args[0], Tensor):
        src = args[0]
        if src.dtype != t.dtype:
            raise TypeError(
                f"new(): expected a tensor of dtype {t.dtype} (this tensor's), got {src.dtype}; "
                "use new_tensor(data) to convert"
            )
        return Tensor._wrap(src.array)
    if (
        len(args) == 1
        and isinstance(args[0], list | numpy.ndarray)
        and not isinstance(args[0], Size)
    ):
        return creation.tensor(args[0], dtype=t.dtype, device=device)
    if len(args) == 1 and isinstance(args[0], tuple) and not isinstance(args[0], Size):
        return creation.tensor(list(args[0]), dtype=t.dtype, device=device)
    return creation.empty(*_sizes("new", args), dtype=t.dtype, device=device)


def new_empty_strided(
    t: Tensor, size: Sequence[int], stride: Sequence[int], dtype: Any, device: Any,
    requires_grad: bool,
) -> Tensor:  # fmt: skip
    from gradflow import creation

    size, stride = _sizes("new_empty_strided", (tuple(size),)), tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise RuntimeError(
            f"new_empty_strided: size {list(size)} and stride {list(stride)} differ in length"
        )
    if builtins.any(s < 0 for s in stride):
        raise RuntimeError(f"new_empty_strided: strides must be non-negative, got {list(stride)}")
    dtype = t.dtype if dtype is None else dtypes.as_dtype(dtype)
    device = t.device if device is None else device
    needed = 0 if 0 in size else 1 + builtins.sum((n - 1) * s for n, s in zip(size, stride))
    buffer = creation.empty(needed, dtype=dtype, device=device).array
    xp = get_array_module(buffer)
    item = buffer.itemsize
    if xp is numpy:
        array = numpy.lib.stride_tricks.as_strided(
            buffer, size, tuple(s * item for s in stride), writeable=True
        )
    else:
        array = xp.lib.stride_tricks.as_strided(buffer, size, tuple(s * item for s in stride))
    return Tensor._wrap(array, requires_grad=bool(requires_grad))


# ---- shapes --------------------------------------------------------------------------------------
def sum_to_size(t: Tensor, size: tuple) -> Tensor:
    """t summed down to `size`, which must expand to t's shape (PyTorch's sum_to_size)."""
    shape = _sizes("sum_to_size", size)
    own = tuple(t.shape)
    lead = len(own) - len(shape)
    if lead < 0 or builtins.any(n not in (1, m) for n, m in zip(shape, own[lead:])):
        raise RuntimeError(
            f"size {list(shape)} is not expandable to size {list(own)}: sum_to_size needs a size "
            "that broadcasts to the tensor's shape (each dim equal to the tensor's, or 1)"
        )
    dims = tuple(range(lead)) + tuple(
        lead + i for i, (n, m) in enumerate(zip(shape, own[lead:])) if n == 1 and m != 1
    )
    if not dims:
        return t
    out = t.sum(dims, keepdim=True)
    return out.reshape(shape) if lead else out


def split_with_sizes(t: Tensor, split_sizes: Sequence[int], dim: int = 0) -> tuple:
    sizes = [int(s) for s in split_sizes]
    if t.ndim == 0:
        raise RuntimeError("split_with_sizes expects at least a 1-dimensional tensor")
    length = t.shape[dim]
    if builtins.any(s < 0 for s in sizes) or builtins.sum(sizes) != length:
        raise RuntimeError(
            f"split_with_sizes expects split_sizes to sum exactly to {length} (input tensor's "
            f"size at dimension {dim}), but got split_sizes={sizes}"
        )
    return t.split(sizes, dim)


def _matrices(t: Tensor, what: str) -> None:
    if t.ndim < 2:
        raise RuntimeError(
            f"tensor.{what} is only supported on matrices or batches of matrices. Got "
            f"{t.ndim}-D tensor."
        )


def H(t: Tensor) -> Tensor:
    """The conjugate transpose of a matrix: for a real one, its transpose (0-d: itself)."""
    if t.ndim == 0:
        return t
    if t.ndim != 2:
        hint = " For batches of matrices, consider using tensor.mH" if t.ndim > 2 else ""
        raise RuntimeError(
            f"tensor.H is only supported on matrices (2-D tensors). Got {t.ndim}-D tensor.{hint}"
        )
    return t.transpose(0, 1)


def mH(t: Tensor, what: str = "mH") -> Tensor:
    _matrices(t, what)
    return t.transpose(-2, -1)


# ---- Cholesky ------------------------------------------------------------------------------------
def _gram(factor: Tensor, upper: bool) -> Tensor:
    """A = Uᵀ U or L Lᵀ from the factor's triangle (as PyTorch reads it), with the gradient
    of every entry of the factor (as PyTorch's formula gives it)."""
    triangle = factor.triu() if upper else factor.tril()
    factor = factor - (factor - triangle).detach()  # the triangle's values, identity gradient
    return factor.mT @ factor if upper else factor @ factor.mT


def cholesky_solve(input: Tensor, input2: Tensor, upper: bool = False) -> Tensor:
    """X with A X = input for A = L Lᵀ (input2 = L, lower) or Uᵀ U (upper=True), batched.

    The value comes from two triangular solves; the gradient is PyTorch's, which treats
    every entry of the factor as a variable (not only its triangle): it flows through
    A = L Lᵀ and a solve with A, so double backward comes too."""
    from gradflow.ops import decompositions, triangular

    for name, value in (("input", input), ("input2", input2)):
        if not isinstance(value, Tensor):
            raise TypeError(
                f"cholesky_solve(): argument '{name}' must be Tensor, not {type(value).__name__}"
            )
        if value.ndim < 2:
            raise RuntimeError(
                f"cholesky_solve: {name} must have at least 2 dimensions, got shape "
                f"{tuple(value.shape)}"
            )
    if input.dtype != input2.dtype:
        raise RuntimeError(
            f"cholesky_solve: expected input and input2 to have the same dtype, but got "
            f"{input.dtype} and {input2.dtype}"
        )
    if input2.shape[-1] != input2.shape[-2] or input2.shape[-1] != input.shape[-2]:
        raise RuntimeError(
            f"cholesky_solve: input2 must be a batch of square matrices matching input's rows, "
            f"got input {tuple(input.shape)} and input2 {tuple(input2.shape)}"
        )
    if input.dtype.kind != "f":
        raise RuntimeError(f"cholesky_solve: expected a floating point dtype, got {input.dtype}")
    if not (grad_mode.state.enabled and (input.requires_grad or input2.requires_grad)):
        # no graph: one solve with the Gram matrix of the factor's triangle, on raw arrays
        xp = get_array_module(input.array)
        f = xp.triu(input2.array) if upper else xp.tril(input2.array)
        gram = xp.matmul(f.swapaxes(-1, -2), f) if upper else xp.matmul(f, f.swapaxes(-1, -2))
        batch = tuple(numpy.broadcast_shapes(gram.shape[:-2], input.shape[:-2]))
        try:
            out = xp.linalg.solve(
                xp.broadcast_to(gram, batch + gram.shape[-2:]),
                xp.broadcast_to(input.array, batch + tuple(input.shape[-2:])),
            )
            if xp is not numpy or bool(numpy.isfinite(out).all()):
                return Tensor._wrap(out.astype(input.dtype, copy=False))
        except numpy.linalg.LinAlgError:
            pass  # a singular factor: the triangular solves give torch's infs and NaNs
        if upper:
            y = triangular.solve_triangular(input2.mT, input, upper=False)
            return triangular.solve_triangular(input2, y, upper=True)
        y = triangular.solve_triangular(input2, input, upper=False)
        return triangular.solve_triangular(input2.mT, y, upper=True)
    return decompositions.solve(_gram(input2, upper), input)


def cholesky_inverse(input: Tensor, upper: bool = False) -> Tensor:
    """(L Lᵀ)⁻¹ from the Cholesky factor L (or (Uᵀ U)⁻¹ with upper=True), batched."""
    from gradflow import creation

    if not isinstance(input, Tensor):
        raise TypeError(
            f"cholesky_inverse(): argument 'input' must be Tensor, not {type(input).__name__}"
        )
    if input.ndim < 2 or input.shape[-1] != input.shape[-2]:
        raise RuntimeError(
            "cholesky_inverse: input must be a square matrix or a batch of them, got shape "
            f"{tuple(input.shape)}"
        )
    n = input.shape[-1]
    eye = creation.eye(n, dtype=input.dtype, device=input.device).expand(*input.shape)
    return cholesky_solve(eye, input, upper)


# ---- Python callables ----------------------------------------------------------------------------
def _python_callable_target(t: Tensor, what: str) -> None:
    if t.requires_grad:
        raise RuntimeError(
            f"Can't call {what}() on Variable that requires grad. Use var.detach().{what}() "
            "instead."
        )
    if is_cuda_array(t.array):
        raise TypeError(f"{what}() is only implemented on CPU tensors (as in PyTorch)")


def apply_(t: Tensor, callable: Callable) -> Tensor:
    """Applies the Python callable to each element in place (slow; CPU only, as PyTorch)."""
    _python_callable_target(t, "apply_")
    a = t.array
    flat = a.reshape(-1) if a.flags.c_contiguous else a.ravel()
    values = [callable(v) for v in flat.tolist()]
    a[...] = numpy.asarray(values, dtype=a.dtype).reshape(a.shape)
    t._version += 1
    return t


def map_(t: Tensor, tensor: Tensor, callable: Callable) -> Tensor:
    """self[i] = callable(self[i], tensor[i]), tensor broadcast to self's shape; CPU only."""
    _python_callable_target(t, "map_")
    if not isinstance(tensor, Tensor):
        raise TypeError(f"map_(): argument 'tensor' must be Tensor, not {type(tensor).__name__}")
    a = t.array
    try:
        other = numpy.broadcast_to(tensor.array, a.shape)
    except ValueError:
        raise RuntimeError(
            f"map_: the tensor of shape {tuple(tensor.shape)} can't be broadcast to self's "
            f"shape {tuple(t.shape)}"
        ) from None
    values = [callable(x, y) for x, y in zip(a.ravel().tolist(), other.ravel().tolist())]
    a[...] = numpy.asarray(values, dtype=a.dtype).reshape(a.shape)
    t._version += 1
    return t
