"""The state-dict protocol of gradflow.nn.Module, as torch.nn.Module's: ``state_dict`` and
``load_state_dict`` walk the modules calling each one's ``_save_to_state_dict`` /
``_load_from_state_dict`` (the override points), the state-dict and load pre/post hooks, and
``get_extra_state`` / ``set_extra_state`` under ``<prefix>_extra_state``. Module inherits it
(StateDictMixin); StateDictError and IncompatibleKeys are the errors and results.

A load checks every module's values before copying any (a failed load leaves the model as it
was), except that with post-hooks registered the matching keys are loaded before a strict key
error is raised, as in torch.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from gradflow.autograd.grad_mode import no_grad
from gradflow.backend import move_array
from gradflow.nn.parameter import Parameter, is_lazy
from gradflow.tensor import RemovableHandle, Tensor, _make_tensor

if TYPE_CHECKING:
    from gradflow.nn.module import Module

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


class StateDictMixin:
    """Module's state_dict, load_state_dict and their hooks (see the module docstring)."""

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
        if getattr(type(self), "get_extra_state", StateDictMixin.get_extra_state) is not (
            StateDictMixin.get_extra_state
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
        if getattr(type(self), "set_extra_state", StateDictMixin.set_extra_state) is not (
            StateDictMixin.set_extra_state
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
