"""Tensor: an n-dimensional array on a device, with the autograd state around it.

A Tensor wraps one NumPy (cpu) or CuPy (cuda) array in ``.array`` (gradflow's name; PyTorch
has none). ``.data`` is PyTorch's: a Tensor sharing that array, outside the graph. Operators
and methods delegate to the op modules in gradflow/ops; the ops record the graph through
Function.apply.
"""

from __future__ import annotations

import builtins
import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy

from gradflow import dtypes
from gradflow.autograd import grad_mode
from gradflow.autograd import versions as _versions
from gradflow.backend import Device, device_of, get_array_module, move_array
from gradflow.layout import check_factory_options


class RemovableHandle:
    """Returned by register_hook; ``handle.remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class Tensor:
    """An array on a device plus its autograd state (requires_grad, grad, grad_fn)."""

    __slots__ = (
        "__weakref__",
        "_epoch",
        "_hooks",
        "_output_nr",
        "_requires_grad",
        "array",
        "grad",
        "grad_fn",
    )
    __array_ufunc__ = None  # NumPy defers to our reflected operators (array + tensor)

    def __init__(self, *args: Any, device: str | Device | None = None, **kwargs: Any):
        """PyTorch's ``torch.Tensor(...)``: always the default float dtype.

        ``Tensor(2, 3)`` or ``Tensor(Size([2, 3]))`` is an uninitialized tensor of that shape,
        ``Tensor([1, 2])`` (or an array, a number sequence) a float copy of the data,
        ``Tensor()`` an empty one. For other dtypes use ``gradflow.tensor(data, dtype=...)``
        (``dtype=`` and ``requires_grad=`` are also accepted here, as gradflow has long done).
        """
        dtype = kwargs.pop("dtype", None)
        requires_grad = kwargs.pop("requires_grad", False)
        if kwargs:
            raise TypeError(f"Tensor() got unexpected keyword arguments {sorted(kwargs)}")
        self._init_array(_constructor_array(args, dtype, device))
        if requires_grad:
            self.requires_grad = True

    def _init_array(self, array: Any) -> None:
        self.array = array
        self.grad = None
        self.grad_fn = None
        self._output_nr = 0
        self._epoch = _versions._epoch[0]
        self._hooks = None
        self._requires_grad = False

    @staticmethod
    def _wrap(array: Any, requires_grad: bool = False) -> Tensor:
        """A leaf Tensor around an existing array (no copy, no checks). NumPy math on 0-d
        arrays gives scalars (a comparison, a gradient): those become 0-d arrays here."""
        if isinstance(array, numpy.generic):
            array = numpy.asarray(array)
        return _make_tensor(array, None, requires_grad, 0)

    # ---- attributes -------------------------------------------------------------------
    @property
    def data(self) -> Tensor:
        """PyTorch's ``.data``: a Tensor sharing this tensor's storage, outside the graph and
        not requiring grad (``p.data.add_(p.grad, alpha=-lr)`` updates ``p``). One difference:
        a write through it counts as a write to ``p``, so a backward that saved ``p``'s old
        values raises instead of silently using the new ones (PyTorch's ``.data`` hides the
        write). The raw NumPy/CuPy array is ``.array``."""
        return _make_tensor(self.array, None, False, 0)

    @data.setter
    def data(self, value: Any) -> None:
        """``p.data = t`` swaps the storage (shape and dtype may change, as in PyTorch)."""
        if not isinstance(value, Tensor):
            raise TypeError(
                f"Tensor.data must be set to a Tensor, got {type(value).__name__}; "
                "wrap arrays with gradflow.tensor() or assign to .array"
            )
        if value.device != self.device:
            raise RuntimeError(
                f"data set to a tensor on {value.device} but this tensor is on {self.device}"
            )
        self.array = value.array

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if self.grad_fn is not None and not value:
            raise RuntimeError(
                "requires_grad can only be turned off on leaf tensors; use y = x.detach() "
                "to get a tensor outside the graph"
            )
        if value and self.array.dtype.kind not in "fc":
            raise TypeError(
                f"only floating-point tensors can require gradients, got dtype "
                f"{self.array.dtype}; convert first with .float() or .double()"
            )
        self._requires_grad = bool(value)

    @property
    def shape(self) -> Size:
        return Size(self.array.shape)

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def dtype(self) -> numpy.dtype:
        return self.array.dtype

    @property
    def device(self) -> Device:
        return device_of(self.array)

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def T(self) -> Tensor:
        """The tensor with its dimensions reversed (a transpose for 2-D)."""
        return _shape.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self) -> Tensor:
        """The last two dimensions swapped (batched matrix transpose)."""
        return _shape.transpose(self, -2, -1)

    def size(self, dim: int | None = None) -> Any:
        """The shape (PyTorch's ``size()``), or one dimension's length with `dim`."""
        return Size(self.array.shape) if dim is None else self.array.shape[dim]

    def numel(self) -> int:
        return int(self.array.size)

    def dim(self) -> int:
        return self.array.ndim

    def __len__(self) -> int:
        if self.array.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.array.shape[0]

    def is_floating_point(self) -> bool:
        return self.array.dtype.kind == "f"

    def element_size(self) -> int:
        return self.array.itemsize

    def nbytes(self) -> int:
        return int(self.array.nbytes)

    # ---- conversion ---------------------------------------------------------------------
    def numpy(self, force: bool = False) -> numpy.ndarray:
        """The data as a NumPy array (shares memory on cpu). Fails for tensors that require grad,
        as in PyTorch: call ``detach().numpy()``; cuda tensors must be moved with ``.cpu()``.
        ``force=True`` does both (a copy from a cuda tensor), as PyTorch's does."""
        if force:
            return self.detach().cpu().array
        if self._requires_grad:
            raise RuntimeError(
                "can't call numpy() on a tensor that requires grad; use tensor.detach().numpy()"
            )
        if not isinstance(self.array, numpy.ndarray):
            raise TypeError(
                f"can't convert a {self.device} tensor to numpy; copy it first with .cpu()"
            )
        return self.array

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self.array.size != 1:
            raise ValueError(
                f"item() needs a tensor with one element, got shape {tuple(self.shape)}"
            )
        return self.array.item()

    def tolist(self) -> Any:
        return move_array(self.array, Device("cpu")).tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> numpy.ndarray:
        if not isinstance(self.array, numpy.ndarray):
            raise TypeError(
                f"can't convert a {self.device} tensor to a NumPy array implicitly; use .cpu()"
            )
        return self.array if dtype is None else self.array.astype(dtype)

    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any:
        return self.array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self) -> tuple:
        return self.array.__dlpack_device__()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.array.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor with {self.array.size} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self.array.item())

    def __index__(self) -> int:
        if self.array.dtype.kind not in "iu" or self.array.size != 1:
            raise TypeError("only integer tensors of one element can be used as an index")
        return int(self.array.item())

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or ``to(other_tensor)``;
        differentiable, and returns self when nothing changes (``copy=True`` always copies).
        ``non_blocking=`` and ``memory_format=`` are accepted (see gradflow/layout.py)."""
        copy = kwargs.pop("copy", False)
        kwargs.pop("non_blocking", None)
        check_factory_options("to", {"memory_format": kwargs.pop("memory_format", None)})
        device, dtype = parse_to_args(args, kwargs)
        out = self
        if dtype is not None:
            out = _conversion.cast(out, dtype)
        if device is not None:
            out = _conversion.to_device(out, device)
        return out.clone() if copy and out is self else out

    def cpu(self, memory_format: Any = None) -> Tensor:
        return self.to("cpu")

    def cuda(
        self, device: int | str | None = None, non_blocking: bool = False, **kw: Any
    ) -> Tensor:
        if isinstance(device, int):
            device = f"cuda:{device}"
        return self.to(device or "cuda")

    def pin_memory(self) -> Tensor:
        """PyTorch pins host memory for asynchronous copies; a no-op here (see DataLoader)."""
        return self

    def get_device(self) -> int:
        """The cuda device index, -1 on the cpu (PyTorch's convention)."""
        return -1 if self.device.type == "cpu" else (self.device.index or 0)

    def float(self, memory_format: Any = None) -> Tensor:
        return self.to(dtypes.float32)

    def double(self, memory_format: Any = None) -> Tensor:
        return self.to(dtypes.float64)

    def half(self, memory_format: Any = None) -> Tensor:
        return self.to(dtypes.float16)

    def long(self, memory_format: Any = None) -> Tensor:
        return self.to(dtypes.int64)

    def int(self, memory_format: Any = None) -> Tensor:
        return self.to(dtypes.int32)

    def bool(self, memory_format: Any = None) -> Tensor:
        return self.to(dtypes.bool)

    def type(self, dtype: Any = None, non_blocking: bool = False) -> Any:
        """With no argument the type's name ('gradflow.FloatTensor', 'gradflow.cuda.LongTensor');
        with a dtype (or a name such as 'torch.LongTensor') this tensor cast to it."""
        if dtype is None:
            prefix = "gradflow.cuda." if self.device.type == "cuda" else "gradflow."
            return prefix + dtypes.tensor_type_name(self.dtype)
        if isinstance(dtype, str) and dtype.endswith("Tensor"):
            dtype = dtypes.from_tensor_type_name(dtype)
        return self.to(dtypes.as_dtype(dtype))

    def type_as(self, other: Tensor) -> Tensor:
        """This tensor cast to ``other``'s dtype (PyTorch's type_as)."""
        return self.to(other.dtype)

    # ---- new tensors like this one (same dtype and device unless given) -------------------
    def _new_options(self, dtype: Any, device: Any) -> dict:
        return {
            "dtype": self.dtype if dtype is None else dtype,
            "device": self.device if device is None else device,
        }

    def new_zeros(self, *size: Any, dtype: Any = None, device: Any = None, **kw: Any) -> Tensor:
        from gradflow.creation import zeros

        return zeros(*size, **self._new_options(dtype, device), **kw)

    def new_ones(self, *size: Any, dtype: Any = None, device: Any = None, **kw: Any) -> Tensor:
        from gradflow.creation import ones

        return ones(*size, **self._new_options(dtype, device), **kw)

    def new_empty(self, *size: Any, dtype: Any = None, device: Any = None, **kw: Any) -> Tensor:
        from gradflow.creation import empty

        return empty(*size, **self._new_options(dtype, device), **kw)

    def new_full(
        self, size: Any, fill_value: Any, dtype: Any = None, device: Any = None, **kw: Any
    ) -> Tensor:
        from gradflow.creation import full

        return full(size, fill_value, **self._new_options(dtype, device), **kw)

    def new_tensor(self, data: Any, dtype: Any = None, device: Any = None, **kw: Any) -> Tensor:
        """A copy of ``data`` with this tensor's dtype and device unless given, as PyTorch."""
        from gradflow.creation import tensor

        if isinstance(data, Tensor):
            data = data.detach()
        return tensor(data, **self._new_options(dtype, device), **kw)

    # ---- autograd -----------------------------------------------------------------------
    def backward(
        self,
        gradient: Any = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        inputs: Any = None,
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (chain rule, reverse mode).

        `gradient` is d(loss)/d(self); it may be omitted only for a one-element tensor.
        The graph is freed afterwards unless ``retain_graph=True``. With `inputs`, only those
        tensors' ``.grad`` accumulate (PyTorch's ``inputs=``).
        """
        from gradflow.autograd.engine import run_backward

        if create_graph or inputs is not None:
            from gradflow.autograd.functional import backward

            return backward(self, gradient, retain_graph, create_graph, inputs)
        if not self._requires_grad:
            raise RuntimeError(
                "backward() called on a tensor that does not require grad and has no grad_fn: "
                "make sure some input has requires_grad=True and that the loss was not computed "
                "under no_grad()"
            )
        grad = _root_gradient(self, gradient)
        run_backward([self], [grad], retain_graph=bool(retain_graph))

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, outside the graph."""
        return Tensor._wrap(self.array)

    def clone(self, memory_format: Any = None) -> Tensor:
        """A copy with its own memory, in the graph (gradients pass through), as PyTorch's."""
        return _conversion.clone(self)

    def detach_(self) -> Tensor:
        """Cut this tensor from its graph in place; it becomes a leaf."""
        self.grad_fn = None
        self._requires_grad = False
        self._output_nr = 0
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor at the next backward."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on a tensor that does not require grad")
        if self.grad_fn is None:
            return  # leaves keep their grad anyway
        fn = self.grad_fn
        if fn._retained is None:
            fn._retained = {}
        fn._retained[self._output_nr] = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        fn = self.grad_fn
        return fn is not None and fn._retained is not None and self._output_nr in fn._retained

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned Tensor
        replaces the gradient. Returns a handle whose ``remove()`` unregisters it."""
        if not self._requires_grad:
            raise RuntimeError("can't register a hook on a tensor that does not require grad")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = {}
            hooks = self._hooks
        else:
            fn = self.grad_fn
            if fn._pre_hooks is None:
                fn._pre_hooks = {}
            hooks = fn._pre_hooks.setdefault(self._output_nr, {})
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]) -> RemovableHandle:
        """Call ``hook(self)`` after a backward has accumulated this leaf's gradient into
        ``.grad`` (PyTorch 2's hook; see gradflow.autograd.engine)."""
        from gradflow.autograd.engine import register_post_accumulate_grad_hook

        return register_post_accumulate_grad_hook(self, hook)

    # ---- in place ------------------------------------------------------------------------
    # PyTorch's semantics: a write bumps the storage's version (autograd/versions.py), so a
    # node that saved this storage, through any view or detach(), refuses to backward; a
    # write whose operand or target requires grad is recorded, the target becoming the output
    # of a new node whose inputs are its old history and the operand (CopySlices); a leaf that
    # requires grad can't be written while gradients are recorded.
    @property
    def _version(self) -> int:
        """How many in-place writes this tensor's storage has had (shared with its views)."""
        return _versions.version(self.array)

    @_version.setter
    def _version(self, value: int) -> None:  # optimizers: `p._version += 1` after an update
        _versions.bump(self.array, value - _versions.version(self.array))

    def _check_inplace(self, what: str) -> None:
        if self._requires_grad and self.grad_fn is None and grad_mode.state.enabled:
            raise RuntimeError(
                f"{what}: a leaf tensor that requires grad is being used in an in-place "
                "operation; do it under `with gradflow.no_grad():` (as optimizers do) or use the "
                "out-of-place form (x = x + y)"
            )
        strides = self.array.strides
        if 0 in strides and any(s == 0 and n > 1 for s, n in zip(strides, self.array.shape)):
            # An expand()ed view: NumPy refuses the write (read-only view), CuPy would let every
            # thread that maps to one element race on it. PyTorch raises; so do we, on both.
            raise RuntimeError(
                f"{what}: unsupported operation: more than one element of the written-to "
                f"tensor (shape {tuple(self.shape)}, an expand()ed or broadcast view) refers to "
                "a single memory location; clone() it before writing in place"
            )

    def _records(self, what: str, operand: Any) -> bool:
        """Whether this write must be recorded in the graph (and can be)."""
        if not grad_mode.state.enabled:
            return False
        return self._requires_grad or (isinstance(operand, Tensor) and operand._requires_grad)

    def _rebase(self, result: Tensor) -> Tensor:
        """Writes result's values into this tensor's storage and makes it the output of
        result's node (the in-place op's history)."""
        if result.array is not self.array:
            self.array[...] = result.array
        _versions.bump(self.array)
        _versions.rebased(self.array)
        self._epoch = _versions._epoch[0]
        self.grad_fn = result.grad_fn
        self._output_nr = result._output_nr
        self._requires_grad = result._requires_grad
        return self

    def _operand(self, what: str, value: Any) -> Any:
        """value as an in-place op takes it: a Tensor on this tensor's device and dtype
        (cast differentiably), or a raw array or scalar on this device."""
        if isinstance(value, Tensor):
            _check_same_place(self, value.array, what)
            if value.dtype != self.dtype and self.dtype.kind == "f":
                value = value.to(self.dtype)
            return value
        if isinstance(value, numpy.ndarray | numpy.generic) or hasattr(value, "shape"):
            _check_same_place(self, value, what)
        return value

    def _arith_(
        self, what: str, op: Callable[[Any, Any], Tensor], other: Any, ufunc: str | None
    ) -> Tensor:
        """self = op(self, other) in place; unrecorded, the array module's ``ufunc`` writes
        straight into the storage (``clip`` when ufunc is None, for clamp_)."""
        self._check_inplace(what)
        other = self._operand(what, other)
        if self._records(what, other):
            # The node may save its inputs: give it a copy of the old values, not the storage
            # about to be overwritten.
            old = _make_tensor(
                self.array.copy(), self.grad_fn, self._requires_grad, self._output_nr
            )
            return self._rebase(op(old, other))
        if ufunc is None:
            op(self, other)  # clamp_ writes through its own out= below
        else:
            value = other.array if isinstance(other, Tensor) else other
            getattr(get_array_module(self.array), ufunc)(self.array, value, out=self.array)
        _versions.bump(self.array)
        return self

    def _write(self, what: str, index: Any, value: Any) -> Tensor:
        """self[index] = value, recorded when value or self requires grad."""
        self._check_inplace(what)
        value = self._operand(what, value)
        if isinstance(value, list):
            value = numpy.asarray(value)
        if self._records(what, value):
            return self._rebase(_indexing.SetItem.apply(self, value, index=index))
        self.array[index] = value.array if isinstance(value, Tensor) else value
        _versions.bump(self.array)
        return self

    def copy_(self, src: Any, non_blocking: bool = False) -> Tensor:
        """Copies ``src`` (a Tensor, array or scalar, on any device: PyTorch's copy_ copies
        across devices) into this tensor, cast to its dtype and broadcast to its shape.
        `non_blocking` is accepted; a copy between devices is ordered on the current stream."""
        if isinstance(src, Tensor) and src.device != self.device:
            src = src.to(self.device)
        elif not isinstance(src, Tensor | int | float | bool | numpy.generic):
            src = move_array(numpy.asarray(src) if isinstance(src, list) else src, self.device)
        return self._write("copy_", Ellipsis, src)

    def zero_(self) -> Tensor:
        return self._write("zero_", Ellipsis, 0)

    def fill_(self, value: Any) -> Tensor:
        return self._write("fill_", Ellipsis, value)

    def fill_diagonal_(self, fill_value: Any, wrap: bool = False) -> Tensor:
        index = _diagonals.diagonal_index(self.shape, wrap, get_array_module(self.array))
        return self._write("fill_diagonal_", index, fill_value)

    def add_(self, other: Any, alpha: Any = 1) -> Tensor:
        if alpha != 1:
            other = other * alpha
        return self._arith_("add_", _arith.add, other, "add")

    def sub_(self, other: Any, alpha: Any = 1) -> Tensor:
        if alpha != 1:
            other = other * alpha
        return self._arith_("sub_", _arith.sub, other, "subtract")

    def mul_(self, other: Any) -> Tensor:
        return self._arith_("mul_", _arith.mul, other, "multiply")

    def div_(self, other: Any, *, rounding_mode: str | None = None) -> Tensor:
        if rounding_mode is not None:
            self.copy_(_arith.div(self.detach(), other, rounding_mode=rounding_mode))
            return self
        return self._arith_("div_", _arith.div, other, "true_divide")

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:
        def clamp(x: Tensor, _: Any) -> Tensor | None:
            if x is self:  # unrecorded: in place
                get_array_module(x.array).clip(x.array, min, max, out=x.array)
                return None
            return x.clamp(min, max)

        return self._arith_("clamp_", clamp, None, None)

    clip_ = clamp_

    def __iadd__(self, other: Any) -> Tensor:
        return self.add_(other)

    def __isub__(self, other: Any) -> Tensor:
        return self.sub_(other)

    def __imul__(self, other: Any) -> Tensor:
        return self.mul_(other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self.div_(other)

    def __setitem__(self, index: Any, value: Any) -> None:
        self._write("__setitem__", _indexing.normalize_index(index, self), value)

    # ---- arithmetic ---------------------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return _arith.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _arith.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _arith.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _arith.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _arith.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _arith.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _arith.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _arith.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _arith.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _arith.pow(other, self)

    def __neg__(self) -> Tensor:
        return _arith.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _unary.abs(self)

    def __matmul__(self, other: Any) -> Tensor:
        return _linalg.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _linalg.matmul(other, self)

    def __floordiv__(self, other: Any) -> Tensor:
        return _arith.floor_divide(self, other)

    def __mod__(self, other: Any) -> Tensor:
        return _arith.remainder(self, other)

    def __rfloordiv__(self, other: Any) -> Tensor:
        return _arith.floor_divide(other, self)

    def __rmod__(self, other: Any) -> Tensor:
        return _arith.remainder(other, self)

    # comparisons and logic: elementwise, no gradient (so Tensor hashes by identity)
    __hash__ = object.__hash__

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _arith.eq(self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _arith.ne(self, other)

    def __lt__(self, other: Any) -> Tensor:
        return _arith.lt(self, other)

    def __le__(self, other: Any) -> Tensor:
        return _arith.le(self, other)

    def __gt__(self, other: Any) -> Tensor:
        return _arith.gt(self, other)

    def __ge__(self, other: Any) -> Tensor:
        return _arith.ge(self, other)

    # &, |, ^, ~, <<, >>: bitwise on integer and bool tensors (logical for bool), as PyTorch
    def __and__(self, other: Any) -> Tensor:
        return _pointwise_extras.bitwise_and(self, other)

    def __rand__(self, other: Any) -> Tensor:
        return _pointwise_extras.bitwise_and(other, self)

    def __or__(self, other: Any) -> Tensor:
        return _pointwise_extras.bitwise_or(self, other)

    def __ror__(self, other: Any) -> Tensor:
        return _pointwise_extras.bitwise_or(other, self)

    def __xor__(self, other: Any) -> Tensor:
        return _pointwise_extras.bitwise_xor(self, other)

    def __rxor__(self, other: Any) -> Tensor:
        return _pointwise_extras.bitwise_xor(other, self)

    def __invert__(self) -> Tensor:
        return _pointwise_extras.bitwise_not(self)

    def __lshift__(self, other: Any) -> Tensor:
        return _pointwise_extras.bitwise_left_shift(self, other)

    def __rlshift__(self, other: Any) -> Tensor:
        return _pointwise_extras.bitwise_left_shift(other, self)

    def __rshift__(self, other: Any) -> Tensor:
        return _pointwise_extras.bitwise_right_shift(self, other)

    def __rrshift__(self, other: Any) -> Tensor:
        return _pointwise_extras.bitwise_right_shift(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        return _indexing.getitem(self, index)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self) -> str:
        return _format(self)

    def __format__(self, spec: str) -> str:
        """``f"{loss:.3f}"`` formats a one-element tensor's value, as PyTorch does."""
        if self.array.ndim == 0:  # as PyTorch: the value, formatted (f"{count}" is "7")
            return format(self.array.item(), spec)
        if not spec:
            return repr(self)
        raise TypeError(
            f"unsupported format string passed to Tensor.__format__: only 0-d tensors take a "
            f"format spec, got shape {tuple(self.shape)}; format tensor.item() or a 0-d element"
        )

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(
            "Tensors are not pickled (a pickle can run code on load); save state dicts with "
            "gradflow.save() instead"
        )

    def __deepcopy__(self, memo: dict) -> Tensor:
        """A leaf copy with its own array (and a copy of .grad): ``copy.deepcopy(model)``."""
        if self.grad_fn is not None:
            raise RuntimeError(
                "only leaf tensors support copy.deepcopy; use tensor.detach().clone() for a "
                "copy outside the graph"
            )
        if id(self) in memo:
            return memo[id(self)]
        out = _make_tensor(self.array.copy(), None, self._requires_grad, 0)
        out.__class__ = type(self)  # a Parameter stays a Parameter
        memo[id(self)] = out
        if self.grad is not None:
            out.grad = self.grad.__deepcopy__(memo)
        return out

    # ---- methods delegating to ops (PyTorch's names) ------------------------------------
    def add(self, other: Any, *, alpha: Any = 1) -> Tensor:
        return _arith.add(self, other, alpha=alpha)

    def sub(self, other: Any, *, alpha: Any = 1) -> Tensor:
        return _arith.sub(self, other, alpha=alpha)

    def mul(self, other: Any) -> Tensor:
        return _arith.mul(self, other)

    def div(self, other: Any, *, rounding_mode: str | None = None) -> Tensor:
        return _arith.div(self, other, rounding_mode=rounding_mode)

    def pow(self, exponent: Any) -> Tensor:
        return _arith.pow(self, exponent)

    def neg(self) -> Tensor:
        return _arith.neg(self)

    def matmul(self, other: Any) -> Tensor:
        return _linalg.matmul(self, other)

    def maximum(self, other: Any) -> Tensor:
        return _arith.maximum(self, other)

    def minimum(self, other: Any) -> Tensor:
        return _arith.minimum(self, other)

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:
        return _arith.clip(self, min, max)

    clip = clamp

    def where(self, condition: Any, other: Any) -> Tensor:
        return _arith.where(condition, self, other)

    def abs(self) -> Tensor:
        return _unary.abs(self)

    def exp(self) -> Tensor:
        return _unary.exp(self)

    def log(self) -> Tensor:
        return _unary.log(self)

    def log1p(self) -> Tensor:
        return _unary.log1p(self)

    def expm1(self) -> Tensor:
        return _unary.expm1(self)

    def sqrt(self) -> Tensor:
        return _unary.sqrt(self)

    def rsqrt(self) -> Tensor:
        return _unary.rsqrt(self)

    def sign(self) -> Tensor:
        return _unary.sign(self)

    def sin(self) -> Tensor:
        return _trigonometric.sin(self)

    def cos(self) -> Tensor:
        return _trigonometric.cos(self)

    def tanh(self) -> Tensor:
        return _unary.tanh(self)

    def sigmoid(self) -> Tensor:
        return _unary.sigmoid(self)

    def relu(self) -> Tensor:
        return _unary.relu(self)

    def sum(self, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return _reduction.sum(self, dim, keepdim, **kw)

    def mean(self, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return _reduction.mean(self, dim, keepdim, **kw)

    def var(self, dim: Any = None, unbiased: bool = True, keepdim: bool = False, **kw: Any):
        return _reduction.var(self, dim, unbiased, keepdim, **kw)

    def std(self, dim: Any = None, unbiased: bool = True, keepdim: bool = False, **kw: Any):
        return _reduction.std(self, dim, unbiased, keepdim, **kw)

    def max(self, dim: Any = None, keepdim: bool = False, **kw: Any) -> Any:
        return _reduction.max(self, dim, keepdim, **kw)

    def min(self, dim: Any = None, keepdim: bool = False, **kw: Any) -> Any:
        return _reduction.min(self, dim, keepdim, **kw)

    def amax(self, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return _reduction.amax(self, dim, keepdim, **kw)

    def amin(self, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return _reduction.amin(self, dim, keepdim, **kw)

    def logsumexp(self, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return _reduction.logsumexp(self, dim, keepdim, **kw)

    def prod(self, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return _reduction.prod(self, dim, keepdim, **kw)

    def cumsum(self, dim: int, **kw: Any) -> Tensor:
        return _reduction.cumsum(self, dim, **kw)

    def argmax(self, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return _reduction.argmax(self, dim, keepdim, **kw)

    def argmin(self, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return _reduction.argmin(self, dim, keepdim, **kw)

    def any(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return _reduction.any(self, dim, keepdim)

    def all(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return _reduction.all(self, dim, keepdim)

    def reshape(self, *shape: Any) -> Tensor:
        return _shape.reshape(self, _shape_arg(shape))

    def view(self, *shape: Any) -> Tensor:
        return _shape.view(self, _shape_arg(shape))

    def view_as(self, other: Tensor) -> Tensor:
        return _shape.view(self, other.shape)

    def reshape_as(self, other: Tensor) -> Tensor:
        return _shape.reshape(self, other.shape)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        return _shape.transpose(self, dim0, dim1)

    def t(self) -> Tensor:
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor of at most 2 dims, got shape {self.shape}")
        return self.T

    def permute(self, *dims: Any) -> Tensor:
        return _shape.permute(self, _shape_arg(dims))

    def expand(self, *shape: Any) -> Tensor:
        return _shape.expand(self, _shape_arg(shape))

    def expand_as(self, other: Tensor) -> Tensor:
        return _shape.expand(self, other.shape)

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        return _shape.broadcast_to(self, tuple(shape))

    # In-place shape changes (unsqueeze_, squeeze_, t_, transpose_, resize_as_ is not here):
    # this tensor takes the out-of-place result's view of its storage and, when it is in a
    # graph, that result's history. A leaf that requires grad refuses, as PyTorch's does.
    def _reshape_inplace(self, what: str, result: Tensor) -> Tensor:
        self._check_inplace(what)
        self.array = result.array
        if result.grad_fn is not None:
            self.grad_fn, self._output_nr = result.grad_fn, result._output_nr
        return self

    def squeeze_(self, dim: Any = None) -> Tensor:
        return self._reshape_inplace("squeeze_", _shape.squeeze(self, dim))

    def unsqueeze_(self, dim: int) -> Tensor:
        return self._reshape_inplace("unsqueeze_", _shape.unsqueeze(self, dim))

    def t_(self) -> Tensor:
        return self._reshape_inplace("t_", self.t())

    def transpose_(self, dim0: int, dim1: int) -> Tensor:
        return self._reshape_inplace("transpose_", _shape.transpose(self, dim0, dim1))

    def squeeze(self, dim: Any = None) -> Tensor:
        return _shape.squeeze(self, dim)

    def unsqueeze(self, dim: int) -> Tensor:
        return _shape.unsqueeze(self, dim)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return _shape.flatten(self, start_dim, end_dim)

    def split(self, split_size_or_sections: Any, dim: int = 0) -> tuple:
        return _shape.split(self, split_size_or_sections, dim)

    def chunk(self, chunks: int, dim: int = 0) -> tuple:
        return _shape.chunk(self, chunks, dim)

    def flip(self, *dims: Any) -> Tensor:
        return _shape.flip(self, _shape_arg(dims))

    def repeat(self, *sizes: Any) -> Tensor:
        return _shape.repeat(self, _shape_arg(sizes))

    def tile(self, *sizes: Any) -> Tensor:
        return _shape.tile(self, _shape_arg(sizes))

    def contiguous(self, memory_format: Any = None) -> Tensor:
        return _shape.contiguous(self)

    def is_contiguous(self, memory_format: Any = None) -> bool:
        return bool(self.array.flags.c_contiguous)

    def stride(self, dim: int | None = None) -> Any:
        """Strides in elements, as PyTorch's (NumPy's are in bytes)."""
        strides = tuple(s // self.array.itemsize for s in self.array.strides)
        return strides if dim is None else strides[dim]

    def ndimension(self) -> int:
        return self.array.ndim

    def nelement(self) -> int:
        return int(self.array.size)

    # comparisons as methods (PyTorch's names and aliases)
    def eq(self, other: Any) -> Tensor:
        return _arith.eq(self, other)

    def ne(self, other: Any) -> Tensor:
        return _arith.ne(self, other)

    def lt(self, other: Any) -> Tensor:
        return _arith.lt(self, other)

    def le(self, other: Any) -> Tensor:
        return _arith.le(self, other)

    def gt(self, other: Any) -> Tensor:
        return _arith.gt(self, other)

    def ge(self, other: Any) -> Tensor:
        return _arith.ge(self, other)

    not_equal, less, less_equal, greater, greater_equal = ne, lt, le, gt, ge

    def equal(self, other: Tensor) -> bool:
        """True when both have the same shape and elements (PyTorch's ``torch.equal``)."""
        return self.shape == other.shape and bool((self.array == other.array).all())

    def logical_and(self, other: Any) -> Tensor:
        return _arith.logical_and(self, other)

    def logical_or(self, other: Any) -> Tensor:
        return _arith.logical_or(self, other)

    def logical_not(self) -> Tensor:
        return _arith.logical_not(self)

    def logical_xor(self, other: Any) -> Tensor:
        return _arith.logical_xor(self, other)

    def gather(self, dim: int, index: Any) -> Tensor:
        return _indexing.gather(self, dim, index)

    def unfold(self, dimension: int, size: int, step: int) -> Tensor:
        return _indexing.unfold(self, dimension, size, step)

    def index_select(self, dim: int, index: Any) -> Tensor:
        return _indexing.index_select(self, dim, index)

    def masked_select(self, mask: Any) -> Tensor:
        return _indexing.masked_select(self, mask)

    def take_along_dim(self, indices: Any, dim: int | None = None) -> Tensor:
        return _indexing.take_along_axis(self, indices, dim)

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        return _scatter.masked_fill(self, mask, value)

    def softmax(self, dim: int, dtype: Any = None) -> Tensor:
        from gradflow.ops.softmax import softmax

        return softmax(self, dim, dtype=dtype)

    def log_softmax(self, dim: int, dtype: Any = None) -> Tensor:
        from gradflow.ops.softmax import log_softmax

        return log_softmax(self, dim, dtype=dtype)

    # ---- methods: pointwise math, linalg, reductions, random fills ------------------------
    # (PyTorch's names; each delegates to its op in gradflow/ops)
    def square(self) -> Tensor:
        return _unary.square(self)

    def reciprocal(self) -> Tensor:
        return _unary.reciprocal(self)

    def tan(self) -> Tensor:
        return _trigonometric.tan(self)

    def asin(self) -> Tensor:
        return _trigonometric.asin(self)

    def acos(self) -> Tensor:
        return _trigonometric.acos(self)

    def atan(self) -> Tensor:
        return _trigonometric.atan(self)

    arcsin, arccos, arctan = asin, acos, atan

    def sinh(self) -> Tensor:
        return _trigonometric.sinh(self)

    def cosh(self) -> Tensor:
        return _trigonometric.cosh(self)

    def asinh(self) -> Tensor:
        return _trigonometric.asinh(self)

    def acosh(self) -> Tensor:
        return _trigonometric.acosh(self)

    def atanh(self) -> Tensor:
        return _trigonometric.atanh(self)

    arcsinh, arccosh, arctanh = asinh, acosh, atanh

    def log2(self) -> Tensor:
        return _unary.log2(self)

    def log10(self) -> Tensor:
        return _unary.log10(self)

    def exp2(self) -> Tensor:
        return _unary.exp2(self)

    def erf(self) -> Tensor:
        return _special.erf(self)

    def erfc(self) -> Tensor:
        return _special.erfc(self)

    def erfinv(self) -> Tensor:
        return _special.erfinv(self)

    def lgamma(self) -> Tensor:
        return _gamma.lgamma(self)

    def digamma(self) -> Tensor:
        return _gamma.digamma(self)

    def polygamma(self, n: int) -> Tensor:
        return _gamma.polygamma(n, self)

    def polygamma_(self, n: int) -> Tensor:
        """In place: ``x.polygamma_(n)`` makes x hold ``x.polygamma(n)``."""
        return self._apply_("polygamma_", lambda x, order: _gamma.polygamma(order, x), n)

    def mvlgamma(self, p: int) -> Tensor:
        return _gamma.mvlgamma(self, p)

    def i0(self) -> Tensor:
        return _special_functions.i0(self)

    def sinc(self) -> Tensor:
        return _special_functions.sinc(self)

    def igamma(self, other: Tensor) -> Tensor:
        return _gamma.igamma(self, other)

    def igammac(self, other: Tensor) -> Tensor:
        return _gamma.igammac(self, other)

    def floor(self) -> Tensor:
        return _rounding.floor(self)

    def ceil(self) -> Tensor:
        return _rounding.ceil(self)

    def trunc(self) -> Tensor:
        return _rounding.trunc(self)

    fix = trunc

    def round(self, decimals: int = 0) -> Tensor:
        return _rounding.round(self, decimals=decimals)

    def frac(self) -> Tensor:
        return _rounding.frac(self)

    def atan2(self, other: Any) -> Tensor:
        return _pointwise.atan2(self, other)

    arctan2 = atan2

    def logaddexp(self, other: Any) -> Tensor:
        return _pointwise.logaddexp(self, other)

    def lerp(self, end: Any, weight: Any) -> Tensor:
        return _pointwise.lerp(self, end, weight)

    def addcmul(self, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
        return _pointwise.addcmul(self, tensor1, tensor2, value=value)

    def addcdiv(self, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
        return _pointwise.addcdiv(self, tensor1, tensor2, value=value)

    def isclose(
        self, other: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
    ) -> Tensor:
        return _pointwise.isclose(self, other, rtol, atol, equal_nan)

    def allclose(
        self, other: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
    ) -> bool:
        return _pointwise.allclose(self, other, rtol, atol, equal_nan)

    def isinf(self) -> Tensor:
        return _arith.isinf(self)

    def isposinf(self) -> Tensor:
        return _arith.isposinf(self)

    def isneginf(self) -> Tensor:
        return _arith.isneginf(self)

    def isnan(self) -> Tensor:
        return _arith.isnan(self)

    def isfinite(self) -> Tensor:
        return _arith.isfinite(self)

    def clamp_min(self, min: Any) -> Tensor:
        return _arith.clamp_min(self, min)

    def clamp_max(self, max: Any) -> Tensor:
        return _arith.clamp_max(self, max)

    def float_power(self, exponent: Any) -> Tensor:
        return _pointwise.float_power(self, exponent)

    def true_divide(self, other: Any) -> Tensor:
        return _arith.div(self, other)

    def floor_divide(self, other: Any) -> Tensor:
        return _arith.floor_divide(self, other)

    def remainder(self, other: Any) -> Tensor:
        return _arith.remainder(self, other)

    def fmod(self, other: Any) -> Tensor:
        return _arith.fmod(self, other)

    def mm(self, mat2: Any) -> Tensor:
        return _linalg.mm(self, mat2)

    def bmm(self, mat2: Any) -> Tensor:
        return _linalg.bmm(self, mat2)

    def mv(self, vec: Any) -> Tensor:
        return _linalg.mv(self, vec)

    def dot(self, other: Any) -> Tensor:
        return _linalg.dot(self, other)

    def outer(self, vec2: Any) -> Tensor:
        return _linalg.outer(self, vec2)

    ger = outer

    def addmm(self, mat1: Any, mat2: Any, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
        return _linalg.addmm(self, mat1, mat2, beta=beta, alpha=alpha)

    def baddbmm(self, batch1: Any, batch2: Any, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
        return _linalg.baddbmm(self, batch1, batch2, beta=beta, alpha=alpha)

    def addbmm(self, batch1: Any, batch2: Any, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
        return _linalg.addbmm(self, batch1, batch2, beta=beta, alpha=alpha)

    def addmv(self, mat: Any, vec: Any, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
        return _linalg.addmv(self, mat, vec, beta=beta, alpha=alpha)

    def addr(self, vec1: Any, vec2: Any, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
        return _linalg.addr(self, vec1, vec2, beta=beta, alpha=alpha)

    def norm(
        self, p: Any = "fro", dim: Any = None, keepdim: bool = False, dtype: Any = None
    ) -> Tensor:
        return _norms.norm(self, p, dim, keepdim, dtype)

    def cumprod(self, dim: int, *, dtype: Any = None) -> Tensor:
        return _reduction.cumprod(self, dim, dtype=dtype)

    def cummax(self, dim: int) -> Any:
        return _reduction.cummax(self, dim)

    def cummin(self, dim: int) -> Any:
        return _reduction.cummin(self, dim)

    def logcumsumexp(self, dim: int) -> Tensor:
        return _reduction.logcumsumexp(self, dim)

    def median(self, dim: int | None = None, keepdim: bool = False) -> Any:
        return _reduction.median(self, dim, keepdim)

    def quantile(
        self,
        q: Any,
        dim: int | None = None,
        keepdim: bool = False,
        *,
        interpolation: str = "linear",
    ) -> Tensor:
        return _reduction.quantile(self, q, dim, keepdim, interpolation=interpolation)

    def nansum(self, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return _reduction.nansum(self, dim, keepdim, **kw)

    def nanmean(self, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return _reduction.nanmean(self, dim, keepdim, **kw)

    def aminmax(self, *, dim: int | None = None, keepdim: bool = False) -> Any:
        return _reduction.aminmax(self, dim=dim, keepdim=keepdim)

    def absolute(self) -> Tensor:
        return _unary.abs(self)

    def negative(self) -> Tensor:
        return _arith.neg(self)

    def positive(self) -> Tensor:
        return _unary.positive(self)

    def sgn(self) -> Tensor:
        return _unary.sign(self)

    def signbit(self) -> Tensor:
        return _pointwise.signbit(self)

    def subtract(self, other: Any, *, alpha: Any = 1) -> Tensor:
        return _arith.sub(self, other, alpha=alpha)

    def multiply(self, other: Any) -> Tensor:
        return _arith.mul(self, other)

    def divide(self, other: Any, *, rounding_mode: str | None = None) -> Tensor:
        return _arith.div(self, other, rounding_mode=rounding_mode)

    def nan_to_num(
        self, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None
    ) -> Tensor:
        return _pointwise.nan_to_num(self, nan, posinf, neginf)

    def xlogy(self, other: Any) -> Tensor:
        return _pointwise.xlogy(self, other)

    def hypot(self, other: Any) -> Tensor:
        return _pointwise.hypot(self, other)

    def copysign(self, other: Any) -> Tensor:
        return _pointwise.copysign(self, other)

    def logit(self, eps: float | None = None) -> Tensor:
        return _pointwise.logit(self, eps)

    def deg2rad(self) -> Tensor:
        return _pointwise.deg2rad(self)

    def rad2deg(self) -> Tensor:
        return _pointwise.rad2deg(self)

    def inner(self, other: Any) -> Tensor:
        return _einsum.inner(self, other)

    def kron(self, other: Any) -> Tensor:
        return _einsum.kron(self, other)

    def cross(self, other: Any, dim: int | None = None) -> Tensor:
        return _einsum.cross(self, other, dim)

    def inverse(self) -> Tensor:
        return _decompositions.inv(self)

    def cholesky(self, upper: bool = False) -> Tensor:
        return _decompositions.cholesky(self, upper=upper)

    def det(self) -> Tensor:
        return _decompositions.det(self)

    def logdet(self) -> Tensor:
        return _decompositions.logdet(self)

    def slogdet(self) -> Any:
        return _decompositions.slogdet(self)

    def qr(self, some: bool = True) -> Any:
        return _spectral.qr_legacy(self, some)

    def svd(self, some: bool = True, compute_uv: bool = True) -> Any:
        return _spectral.svd_legacy(self, some, compute_uv)

    def pinverse(self, rcond: float = 1e-15) -> Tensor:
        return _spectral.pinverse(self, rcond)

    def matrix_power(self, n: int) -> Tensor:
        return _matrix_functions.matrix_power_legacy(self, n)

    def matrix_exp(self) -> Tensor:
        return _matrix_functions.matrix_exp(self)

    def triangular_solve(
        self, A: Tensor, upper: bool = True, transpose: bool = False, unitriangular: bool = False
    ) -> Any:
        return _triangular.triangular_solve(self, A, upper, transpose, unitriangular)

    def lu_solve(self, LU_data: Tensor, LU_pivots: Tensor) -> Tensor:
        return _triangular.lu_solve_legacy(self, LU_data, LU_pivots)

    def lu(self, pivot: bool = True, get_infos: bool = False) -> tuple:
        return _triangular.lu_legacy(self, pivot, get_infos)

    # random fills: in place, outside the graph (gradflow/ops/random_ops.py)
    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator: Any = None) -> Tensor:
        return _random_ops.normal_(self, mean, std, generator=generator)

    def uniform_(self, *args: Any, generator: Any = None, **kwargs: Any) -> Tensor:
        """uniform_(from=0, to=1): `from` is a Python keyword, so it is taken from kwargs."""
        bounds = dict(zip(("from", "to"), args), **kwargs)
        unknown = set(bounds) - {"from", "to"}
        if unknown or len(args) > 2:
            raise TypeError(f"uniform_() got unexpected arguments {sorted(unknown) or args}")
        return _random_ops.uniform_(
            self, bounds.get("from", 0.0), bounds.get("to", 1.0), generator=generator
        )

    def exponential_(self, lambd: float = 1.0, *, generator: Any = None) -> Tensor:
        return _random_ops.exponential_(self, lambd, generator=generator)

    def bernoulli_(self, p: Any = 0.5, *, generator: Any = None) -> Tensor:
        return _random_ops.bernoulli_(self, p, generator=generator)

    def random_(self, *args: Any, generator: Any = None, **kwargs: Any) -> Tensor:
        """random_(from=0, to=None) or random_(to)."""
        bounds = dict(zip(("from", "to"), args), **kwargs)
        unknown = set(bounds) - {"from", "to"}
        if unknown or len(args) > 2:
            raise TypeError(f"random_() got unexpected arguments {sorted(unknown) or args}")
        return _random_ops.random_(
            self, bounds.get("from", 0), bounds.get("to"), generator=generator
        )

    def bernoulli(self, p: float | None = None, *, generator: Any = None) -> Tensor:
        return _random_ops.bernoulli(self, p, generator=generator)

    def multinomial(
        self, num_samples: int, replacement: bool = False, *, generator: Any = None
    ) -> Tensor:
        return _random_ops.multinomial(self, num_samples, replacement, generator=generator)

    # in-place forms of the pointwise ops: one generic path through _arith_ (recorded on a
    # copy of the old values when a gradient is needed, else written into the storage)
    def _apply_(self, what: str, fn: Callable[..., Tensor], *args: Any, **kwargs: Any) -> Tensor:
        """self = fn(self, *args, **kwargs) in place. The result must fit this tensor's dtype
        (RuntimeError otherwise, as PyTorch: an int tensor can't take exp_'s floats)."""

        def op(x: Tensor, _: Any) -> Tensor | None:
            out = fn(x, *args, **kwargs)
            if out.dtype != self.dtype and not numpy.can_cast(out.dtype, self.dtype, "same_kind"):
                raise RuntimeError(
                    f"{what}: result type {out.dtype} can't be cast to the desired output type "
                    f"{self.dtype}; use the out-of-place {what[:-1]}() instead"
                )
            if out.shape != self.shape:
                raise RuntimeError(
                    f"{what}: output with shape {list(self.shape)} doesn't match the broadcast "
                    f"shape {list(out.shape)}; an in-place op can't grow its tensor (use the "
                    f"out-of-place {what[:-1]}())"
                )
            if x is not self:
                return out  # recorded: _arith_ rebases this tensor onto out's node
            self.array[...] = out.array
            return None

        # tensor operands on this device, cast to this float dtype (as add_ and mul_ take them)
        args = tuple(self._operand(what, a) if isinstance(a, Tensor) else a for a in args)
        operand = next((a for a in args if isinstance(a, Tensor) and a._requires_grad), None)
        return self._arith_(what, op, operand, None)

    def _inplace_of(module: str, name: str) -> Callable[..., Tensor]:
        """The in-place method name_ of the op `name` in gradflow/ops/<module> (looked up at
        call time: the op modules load after this class)."""

        def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
            return self._apply_(name + "_", getattr(globals()[module], name), *args, **kwargs)

        method.__name__ = method.__qualname__ = name + "_"
        method.__doc__ = f"In place: ``x.{name}_(...)`` makes x hold ``x.{name}(...)``."
        return method

    exp_ = _inplace_of("_unary", "exp")
    log_ = _inplace_of("_unary", "log")
    log1p_ = _inplace_of("_unary", "log1p")
    expm1_ = _inplace_of("_unary", "expm1")
    log2_ = _inplace_of("_unary", "log2")
    log10_ = _inplace_of("_unary", "log10")
    exp2_ = _inplace_of("_unary", "exp2")
    sqrt_ = _inplace_of("_unary", "sqrt")
    rsqrt_ = _inplace_of("_unary", "rsqrt")
    square_ = _inplace_of("_unary", "square")
    reciprocal_ = _inplace_of("_unary", "reciprocal")
    abs_ = _inplace_of("_unary", "abs")
    sign_ = _inplace_of("_unary", "sign")
    sigmoid_ = _inplace_of("_unary", "sigmoid")
    tanh_ = _inplace_of("_unary", "tanh")
    relu_ = _inplace_of("_unary", "relu")
    sin_ = _inplace_of("_trigonometric", "sin")
    cos_ = _inplace_of("_trigonometric", "cos")
    tan_ = _inplace_of("_trigonometric", "tan")
    asin_ = arcsin_ = _inplace_of("_trigonometric", "asin")
    acos_ = arccos_ = _inplace_of("_trigonometric", "acos")
    atan_ = arctan_ = _inplace_of("_trigonometric", "atan")
    sinh_ = _inplace_of("_trigonometric", "sinh")
    cosh_ = _inplace_of("_trigonometric", "cosh")
    asinh_ = arcsinh_ = _inplace_of("_trigonometric", "asinh")
    acosh_ = arccosh_ = _inplace_of("_trigonometric", "acosh")
    atanh_ = arctanh_ = _inplace_of("_trigonometric", "atanh")
    erf_ = _inplace_of("_special", "erf")
    erfc_ = _inplace_of("_special", "erfc")
    erfinv_ = _inplace_of("_special", "erfinv")
    lgamma_ = _inplace_of("_gamma", "lgamma")
    digamma_ = _inplace_of("_gamma", "digamma")
    mvlgamma_ = _inplace_of("_gamma", "mvlgamma")
    i0_ = _inplace_of("_special_functions", "i0")
    sinc_ = _inplace_of("_special_functions", "sinc")
    igamma_ = _inplace_of("_gamma", "igamma")
    igammac_ = _inplace_of("_gamma", "igammac")
    floor_ = _inplace_of("_rounding", "floor")
    ceil_ = _inplace_of("_rounding", "ceil")
    trunc_ = fix_ = _inplace_of("_rounding", "trunc")
    round_ = _inplace_of("_rounding", "round")
    frac_ = _inplace_of("_rounding", "frac")
    neg_ = negative_ = _inplace_of("_arith", "neg")
    pow_ = _inplace_of("_arith", "pow")
    atan2_ = arctan2_ = _inplace_of("_pointwise", "atan2")
    lerp_ = _inplace_of("_pointwise", "lerp")
    addcmul_ = _inplace_of("_pointwise", "addcmul")
    addcdiv_ = _inplace_of("_pointwise", "addcdiv")
    clamp_min_ = _inplace_of("_arith", "clamp_min")
    clamp_max_ = _inplace_of("_arith", "clamp_max")
    fmod_ = _inplace_of("_arith", "fmod")
    remainder_ = _inplace_of("_arith", "remainder")
    floor_divide_ = _inplace_of("_arith", "floor_divide")
    true_divide_ = _inplace_of("_arith", "div")
    float_power_ = _inplace_of("_pointwise", "float_power")
    addmm_ = _inplace_of("_linalg", "addmm")
    baddbmm_ = _inplace_of("_linalg", "baddbmm")
    absolute_ = _inplace_of("_unary", "abs")
    sgn_ = _inplace_of("_unary", "sign")
    subtract_ = _inplace_of("_arith", "sub")
    multiply_ = _inplace_of("_arith", "mul")
    divide_ = _inplace_of("_arith", "div")
    nan_to_num_ = _inplace_of("_pointwise", "nan_to_num")
    xlogy_ = _inplace_of("_pointwise", "xlogy")
    hypot_ = _inplace_of("_pointwise", "hypot")
    copysign_ = _inplace_of("_pointwise", "copysign")
    logit_ = _inplace_of("_pointwise", "logit")
    deg2rad_ = _inplace_of("_pointwise", "deg2rad")
    rad2deg_ = _inplace_of("_pointwise", "rad2deg")
    heaviside_ = _inplace_of("_pointwise_extras", "heaviside")
    ldexp_ = _inplace_of("_pointwise_extras", "ldexp")
    gcd_ = _inplace_of("_pointwise_extras", "gcd")
    lcm_ = _inplace_of("_pointwise_extras", "lcm")
    nextafter_ = _inplace_of("_pointwise_extras", "nextafter")
    renorm_ = _inplace_of("_statistics", "renorm")
    bitwise_and_ = _inplace_of("_pointwise_extras", "bitwise_and")
    bitwise_or_ = _inplace_of("_pointwise_extras", "bitwise_or")
    bitwise_xor_ = _inplace_of("_pointwise_extras", "bitwise_xor")
    bitwise_not_ = _inplace_of("_pointwise_extras", "bitwise_not")
    bitwise_left_shift_ = _inplace_of("_pointwise_extras", "bitwise_left_shift")
    bitwise_right_shift_ = _inplace_of("_pointwise_extras", "bitwise_right_shift")

    # ---- methods of gradflow/ops/pointwise_extras, differences, statistics, construction ----
    def as_strided(self, size: Any, stride: Any, storage_offset: int | None = None) -> Tensor:
        return _construction.as_strided(self, size, stride, storage_offset)

    def diff(self, n: int = 1, dim: int = -1, prepend: Any = None, append: Any = None) -> Tensor:
        return _differences.diff(self, n, dim, prepend, append)

    def ravel(self) -> Tensor:
        return _construction.ravel(self)

    def fmax(self, other: Tensor) -> Tensor:
        return _pointwise_extras.fmax(self, other)

    def fmin(self, other: Tensor) -> Tensor:
        return _pointwise_extras.fmin(self, other)

    def heaviside(self, values: Tensor) -> Tensor:
        return _pointwise_extras.heaviside(self, values)

    def ldexp(self, other: Tensor) -> Tensor:
        return _pointwise_extras.ldexp(self, other)

    def logaddexp2(self, other: Tensor) -> Tensor:
        return _pointwise_extras.logaddexp2(self, other)

    def frexp(self) -> Any:
        return _pointwise_extras.frexp(self)

    def nextafter(self, other: Tensor) -> Tensor:
        return _pointwise_extras.nextafter(self, other)

    def gcd(self, other: Tensor) -> Tensor:
        return _pointwise_extras.gcd(self, other)

    def lcm(self, other: Tensor) -> Tensor:
        return _pointwise_extras.lcm(self, other)

    def bitwise_and(self, other: Any) -> Tensor:
        return _pointwise_extras.bitwise_and(self, other)

    def bitwise_or(self, other: Any) -> Tensor:
        return _pointwise_extras.bitwise_or(self, other)

    def bitwise_xor(self, other: Any) -> Tensor:
        return _pointwise_extras.bitwise_xor(self, other)

    def bitwise_not(self) -> Tensor:
        return _pointwise_extras.bitwise_not(self)

    def bitwise_left_shift(self, other: Any) -> Tensor:
        return _pointwise_extras.bitwise_left_shift(self, other)

    def bitwise_right_shift(self, other: Any) -> Tensor:
        return _pointwise_extras.bitwise_right_shift(self, other)

    def isreal(self) -> Tensor:
        return _pointwise_extras.isreal(self)

    def nanmedian(self, dim: int | None = None, keepdim: bool = False) -> Any:
        return _statistics.nanmedian(self, dim, keepdim)

    def nanquantile(
        self,
        q: Any,
        dim: int | None = None,
        keepdim: bool = False,
        *,
        interpolation: str = "linear",
    ) -> Tensor:
        return _statistics.nanquantile(self, q, dim, keepdim, interpolation=interpolation)

    def cov(self, *, correction: int = 1, fweights: Any = None, aweights: Any = None) -> Tensor:
        return _statistics.cov(self, correction=correction, fweights=fweights, aweights=aweights)

    def corrcoef(self) -> Tensor:
        return _statistics.corrcoef(self)

    def histogram(
        self, bins: Any, *, range: Any = None, weight: Any = None, density: bool = False
    ) -> Any:
        return _statistics.histogram(self, bins, range=range, weight=weight, density=density)

    def dist(self, other: Tensor, p: float = 2) -> Tensor:
        return _statistics.dist(self, other, p)

    def renorm(self, p: float, dim: int, maxnorm: float) -> Tensor:
        return _statistics.renorm(self, p, dim, maxnorm)

    def diagflat(self, offset: int = 0) -> Tensor:
        return _construction.diagflat(self, offset)

    def narrow_copy(self, dim: int, start: int, length: int) -> Tensor:
        return _construction.narrow_copy(self, dim, start, length)

    def select_scatter(self, src: Tensor, dim: int, index: int) -> Tensor:
        return _construction.select_scatter(self, src, dim, index)

    def slice_scatter(
        self, src: Tensor, dim: int = 0, start: Any = None, end: Any = None, step: int = 1
    ) -> Tensor:
        return _construction.slice_scatter(self, src, dim, start, end, step)

    def diagonal_scatter(
        self, src: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1
    ) -> Tensor:
        return _construction.diagonal_scatter(self, src, offset, dim1, dim2)

    def index_reduce(
        self, dim: int, index: Any, source: Tensor, reduce: str, *, include_self: bool = True
    ) -> Tensor:
        return _construction.index_reduce(
            self, dim, index, source, reduce, include_self=include_self
        )

    def index_reduce_(
        self, dim: int, index: Any, source: Tensor, reduce: str, *, include_self: bool = True
    ) -> Tensor:
        def compute(t: Tensor) -> Tensor:
            return _construction.index_reduce(
                t, dim, index, source, reduce, include_self=include_self
            )

        return _scatter.inplace(self, "index_reduce_", compute, source)

    # ---- methods: shape, indexing, scatter, sorting ----------------------------------------
    # (PyTorch's names; each delegates to its op in gradflow/ops)
    def narrow(self, dim: int, start: Any, length: int) -> Tensor:
        return _shape.narrow(self, dim, start, length)

    def unbind(self, dim: int = 0) -> tuple:
        return _shape.unbind(self, dim)

    def unflatten(self, dim: int, sizes: Sequence[int]) -> Tensor:
        return _shape.unflatten(self, dim, sizes)

    def roll(self, shifts: Any, dims: Any = None) -> Tensor:
        return _shape.roll(self, shifts, dims)

    def movedim(self, source: Any, destination: Any) -> Tensor:
        return _shape.movedim(self, source, destination)

    moveaxis = movedim

    def swapaxes(self, axis0: int, axis1: int) -> Tensor:
        return _shape.transpose(self, axis0, axis1)

    def swapdims(self, dim0: int, dim1: int) -> Tensor:
        return _shape.transpose(self, dim0, dim1)

    def rot90(self, k: int = 1, dims: Sequence[int] = (0, 1)) -> Tensor:
        return _shape.rot90(self, k, dims)

    def tril(self, diagonal: int = 0) -> Tensor:
        return _diagonals.tril(self, diagonal)

    def triu(self, diagonal: int = 0) -> Tensor:
        return _diagonals.triu(self, diagonal)

    def tril_(self, diagonal: int = 0) -> Tensor:
        return _scatter.inplace(self, "tril_", lambda t: _diagonals.tril(t, diagonal))

    def triu_(self, diagonal: int = 0) -> Tensor:
        return _scatter.inplace(self, "triu_", lambda t: _diagonals.triu(t, diagonal))

    def diag(self, diagonal: int = 0) -> Tensor:
        return _diagonals.diag(self, diagonal)

    def diagonal(self, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
        return _diagonals.diagonal(self, offset, dim1, dim2)

    def diag_embed(self, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
        return _diagonals.diag_embed(self, offset, dim1, dim2)

    def trace(self) -> Tensor:
        return _diagonals.trace(self)

    def repeat_interleave(self, repeats: Any = None, dim: Any = None, **kw: Any) -> Tensor:
        return _shape.repeat_interleave(self, repeats, dim, **kw)

    def tensor_split(self, indices_or_sections: Any, dim: int = 0) -> tuple:
        return _stacking.tensor_split(self, indices_or_sections, dim)

    def hsplit(self, sections: Any) -> tuple:
        return _stacking.hsplit(self, sections)

    def vsplit(self, sections: Any) -> tuple:
        return _stacking.vsplit(self, sections)

    def dsplit(self, sections: Any) -> tuple:
        return _stacking.dsplit(self, sections)

    def select(self, dim: int, index: int) -> Tensor:
        return _shape.select(self, dim, index)

    def take(self, index: Any) -> Tensor:
        return _shape.take(self, index)

    def flipud(self) -> Tensor:
        return _shape.flipud(self)

    def fliplr(self) -> Tensor:
        return _shape.fliplr(self)

    def scatter(self, dim: int, index: Any, src: Any = None, value: Any = None, **kw: Any):
        return _scatter.scatter(self, dim, index, src, value, **kw)

    def scatter_(self, dim: int, index: Any, src: Any = None, value: Any = None, **kw: Any):
        operand = src if value is None else value
        return _scatter.inplace(
            self, "scatter_", lambda t: _scatter.scatter(t, dim, index, src, value, **kw), operand
        )

    def scatter_add(self, dim: int, index: Any, src: Tensor) -> Tensor:
        return _scatter.scatter_add(self, dim, index, src)

    def scatter_add_(self, dim: int, index: Any, src: Tensor) -> Tensor:
        return _scatter.inplace(
            self, "scatter_add_", lambda t: _scatter.scatter_add(t, dim, index, src), src
        )

    def scatter_reduce(self, dim: int, index: Any, src: Tensor, reduce: str, **kw: Any):
        return _scatter.scatter_reduce(self, dim, index, src, reduce, **kw)

    def scatter_reduce_(self, dim: int, index: Any, src: Tensor, reduce: str, **kw: Any):
        return _scatter.inplace(
            self,
            "scatter_reduce_",
            lambda t: _scatter.scatter_reduce(t, dim, index, src, reduce, **kw),
            src,
        )

    def index_add(self, dim: int, index: Any, source: Tensor, *, alpha: Any = 1) -> Tensor:
        return _scatter.index_add(self, dim, index, source, alpha=alpha)

    def index_add_(self, dim: int, index: Any, source: Tensor, *, alpha: Any = 1) -> Tensor:
        return _scatter.inplace(
            self,
            "index_add_",
            lambda t: _scatter.index_add(t, dim, index, source, alpha=alpha),
            source,
        )

    def index_copy(self, dim: int, index: Any, source: Tensor) -> Tensor:
        return _scatter.index_copy(self, dim, index, source)

    def index_copy_(self, dim: int, index: Any, source: Tensor) -> Tensor:
        return _scatter.inplace(
            self, "index_copy_", lambda t: _scatter.index_copy(t, dim, index, source), source
        )

    def index_fill(self, dim: int, index: Any, value: Any) -> Tensor:
        return _scatter.index_fill(self, dim, index, value)

    def index_fill_(self, dim: int, index: Any, value: Any) -> Tensor:
        return _scatter.inplace(
            self, "index_fill_", lambda t: _scatter.index_fill(t, dim, index, value), value
        )

    def index_put(self, indices: Any, values: Any, accumulate: bool = False) -> Tensor:
        return _scatter.index_put(self, indices, values, accumulate)

    def index_put_(self, indices: Any, values: Any, accumulate: bool = False) -> Tensor:
        return _scatter.inplace(
            self,
            "index_put_",
            lambda t: _scatter.index_put(t, indices, values, accumulate),
            values,
        )

    def put(self, index: Any, source: Tensor, accumulate: bool = False) -> Tensor:
        return _scatter.put(self, index, source, accumulate)

    def put_(self, index: Any, source: Tensor, accumulate: bool = False) -> Tensor:
        return _scatter.inplace(
            self, "put_", lambda t: _scatter.put(t, index, source, accumulate), source
        )

    def masked_fill_(self, mask: Any, value: Any) -> Tensor:
        return _scatter.masked_fill_(self, mask, value)

    def masked_scatter(self, mask: Any, source: Tensor) -> Tensor:
        return _scatter.masked_scatter(self, mask, source)

    def masked_scatter_(self, mask: Any, source: Tensor) -> Tensor:
        return _scatter.inplace(
            self, "masked_scatter_", lambda t: _scatter.masked_scatter(t, mask, source), source
        )

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
        return _sorting.sort(self, dim, descending, stable)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
        return _sorting.argsort(self, dim, descending, stable)

    def msort(self) -> Tensor:
        return _sorting.msort(self)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
        return _sorting.topk(self, k, dim, largest, sorted)

    def kthvalue(self, k: int, dim: int = -1, keepdim: bool = False) -> Any:
        return _sorting.kthvalue(self, k, dim, keepdim)

    def mode(self, dim: int = -1, keepdim: bool = False) -> Any:
        return _sorting.mode(self, dim, keepdim)

    def nonzero(self, *, as_tuple: bool = False) -> Any:
        return _sorting.nonzero(self, as_tuple=as_tuple)

    def argwhere(self) -> Tensor:
        return _sorting.argwhere(self)

    def unique(self, sorted: bool = True, return_inverse: bool = False, **kw: Any) -> Any:
        return _sorting.unique(self, sorted, return_inverse, **kw)

    def unique_consecutive(self, return_inverse: bool = False, **kw: Any) -> Any:
        return _sorting.unique_consecutive(self, return_inverse, **kw)

    def histc(self, bins: int = 100, min: Any = 0, max: Any = 0) -> Tensor:
        return _sorting.histc(self, bins, min, max)

    def bincount(self, weights: Any = None, minlength: int = 0) -> Tensor:
        return _sorting.bincount(self, weights, minlength)

    def count_nonzero(self, dim: Any = None) -> Tensor:
        return _sorting.count_nonzero(self, dim)

    # ---- rarer PyTorch methods (gradflow/ops/tensor_extras.py) -----------------------------
    # in-place comparisons and logicals keep self's dtype, writing 1/0 (PyTorch's eq_ & co.)
    eq_ = _inplace_of("_arith", "eq")
    ne_ = not_equal_ = _inplace_of("_arith", "ne")
    lt_ = less_ = _inplace_of("_arith", "lt")
    le_ = less_equal_ = _inplace_of("_arith", "le")
    gt_ = greater_ = _inplace_of("_arith", "gt")
    ge_ = greater_equal_ = _inplace_of("_arith", "ge")
    logical_and_ = _inplace_of("_arith", "logical_and")
    logical_or_ = _inplace_of("_arith", "logical_or")
    logical_xor_ = _inplace_of("_arith", "logical_xor")
    logical_not_ = _inplace_of("_arith", "logical_not")
    cumsum_ = _inplace_of("_reduction", "cumsum")
    cumprod_ = _inplace_of("_reduction", "cumprod")
    addbmm_ = _inplace_of("_linalg", "addbmm")
    addmv_ = _inplace_of("_linalg", "addmv")
    addr_ = _inplace_of("_linalg", "addr")

    def swapaxes_(self, axis0: int, axis1: int) -> Tensor:
        return self._reshape_inplace("swapaxes_", _shape.transpose(self, axis0, axis1))

    def swapdims_(self, dim0: int, dim1: int) -> Tensor:
        return self._reshape_inplace("swapdims_", _shape.transpose(self, dim0, dim1))

    def hardshrink(self, lambd: float = 0.5) -> Tensor:
        from gradflow.ops.activations import hardshrink

        return hardshrink(self, lambd)

    def prelu(self, weight: Tensor) -> Tensor:
        from gradflow.ops.activations import prelu

        return prelu(self, weight)

    def vdot(self, other: Tensor) -> Tensor:
        return _linalg.vdot(self, other)

    def is_signed(self) -> bool:
        return self.array.dtype.kind in "fic"

    def is_nonzero(self) -> bool:
        if self.array.size != 1:
            what = "no values" if self.array.size == 0 else "more than one value"
            raise RuntimeError(f"Boolean value of Tensor with {what} is ambiguous")
        return bool(self.array.reshape(()) != 0)

    def is_same_size(self, other: Tensor) -> bool:
        return tuple(self.shape) == tuple(other.shape)

    def is_complex(self) -> bool:
        return self.array.dtype.kind == "c"

    @property
    def is_cpu(self) -> bool:
        return self.device.type == "cpu"

    def is_inference(self) -> bool:
        """False: gradflow's inference_mode makes ordinary tensors (see grad_mode)."""
        return False

    def is_neg(self) -> bool:
        return False

    def is_conj(self) -> bool:
        return False

    def resolve_neg(self) -> Tensor:
        return self

    def resolve_conj(self) -> Tensor:
        return self

    def conj(self) -> Tensor:
        """For a real tensor, the tensor itself (PyTorch returns self too)."""
        return self

    conj_physical = conj

    @property
    def real(self) -> Tensor:
        """For a real tensor, the tensor itself (as PyTorch's ``x.real``)."""
        return self

    @property
    def itemsize(self) -> int:
        return self.array.itemsize

    @property
    def layout(self) -> Any:
        from gradflow.layout import strided

        return strided

    def data_ptr(self) -> int:
        return _tensor_extras.data_ptr(self)

    def storage_offset(self) -> int:
        return _tensor_extras.storage_offset(self)

    def is_set_to(self, tensor: Tensor) -> bool:
        return _tensor_extras.is_set_to(self, tensor)

    def share_memory_(self) -> Tensor:
        """A no-op on this single-process NumPy/CuPy storage; returns self."""
        return self

    def short(self, memory_format: Any = None) -> Tensor:
        return self.to(numpy.dtype("int16"))

    def byte(self, memory_format: Any = None) -> Tensor:
        return self.to(numpy.dtype("uint8"))

    def char(self, memory_format: Any = None) -> Tensor:
        return self.to(numpy.dtype("int8"))

    def new(self, *args: Any, device: Any = None) -> Tensor:
        """Deprecated constructor (use new_empty/new_tensor): see tensor_extras.new."""
        return _tensor_extras.new(self, args, device)

    def new_empty_strided(
        self, size: Any, stride: Any, dtype: Any = None, device: Any = None,
        requires_grad: bool = False, layout: Any = None, pin_memory: bool = False,
    ) -> Tensor:  # fmt: skip
        return _tensor_extras.new_empty_strided(self, size, stride, dtype, device, requires_grad)

    @property
    def H(self) -> Tensor:
        return _tensor_extras.H(self)

    @property
    def mH(self) -> Tensor:
        return _tensor_extras.mH(self)

    def adjoint(self) -> Tensor:
        return _tensor_extras.mH(self, "adjoint()")

    def sum_to_size(self, *size: Any) -> Tensor:
        return _tensor_extras.sum_to_size(self, size)

    def split_with_sizes(self, split_sizes: Sequence[int], dim: int = 0) -> tuple:
        return _tensor_extras.split_with_sizes(self, split_sizes, dim)

    def unsafe_chunk(self, chunks: int, dim: int = 0) -> tuple:
        return self.chunk(chunks, dim)

    def unsafe_split(self, split_size: int, dim: int = 0) -> tuple:
        return self.split(split_size, dim)

    def unsafe_split_with_sizes(self, split_sizes: Sequence[int], dim: int = 0) -> tuple:
        return _tensor_extras.split_with_sizes(self, split_sizes, dim)

    def resize_(self, *sizes: Any, memory_format: Any = None) -> Tensor:
        return _tensor_extras.resize_(self, sizes)

    def resize_as_(self, the_template: Tensor, memory_format: Any = None) -> Tensor:
        return _tensor_extras.resize_as_(self, the_template)

    def cholesky_solve(self, input2: Tensor, upper: bool = False) -> Tensor:
        return _tensor_extras.cholesky_solve(self, input2, upper)

    def cholesky_inverse(self, upper: bool = False) -> Tensor:
        return _tensor_extras.cholesky_inverse(self, upper)

    def apply_(self, callable: Callable) -> Tensor:
        return _tensor_extras.apply_(self, callable)

    def map_(self, tensor: Tensor, callable: Callable) -> Tensor:
        return _tensor_extras.map_(self, tensor, callable)

    del _inplace_of


def _constructor_array(args: tuple, dtype: Any, device: Any) -> Any:
    """The array of ``Tensor(*args)`` (see Tensor.__init__)."""
    from gradflow.creation import _to_array, empty

    d = dtypes.as_dtype(dtype) if dtype is not None else dtypes.get_default_dtype()
    sizes = args[0] if len(args) == 1 and isinstance(args[0], Size) else args or (0,)
    if all(isinstance(n, int) and not isinstance(n, builtins.bool) for n in sizes):
        return empty(*sizes, dtype=d, device=device).array
    if len(args) != 1:
        raise TypeError(
            f"Tensor() takes sizes (ints) or one sequence of data, got {len(args)} arguments of "
            f"types {[type(a).__name__ for a in args]}"
        )
    (data,) = args
    if isinstance(data, builtins.float | complex):
        raise TypeError(
            f"Tensor(): data must be a sequence (got {type(data).__name__}); use "
            f"gradflow.tensor({data!r}) for a 0-d tensor"
        )
    same_device = device is None or (isinstance(data, Tensor) and Device(device) == data.device)
    if isinstance(data, Tensor) and dtype is None and same_device and data.dtype == d:
        return data.array  # PyTorch's Tensor(t) shares t's storage
    return _to_array(data, d, device)


class Size(tuple):
    """A tensor's shape: a tuple of ints, as ``torch.Size`` (``x.shape``, ``x.size()``).
    Indexing stays tuple's own (ops read shapes on every call), so a slice is a plain tuple
    where PyTorch's is a Size; both compare equal to tuples."""

    __slots__ = ()

    def numel(self) -> int:
        return math.prod(self)

    def __repr__(self) -> str:
        return f"gradflow.Size({list(self)})"

    def __add__(self, other: Any) -> Size:
        return Size(tuple.__add__(self, tuple(other)))


def parse_to_args(args: tuple, kwargs: dict) -> tuple[Device | None, numpy.dtype | None]:
    """(device, dtype) from the arguments of ``to()``: ``to(device)``, ``to(dtype)``,
    ``to(device, dtype)``, ``to(other_tensor)`` or keywords; None for what was not given.
    Shared by Tensor.to and Module.to."""
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, str | Device):
            device = arg
        else:
            dtype = arg
    return (
        Device(device) if device is not None else None,
        dtypes.as_dtype(dtype) if dtype is not None else None,
    )


def _make_tensor(array: Any, grad_fn: Any, requires_grad: bool, output_nr: int) -> Tensor:
    """A Tensor with every slot set directly: the one constructor on the per-op hot path."""
    t = Tensor.__new__(Tensor)
    t.array = array
    t.grad = None
    t.grad_fn = grad_fn
    t._requires_grad = requires_grad
    t._output_nr = output_nr
    t._epoch = _versions._epoch[0]  # the write epoch it was made at (stale-view check)
    t._hooks = None
    return t


def _shape_arg(args: tuple) -> tuple:
    """Accept both f(2, 3) and f((2, 3)) like PyTorch."""
    if len(args) == 1 and isinstance(args[0], list | tuple):
        return tuple(args[0])
    return tuple(args)


def _check_same_place(t: Tensor, value: Any, what: str) -> None:
    if type(value) is not numpy.ndarray and isinstance(value, numpy.generic):
        return
    if device_of(value) != t.device:
        raise RuntimeError(
            f"{what}: the value is on {device_of(value)} but the tensor is on {t.device}; "
            "move one of them first"
        )


def _root_gradient(t: Tensor, gradient: Any) -> Any:
    if gradient is None:
        if t.array.size != 1:
            raise RuntimeError(
                f"grad can be implicitly created only for scalar outputs, but the tensor has "
                f"shape {tuple(t.shape)}: pass gradient= (d loss / d tensor, same shape)"
            )
        return get_array_module(t.array).ones_like(t.array)
    g = gradient.array if isinstance(gradient, Tensor) else gradient
    if not hasattr(g, "shape"):
        g = get_array_module(t.array).asarray(g, dtype=t.dtype)
    if g.shape != t.shape:
        raise RuntimeError(
            f"gradient has shape {tuple(g.shape)} but the tensor has shape {tuple(t.shape)}; "
            "they must match"
        )
    if device_of(g) != t.device or g.dtype != t.dtype:
        raise RuntimeError(
            f"gradient is a {g.dtype} array on {device_of(g)} but the tensor is {t.dtype} on "
            f"{t.device}; they must match"
        )
    return g


# How tensors print; gradflow.set_printoptions changes these (PyTorch's defaults).
PRINT_OPTIONS = {"precision": 4, "threshold": 1000, "edgeitems": 3, "max_line_width": 80}


def _format(t: Tensor) -> str:
    data = move_array(t.array, Device("cpu"))
    # PyTorch's style: integral floats as "1.", any others with all `precision` digits
    integral = data.dtype.kind != "f" or bool(
        numpy.all(numpy.mod(data[numpy.isfinite(data)], 1) == 0)
    )
    body = numpy.array2string(
        data,
        separator=", ",
        prefix="tensor(",
        floatmode="maxprec" if integral else "fixed",
        **PRINT_OPTIONS,
    )
    extras = []
    if t.device.type != "cpu":
        extras.append(f"device='{t.device}'")
    if t.dtype not in (dtypes.get_default_dtype(), dtypes.int64, dtypes.bool):
        extras.append(f"dtype=gradflow.{t.dtype}")  # PyTorch prints dtype=torch.float64
    if t.grad_fn is not None:
        extras.append(f"grad_fn={t.grad_fn!r}")
    elif t._requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + ", ".join([body, *extras]) + ")"


# The op modules import Tensor from here, so they are imported after the class exists.
from gradflow.ops import arithmetic as _arith
from gradflow.ops import construction as _construction
from gradflow.ops import conversion as _conversion
from gradflow.ops import decompositions as _decompositions
from gradflow.ops import diagonals as _diagonals
from gradflow.ops import differences as _differences
from gradflow.ops import einsum as _einsum
from gradflow.ops import gamma as _gamma
from gradflow.ops import indexing as _indexing
from gradflow.ops import linalg as _linalg
from gradflow.ops import matrix_functions as _matrix_functions
from gradflow.ops import norms as _norms
from gradflow.ops import pointwise_extras as _pointwise_extras
from gradflow.ops import pointwise_math as _pointwise
from gradflow.ops import random_ops as _random_ops
from gradflow.ops import reduction as _reduction
from gradflow.ops import rounding as _rounding
from gradflow.ops import scatter as _scatter
from gradflow.ops import shape as _shape
from gradflow.ops import sorting as _sorting
from gradflow.ops import special as _special
from gradflow.ops import special_functions as _special_functions
from gradflow.ops import spectral as _spectral
from gradflow.ops import stacking as _stacking
from gradflow.ops import statistics as _statistics
from gradflow.ops import tensor_extras as _tensor_extras
from gradflow.ops import triangular as _triangular
from gradflow.ops import trigonometric as _trigonometric
from gradflow.ops import unary as _unary
