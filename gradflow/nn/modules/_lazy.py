"""The lookup every gradflow.nn.modules.<name> module shares: its names are gradflow.nn's."""

from __future__ import annotations

from typing import Any


def forward_to_nn(module_name: str, names: tuple[str, ...] = ()) -> tuple[Any, Any]:
    """(__getattr__, __dir__) for a module that re-exports gradflow.nn's classes lazily, so
    classes added to gradflow.nn later appear too; `names` are the ones ``dir()`` lists."""

    def __getattr__(name: str) -> Any:
        import gradflow.nn as nn

        if name.startswith("__") or not hasattr(nn, name):
            raise AttributeError(
                f"module {module_name!r} has no attribute {name!r}"
                + ("" if name.startswith("__") else "; gradflow.nn does not provide it")
            )
        return getattr(nn, name)

    def __dir__() -> list[str]:
        import gradflow.nn as nn

        return sorted(n for n in names if hasattr(nn, n))

    return __getattr__, __dir__
