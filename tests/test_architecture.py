"""The shape ARCHITECTURE.md describes, read from the code's own imports (function-level ones included):
no import cycle, no import of another package's private module, and each stage's config.py a leaf.
The layers themselves are import-linter's contract (pyproject.toml), which `make test` runs."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "seekforge"


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[str]:
    """Every seekforge module ``path`` imports, at any depth of its code but for ``if TYPE_CHECKING:``
    blocks (which never run); ``from a import b`` counts as a.b where a.b is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("seekforge"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seekforge"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                yield sub if _exists(sub) else node.module


def _exists(module: str) -> bool:
    base = SRC.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _graph() -> dict[str, set[str]]:
    files = [p for p in PACKAGE.rglob("*.py") if "proto" not in p.parts]
    return {_module(p): {m for m in _imports(p) if m != _module(p) and _exists(m)} for p in files}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_there_is_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_module_imports_another_packages_private_module() -> None:
    reaching = sorted(
        f"{source} -> {target}"
        for source, targets in _graph().items()
        for target in targets
        if _package(target) != _package(source)
        and any(part.startswith("_") and not part.startswith("__") for part in target.split(".")[2:])
    )
    assert reaching == []


def test_each_config_module_is_a_leaf() -> None:
    """A stage's config modules import, as they load, only core and other configs: the recipe reads them all."""
    wrong = []
    for path in PACKAGE.glob("*/*config.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # what runs on import; a function may import its implementation when called
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            wrong += [
                f"{_module(path)} -> {name}"
                for name in names
                if name.startswith("seekforge") and not (name.startswith("seekforge.core") or name.endswith("config"))
            ]
    assert wrong == []


def test_configs_are_changed_through_validation() -> None:
    """``model_copy(update=...)`` skips validation: a changed config is made with ``model_validate``."""
    found = [str(p.relative_to(SRC)) for p in PACKAGE.rglob("*.py") if "model_copy(" in p.read_text(encoding="utf-8")]
    assert found == []


def test_the_cli_is_a_thin_shell() -> None:
    """One module per command group, none over 300 lines: the work is in the public functions it calls."""
    long = {p.name: n for p in (PACKAGE / "cli").glob("*.py") if (n := len(p.read_text().splitlines())) > 300}
    assert long == {}


def test_every_error_is_a_seekforge_error_and_the_builtin_it_resembles() -> None:
    """``except ValueError`` (or TimeoutError, PermissionError, ...) keeps working on seekforge's errors."""
    import builtins
    import importlib
    import importlib.util
    import pkgutil

    import seekforge
    from seekforge.core.errors import SeekforgeError

    flower = importlib.util.find_spec("flwr") is not None  # (the federated extra lives in its own environment)
    for info in pkgutil.walk_packages(seekforge.__path__, "seekforge."):
        if info.name.endswith(("_ddp", "__main__")) or "proto" in info.name:
            continue
        if not flower and info.name in ("seekforge.federate._apps", "seekforge.federate._deployed"):
            continue
        importlib.import_module(info.name)
    found, plain = [SeekforgeError], []
    while found:
        cls = found.pop()
        found.extend(cls.__subclasses__())
        builtin = [
            b for b in cls.__mro__ if b.__module__ == builtins.__name__ and b not in (Exception, BaseException, object)
        ]
        if cls is not SeekforgeError and not builtin:
            plain.append(f"{cls.__module__}.{cls.__name__}")
    assert plain == []
