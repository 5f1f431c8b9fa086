"""Containers that hold submodules or parameters: Sequential, ModuleList, ModuleDict,
ParameterList, ParameterDict (PyTorch's, with its key names, methods and errors)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from typing import Any

from gradflow.nn import fusion
from gradflow.nn.module import Module
from gradflow.nn.parameter import Parameter
from gradflow.tensor import Tensor


def _check_index(index: int, length: int, kind: str) -> int:
    """A list index (negative counts from the end) as a non-negative int, else IndexError."""
    if not isinstance(index, int):
        raise TypeError(f"{kind} indices must be integers or slices, got {type(index).__name__}")
    if not -length <= index < length:
        raise IndexError(f"{kind} index {index} is out of range for length {length}")
    return index % length


def _backward_hooked(*modules: Module) -> bool:
    """Whether a module has full backward hooks: fusing it would skip them (fusion.py only
    looks at forward hooks)."""
    return any(m.__dict__.get("_backward_hooks") or m.__dict__.get("_backward_pre_hooks")
               for m in modules)  # fmt: skip


def _renumber(module: Module) -> None:
    """Keys "0", "1", ... again after a deletion (PyTorch keeps the numbering dense)."""
    values = list(module._modules.values())
    module._modules.clear()
    for i, value in enumerate(values):
        module._modules[str(i)] = value


def _delete(module: Module, index: int | slice, container: str) -> None:
    """del module[index] for Sequential and ModuleList: the entries go, the keys renumber."""
    keys = list(module._modules)
    if isinstance(index, slice):
        for key in keys[index]:
            del module._modules[key]
    else:
        del module._modules[keys[_check_index(index, len(keys), container)]]
    _renumber(module)


class Sequential(Module):
    """Modules called in order, each on the previous one's output.

    A Linear followed by ReLU, Sigmoid, Tanh, GELU or SiLU runs as one fused node, with the
    same result (gradflow.nn.fusion says when, and how to turn it off).

    ``Sequential(a, b)`` names them "0", "1"; ``Sequential(OrderedDict(fc=..., act=...))`` uses
    the given names (state_dict keys follow: "0.weight" or "fc.weight").
    """

    def __init__(self, *modules: Module | Mapping[str, Module]):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(modules):
                self.add_module(str(i), module)

    def forward(self, x: Any) -> Any:
        modules = tuple(self._modules.values())
        i, n = 0, len(modules)
        while i < n:
            module = modules[i]
            act = None
            if i + 1 < n and not _backward_hooked(module, modules[i + 1]):
                act = fusion.fused_activation(module, modules[i + 1])
            if act is None:
                x = module(x)
                i += 1
            else:  # Linear + activation as one node (gradflow.nn.fusion)
                x = fusion.run_fused(module, act, x)
                i += 2
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Any:
        items = list(self._modules.items())
        if isinstance(index, slice):
            return type(self)(OrderedDict(items[index]))
        return items[_check_index(index, len(items), "Sequential")][1]

    def __setitem__(self, index: int, module: Module) -> None:
        keys = list(self._modules)
        setattr(self, keys[_check_index(index, len(keys), "Sequential")], module)

    def __delitem__(self, index: int | slice) -> None:
        _delete(self, index, "Sequential")

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self._modules)), module)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        """Put `module` before position `index` (-len <= index <= len), renumbering."""
        if not isinstance(module, Module):
            raise AssertionError(f"module should be of type: {Module}")
        n = len(self._modules)
        if not -n <= index <= n:
            raise IndexError(f"Index out of range: {index}")
        values = list(self._modules.values())
        values.insert(index, module)
        self._modules.clear()
        for i, value in enumerate(values):
            self.add_module(str(i), value)
        return self

    def extend(self, sequential: Iterable[Module]) -> Sequential:
        for module in sequential:
            self.append(module)
        return self

    def pop(self, key: int | slice) -> Module:
        value = self[key]
        del self[key]
        return value

    def __add__(self, other: Sequential) -> Sequential:
        if not isinstance(other, Sequential):
            raise ValueError(
                "add operator supports only objects of Sequential class, but "
                f"{type(other).__name__} is given."
            )
        return Sequential(*self, *other)

    def __iadd__(self, other: Sequential) -> Sequential:
        if not isinstance(other, Sequential):
            raise ValueError(
                "add operator supports only objects of Sequential class, but "
                f"{type(other).__name__} is given."
            )
        return self.extend(list(other))

    def __mul__(self, other: int) -> Sequential:
        if isinstance(other, bool) or not isinstance(other, int):
            raise TypeError(
                f"unsupported operand type(s) for *: 'Sequential' and '{type(other).__name__}'"
            )
        if other <= 0:
            raise ValueError(f"Non-positive multiplication factor {other} for Sequential")
        # The same module objects repeated, as PyTorch does (their parameters are shared).
        return Sequential(*(list(self) * other))

    __rmul__ = __mul__

    def __imul__(self, other: int) -> Sequential:
        repeated = self * other
        self._modules.clear()
        return self.extend(list(repeated))


class ModuleList(Module):
    """A list of modules whose parameters the parent registers (keys "0.weight", ...)."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __repr__(self) -> str:
        """PyTorch's: runs of equal entries in one line, ``(0-5): 6 x TransformerEncoderLayer(``."""
        runs: list[list] = []  # [first index, last index, repr]
        for i, module in enumerate(self):
            text = repr(module)
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        if not runs:
            return type(self).__name__ + "()"
        lines = []
        for first, last, text in runs:
            text = text.replace("\n", "\n  ")
            label = f"({first})" if first == last else f"({first}-{last}): {last - first + 1} x"
            lines.append(f"{label}: {text}" if first == last else f"{label} {text}")
        return type(self).__name__ + "(\n  " + "\n  ".join(lines) + "\n)"

    def __getitem__(self, index: int | slice) -> Any:
        values = list(self._modules.values())
        if isinstance(index, slice):
            return type(self)(values[index])
        return values[_check_index(index, len(values), "ModuleList")]

    def __setitem__(self, index: int, module: Module) -> None:
        index = _check_index(index, len(self), "ModuleList")
        setattr(self, str(index), module)

    def __delitem__(self, index: int | slice) -> None:
        _delete(self, index, "ModuleList")

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList(chain(self, other))

    def __iadd__(self, other: Iterable[Module]) -> ModuleList:
        return self.extend(other)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        if not isinstance(modules, Iterable):
            raise TypeError(
                "ModuleList.extend should be called with an iterable, but got "
                + type(modules).__name__
            )
        for module in list(modules):  # list(): extending a list with itself ends
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Put `module` before position `index` (Python's list.insert), renumbering."""
        values = list(self._modules.values())
        values.insert(index, module)
        self._modules.clear()
        for i, value in enumerate(values):
            self.add_module(str(i), value)

    def pop(self, key: int | slice) -> Module:
        value = self[key]
        del self[key]
        return value

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError("ModuleList has no forward(); iterate over it in yours")


def _pairs(kind: str, items: Any) -> Iterable[tuple[Any, Any]]:
    """Key/value pairs of a mapping or of an iterable of pairs (ModuleDict.update's rules)."""
    if not isinstance(items, Iterable):
        raise TypeError(
            f"{kind}.update should be called with an iterable of key/value pairs, but got "
            + type(items).__name__
        )
    if isinstance(items, Mapping | ModuleDict | ParameterDict):
        return list(items.items())
    pairs = []
    for j, pair in enumerate(items):
        if not isinstance(pair, Iterable):
            raise TypeError(
                f"{kind} update sequence element #{j} should be Iterable; is " + type(pair).__name__
            )
        pair = tuple(pair)
        if len(pair) != 2:
            raise ValueError(
                f"{kind} update sequence element #{j} has length {len(pair)}; 2 is required"
            )
        pairs.append(pair)
    return pairs


class ModuleDict(Module):
    """A dict of modules by name, registered as submodules (keys "name.weight", ...)."""

    def __init__(self, modules: Mapping[str, Module] | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def keys(self) -> Iterable[str]:
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        return self._modules.values()

    def items(self) -> Iterable[tuple[str, Module]]:
        return self._modules.items()

    def clear(self) -> None:
        self._modules.clear()

    def pop(self, key: str) -> Module:
        value = self[key]
        del self[key]
        return value

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add or replace entries from a mapping or from (name, module) pairs, in order."""
        for key, module in _pairs("ModuleDict", modules):
            self[key] = module

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError("ModuleDict has no forward(); index it in yours")


def _as_parameter(value: Any) -> Any:
    """A Tensor becomes a Parameter sharing its array (PyTorch wraps plain tensors too)."""
    if isinstance(value, Tensor) and not isinstance(value, Parameter):
        return Parameter(value)
    return value


def _describe(value: Any) -> str:
    """One repr line of ParameterList/ParameterDict: kind, dtype, size and a cuda device."""
    if not isinstance(value, Tensor):
        return f"Object of type: {type(value).__name__}"
    kind = "Parameter" if isinstance(value, Parameter) else "Tensor"
    size = "x".join(str(s) for s in value.shape)
    device = f" ({value.device})" if value.device.type == "cuda" else ""
    return f"{kind} containing: [gradflow.{value.dtype} of size {size}{device}]"


class ParameterList(Module):
    """A list of Parameters registered under "0", "1", ... (their state_dict keys); a plain
    Tensor given to it becomes a Parameter sharing its array, as in PyTorch."""

    def __init__(self, values: Iterable[Any] | None = None):
        super().__init__()
        object.__setattr__(self, "_size", 0)
        if values is not None:
            self += values

    def _store(self, key: str, value: Any) -> None:
        value = _as_parameter(value)
        if isinstance(value, Parameter) or value is None:
            self.register_parameter(key, value)
        else:  # PyTorch keeps other objects as plain attributes
            object.__setattr__(self, key, value)

    def _get(self, index: int) -> Any:
        key = str(index)
        return self._parameters[key] if key in self._parameters else self.__dict__[key]

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return type(self)([self._get(i) for i in range(self._size)[index]])
        return self._get(_check_index(index, self._size, "ParameterList"))

    def __setitem__(self, index: int, value: Any) -> None:
        self._store(str(_check_index(index, self._size, "ParameterList")), value)

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[Any]:
        return (self._get(i) for i in range(self._size))

    def __iadd__(self, values: Iterable[Any]) -> ParameterList:
        return self.extend(values)

    def __dir__(self) -> list[str]:
        return [k for k in super().__dir__() if not k.isdigit()]

    def append(self, value: Any) -> ParameterList:
        index = self._size
        object.__setattr__(self, "_size", index + 1)
        self._store(str(index), value)
        return self

    def extend(self, values: Iterable[Any]) -> ParameterList:
        if not isinstance(values, Iterable) or isinstance(values, Tensor):
            raise TypeError(
                "ParameterList.extend should be called with an iterable, but got "
                + type(values).__name__
            )
        for value in list(values):
            self.append(value)
        return self

    def extra_repr(self) -> str:
        return "\n".join(f"  ({i}): {_describe(v)}" for i, v in enumerate(self))

    def __repr__(self) -> str:
        # PyTorch indents these lines by four spaces in all: two from the list, two here.
        lines = self.extra_repr()
        return f"{type(self).__name__}(\n  {lines.replace(chr(10), chr(10) + '  ')}\n)" if lines \
            else f"{type(self).__name__}()"  # fmt: skip

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("ParameterList should not be called.")


class ParameterDict(Module):
    """A dict of Parameters by name, each registered under its key (its state_dict key); a
    plain Tensor becomes a Parameter sharing its array. A plain dict's items are added in
    sorted key order, an OrderedDict's or a list of pairs' in their own (PyTorch's rule)."""

    def __init__(self, parameters: Any = None):
        super().__init__()
        object.__setattr__(self, "_keys", {})
        if parameters is not None:
            self.update(parameters)

    def _store(self, key: str, value: Any) -> None:
        value = _as_parameter(value)
        if isinstance(value, Parameter) or value is None:
            self.register_parameter(key, value)
        else:
            self._check_name("attribute", key)
            object.__setattr__(self, key, value)

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        return self._parameters[key] if key in self._parameters else self.__dict__[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._store(key, value)
        self._keys[key] = None

    def __delitem__(self, key: str) -> None:
        del self._keys[key]
        if key in self._parameters:
            del self._parameters[key]
        else:
            del self.__dict__[key]

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __reversed__(self) -> Iterator[str]:
        return reversed(list(self._keys))

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __or__(self, other: ParameterDict) -> ParameterDict:
        copy = self.copy()
        copy.update(other)
        return copy

    def __ior__(self, other: ParameterDict) -> ParameterDict:
        self.update(other)
        return self

    def keys(self) -> Iterable[str]:
        return self._keys.keys()

    def values(self) -> Iterator[Any]:
        return (self[k] for k in self._keys)

    def items(self) -> Iterator[tuple[str, Any]]:
        return ((k, self[k]) for k in self._keys)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self._keys else default

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key: str) -> Any:
        value = self[key]
        del self[key]
        return value

    def popitem(self) -> tuple[str, Any]:
        if not self._keys:
            raise KeyError("popitem(): dictionary is empty")
        key = list(self._keys)[-1]
        return key, self.pop(key)

    def clear(self) -> None:
        for key in list(self._keys):
            del self[key]

    def copy(self) -> ParameterDict:
        """A new ParameterDict holding the same Parameter objects."""
        return ParameterDict(OrderedDict(self.items()))

    def fromkeys(self, keys: Iterable[str], default: Any = None) -> ParameterDict:
        return ParameterDict((k, default) for k in keys)

    def update(self, parameters: Any) -> None:
        """Add or replace entries: from a ParameterDict or OrderedDict in order, from a plain
        mapping in sorted key order, or from (key, value) pairs in order."""
        if isinstance(parameters, Mapping) and not isinstance(parameters, OrderedDict):
            pairs = sorted(parameters.items())
        else:
            pairs = _pairs("ParameterDict", parameters)
        for key, value in pairs:
            self[key] = value

    def extra_repr(self) -> str:
        return "\n".join(f"  ({k}): {_describe(v)}" for k, v in self.items())

    __repr__ = ParameterList.__repr__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("ParameterDict should not be called.")
