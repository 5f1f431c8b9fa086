"""Containers that hold submodules: Sequential, ModuleList, ModuleDict (PyTorch's)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from gradflow.nn import fusion
from gradflow.nn.module import Module


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
            act = fusion.fused_activation(module, modules[i + 1]) if i + 1 < n else None
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
            return Sequential(OrderedDict(items[index]))
        return items[_check_index(index, len(items), "Sequential")][1]

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self._modules)), module)
        return self


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

    def __getitem__(self, index: int | slice) -> Any:
        values = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(values[index])
        return values[_check_index(index, len(values), "ModuleList")]

    def __setitem__(self, index: int, module: Module) -> None:
        index = _check_index(index, len(self), "ModuleList")
        self.add_module(str(index), module)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        values = list(self._modules.values())
        values.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(values):
            self.add_module(str(i), m)

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError("ModuleList has no forward(); iterate over it in yours")


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

    def update(self, modules: Mapping[str, Module]) -> None:
        for key, module in modules.items():
            self.add_module(key, module)

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError("ModuleDict has no forward(); index it in yours")


def _check_index(index: int, length: int, kind: str) -> int:
    if not -length <= index < length:
        raise IndexError(f"{kind} index {index} is out of range for length {length}")
    return index % length
