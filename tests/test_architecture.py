"""The package's shape, read from its source with ast: stages without cycles, a library
that never reaches the CLI, modules and functions that fit in a reader's head."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "bnb_provision"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# scripts that run inside target interpreters, not part of the import graph
_RUN_ELSEWHERE = {"bnb_provision.detect._probe_script", "bnb_provision.env._verify_script"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every package module ``path`` imports, at any depth (lazy imports count)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for dotted in targets:
            # `from bnb_provision.x import y` names a module only if y is one
            module = dotted
            while module and module not in known:
                module = module.rpartition(".")[0]
            if module and module != name:
                found.add(module)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {n: _imports(p, n, known) - {"bnb_provision"} for n, p in mods.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith(f"{node}."):  # a package importing its own submodule
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    graph = {n: {d for d in deps if d not in _RUN_ELSEWHERE} for n, deps in graph.items()}
    # a package __init__ re-exporting its own modules is not a cycle through them
    for name in graph:
        graph[name] = {d for d in graph[name] if not name.startswith(f"{d}.")}
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_library_never_imports_the_cli() -> None:
    offenders = {
        name: sorted(
            d for d in deps if d == "bnb_provision.cli" or d.startswith("bnb_provision.cli.")
        )
        for name, deps in import_graph().items()
        if not (name == "bnb_provision.cli" or name.startswith("bnb_provision.cli."))
        and name != "bnb_provision.__main__"
    }
    assert {n: d for n, d in offenders.items() if d} == {}


def test_the_library_never_imports_click() -> None:
    users = sorted(
        name
        for name, path in _modules().items()
        if not name.startswith("bnb_provision.cli")
        and any(
            (isinstance(n, ast.Import) and any(a.name == "click" for a in n.names))
            or (isinstance(n, ast.ImportFrom) and n.module == "click")
            for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    )
    assert users == []


def module_sizes() -> list[tuple[int, str]]:
    return sorted(
        ((len(p.read_text(encoding="utf-8").splitlines()), n) for n, p in _modules().items()),
        reverse=True,
    )


def function_sizes() -> list[tuple[int, str]]:
    sizes = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno is not None
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                sizes.append((node.end_lineno - start + 1, f"{name}.{node.name}"))
    return sorted(sizes, reverse=True)


def test_no_module_is_over_400_lines() -> None:
    assert [(n, m) for n, m in module_sizes() if n > MAX_MODULE_LINES] == []


def test_no_function_is_over_60_lines() -> None:
    assert [(n, f) for n, f in function_sizes() if n > MAX_FUNCTION_LINES] == []


def test_the_graph_reader_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "bnb_provision"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text("def f():\n    from . import y\n")
    (pkg / "a" / "y.py").write_text("from bnb_provision.a.x import f\n")
    known = {"bnb_provision", "bnb_provision.a", "bnb_provision.a.x", "bnb_provision.a.y"}
    assert _imports(pkg / "a" / "x.py", "bnb_provision.a.x", known) == {
        "bnb_provision.a",
        "bnb_provision.a.y",
    }
    graph = {
        "bnb_provision.a.x": {"bnb_provision.a.y"},
        "bnb_provision.a.y": {"bnb_provision.a.x"},
    }
    assert _cycle(graph) == ["bnb_provision.a.x", "bnb_provision.a.y", "bnb_provision.a.x"]


if __name__ == "__main__":  # pragma: no cover - a report for the closing note
    for title, rows in (("modules", module_sizes()), ("functions", function_sizes())):
        print(f"largest {title}:")  # noqa: T201
        for n, what in rows[:8]:
            print(f"  {n:5d}  {what}")  # noqa: T201
