"""Module: the base class of every layer and model (parameters, buffers, submodules, state).

Shaped like ``torch.nn.Module``: assigning a ``Parameter`` or a ``Module`` to an attribute
registers it; ``state_dict()`` uses PyTorch's dotted keys (``"0.weight"``, ``"fc.bias"``);
``to(device)`` moves every parameter's array in place, so optimizers built before the move keep
updating the same Parameter objects.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy

from gradflow import dtypes
from gradflow.autograd.grad_mode import no_grad
from gradflow.backend import move_array
from gradflow.nn.backward_hooks import _BackwardHooks
from gradflow.nn.parameter import Parameter, is_lazy
from gradflow.nn.state_dict import StateDictMixin
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


class Module(StateDictMixin):
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


def _array_of(value: Any) -> Any:
    """The array of what an ``_apply`` function returned (a Tensor, or an array)."""
    return value.array if isinstance(value, Tensor) else value


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
