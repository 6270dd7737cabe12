"""kdutils' modules import one another in one direction only: no cycles, counting imports inside functions."""

import ast
import importlib
from pathlib import Path

import kdutils

PACKAGE = Path(kdutils.__file__).parent


def kdutils_imports(path: Path) -> set[str]:
    """The kdutils modules that ``path`` imports anywhere in its code (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:  # from .data import ...
                found.add(node.module.split(".")[0])
            elif node.level == 1:  # from . import losses
                found.update(alias.name for alias in node.names if (PACKAGE / f"{alias.name}.py").is_file())
            elif node.module and node.module.startswith("kdutils."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("kdutils."))
    return found - {path.stem}


def import_graph() -> dict[str, set[str]]:
    return {path.stem: kdutils_imports(path) for path in PACKAGE.glob("*.py") if path.stem != "__init__"}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return trail + [node, nxt]
            if nxt not in state and (cycle := visit(nxt, trail + [node])):
                return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node, [])):
            return cycle
    return None


def test_no_import_cycle_among_kdutils_modules():
    graph = import_graph()
    assert {"data", "training", "checkpoints", "losses"} <= set(graph)
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function(tmp_path, monkeypatch):
    # The check above must be able to fail: two modules that import each other, one inside a function.
    (tmp_path / "a.py").write_text("from .b import thing\n", encoding="utf-8")
    (tmp_path / "b.py").write_text("def f():\n    from .a import thing\n    return thing\n", encoding="utf-8")
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path)
    assert find_cycle(import_graph()) in (["a", "b", "a"], ["b", "a", "b"])


def test_every_module_imports_on_its_own():
    for name in import_graph():
        importlib.import_module(f"kdutils.{name}")
