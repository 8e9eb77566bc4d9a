"""The floors of docs/architecture.md, enforced: no import goes up a floor, and no import closes a cycle.

Every import in czann_ci/ counts, wherever it is written: at the top, inside a function, under
``if TYPE_CHECKING:`` (a type-only import is still a dependency a reader has to follow). A plain ``ast``
walk rather than import-linter: its layers contract does the same check but passes any module its contract
does not name, while here a module whose floor is not in FLOORS fails, so every new module is placed on
purpose; and it is one dependency less.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "czann_ci"

# Bottom to top; a module may import its own floor or lower ones, never a higher one. The longest
# matching prefix places a module (czann_ci.cli.predict is on czann_ci.cli's floor).
FLOORS: tuple[tuple[str, ...], ...] = (
    ("errors", "naming", "redaction", "extras", "versions"),
    ("format",),
    ("checks",),
    ("plan",),
    ("sources", "bioimageio", "publish"),
    ("inspection",),
    ("compare", "planning"),
    ("pipeline", "preview", "inference", "evaluation"),
    ("render",),
    ("release",),
    ("ci",),
    ("cli", "compat", "convert", "model_metadata", "legacy_model_metadata", "transforms", "__main__", ""),
)


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["czann_ci", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported(module: str, node: ast.Import | ast.ImportFrom, is_package: bool, known: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        names = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in known else origin for a in node.names]
    found = []
    for name in names:
        if name != "czann_ci" and not name.startswith("czann_ci."):
            continue
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        if name != module:
            found.append(name)
    return found


def import_graph() -> dict[str, set[str]]:
    """Every czann_ci module -> the czann_ci modules it imports (anywhere in its text)."""
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[module].update(_imported(module, node, path.name == "__init__.py", known))
    return graph


def _placement(module: str) -> tuple[int, str] | None:
    """(floor, unit) of a module: the unit is the FLOORS entry that placed it (a package or module)."""
    rest = module.split(".", 1)[1] if "." in module else ""
    best: tuple[int, str] | None = None
    for floor, units in enumerate(FLOORS):
        for unit in units:
            matches = rest == unit or (unit and rest.startswith(unit + "."))
            if matches and (best is None or len(unit) > len(best[1])):
                best = (floor, unit)
    return best


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
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
    return found


def violations(graph: dict[str, set[str]]) -> tuple[list[str], list[str]]:
    """(unplaced modules, "a -> b" edges that go up a floor or close a cycle of modules or units)."""
    unplaced = sorted(m for m in graph if _placement(m) is None)
    bad = set()
    for module, imports in graph.items():
        here = _placement(module)
        for target in imports:
            there = _placement(target)
            if here and there and there[0] > here[0]:
                bad.add(f"{module} -> {target}")

    # A cycle has at least one edge that does not go down: upward ones are reported above, so a cycle
    # reports its edges within one floor (the downward edges of a cycle are not what is wrong).
    def level(a: str, b: str) -> bool:
        here, there = _placement(a), _placement(b)
        return bool(here and there and here[0] == there[0])

    for component in _cycles(graph):
        members = set(component)
        bad.update(f"{a} -> {b}" for a in component for b in graph[a] & members if level(a, b))
    units: dict[str, set[str]] = defaultdict(set)
    for module, imports in graph.items():
        for target in imports:
            a, b = _placement(module), _placement(target)
            if a and b and a[1] != b[1]:
                units[a[1]].add(b[1])
    for component in _cycles(units):
        members = set(component)
        for module, imports in graph.items():
            a = _placement(module)
            for target in imports:
                b = _placement(target)
                if a and b and a[1] != b[1] and {a[1], b[1]} <= members and level(module, target):
                    bad.add(f"{module} -> {target}")
    return unplaced, sorted(bad)


def test_every_module_has_a_floor() -> None:
    unplaced, _ = violations(import_graph())
    assert not unplaced, f"modules on no floor (add them to FLOORS and docs/architecture.md): {unplaced}"


def test_no_import_goes_up_a_floor_or_round() -> None:
    _, bad = violations(import_graph())
    assert not bad, "imports that go up a floor or close a cycle:\n  " + "\n  ".join(bad)


def test_the_walk_sees_type_checking_and_function_imports(tmp_path: Path) -> None:
    """The walk itself: an import under TYPE_CHECKING and one inside a function both count."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from czann_ci.cli import main\n"
        "def f():\n    from czann_ci.render import terminal\n"
    )
    tree = ast.parse(source)
    known = {"czann_ci.cli", "czann_ci.render", "czann_ci.render.terminal", "czann_ci.errors"}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(_imported("czann_ci.errors", node, False, known))
    assert found == {"czann_ci.cli", "czann_ci.render.terminal"}
    graph = {"czann_ci.errors": found, "czann_ci.cli": set(), "czann_ci.render.terminal": set()}
    assert violations(graph)[1] == [
        "czann_ci.errors -> czann_ci.cli",
        "czann_ci.errors -> czann_ci.render.terminal",
    ]
