"""Module: the base class of every layer and model (parameters, buffers, submodules, state).

Shaped like ``torch.nn.Module``: assigning a ``Parameter`` or a ``Module`` to an attribute
registers it; ``state_dict()`` uses PyTorch's dotted keys (``"0.weight"``, ``"fc.bias"``);
``to(device)`` moves every parameter's array in place, so optimizers built before the move keep
updating the same Parameter objects.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar

import numpy

from gradflow import dtypes
from gradflow.autograd.function import Function
from gradflow.autograd.grad_mode import is_grad_enabled, no_grad
from gradflow.backend import move_array
from gradflow.nn.parameter import Parameter, is_lazy
from gradflow.tensor import RemovableHandle, Tensor, _make_tensor, parse_to_args

# The per-instance registries Module.__init__ creates (a subclass that skips it lacks them).
_STATE = frozenset(
    [
        "_parameters",
        "_buffers",
        "_non_persistent",
        "_modules",
        "_forward_hooks",
        "_forward_pre_hooks",
        "_forward_hooks_with_kwargs",
        "_forward_pre_hooks_with_kwargs",
        "_forward_hooks_always_called",
        "_backward_hooks",
        "_backward_pre_hooks",
        "_state_dict_hooks",
        "_state_dict_pre_hooks",
        "_load_state_dict_pre_hooks",
        "_load_state_dict_post_hooks",
    ]
)

# The state_dict key of a module's get_extra_state() (under the module's prefix), as PyTorch's.
_EXTRA_STATE_KEY_SUFFIX = "_extra_state"

# While Module.load_state_dict runs: the copies its _load_from_state_dict calls checked, made
# only once every module has checked its values (a failed load leaves the model unchanged).
_LOADING = threading.local()


class StateDictError(RuntimeError, KeyError, ValueError):
    """``load_state_dict`` could not load: missing or unexpected keys (strict), or a value of
    the wrong shape. A RuntimeError as in PyTorch; also a KeyError and a ValueError, the types
    gradflow raised for these before, so existing ``except`` clauses keep working."""

    __str__ = RuntimeError.__str__  # the message as is (KeyError's would quote it)


@functools.cache
def _state_dict_type_error() -> type:
    """The error for a state_dict value that is not a Tensor (or array): a StateDictError
    (PyTorch's RuntimeError) that is also the TypeError gradflow raised for it before."""

    class StateDictTypeError(StateDictError, TypeError):
        __str__ = RuntimeError.__str__

    return StateDictTypeError


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` could not match."""

    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (
            f"_IncompatibleKeys(missing_keys={self.missing_keys!r}, "
            f"unexpected_keys={self.unexpected_keys!r})"
        )

    __str__ = __repr__


class Module:
    """Base class for layers and models: subclass it, build parts in ``__init__``, compute in
    ``forward``, and call the instance.

    Example::

        class MLP(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(64, 32)
                self.fc2 = nn.Linear(32, 10)

            def forward(self, x):
                return self.fc2(F.relu(self.fc1(x)))
    """

    training: bool
    dump_patches: bool = False  # PyTorch's (unused there too)
    _version: int = 1  # saved in state_dict()._metadata; _load_from_state_dict sees it
    # True: Module.__init__ passes its arguments on to the next class in the MRO (a mixin's).
    call_super_init: bool = False
    T_destination = TypeVar("T_destination", bound=dict[str, Any])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if not self.call_super_init and kwargs:
            raise TypeError(
                f"{type(self).__name__}.__init__() got an unexpected keyword argument "
                f"'{next(iter(kwargs))}'"
            )
        if not self.call_super_init and args:
            raise TypeError(
                f"{type(self).__name__}.__init__() takes 1 positional argument but "
                f"{len(args) + 1} were given"
            )
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        # Ids of the hooks registered with_kwargs / always_call (PyTorch's layout).
        object.__setattr__(self, "_forward_hooks_with_kwargs", {})
        object.__setattr__(self, "_forward_pre_hooks_with_kwargs", {})
        object.__setattr__(self, "_forward_hooks_always_called", {})
        object.__setattr__(self, "_backward_hooks", OrderedDict())
        object.__setattr__(self, "_backward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_state_dict_hooks", OrderedDict())
        object.__setattr__(self, "_state_dict_pre_hooks", OrderedDict())
        object.__setattr__(self, "_load_state_dict_pre_hooks", OrderedDict())
        object.__setattr__(self, "_load_state_dict_post_hooks", OrderedDict())
        if self.call_super_init:
            super().__init__(*args, **kwargs)

    # ---- calling ---------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define one")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        d = self.__dict__
        if "_parameters" not in d:
            raise RuntimeError(
                f"{type(self).__name__}.__init__ did not call super().__init__() before use"
            )
        if not (
            self._forward_pre_hooks
            or self._forward_hooks
            or d.get("_backward_hooks")
            or d.get("_backward_pre_hooks")
        ):
            return self.forward(*args, **kwargs)  # the common case: no hooks at all
        return self._call_with_hooks(args, kwargs)

    def _call_with_hooks(self, args: tuple, kwargs: dict) -> Any:
        """PyTorch's order: forward pre-hooks, the backward hooks' input node, forward,
        forward hooks, the backward hooks' output node."""
        d = self.__dict__
        pre_kwargs = d.get("_forward_pre_hooks_with_kwargs", {})
        for hook_id, hook in tuple(self._forward_pre_hooks.items()):
            if hook_id in pre_kwargs:
                changed = hook(self, args, kwargs)
                if changed is not None:
                    if not (isinstance(changed, tuple) and len(changed) == 2):
                        raise RuntimeError(
                            "forward pre-hook must return None or a tuple of (new_args, "
                            f"new_kwargs), but got {changed}."
                        )
                    args, kwargs = changed
            else:
                changed = hook(self, args)
                if changed is not None:
                    args = changed if isinstance(changed, tuple) else (changed,)
        hooked = None
        if d.get("_backward_hooks") or d.get("_backward_pre_hooks"):
            hooked = _BackwardHooks(self)
            args = hooked.wrap_inputs(args)
        with_kwargs = d.get("_forward_hooks_with_kwargs", {})
        always = d.get("_forward_hooks_always_called", {})
        try:
            out = self.forward(*args, **kwargs)
        except Exception:
            for hook_id, hook in tuple(self._forward_hooks.items()):
                if hook_id in always:
                    # PyTorch calls these with output None when forward raised.
                    if hook_id in with_kwargs:
                        hook(self, args, kwargs, None)
                    else:
                        hook(self, args, None)
            raise
        for hook_id, hook in tuple(self._forward_hooks.items()):
            if hook_id in with_kwargs:
                changed = hook(self, args, kwargs, out)
            else:
                changed = hook(self, args, out)
            if changed is not None:
                out = changed
        if hooked is not None:
            out = hooked.wrap_outputs(out)
        return out

    def _add_hook(self, registry: str, hook: Callable, prepend: bool) -> RemovableHandle:
        hooks = getattr(self, registry)
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(
        self,
        hook: Callable,
        *,
        prepend: bool = False,
        with_kwargs: bool = False,
        always_call: bool = False,
    ) -> RemovableHandle:
        """``hook(module, args, output)`` (``hook(module, args, kwargs, output)`` with
        `with_kwargs`) runs after forward; a non-None return replaces the output. `prepend`
        runs it before the hooks already registered; `always_call` runs it (with output None)
        even when forward raises."""
        handle = self._add_hook("_forward_hooks", hook, prepend)
        # A removed hook's id may stay in these sets: ids are never reused.
        if with_kwargs:
            self._forward_hooks_with_kwargs[handle.id] = True
        if always_call:
            self._forward_hooks_always_called[handle.id] = True
        return handle

    def register_forward_pre_hook(
        self, hook: Callable, *, prepend: bool = False, with_kwargs: bool = False
    ) -> RemovableHandle:
        """``hook(module, args)`` runs before forward; a non-None return replaces the args.
        With `with_kwargs`, ``hook(module, args, kwargs)`` returns None or (args, kwargs)."""
        handle = self._add_hook("_forward_pre_hooks", hook, prepend)
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs[handle.id] = True
        return handle

    def register_full_backward_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_input, grad_output)`` runs when the gradients of the module's
        positional Tensor inputs are computed; both are tuples (None for an input that needs
        no gradient). A returned tuple replaces grad_input. As PyTorch's; the inputs and
        outputs pass through one identity node each while a backward hook is registered."""
        return self._add_hook("_backward_hooks", hook, prepend)

    def register_full_backward_pre_hook(
        self, hook: Callable, prepend: bool = False
    ) -> RemovableHandle:
        """``hook(module, grad_output)`` runs when the gradients of the module's outputs are
        ready, before those of its inputs; a returned tuple replaces grad_output."""
        return self._add_hook("_backward_pre_hooks", hook, prepend)

    def register_backward_hook(self, hook: Callable) -> RemovableHandle:
        """PyTorch's deprecated name; gradflow runs it as a full backward hook, whose
        grad_input is the gradient of the module's inputs (what the old hook meant to give)."""
        return self.register_full_backward_hook(hook)

    # ---- registration ----------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name, params)
            params[name] = value
        elif isinstance(value, Module):
            if params is None:
                raise AttributeError("cannot assign submodules before Module.__init__() call")
            self._forget(name, self._modules)
            self._modules[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} to parameter '{name}' of "
                    f"{type(self).__name__}: wrap it in nn.Parameter or assign None"
                )
            params[name] = None
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} to submodule '{name}': "
                    "assign a Module or None"
                )
            self._modules[name] = None
        elif params is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign {type(value).__name__} to buffer '{name}': assign a Tensor"
                )
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str, keep: dict) -> None:
        """Drop `name` from the instance dict and every registry but `keep`, the one about to
        receive it: re-assigning there keeps the name's place in the order, as in PyTorch."""
        self.__dict__.pop(name, None)
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)
        self._non_persistent.discard(name)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: look in the registries.
        d = self.__dict__
        if name in _STATE and "_parameters" not in d:
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '{name}': its __init__ did "
                "not call super().__init__()"
            )
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        names = set(super().__dir__())
        names.update(self._parameters, self._buffers, self._modules)
        return sorted(names)

    def _check_name(self, kind: str, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name must be a string, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"{kind} name can't be empty or contain '.', got {name!r}")
        if name in self.__dict__ and not any(
            name in r for r in (self._parameters, self._buffers, self._modules)
        ):
            raise KeyError(f"attribute '{name}' already exists on {type(self).__name__}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder, e.g. for ``bias=False``) under `name`."""
        self._check_name("parameter", name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot register a {type(param).__name__} as parameter '{name}': "
                "wrap it in nn.Parameter"
            )
        self._forget(name, self._parameters)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add state that is not learned (e.g. BatchNorm's running mean): it moves with
        ``to()`` and, when persistent, goes into ``state_dict()``."""
        self._check_name("buffer", name)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"buffer '{name}' must be a Tensor or None, got {type(tensor)}")
        self._forget(name, self._buffers)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a submodule under `name` (as attribute assignment does)."""
        self._check_name("module", name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._forget(name, self._modules)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        """The submodule at a dotted path such as ``"encoder.0"`` (``""`` is self)."""
        module: Module = self
        for part in target.split(".") if target else ():
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(module).__name__} has no attribute `{part}`")
            module = child
        return module

    def set_submodule(self, target: str, module: Module, strict: bool = False) -> None:
        """Put `module` at the dotted path `target` (``"encoder.0"``), replacing what is there;
        with ``strict`` only an existing submodule may be replaced."""
        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        atoms = target.split(".")
        if not isinstance(module, Module):
            raise ValueError(f"`module` is not an nn.Module, found {type(module)}")
        parent = self if len(atoms) == 1 else self.get_submodule(".".join(atoms[:-1]))
        if strict and not hasattr(parent, atoms[-1]):
            raise AttributeError(f"{parent._get_name()} has no attribute `{atoms[-1]}`")
        if hasattr(parent, atoms[-1]) and not isinstance(getattr(parent, atoms[-1]), Module):
            raise AttributeError(f"`{atoms[-1]}` is not an nn.Module")
        setattr(parent, atoms[-1], module)

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at a dotted path such as ``"encoder.0.weight"``."""
        return self._registered_at(target, "_parameters", "an nn.Parameter")

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at a dotted path such as ``"bn.running_mean"``."""
        return self._registered_at(target, "_buffers", "a buffer")

    def _registered_at(self, target: str, table: str, kind: str) -> Any:
        """The entry of the submodule's `table` (_parameters or _buffers) at a dotted path."""
        path, _, name = target.rpartition(".")
        module = self.get_submodule(path)
        entries = getattr(module, table)
        if name not in entries:
            if hasattr(module, name):
                raise AttributeError(f"`{name}` is not {kind}")
            raise AttributeError(f"{type(module).__name__} has no attribute `{name}`")
        return entries[name]

    # ---- iteration -------------------------------------------------------------------------
    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module and every descendant, each once."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                sub = f"{prefix}.{name}" if prefix else name
                yield from child.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def _named_members(
        self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        if recurse:
            modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
        else:
            modules = [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs; a parameter shared by two layers comes once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ---- modes and gradients ---------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (Dropout drops, BatchNorm uses batch statistics) on every module."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode) expects a bool, got {type(mode).__name__}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode: ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient (to None by default, as PyTorch does)."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.array[...] = 0

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every submodule (children first) and on self, e.g. to initialize."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- device and dtype ------------------------------------------------------------------
    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> Module:
        """PyTorch's hook for every conversion (``to``, ``cuda``, ``float``, ``to_empty``...):
        ``fn(tensor)`` gives each parameter's, gradient's and buffer's new value (children
        first), whose array is put in place on the same Tensor objects (optimizers keep their
        references). Subclasses override it to convert tensors they hold outside
        ``_parameters``/``_buffers``, calling ``super()._apply(fn)``."""
        if recurse:
            for child in self.children():
                child._apply(fn)
        with no_grad():
            for p in self._parameters.values():
                if p is None:
                    continue
                p.array = _array_of(fn(p))
                if p.grad is not None:
                    p.grad.array = _array_of(fn(p.grad))
            for b in self._buffers.values():
                if b is not None:
                    b.array = _array_of(fn(b))
        return self

    def _apply_to_arrays(self, convert: Callable[[Any], Any]) -> Module:
        """``_apply`` with a function of arrays: each array becomes ``convert(array)``."""
        return self._apply(lambda t: _make_tensor(convert(t.array), None, False, 0))

    def to_empty(self, *, device: Any, recurse: bool = True) -> Module:
        """Give every parameter and buffer new, uninitialized storage of its shape and dtype on
        `device` (None: where it is), as PyTorch's; the Tensor objects stay the same."""
        from gradflow import creation

        def empty(t: Tensor) -> Any:
            if is_lazy(t):  # a lazy module's placeholder has no shape yet: stays as it is
                return t.array
            where = t.device if device is None else device
            return creation.empty(*t.array.shape, dtype=t.dtype, device=where).array

        return self._apply(empty, recurse=recurse)

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """PyTorch's ``torch.compile`` of the module's call; gradflow has no compiler (see
        ``gradflow.compile``), so the module keeps running eagerly. Returns None."""
        return None

    def _get_name(self) -> str:
        return type(self).__name__

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """``to(device)``, ``to(dtype)`` or ``to(device, dtype)``: moves and casts parameters
        and buffers in place (only floating-point ones change dtype) and returns self."""
        kwargs = dict(kwargs)
        # Copies are synchronous in gradflow and there is one memory layout: accepted, ignored.
        kwargs.pop("non_blocking", None)
        kwargs.pop("memory_format", None)
        if len(args) > 1 and isinstance(args[-1], bool):
            args = args[:-1]  # to(device, dtype, non_blocking) positionally
        target, new_dtype = parse_to_args(args, kwargs)
        if new_dtype is not None and new_dtype.kind != "f":
            raise TypeError(
                f"Module.to() only casts to floating-point dtypes, got {new_dtype}; "
                "cast individual tensors instead"
            )

        def convert(array: Any) -> Any:
            if new_dtype is not None and array.dtype.kind == "f" and array.dtype != new_dtype:
                array = array.astype(new_dtype)
            if target is not None:
                array = move_array(array, target)
            return array

        return self._apply_to_arrays(convert)

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, device: int | str | None = None) -> Module:
        if isinstance(device, int):
            device = f"cuda:{device}"
        return self.to(device or "cuda")

    def float(self) -> Module:
        return self.to(dtypes.float32)

    def double(self) -> Module:
        return self.to(dtypes.float64)

    def half(self) -> Module:
        return self.to(dtypes.float16)

    def bfloat16(self) -> Module:
        raise TypeError(
            "Module.bfloat16(): gradflow computes with NumPy/CuPy, which have no bfloat16; use "
            "half() for float16 or float() for float32 instead"
        )

    def type(self, dst_type: Any) -> Module:
        """Cast every parameter and buffer (integer ones too) to `dst_type`, in place."""
        dtype = dtypes.as_dtype(dst_type)
        return self._apply_to_arrays(lambda a: a if a.dtype == dtype else a.astype(dtype))

    def share_memory(self) -> Module:
        """Does nothing and returns self: gradflow's processes don't share tensors."""
        return self

    # ---- state -----------------------------------------------------------------------------
    def register_state_dict_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, prefix, keep_vars)`` runs when ``state_dict()`` reaches this module,
        before it saves anything."""
        return self._add_hook("_state_dict_pre_hooks", hook, False)

    def register_state_dict_post_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, state_dict, prefix, local_metadata)`` runs when ``state_dict()`` has
        saved this module and its children; it edits `state_dict` in place and returns None."""
        try:
            hook._from_public_api = True
        except AttributeError:  # a bound method: mark a wrapper instead
            hook = _marked_public(hook)
        return self._add_hook("_state_dict_hooks", hook, False)

    def _register_state_dict_hook(self, hook: Callable) -> RemovableHandle:
        """PyTorch's private post-hook: ``hook(module, state_dict, prefix, local_metadata)``;
        a dict it returns replaces the state dict."""
        if getattr(hook, "_from_public_api", False):
            raise RuntimeError(
                "Cannot register the same function as the state dict post hook that was "
                "previously registered via register_state_dict_post_hook"
            )
        return self._add_hook("_state_dict_hooks", hook, False)

    def _register_load_state_dict_pre_hook(
        self, hook: Callable, with_module: bool = False
    ) -> RemovableHandle:
        """``hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
        error_msgs)`` (with_module: the module first) runs before this module loads; it may
        edit `state_dict` (rename keys, convert values) and the three lists."""
        if with_module:
            hook = functools.partial(hook, self)
        return self._add_hook("_load_state_dict_pre_hooks", hook, False)

    def register_load_state_dict_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs)`` runs before this module loads its part of a state
        dict; it may edit `state_dict` in place (keys under `prefix` are this module's)."""
        return self._register_load_state_dict_pre_hook(hook, with_module=True)

    def register_load_state_dict_post_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, incompatible_keys)`` runs after ``load_state_dict`` has loaded this
        module; it may edit ``incompatible_keys.missing_keys`` / ``unexpected_keys`` in place
        (what strict mode then raises for) and must return None."""
        return self._add_hook("_load_state_dict_post_hooks", hook, False)

    def get_extra_state(self) -> Any:
        """Override (with ``set_extra_state``) to save more than parameters and buffers: the
        value goes into ``state_dict()`` under ``"<prefix>_extra_state"``."""
        raise RuntimeError(
            "Reached a code path in Module.get_extra_state() that should never be called: "
            "override get_extra_state() (and set_extra_state()) in the subclass"
        )

    def set_extra_state(self, state: Any) -> None:
        """Override (with ``get_extra_state``): receives the saved ``_extra_state`` value."""
        raise RuntimeError(
            "Reached a code path in Module.set_extra_state() that should never be called: "
            "override set_extra_state() (and get_extra_state()) in the subclass"
        )

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        """Put this module's own state (not its children's) into `destination`: parameters,
        persistent buffers and the extra state, keys under `prefix`. Overridable."""
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                destination[prefix + name] = b if keep_vars else b.detach()
        if getattr(type(self), "get_extra_state", Module.get_extra_state) is not (
            Module.get_extra_state
        ):
            destination[prefix + _EXTRA_STATE_KEY_SUFFIX] = self.get_extra_state()

    def state_dict(
        self, destination: dict | None = None, prefix: str = "", keep_vars: bool = False
    ) -> OrderedDict[str, Tensor]:
        """Parameters and persistent buffers by dotted name. Values are detached Tensors sharing
        the module's arrays (``keep_vars=True`` gives the Parameters themselves). A submodule
        used in two places appears under both names, as in PyTorch.

        As PyTorch's: each module's state-dict pre-hooks run, then its ``_save_to_state_dict``,
        then its children's ``state_dict``, then its post-hooks; the new OrderedDict carries
        ``_metadata`` (``{module prefix: {"version": module._version}}``)."""
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()  # type: ignore[attr-defined]
        local_metadata = {"version": self._version}
        metadata = getattr(destination, "_metadata", None)
        if metadata is not None:
            metadata[prefix[:-1]] = local_metadata
        d = self.__dict__
        for hook in tuple(d.get("_state_dict_pre_hooks", {}).values()):
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, child in self._modules.items():
            if child is not None:
                child.state_dict(
                    destination=destination, prefix=f"{prefix}{name}.", keep_vars=keep_vars
                )
        for hook in tuple(d.get("_state_dict_hooks", {}).values()):
            result = hook(self, destination, prefix, local_metadata)
            if getattr(hook, "_from_public_api", False):
                if result is not None:
                    raise RuntimeError("state_dict post-hook must return None")
            elif result is not None:
                destination = result
        return destination

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """Load this module's own state (not its children's) from the keys under `prefix`, as
        PyTorch's: runs the load pre-hooks, checks each value's shape (a mismatch goes into
        `error_msgs`), copies it, then (strict) lists the missing and unexpected keys.
        Subclasses override it to rename keys or convert old checkpoints, calling super().
        Inside ``load_state_dict`` the copies wait until every module has checked its values."""
        for hook in tuple(self.__dict__.get("_load_state_dict_pre_hooks", {}).values()):
            hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                 error_msgs)  # fmt: skip
        materialize = getattr(self, "_materialize_from", None)
        if materialize is not None:
            # lazy modules (nn/lazy.py) size their placeholders from the checkpoint first
            materialize(state_dict, prefix)
        persistent = ((k, v) for k, v in self._buffers.items() if k not in self._non_persistent)
        local_state = {k: v for k, v in (*self._parameters.items(), *persistent) if v is not None}
        assign = local_metadata.get("assign_to_params_buffers", False)
        pending = getattr(_LOADING, "pending", None)
        for name, param in local_state.items():
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            value = state_dict[key]
            array = value.array if isinstance(value, Tensor) else value
            if not hasattr(array, "shape"):
                message = f"state_dict['{key}'] is a {type(value).__name__}; expected a Tensor"
                if pending is None:
                    raise _state_dict_type_error()(message)
                pending.type_errors.append(message)
                error_msgs.append(message)
                continue
            if is_lazy(param):
                if is_lazy(value):
                    continue  # a placeholder into a placeholder: nothing to load
            elif is_lazy(value):
                value.shape  # noqa: B018  (raises PyTorch's error: it has no shape to load)
            if not is_lazy(param) and param.ndim == 0 and tuple(array.shape) == (1,):
                array = array.reshape(())  # PyTorch loads a (1,) value into a 0-d tensor
                if isinstance(value, Tensor):
                    value = value.reshape(())
            if not is_lazy(param) and tuple(array.shape) != tuple(param.shape):
                error_msgs.append(
                    f"size mismatch for '{key}': the checkpoint has shape "
                    f"{tuple(array.shape)}, the model has {tuple(param.shape)}"
                )
                continue
            action = (self, name, value) if assign else (param, array)
            if pending is None:
                _commit([action])
            else:
                pending.actions.append(action)
        extra_key = prefix + _EXTRA_STATE_KEY_SUFFIX
        if getattr(type(self), "set_extra_state", Module.set_extra_state) is not (
            Module.set_extra_state
        ):
            if extra_key in state_dict:
                self.set_extra_state(state_dict[extra_key])
            elif strict:
                missing_keys.append(extra_key)
        elif strict and extra_key in state_dict:
            unexpected_keys.append(extra_key)
        if strict:
            for key in state_dict:
                if key.startswith(prefix) and key != extra_key:
                    head, dot, _ = key[len(prefix) :].partition(".")
                    if head not in (self._modules if dot else local_state):
                        unexpected_keys.append(key)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> IncompatibleKeys:
        """Copy `state_dict`'s values into this module's parameters and buffers, in place.

        With ``strict`` (the default) missing or unexpected keys raise, naming them; a value
        whose shape differs always raises, naming the key and both shapes. Every value is
        checked before any is copied, so a failed load leaves the module as it was. Values may
        be Tensors or arrays; they are moved to each parameter's device and cast to its dtype.
        With ``assign=True`` the module takes the state_dict's tensors themselves instead
        (parameters wrapped in a Parameter that keeps the old one's requires_grad), as PyTorch.

        PyTorch's protocol: each module (parent before children) gets its keys through its
        ``_load_from_state_dict`` (running its load pre-hooks), then its load post-hooks see
        the IncompatibleKeys. The copies are made once every module has checked its values,
        so with errors nothing is copied; only when post-hooks are registered and strict
        key errors remain after them has the model been loaded (as PyTorch's) before it raises.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"load_state_dict expects a dict of tensors, got {type(state_dict).__name__}"
            )
        metadata = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)  # the hooks may edit it: the caller's stays
        if metadata is not None:
            state_dict._metadata = metadata  # type: ignore[attr-defined]
        missing: list[str] = []
        unexpected: list[str] = []
        error_msgs: list[str] = []
        post: list[tuple[Module, dict]] = []

        def load(module: Module, local_state_dict: dict, prefix: str = "") -> None:
            local_metadata = {} if metadata is None else dict(metadata.get(prefix[:-1], {}))
            if assign:
                local_metadata["assign_to_params_buffers"] = assign
            module._load_from_state_dict(
                local_state_dict, prefix, local_metadata, True, missing, unexpected, error_msgs
            )
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = f"{prefix}{name}."
                    child_state = {
                        k: v for k, v in local_state_dict.items() if k.startswith(child_prefix)
                    }
                    load(child, child_state, child_prefix)
            hooks = module.__dict__.get("_load_state_dict_post_hooks")
            if hooks:
                post.append((module, hooks))

        outer = getattr(_LOADING, "pending", None)
        pending = _LOADING.pending = _Pending()
        try:
            load(self, state_dict)
        finally:
            _LOADING.pending = outer
        if error_msgs or (strict and (missing or unexpected) and not post):
            raise self._load_error(strict, missing, unexpected, error_msgs, pending.type_errors)
        _commit(pending.actions)
        incompatible = IncompatibleKeys(missing, unexpected)
        for module, hooks in post:
            for hook in tuple(hooks.values()):
                if hook(module, incompatible) is not None:
                    raise AssertionError(
                        "Hooks registered with ``register_load_state_dict_post_hook`` are not "
                        "expected to return new values, if incompatible_keys need to be "
                        "modified, it should be done inplace."
                    )
        if strict and (missing or unexpected):
            raise self._load_error(strict, missing, unexpected, [], [])
        return incompatible

    def _load_error(
        self,
        strict: bool,
        missing: list[str],
        unexpected: list[str],
        error_msgs: list[str],
        type_errors: list[str],
    ) -> StateDictError:
        """PyTorch's "Error(s) in loading state_dict for X:" error, one message a line."""
        name = type(self).__name__
        messages = list(error_msgs)
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys: {', '.join(missing)}")
            if unexpected:
                parts.append(f"unexpected keys: {', '.join(unexpected)}")
            messages.insert(
                0,
                f"error loading state_dict into {name}: {'; '.join(parts)}. "
                "Pass strict=False to load the keys that match",
            )
        kind = _state_dict_type_error() if type_errors else StateDictError
        return kind(f"Error(s) in loading state_dict for {name}:\n\t" + "\n\t".join(messages))

    # ---- printing --------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside this module's parentheses in ``repr`` (its constructor arguments)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, child in self._modules.items():
            text = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {text}")
        head = type(self).__name__ + "("
        if not lines:
            return head + ")"
        if len(lines) == 1 and not self._modules:
            return head + lines[0] + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class _Pending:
    """The work load_state_dict defers until every module has checked its values."""

    def __init__(self) -> None:
        self.actions: list[tuple] = []  # (param, array) copies or (module, name, value) assigns
        self.type_errors: list[str] = []


def _commit(actions: list[tuple]) -> None:
    """Make the copies (in place, cast and moved) and assignments load_state_dict checked."""
    with no_grad():
        for action in actions:
            if len(action) == 2:
                target, array = action
                target.array[...] = move_array(array, target.device).astype(
                    target.dtype, copy=False
                )
                continue
            module, name, value = action
            if not isinstance(value, Tensor):
                value = _make_tensor(value, None, False, 0)  # an array: held, not copied
            if name in module._parameters:
                old = module._parameters[name]
                if isinstance(value, Parameter):
                    value.requires_grad_(old.requires_grad)
                else:
                    value = Parameter(value, requires_grad=old.requires_grad)
                module._parameters[name] = value
            else:
                module._buffers[name] = value


def _marked_public(hook: Callable) -> Callable:
    @functools.wraps(hook)
    def marked(*args: Any) -> Any:
        return hook(*args)

    marked._from_public_api = True  # type: ignore[attr-defined]
    return marked


def _array_of(value: Any) -> Any:
    """The array of what an ``_apply`` function returned (a Tensor, or an array)."""
    return value.array if isinstance(value, Tensor) else value


# ---- full backward hooks ------------------------------------------------------------------


class _HookIdentity(Function):
    """Identity on the tensors passed through it; its backward hands their gradients to a
    module's backward hooks (PyTorch's BackwardHookFunction)."""

    op_name = "backward_hook_function"
    on_grads: Any  # called with the tuple of incoming gradient arrays, returns the outgoing

    def forward(self, *arrays):
        return tuple(a.view() for a in arrays)  # views: the same storage, as in PyTorch

    def backward(self, *grads):
        return self.on_grads(grads)


def _as_tensor(array: Any) -> Tensor | None:
    return None if array is None else _make_tensor(array, None, False, 0)


class _BackwardHooks:
    """The state of one call of a module with backward hooks: which positional inputs and
    outputs pass through the identity nodes, and the grad_output the hooks see."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.n_inputs = 0
        self.input_positions: list[int] = []
        self.grad_output: tuple = ()

    @staticmethod
    def _positions(values: Any) -> list[int]:
        return [
            i
            for i, v in enumerate(values)
            if isinstance(v, Tensor) and v.requires_grad and v.dtype.kind == "f"
        ]

    def wrap_inputs(self, args: tuple) -> tuple:
        self.n_inputs = len(args)
        if not is_grad_enabled():
            return args
        self.input_positions = self._positions(args)
        if not self.input_positions:
            return args
        outs = _HookIdentity.apply(
            *(args[i] for i in self.input_positions), on_grads=self._on_input_grads
        )
        args = list(args)
        for i, t in zip(self.input_positions, outs):
            args[i] = t
        return tuple(args)

    def wrap_outputs(self, out: Any) -> Any:
        single = isinstance(out, Tensor)
        values = (out,) if single else out
        if not is_grad_enabled() or not isinstance(values, tuple | list):
            return out
        positions = self._positions(values)
        if not positions:
            return out
        self.n_outputs, self.output_positions = len(values), positions
        outs = _HookIdentity.apply(*(values[i] for i in positions), on_grads=self._on_output_grads)
        values = list(values)
        for i, t in zip(positions, outs):
            values[i] = t
        if single:
            return values[0]
        return type(out)(*values) if hasattr(out, "_fields") else type(out)(values)  # namedtuple

    def _pack(self, positions: list[int], count: int, arrays: tuple) -> tuple:
        packed: list = [None] * count
        for i, a in zip(positions, arrays):
            packed[i] = _as_tensor(a)
        return tuple(packed)

    def _unpack(self, kind: str, positions: list[int], count: int, values: Any, old: tuple):
        """The arrays of a hook's replacement tuple at `positions` (checked like PyTorch)."""
        if not isinstance(values, tuple | list) or len(values) != count:
            got = len(values) if isinstance(values, tuple | list) else type(values).__name__
            raise RuntimeError(
                f"Backward hook returned an invalid number of {kind}, got {got}, but expected "
                f"{count}"
            )
        arrays = []
        for i, a in zip(positions, old):
            v = values[i]
            if v is None:
                arrays.append(a * 0)
            elif isinstance(v, Tensor) and tuple(v.shape) == tuple(a.shape):
                arrays.append(v.array)
            else:
                raise RuntimeError(
                    f"Backward hook of {type(self.module).__name__} returned {kind}[{i}] of "
                    f"shape {tuple(getattr(v, 'shape', ()))}; expected a Tensor of shape "
                    f"{tuple(a.shape)} or None"
                )
        return tuple(arrays)

    def _on_output_grads(self, grads: tuple) -> tuple:
        module = self.module
        grad_output = self._pack(self.output_positions, self.n_outputs, grads)
        for hook in tuple(module._backward_pre_hooks.values()):
            changed = hook(module, grad_output)
            if changed is not None:
                grads = self._unpack(
                    "grad_output", self.output_positions, self.n_outputs, changed, grads
                )
                grad_output = self._pack(self.output_positions, self.n_outputs, grads)
        self.grad_output = grad_output
        if not self.input_positions:  # no input needs a gradient: PyTorch calls the hooks now
            grad_input = (None,) * self.n_inputs
            for hook in tuple(module._backward_hooks.values()):
                hook(module, grad_input, grad_output)
        return grads

    def _on_input_grads(self, grads: tuple) -> tuple:
        module = self.module
        for hook in tuple(module._backward_hooks.values()):
            grad_input = self._pack(self.input_positions, self.n_inputs, grads)
            changed = hook(module, grad_input, self.grad_output)
            if changed is not None:
                grads = self._unpack(
                    "grad_input", self.input_positions, self.n_inputs, changed, grads
                )
        return grads


# ---- constructor argument checks (shared by the layers) --------------------------------------


def check_size(layer: str, name: str, value: Any) -> int:
    """A layer's size argument (features, channels, embeddings) as an int >= 1, else an error
    naming the layer and the argument: TypeError for anything but an int (a bool too),
    RuntimeError for a negative int (PyTorch's type: its tensor creation refuses it), ValueError
    for 0 (PyTorch builds an empty layer; gradflow refuses one).

    >>> check_size("Linear", "in_features", 3)
    3
    """
    if isinstance(value, bool) or not isinstance(value, int | numpy.integer):
        raise TypeError(
            f"{layer}: {name} must be a positive int, got {type(value).__name__} {value!r}"
        )
    if value < 0:
        raise RuntimeError(
            f"{layer}: {name} must be a positive int, got {value} (a layer can't have a "
            "negative size)"
        )
    if value == 0:
        raise ValueError(f"{layer}: {name} must be a positive int, got 0")
    return int(value)
