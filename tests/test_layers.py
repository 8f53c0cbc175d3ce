"""The shape of ``netboot/``: no import circles, arrows pointing down, no module over 500 lines.

Read from the source with :mod:`ast` (nothing is imported, so a module that fails to import still gets its
rules checked, and the test needs no third-party tool). What counts as an import:

* every ``import`` and ``from ... import`` statement that runs, at module level or inside a function: a
  function-level import is a dependency that is only hidden, and hiding a circle that way still leaves two
  modules that cannot be understood apart;
* ``from pkg import name`` is an import of the module ``pkg.name`` when that module exists, else of ``pkg``;
  relative imports are resolved against the importing module;
* importing ``a.b.c`` does not count as importing the packages ``a`` and ``a.b`` (Python runs their
  ``__init__`` first, but a package importing its own submodules is how a package is built, not a circle).

Imports under ``if TYPE_CHECKING:`` never run. They may close a circle (an annotation naming a class of the
module that calls this one is allowed), but they still count for the layer rule: a type from above is a
dependency on above.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "netboot"
MAX_LINES = 500
#: modules allowed past MAX_LINES, each with the most lines it may have and why; it may not grow
OVER_MAX_LINES: dict[str, tuple[int, str]] = {}

#: the bottom layers, and what they must not import (the transports, the web app, the CLI, the composition
#: and the database): they are decided and encoded without sockets or state
LOWER = ("netboot.protocol", "netboot.boot")
UPPER = ("netboot.servers", "netboot.webapp", "netboot.cli", "netboot.daemon", "netboot.runtime",
         "netboot.store")


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``line``; ``typing_only`` when under ``if TYPE_CHECKING:``."""

    source: str
    target: str
    line: int
    typing_only: bool


def module_files(root: Path = PACKAGE) -> dict[str, Path]:
    """Every module under ``root`` by dotted name (``netboot.cli`` for ``netboot/cli/__init__.py``)."""
    out = {}
    for file in sorted(root.rglob("*.py")):
        parts = file.relative_to(root.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return out


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """ids of every node inside the body of an ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", "")
            if name == "TYPE_CHECKING":
                inside.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return inside


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom,
             modules: set[str]) -> list[str]:
    """The in-package modules one import statement names."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = module.split(".") if is_package else module.split(".")[:-1]
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join([*parts, base] if base else parts)
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    out = []
    for name in names:
        while name and name not in modules:  # `import netboot.x.y` of a name inside a module: that module
            name = name.rpartition(".")[0]
        if name:
            out.append(name)
    return out


def import_edges(root: Path = PACKAGE) -> list[Edge]:
    """Every import of one module of ``root``'s package by another, once per statement."""
    files = module_files(root)
    modules = set(files)
    edges: set[Edge] = set()
    for module, file in files.items():
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        typing_only = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(module, file.name == "__init__.py", node, modules):
                    if target != module:
                        edges.add(Edge(module, target, node.lineno, id(node) in typing_only))
    return sorted(edges, key=lambda e: (e.source, e.line, e.target))


def circles(edges: list[Edge]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative), sorted."""
    graph: dict[str, list[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, []).append(edge.target)
        graph.setdefault(edge.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def _in(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _where(edge: Edge) -> str:
    path = module_files()[edge.source].relative_to(PACKAGE.parent)
    return f"{path}:{edge.line}: {edge.source} -> {edge.target}"


# ---------------------------------------------------------------------------------------------- the rules


def test_no_import_circles() -> None:
    """Circles through imports that run are refused; each is listed with the imports that close it."""
    edges = [e for e in import_edges() if not e.typing_only]
    problems = []
    for component in circles(edges):
        members = set(component)
        inner = [_where(e) for e in edges if e.source in members and e.target in members]
        problems.append("circle: " + " <-> ".join(component) + "\n    " + "\n    ".join(sorted(inner)))
    assert not problems, "\n".join(problems)


def test_protocol_and_boot_import_nothing_above_them() -> None:
    """netboot.protocol and netboot.boot decide and encode; sockets, the web app, the CLI, the composition
    and the database are above them (type-only imports count too)."""
    wrong = [_where(e) for e in import_edges() if _in(e.source, LOWER) and _in(e.target, UPPER)]
    assert not wrong, "imports pointing up:\n  " + "\n  ".join(wrong)


def test_no_module_is_over_500_lines() -> None:
    """A module over 500 lines holds more than one job: split it along them (see OVER_MAX_LINES)."""
    over = []
    for path in module_files().values():
        name = path.relative_to(PACKAGE.parent).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        limit = OVER_MAX_LINES.get(name, (MAX_LINES, ""))[0]
        if lines > limit:
            over.append(f"{name}: {lines} lines (at most {limit})")
    assert not over, f"modules over {MAX_LINES} lines:\n  " + "\n  ".join(sorted(over))


# ------------------------------------------------------------------------------- the checker checks itself


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small package ``pkg`` with a circle (a <-> b, one import inside a function), a circle closed only
    by a TYPE_CHECKING import (c <-> d), a relative import and a package importing its submodule."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from pkg import b\n",
        "b.py": "def f():\n    import pkg.a\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.d import D\n",
        "d.py": "from pkg import c\nclass D: ...\n",
        "sub/__init__.py": "from pkg.sub import leaf\n",
        "sub/leaf.py": "from .. import a\nfrom . import other\n",
        "sub/other.py": "import os\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text, encoding="utf-8")
    return pkg


def test_checker_reads_every_kind_of_import(tree: Path) -> None:
    edges = {(e.source, e.target, e.typing_only) for e in import_edges(tree)}
    assert edges == {
        ("pkg.a", "pkg.b", False),
        ("pkg.b", "pkg.a", False),
        ("pkg.c", "pkg.d", True),
        ("pkg.d", "pkg.c", False),
        ("pkg.sub", "pkg.sub.leaf", False),
        ("pkg.sub.leaf", "pkg.a", False),
        ("pkg.sub.leaf", "pkg.sub.other", False),
    }


def test_checker_finds_circles_that_run_and_ignores_typing_only_ones(tree: Path) -> None:
    edges = import_edges(tree)
    assert circles([e for e in edges if not e.typing_only]) == [["pkg.a", "pkg.b"]]
    assert circles(edges) == [["pkg.a", "pkg.b"], ["pkg.c", "pkg.d"]]
