"""The two rooms of kdutils and the direction of their imports.

- modules import one another in one direction only: no cycles, counting imports inside functions;
- no lesson module (``kdutils/*.py``) imports the course tooling (``kdutils.course``), except
  ``kdutils.exercises``, the students' one door to the checks;
- the lesson modules import only the modules listed before them in the package's own map (its docstring);
- no module reads files under ``tests/``; none is over 450 lines.
"""

import ast
import importlib
import re
from pathlib import Path

import pytest

import kdutils

PACKAGE = Path(kdutils.__file__).parent
#: The one lesson module that may import kdutils.course: the students' import of their checks.
FACE = "exercises"


def module_name(path: Path, package: Path) -> str:
    """``course.checks.harness`` for ``kdutils/course/checks/harness.py``; ``course`` for its ``__init__``."""
    parts = list(path.relative_to(package).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(node: ast.ImportFrom, name: str, package: Path) -> str:
    """The kdutils module (dotted, without ``kdutils.``) that ``from <node.module> import ...`` names."""
    if node.level == 0:
        return node.module.removeprefix("kdutils").removeprefix(".")
    here = name.split(".") if name else []
    is_package = (package / Path(*here) / "__init__.py").is_file() if here else True
    base = here if is_package else here[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join(base + ([node.module] if node.module else []))


def kdutils_imports(path: Path, package: Path = None) -> set[str]:
    """The kdutils modules ``path`` imports anywhere in its code (top level or inside functions)."""
    package = package or PACKAGE
    name = module_name(path, package)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("kdutils")):
            target = resolve(node, name, package)
            for alias in node.names:  # from . import losses: the module itself
                sub = f"{target}.{alias.name}" if target else alias.name
                target_path = package / Path(*sub.split("."))
                found.add(sub if target_path.with_suffix(".py").is_file() or target_path.is_dir() else target)
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("kdutils.") for a in node.names if a.name.startswith("kdutils."))
    return found - {name, ""}


def import_graph(package: Path = None) -> dict[str, set[str]]:
    package = package or PACKAGE
    return {module_name(path, package): kdutils_imports(path, package) for path in package.rglob("*.py")
            if module_name(path, package)}


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


def lesson_modules() -> list[str]:
    """The lesson's modules and packages: every top-level module and subpackage of kdutils but ``course``."""
    modules = {path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py") if path.parent.name != "course"}
    return sorted(modules | packages)


def lesson_package_imports(graph: dict[str, set[str]], name: str) -> set[str]:
    """What the lesson module ``name`` imports, or a lesson package with all its modules, outside itself."""
    inside = {key for key in graph if key == name or key.startswith(f"{name}.")}
    return {target for key in inside for target in graph[key]} - inside


def test_no_import_cycle_among_kdutils_modules():
    graph = import_graph()
    assert {"data", "training", "checkpoints", "losses", "course.cli", "course.checks.harness"} <= set(graph)
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function(tmp_path):
    # The check above must be able to fail: two modules that import each other, one inside a function.
    (tmp_path / "a.py").write_text("from .b import thing\n", encoding="utf-8")
    (tmp_path / "b.py").write_text("def f():\n    from .a import thing\n    return thing\n", encoding="utf-8")
    assert find_cycle(import_graph(tmp_path)) in (["a", "b", "a"], ["b", "a", "b"])


def test_relative_imports_are_resolved_across_the_subpackages(tmp_path):
    (tmp_path / "course" / "checks").mkdir(parents=True)
    for init in ("course", "course/checks"):
        (tmp_path / init / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "losses.py").write_text("", encoding="utf-8")
    (tmp_path / "course" / "claims.py").write_text("", encoding="utf-8")
    (tmp_path / "course" / "checks" / "harness.py").write_text(
        "from ...losses import x\nfrom ..claims import y\nfrom . import hints\nfrom kdutils.course import claims\n",
        encoding="utf-8")
    (tmp_path / "course" / "checks" / "hints.py").write_text("", encoding="utf-8")
    assert import_graph(tmp_path)["course.checks.harness"] == {"losses", "course.claims", "course.checks.hints"}


def test_no_lesson_module_imports_the_course_tooling():
    graph = import_graph()
    leaks = {name: sorted(t for t in lesson_package_imports(graph, name) if t == "course" or t.startswith("course."))
             for name in lesson_modules() if name != FACE}
    assert not {name: targets for name, targets in leaks.items() if targets}, leaks
    assert any(t.startswith("course.checks") for t in graph[FACE])  # the face is the one door


def test_the_rule_above_would_catch_a_lesson_module_importing_the_course(tmp_path):
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "course" / "claims.py").write_text("", encoding="utf-8")
    (tmp_path / "plots.py").write_text("def f():\n    from .course.claims import claim\n", encoding="utf-8")
    assert import_graph(tmp_path)["plots"] == {"course.claims"}


def test_lesson_modules_import_only_those_listed_before_them_in_the_packages_map():
    listed = re.findall(r"``(\w+)``", kdutils.__doc__)
    order = [name for name in dict.fromkeys(listed) if name in lesson_modules()]
    assert sorted(set(order) | {FACE}) == lesson_modules(), "the map in kdutils/__init__.py misses a module"
    graph = import_graph()
    for position, name in enumerate(order):
        later = [t for t in lesson_package_imports(graph, name) if t in order and order.index(t) > position]
        assert not later, f"{name} imports {later}, listed after it in kdutils/__init__.py"


def test_every_module_imports_on_its_own():
    for name in import_graph():
        if not name.endswith("__main__"):
            importlib.import_module(f"kdutils.{name}")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_reads_the_tests_folder_or_grows_past_450_lines(path):
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"""["']tests["']|/tests/""", text), f"{path.name} reads files under tests/"
    assert len(text.splitlines()) <= 450, f"{path.name} has {len(text.splitlines())} lines: split it by concern"
