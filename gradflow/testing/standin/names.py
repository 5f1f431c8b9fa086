"""Reads the public names of CuPy from its source, to keep the stand-in to CuPy's surface.

``cupy_14_2_names.json`` (beside this file) was written by::

    python -m gradflow.testing.standin.names /path/to/cupy/checkout v14.2.0

from a git checkout of https://github.com/cupy/cupy. For each module it lists the names bound
at the top level of its ``__init__.py`` (imports, functions, classes and assignments, in every
branch of an ``if``/``try``, private names left out), the subpackages an import from inside
the package binds as a side effect (``from cupy.lib._shape_base import ...`` makes
``cupy.lib``), and the names a module-level ``__getattr__`` answers (``cupy.random.Generator``,
``cupy.cuda.cublas``); for ``ndarray`` the methods and
properties of ``_ndarray_base`` and ``ndarray`` in ``cupy/_core/core.pyx`` and the public
attributes declared in ``core.pxd``; for ``random.Generator`` the public methods in
``cupy/random/_generator_api.pyx``. The stand-in
(gradflow/testing/standin) refuses any name outside these lists, as CuPy would.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

MODULES = {
    "cupy": "cupy/__init__.py",
    "cupy.linalg": "cupy/linalg/__init__.py",
    "cupy.random": "cupy/random/__init__.py",
    "cupy.cuda": "cupy/cuda/__init__.py",
    "cupyx": "cupyx/__init__.py",
    "cupyx.scipy.special": "cupyx/scipy/special/__init__.py",
}
_METHOD = re.compile(r"^    (?:cpdef|def)\s+(?:[\w\[\].]+\s+)*?(\w+)\s*\(", re.MULTILINE)
_PROPERTY = re.compile(r"^    property\s+(\w+)", re.MULTILINE)
NAMES_FILE = Path(__file__).with_name("cupy_14_2_names.json")


def top_level_names(source: str, package: str | None = None) -> list[str]:
    """Names bound at module level by ``source`` (all branches), private ones left out.

    With ``package`` (the dotted name whose ``__init__.py`` ``source`` is), a submodule that
    an import from inside the package loads counts too: Python binds it on its parent package
    (``from cupy.lib._shape_base import x`` in ``cupy/__init__.py`` makes ``cupy.lib``). The
    names a module-level ``__getattr__`` compares its argument with count as well."""
    names: set[str] = set()

    def submodule(module: str | None, level: int) -> None:
        if module is None or package is None:
            return
        if level == 1:
            names.add(module.split(".")[0])
        elif level == 0 and module.startswith(package + "."):
            names.add(module[len(package) + 1 :].split(".")[0])

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
                for alias in node.names:
                    submodule(alias.name, 0)
            elif isinstance(node, ast.ImportFrom):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
                submodule(node.module, node.level)
            elif isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
                names.update(_getattr_keys(node))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    names.update(t.id for t in ast.walk(target) if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(
                node.target, ast.Name
            ):
                names.add(node.target.id)
            elif isinstance(node, ast.If | ast.Try | ast.With):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
                visit(getattr(node, "finalbody", []))

    visit(ast.parse(source).body)
    return sorted(n for n in names if not n.startswith("_") and n != "annotations")


def _getattr_keys(function: ast.FunctionDef) -> set[str]:
    """The string constants a module ``__getattr__(key)`` compares ``key`` with (``==``,
    ``in``): the names it answers."""
    if not function.args.args:
        return set()
    key = function.args.args[0].arg
    found: set[str] = set()
    for node in ast.walk(function):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        if not any(isinstance(o, ast.Name) and o.id == key for o in operands):
            continue
        for operand in operands:
            for constant in ast.walk(operand):
                if isinstance(constant, ast.Constant) and isinstance(constant.value, str):
                    found.add(constant.value)
    return found


def class_members(source: str, *classes: str) -> list[str]:
    """Public ``def``/``cpdef``/``property`` names inside the named (Cython) classes."""
    members: set[str] = set()
    for cls in classes:
        start = re.search(rf"^(?:cdef )?class {cls}\b.*:$", source, re.MULTILINE)
        if start is None:
            raise ValueError(f"class {cls} not found")
        following = re.compile(r"^\S", re.MULTILINE).search(source, start.end() + 1)
        body = source[start.end() : following.start() if following else len(source)]
        members.update(_METHOD.findall(body))
        members.update(_PROPERTY.findall(body))
    dunder = {m for m in members if m.startswith("__")}
    return sorted(m for m in members if not m.startswith("_") or m in dunder)


def readonly_attributes(pxd: str) -> list[str]:
    """Public ``readonly``/``public`` attributes declared in a .pxd (``size``, ``dtype``, ...)."""
    found = re.findall(r"^\s+(?:readonly|public)\s+[\w.]+\s+(\w+)\s*$", pxd, re.MULTILINE)
    return [name for name in found if not name.startswith("_")]


def read_names(checkout: Path, tag: str) -> dict:
    def show(path: str) -> str:
        return subprocess.run(
            ["git", "-C", str(checkout), "show", f"{tag}:{path}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    commit = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", f"{tag}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    names = {module: top_level_names(show(path), module) for module, path in MODULES.items()}
    names["cupy.ndarray"] = sorted(
        {
            *class_members(show("cupy/_core/core.pyx"), "ndarray", "_ndarray_base"),
            *readonly_attributes(show("cupy/_core/core.pxd")),
        }
    )
    names["cupy.random.Generator"] = class_members(
        show("cupy/random/_generator_api.pyx"), "Generator"
    )
    return {
        "source": "https://github.com/cupy/cupy",
        "tag": tag,
        "commit": commit,
        "written_by": "python -m gradflow.testing.standin.names CHECKOUT TAG",
        "names": names,
    }


def load() -> dict[str, frozenset[str]]:
    """The stored name lists, module -> names."""
    data = json.loads(NAMES_FILE.read_text())
    return {module: frozenset(names) for module, names in data["names"].items()}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m gradflow.testing.standin.names CUPY_CHECKOUT TAG", file=sys.stderr)
        return 2
    data = read_names(Path(argv[0]), argv[1])
    NAMES_FILE.write_text(json.dumps(data, indent=1) + "\n")
    counts = ", ".join(f"{m}: {len(n)}" for m, n in data["names"].items())
    print(f"wrote {NAMES_FILE} ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
