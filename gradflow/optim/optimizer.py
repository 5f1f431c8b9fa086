"""Optimizer: the base class of gradflow.optim, shaped like torch.optim.Optimizer.

An optimizer holds ``param_groups`` (dicts of hyperparameters, each with its "params" list)
and ``state`` (per parameter, a dict of Tensors and numbers). ``step()`` updates every
parameter that has a gradient in place on its array (``p.array``): the module and the optimizer
share that array, so it is never replaced. Updates work on arrays, never record a graph, and
bump each updated tensor's version so a graph that saved it refuses a stale backward.

``state_dict()`` uses PyTorch's layout, ``{"state": {index: {...}}, "param_groups": [{...,
"params": [indices]}]}``, indices numbering the parameters in group order. Unlike PyTorch it
returns copies of the state tensors, so it is a snapshot: later steps do not change it (gradflow
Tensors cannot be deep-copied, so a caller could not take that snapshot itself).
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from gradflow.autograd import enable_grad
from gradflow.backend import get_array_module, move_array
from gradflow.kernels.optim import KernelLaunches, TableCache
from gradflow.optim._arrays import Scratch
from gradflow.tensor import RemovableHandle, Tensor

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


class Optimizer:
    """Base class: parameter groups, per-parameter state, zero_grad, step and state dicts.

    Subclasses pass their hyperparameter ``defaults`` (``defaults_from(locals())``), check a
    group in ``_check_group`` (``check_hyperparameters``) and update one group in
    ``_step_group``: ``_params_to_step`` gives each parameter to update with its state, and
    ``_arrays.update_in_chunks`` runs the algorithm's update function on its arrays.
    """

    # PyTorch's names for the step hooks' types: pre(optimizer, args, kwargs) -> None or
    # (new_args, new_kwargs); post(optimizer, args, kwargs) -> None.
    OptimizerPreHook = Callable[..., tuple[tuple[Any, ...], dict[str, Any]] | None]
    OptimizerPostHook = Callable[..., None]

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self._scratch = Scratch()
        # The fused kernel launches (kernels/optim.cu) of the step in progress, and their
        # device tables kept between steps: a step uploads its tables in one copy, or none
        # when its arrays sit where they sat on a recent step.
        self._tables = TableCache()
        self._launches: KernelLaunches | None = None
        self._optimizer_step_pre_hooks: dict[int, Callable] = {}
        self._optimizer_step_post_hooks: dict[int, Callable] = {}
        self._optimizer_state_dict_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_state_dict_post_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_load_state_dict_post_hooks: OrderedDict[int, Callable] = OrderedDict()
        if isinstance(params, Tensor):
            raise TypeError(
                f"{self._name}: params should be an iterable of Tensors or of dicts (parameter "
                f"groups), but got a single Tensor; wrap it in a list: {self._name}([w], ...)"
            )
        groups = params if isinstance(params, set | frozenset) else list(params)
        if not groups:
            raise ValueError(
                "optimizer got an empty parameter list; pass the tensors to optimize, e.g. "
                "model.parameters() (a generator can only be used once)"
            )
        if isinstance(groups, set | frozenset) or not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self) -> str:
        return type(self).__name__

    # ---- groups -------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (the rest from defaults).

        Useful for fine-tuning: ``opt.add_param_group({"params": head.parameters(),
        "lr": 0.1})``.
        """
        if not isinstance(param_group, dict):
            raise TypeError(
                f"{self._name}: a parameter group must be a dict with a 'params' key, got "
                f"{type(param_group).__name__}"
            )
        if "params" not in param_group:
            raise ValueError(f"{self._name}: a parameter group needs a 'params' entry")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set | frozenset):
            raise TypeError(
                f"{self._name}: parameters must be in an ordered collection (the order of a set "
                "changes between runs, and state dicts refer to parameters by position); pass "
                "a list"
            )
        else:
            params = list(params)
        names = _param_names(self._name, params)
        if names is not None:
            params = [p for _, p in params]
        if self.param_groups and ("param_names" in self.param_groups[0]) != (names is not None):
            raise ValueError(
                f"{self._name}: all optimizer param groups should be with/without names "
                "(model.named_parameters() gives names, model.parameters() does not); cannot add "
                f"param group {'with' if names is not None else 'without'} names to the optimizer"
            )
        index = len(self.param_groups)
        for i, p in enumerate(params):
            self._check_param(p, f"parameter {i} of group {index}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(
                f"{self._name}: parameter group {index} lists a parameter more than once; list "
                "each parameter once"
            )
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(
                f"{self._name}: some parameters appear in more than one parameter group; give "
                "each parameter to one group only"
            )
        group = {**self.defaults, **param_group, "params": params}
        if names is not None:
            group["param_names"] = names
        self._check_group(group)
        self.param_groups.append(group)

    def _check_param(self, p: Any, where: str) -> None:
        if not isinstance(p, Tensor):
            raise TypeError(
                f"{self._name}: {where} is a {type(p).__name__}; an optimizer updates Tensors "
                "(e.g. model.parameters())"
            )
        if not p.is_leaf:
            raise ValueError(
                f"{self._name}: can't optimize a non-leaf Tensor ({where} was computed by "
                f"{type(p.grad_fn).__name__}); optimize the leaf tensors it came from, or make "
                "a new leaf with t.detach().requires_grad_()"
            )
        if p.dtype.kind != "f":
            raise TypeError(
                f"{self._name}: {where} has dtype {p.dtype}; only floating-point tensors can "
                "be optimized (convert with .float() or .double())"
            )

    def _check_group(self, group: dict[str, Any]) -> None:
        """Raise ValueError for invalid hyperparameters (each optimizer checks its own)."""

    # ---- the step -----------------------------------------------------------------------
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:  # a subclass's own step runs the step hooks too
            cls.step = _with_step_hooks(cls.__dict__["step"])

    def register_step_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Run ``hook(optimizer, args, kwargs)`` before each ``step``; it may return
        ``(new_args, new_kwargs)`` for the step. Returns a handle whose ``remove()`` undoes it."""
        handle = RemovableHandle(self._optimizer_step_pre_hooks)
        self._optimizer_step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Run ``hook(optimizer, args, kwargs)`` after each ``step``. Returns a handle whose
        ``remove()`` undoes it."""
        handle = RemovableHandle(self._optimizer_step_post_hooks)
        self._optimizer_step_post_hooks[handle.id] = hook
        return handle

    # ---- state-dict hooks (PyTorch's four, same call signatures) ----------------------------
    def _state_hooks(self, registry: str) -> OrderedDict[int, Callable]:
        """The hook table `registry` (created on first use: an optimizer unpickled from an
        older gradflow, or one whose subclass skipped __init__, lacks it)."""
        hooks = self.__dict__.get(registry)
        if hooks is None:
            hooks = self.__dict__[registry] = OrderedDict()
        return hooks

    def _add_state_hook(self, registry: str, hook: Callable, prepend: bool) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"{self._name}: a hook must be callable, got {_type_name(hook)}")
        hooks = self._state_hooks(registry)
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def register_state_dict_pre_hook(
        self, hook: Callable[[Optimizer], None], prepend: bool = False
    ) -> RemovableHandle:
        """Run ``hook(optimizer)`` at the start of ``state_dict()`` (``prepend``: before the
        hooks already registered). Returns a handle whose ``remove()`` undoes it."""
        return self._add_state_hook("_optimizer_state_dict_pre_hooks", hook, prepend)

    def register_state_dict_post_hook(
        self,
        hook: Callable[[Optimizer, dict[str, Any]], dict[str, Any] | None],
        prepend: bool = False,
    ) -> RemovableHandle:
        """Run ``hook(optimizer, state_dict)`` at the end of ``state_dict()``; a dict it
        returns replaces the state dict (None keeps it, edited in place or not)."""
        return self._add_state_hook("_optimizer_state_dict_post_hooks", hook, prepend)

    def register_load_state_dict_pre_hook(
        self,
        hook: Callable[[Optimizer, dict[str, Any]], dict[str, Any] | None],
        prepend: bool = False,
    ) -> RemovableHandle:
        """Run ``hook(optimizer, state_dict)`` at the start of ``load_state_dict()`` on a
        shallow copy of the given dict; a dict it returns is loaded instead."""
        return self._add_state_hook("_optimizer_load_state_dict_pre_hooks", hook, prepend)

    def register_load_state_dict_post_hook(
        self, hook: Callable[[Optimizer], None], prepend: bool = False
    ) -> RemovableHandle:
        """Run ``hook(optimizer)`` after ``load_state_dict()`` has loaded the state."""
        return self._add_state_hook("_optimizer_load_state_dict_post_hooks", hook, prepend)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters: to None (default), or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.array.fill(0)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` when given.

        The closure (re-evaluating the model and calling backward) runs with gradients
        enabled before the update.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with self._kernel_launches():
            for group in self.param_groups:
                self._step_group(group)
        return loss

    @contextlib.contextmanager
    def _kernel_launches(self) -> Iterator[KernelLaunches]:
        """The batch that the fused kernel launches of this step join (``launches=`` of the
        kernels/optim.py launchers): run when the step's last group is done, so that all of
        its groups' tables go up in one copy. Outside a step, a batch run on leaving the block.
        """
        if self._launches is not None:
            yield self._launches
            return
        launches = self._launches = KernelLaunches(self._tables)
        try:
            yield launches
        finally:
            self._launches = None
            launches.run()

    def _step_group(self, group: dict[str, Any]) -> None:
        raise NotImplementedError

    def _params_with_grads(self, group: dict[str, Any]) -> Iterator[tuple[Tensor, Any, Any]]:
        """(parameter, its array, its gradient's array) for each parameter of ``group`` that
        has a gradient; ValueError when a gradient's shape is not its parameter's."""
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            a = p.array
            g = grad.array
            if g.shape != a.shape:
                raise grad_shape_error(self, p, g)
            yield p, a, g

    def _params_to_step(
        self, group: dict[str, Any]
    ) -> Iterator[tuple[Tensor, Any, Any, dict[str, Any], int]]:
        """(parameter, its array, its gradient's array, its state, the step count) for each
        parameter of ``group`` that has a gradient, about to be updated in place: its state's
        ``step`` is counted up first, and its version bumped so that a graph that saved it
        refuses a stale backward."""
        state_of = self.state
        for p, a, g in self._params_with_grads(group):
            state = state_of[p]
            step = state["step"] = state.get("step", 0) + 1
            p._version += 1
            yield p, a, g, state, step

    # ---- state dicts --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state in PyTorch's layout, parameters named by index (a copy).
        State-dict pre-hooks run first, post-hooks last (a dict one returns replaces it)."""
        for hook in tuple(self._state_hooks("_optimizer_state_dict_pre_hooks").values()):
            hook(self)
        index_of: dict[int, int] = {}
        packed_groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index_of.setdefault(id(p), len(index_of)) for p in group["params"]]
            packed_groups.append(packed)
        packed_state = {}
        for p, values in self.state.items():
            if values and id(p) in index_of:
                packed_state[index_of[id(p)]] = {k: _snapshot(v) for k, v in values.items()}
        state_dict = {"state": packed_state, "param_groups": packed_groups}
        for hook in tuple(self._state_hooks("_optimizer_state_dict_post_hooks").values()):
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        return state_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by ``state_dict()`` into an optimizer over the same groups.

        The saved groups must match this optimizer's in number and sizes; state tensors are
        copied onto each parameter's device and dtype, so the dict stays independent.
        Load pre-hooks get a shallow copy of `state_dict` first (a dict one returns is loaded
        instead); load post-hooks run after the state is in place.
        """
        name = f"{self._name}.load_state_dict"
        if not isinstance(state_dict, dict):
            raise TypeError(
                f"{name}: expected the dict returned by state_dict(), with keys 'state' and "
                f"'param_groups', got {_type_name(state_dict)}"
            )
        state_dict = state_dict.copy()  # shallow, as PyTorch: hooks may edit it freely
        for hook in tuple(self._state_hooks("_optimizer_load_state_dict_pre_hooks").values()):
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        self._load_state_dict(state_dict, name)
        for hook in tuple(self._state_hooks("_optimizer_load_state_dict_post_hooks").values()):
            hook(self)

    def _load_state_dict(self, state_dict: dict[str, Any], name: str) -> None:
        """load_state_dict's work, between its hooks."""
        if not isinstance(state_dict, dict):
            raise TypeError(
                f"{name}: a load_state_dict pre-hook returned {_type_name(state_dict)}; "
                "expected a dict with keys 'state' and 'param_groups'"
            )
        if not {"state", "param_groups"} <= state_dict.keys():
            raise ValueError(
                f"{name}: expected the dict returned by state_dict(), with keys 'state' and "
                "'param_groups'"
            )
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, list | tuple) or not all(
            isinstance(g, dict) for g in saved_groups
        ):
            raise TypeError(
                f"{name}: the state dict's 'param_groups' must be a list of dicts (one per "
                f"parameter group), got {_type_name(saved_groups)}"
            )
        if not isinstance(saved_state, dict):
            raise TypeError(
                f"{name}: the state dict's 'state' must be a dict from parameter index to that "
                f"parameter's state, got {_type_name(saved_state)}"
            )
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}: the state dict has {len(saved_groups)} parameter group(s) but this "
                f"optimizer has {len(self.param_groups)}; build the optimizer with the same "
                "parameter groups as the one that was saved"
            )
        by_index: dict[Any, Tensor] = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if "params" not in saved:
                raise ValueError(
                    f"{name}: parameter group {i} of the state dict has no 'params' (the list "
                    "of its parameter indices)"
                )
            indices = saved["params"]
            if not isinstance(indices, list | tuple) or not all(
                isinstance(k, numbers.Integral) and not isinstance(k, bool) for k in indices
            ):
                raise TypeError(
                    f"{name}: parameter group {i} of the state dict needs 'params', a list of "
                    f"parameter indices (ints), got {_type_name(indices)}"
                )
            if len(indices) != len(group["params"]):
                raise ValueError(
                    f"{name}: parameter group {i} of the state dict has {len(indices)} "
                    f"parameter(s) but this optimizer's group {i} has {len(group['params'])}; "
                    "build the optimizer with the same parameter groups as the one that was saved"
                )
            missing = sorted(set(self.defaults) - set(saved) - _OPTIONAL_KEYS)
            if missing:
                raise ValueError(
                    f"{name}: parameter group {i} of the state dict has no {missing}; was it "
                    f"saved from another kind of optimizer than {self._name}?"
                )
            for index, p in zip(indices, group["params"]):
                if index in by_index:
                    raise ValueError(
                        f"{name}: parameter index {index} is listed more than once in the state "
                        "dict's parameter groups; each index names one parameter"
                    )
                by_index[index] = p
        state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for index, values in saved_state.items():
            if index not in by_index:
                raise ValueError(
                    f"{name}: the state dict has state for parameter index {index!r}, which no "
                    "parameter group lists"
                )
            if not isinstance(values, dict):
                raise TypeError(
                    f"{name}: the state of parameter {index} must be a dict of its state "
                    f"(tensors such as 'exp_avg', and 'step'), got {_type_name(values)}"
                )
            p = by_index[index]
            state[p] = {k: self._restore_value(p, index, k, v, name) for k, v in values.items()}
        groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            # Flags such as foreach and differentiable default as in PyTorch's __setstate__.
            restored = {k: v for k, v in self.defaults.items() if k in _OPTIONAL_KEYS}
            restored.update((k, v) for k, v in saved.items() if k != "params")
            restored["params"] = group["params"]
            if "param_names" in group and "param_names" not in restored:
                restored["param_names"] = group["param_names"]
            self._check_group(restored)
            groups.append(restored)
        self.state = state
        self.param_groups = groups

    def _restore_value(self, p: Tensor, index: Any, key: str, value: Any, name: str) -> Any:
        """One saved state value made this optimizer's own (LBFGS keeps other kinds)."""
        return _restore(p, index, key, value, name)

    def __repr__(self) -> str:
        lines = [f"{self._name} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join([*lines, ")"])


def _with_step_hooks(step: Callable[..., Any]) -> Callable[..., Any]:
    """``step`` running the optimizer's step pre- and post-hooks around it (once, when a
    subclass's step calls the base class's)."""

    @functools.wraps(step)
    def hooked(self: Optimizer, *args: Any, **kwargs: Any) -> Any:
        pre = getattr(self, "_optimizer_step_pre_hooks", None)
        if getattr(self, "_in_step", False) or pre is None:
            return step(self, *args, **kwargs)
        self._in_step = True
        try:
            for hook in list(pre.values()):
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(
                            f"optimizer step pre-hook {hook!r} must return None or a tuple of "
                            f"(new_args, new_kwargs), but got {result!r}"
                        )
                    args, kwargs = result
            out = step(self, *args, **kwargs)
            for hook in list(self._optimizer_step_post_hooks.values()):
                hook(self, args, kwargs)
            return out
        finally:
            self._in_step = False

    return hooked


def _param_names(owner: str, params: list[Any]) -> list[str] | None:
    """The names of (name, tensor) pairs, as model.named_parameters() gives; None when the
    list holds tensors. ValueError for a mix of both."""
    named = [isinstance(p, tuple) for p in params]
    if not any(named):
        return None
    if not all(named) or not all(len(p) == 2 for p in params):
        raise ValueError(
            f"{owner}: all optimizer params should be with/without names (pairs (name, tensor) "
            "as model.named_parameters() gives). Some param names are missing"
        )
    return [name for name, _ in params]


def _snapshot(value: Any) -> Any:
    if isinstance(value, list | tuple):  # LBFGS keeps lists of tensors
        return type(value)(_snapshot(v) for v in value)
    return Tensor._wrap(value.array.copy()) if isinstance(value, Tensor) else value


# Group keys PyTorch added later (its __setstate__ fills them in): a saved group may lack them.
_OPTIONAL_KEYS = frozenset(["capturable", "differentiable", "foreach", "fused"])

# Per-parameter state that is one number (ASGD's eta and mu, NAdam's mu_product): PyTorch
# saves a 0-d tensor, gradflow a float.
_SCALAR_STATE = frozenset(["eta", "mu", "mu_product"])


# The per-parameter state that the optimizers here keep as arrays shaped like the parameter.
_ARRAY_STATE = frozenset(
    ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "square_avg", "grad_avg", "momentum_buffer"]
    + ["acc_delta", "sum", "exp_inf", "ax"]
)


def _type_name(value: Any) -> str:
    """A value's type for an error message: module-qualified unless it is a builtin."""
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__name__
    return f"{cls.__module__.split('.')[0]}.{cls.__qualname__}"


def _restore(p: Tensor, index: Any, key: str, value: Any, name: str) -> Any:
    """A saved state value, made this optimizer's own: on p's device and dtype, contiguous.
    Errors name the parameter index and the key: TypeError for a value of the wrong kind,
    ValueError for a wrong shape or an invalid step count."""
    where = f"{name}: state '{key}' of parameter {index}"
    if key == "step":
        return _restore_step(value, where)
    if key in _SCALAR_STATE:
        return _restore_scalar(value, where)
    if value is None and key == "momentum_buffer":  # PyTorch's SGD saves None without momentum
        return None
    if isinstance(value, numbers.Number) and key not in _ARRAY_STATE:
        return value
    array = value.array if isinstance(value, Tensor) else value
    if not all(hasattr(array, a) for a in ("astype", "shape", "dtype")):
        raise TypeError(
            f"{where} is a {_type_name(value)}; expected a gradflow Tensor of the parameter's "
            f"shape {tuple(p.shape)}"
            + (" (convert a torch tensor with gradflow.tensor(t.numpy()))"
               if type(value).__module__.startswith("torch") else "")
        )  # fmt: skip
    if getattr(array.dtype, "kind", None) not in ("f", "i", "u"):
        raise TypeError(
            f"{where} has dtype {array.dtype}; expected a floating-point tensor (it is cast to "
            f"the parameter's dtype, {p.dtype})"
        )
    if tuple(array.shape) != tuple(p.shape):
        raise ValueError(
            f"{where} has shape {tuple(array.shape)} but the parameter has shape "
            f"{tuple(p.shape)}; the state dict belongs to another model"
        )
    array = move_array(array, p.device)
    return Tensor._wrap(array.astype(p.dtype, order="C", copy=True))


def _restore_step(value: Any, where: str) -> int:
    """A saved step count as an int >= 0: an int, an integral float, or a one-element tensor
    holding one (PyTorch saves the step as a float tensor)."""
    number = value.array if isinstance(value, Tensor) else value
    if hasattr(number, "shape") and hasattr(number, "item"):  # an array or a tensor
        if tuple(number.shape) not in ((), (1,)):
            raise ValueError(
                f"{where} has shape {tuple(number.shape)}; expected a single number, the count "
                "of steps taken"
            )
        number = number.item()
    if isinstance(number, bool) or not isinstance(number, numbers.Real):
        raise TypeError(
            f"{where} is {value!r} ({_type_name(value)}); expected a non-negative int, the "
            "count of steps taken"
        )
    if not (math.isfinite(number) and number >= 0 and number == int(number)):
        raise ValueError(
            f"{where} is {number!r}; expected a non-negative whole number, the count of steps taken"
        )
    return int(number)


def _restore_scalar(value: Any, where: str) -> float:
    """A saved one-number state (a float, or a one-element tensor) as a float."""
    number = value.array if isinstance(value, Tensor) else value
    if hasattr(number, "shape") and hasattr(number, "item"):
        if tuple(number.shape) not in ((), (1,)):
            raise ValueError(f"{where} has shape {tuple(number.shape)}; expected a single number")
        number = number.item()
    if isinstance(number, bool) or not isinstance(number, numbers.Real):
        raise TypeError(f"{where} is {value!r} ({_type_name(value)}); expected a number")
    return float(number)


def grad_shape_error(optimizer: Optimizer, p: Tensor, grad: Any) -> ValueError:
    """The error for a parameter whose .grad does not have its shape."""
    return ValueError(
        f"{type(optimizer).__name__}.step: a parameter of shape {tuple(p.shape)} has a grad of "
        f"shape {tuple(grad.shape)}; a gradient must have its parameter's shape"
    )


def defaults_from(arguments: dict[str, Any]) -> dict[str, Any]:
    """An optimizer's defaults from its constructor's ``locals()`` taken first thing: every
    argument but ``self`` and ``params`` (``__class__`` is there when the body calls super())."""
    return {k: v for k, v in arguments.items() if k not in ("self", "params", "__class__")}


# The on/off hyperparameters, which update functions take as bools (the rest as floats).
_FLAGS = frozenset(["maximize", "decoupled_weight_decay", "nesterov", "amsgrad", "centered"])


def hyperparameters(group: dict[str, Any], *keys: str) -> tuple[Any, ...]:
    """The values of ``keys`` in ``group`` as update functions take them: flags as bools,
    ``betas`` as two floats, the rest as floats."""
    values: list[Any] = []
    for key in keys:
        if key == "betas":
            values += (float(b) for b in group[key])
        else:
            values.append(bool(group[key]) if key in _FLAGS else float(group[key]))
    return tuple(values)


def state_array(state: dict[str, Any], key: str, a: Any) -> Any:
    """The array of state[key], created as zeros shaped like ``a`` on first use."""
    holder = state.get(key)
    if holder is None:
        holder = state[key] = Tensor._wrap(get_array_module(a).zeros(a.shape, dtype=a.dtype))
    return holder.array


def check_number(owner: str, name: str, value: Any, minimum: float, advice: str) -> None:
    """ValueError unless ``value`` is a real number >= ``minimum`` (NaN fails too)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= minimum:
        raise ValueError(f"{owner}: invalid {name}={value!r}; {advice}")


# The hyperparameters that must be numbers >= 0: (the name errors give them, advice).
_NONNEGATIVE = {
    "eps": ("epsilon eps", "it must be >= 0, e.g. eps=1e-8"),
    "momentum": ("momentum", "it must be >= 0 (0 turns momentum off)"),
    "weight_decay": ("weight_decay", "it must be >= 0 (0 turns it off)"),
    "dampening": ("dampening", "it must be >= 0 (default 0)"),
    "alpha": ("alpha", "it must be >= 0, e.g. alpha=0.99"),
    "rho": ("rho", "it must be in [0, 1], e.g. rho=0.9"),
    "lr_decay": ("lr_decay", "it must be >= 0 (0 turns it off)"),
    "initial_accumulator_value": ("initial_accumulator_value", "it must be >= 0 (default 0)"),
    "momentum_decay": ("momentum_decay", "it must be >= 0, e.g. momentum_decay=4e-3"),
}


def check_hyperparameters(owner: str, group: dict[str, Any], lr_example: str, *keys: str) -> None:
    """The checks the optimizers share, in this order: lr >= 0 (the advice shows
    ``lr=lr_example``), each of ``keys`` (``betas`` by check_betas, the others >= 0 as
    _NONNEGATIVE says), then check_flags."""
    check_number(
        owner, "learning rate lr", group["lr"], 0, f"it must be >= 0, e.g. lr={lr_example}"
    )
    for key in keys:
        if key == "betas":
            check_betas(owner, group["betas"])
        else:
            name, advice = _NONNEGATIVE[key]
            check_number(owner, name, group[key], 0, advice)
    check_flags(owner, group)


def check_flags(owner: str, group: dict[str, Any]) -> None:
    """PyTorch's implementation switches: foreach, fused and capturable are accepted and change
    nothing here (an update is already one pass per parameter, or one launch on cuda);
    differentiable=True (a step that autograd records) is refused."""
    if group.get("differentiable"):
        raise NotImplementedError(
            f"{owner}: differentiable=True is not supported: gradflow's optimizer steps update "
            "arrays in place and record no graph; pass differentiable=False, or write the "
            "update with tensor ops to differentiate through it"
        )


def check_betas(owner: str, betas: Any, example: str = "betas=(0.9, 0.999)") -> None:
    """ValueError unless betas is a pair of numbers in [0, 1)."""
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise ValueError(f"{owner}: betas must be a pair (beta1, beta2), e.g. {example}")
    for i, beta in enumerate(betas):
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 <= beta < 1:
            raise ValueError(
                f"{owner}: invalid beta parameter at index {i}: {beta!r}; each beta must be in "
                f"[0, 1), e.g. {example}"
            )


Optimizer.step = _with_step_hooks(Optimizer.step)  # type: ignore[method-assign]
