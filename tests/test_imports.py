"""The import arrows of src/onnxcam: no cycle, only the arrows docs/design.md allows, no method
module importing another, and the core install importing no optional dependency."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src"
PACKAGE = "onnxcam"
#: Third-party frameworks whose imports the table governs (the engine must import none).
FRAMEWORKS = ("torch", "keras", "tensorflow", "onnxscript", "transformers")
#: Modules of engine.methods that methods may share; every other module there is one method.
METHOD_PARTS = ("base", "registry", "parts")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SOURCE / PACKAGE).rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """Every module a file imports, at the top, in functions and under TYPE_CHECKING:
    `from pkg import name` counts as pkg.name where that is a module, else as pkg."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.add(f"relative import in {path}")  # no row allows it: the test names it
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in known else node.module)
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports(path, known) for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def allowed_arrows() -> dict[str, set[str]]:
    """The table between the `arrows` markers of docs/design.md: package -> what it may import."""
    text = (ROOT / "docs" / "design.md").read_text()
    block = re.search(r"<!-- arrows -->(.*?)<!-- /arrows -->", text, re.S)
    assert block, "docs/design.md has no <!-- arrows --> table"
    table = {}
    for line in block.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        targets = set(re.findall(r"`([\w.]+)`", cells[1]))
        table[cells[0].strip("`")] = targets
    return table


def unit(module: str, table: dict[str, set[str]]) -> str:
    """The most specific row of the table that holds `module` (names relative to onnxcam)."""
    relative = module.removeprefix(PACKAGE).lstrip(".") or PACKAGE
    rows = [row for row in table if relative == row or relative.startswith(row + ".")]
    assert rows or relative == PACKAGE, f"{module} is in no row of the arrows table"
    return max(rows, key=len) if rows else PACKAGE


def arrow_violations(graph: dict[str, set[str]], table: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in graph.items():
        row = unit(module, table)
        allowed = table[row] | {row}
        for target in sorted(targets):
            if target.startswith(PACKAGE + ".") or target == PACKAGE:
                relative = target.removeprefix(PACKAGE + ".") if target != PACKAGE else PACKAGE
                ok = any(relative == a or relative.startswith(a + ".") for a in allowed)
            else:
                top = target.split(".")[0]
                ok = top not in FRAMEWORKS or top in allowed
            if not ok:
                bad.append(f"{module} -> {target} (row `{row}` allows {sorted(allowed)})")
    return bad


def method_imports(graph: dict[str, set[str]]) -> list[str]:
    prefix = f"{PACKAGE}.engine.methods."
    methods = {m for m in graph if m.startswith(prefix) and m.split(".")[3] not in METHOD_PARTS}
    return [
        f"{module} -> {target}"
        for module in sorted(methods)
        for target in sorted(graph[module])
        if target in methods and target != module
    ]


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}, "e": {"a"}}
    assert cycles(graph) == [["a", "b", "c"], ["d"]]


def test_every_arrow_is_allowed_by_the_design_table():
    table = allowed_arrows()
    assert "engine" in table and "torch" not in table["engine"]
    assert arrow_violations(import_graph(), table) == []


def test_a_forbidden_arrow_is_reported():
    table = {"engine": {"kernels"}, "api": {"engine"}}
    graph = {"onnxcam.engine.x": {"onnxcam.api", "torch.nn", "numpy"}, "onnxcam.api": set()}
    assert len(arrow_violations(graph, table)) == 2  # up to the api, and torch


def test_no_method_module_imports_another():
    assert method_imports(import_graph()) == []
    fake = {
        "onnxcam.engine.methods.a": {"onnxcam.engine.methods.b"},
        "onnxcam.engine.methods.b": set(),
    }
    assert method_imports(fake) == ["onnxcam.engine.methods.a -> onnxcam.engine.methods.b"]


BLOCKER = """
import importlib.abc, sys
OPTIONAL = {optional}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in OPTIONAL:
            raise ImportError(f"optional package {{name}} imported")
sys.meta_path.insert(0, Block())
import onnxcam, onnxcam.cli.dispatch
onnxcam.cli.dispatch.parser()
onnxcam.methods()
"""

OPTIONAL = ("torch", "keras", "tensorflow", "onnxscript", "transformers", "scipy", "ray")
OPTIONAL += ("pyarrow", "skimage", "sktime", "onnxconverter_common", "efficientnet_lite_pytorch")


@pytest.mark.parametrize("blocked", [OPTIONAL])
def test_import_needs_only_the_core_install(blocked):
    code = BLOCKER.format(optional=set(blocked))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


def test_the_package_lists_its_public_names_and_each_resolves():
    script = (
        "import onnxcam; names = dir(onnxcam); print(names); "
        "print(all(getattr(onnxcam, n) is not None for n in names))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    listed, resolved = done.stdout.splitlines()
    assert resolved == "True", done.stderr
    assert "'io'" in listed and "'Explainer'" in listed and "'__version__'" in listed
    assert "'importlib'" not in listed and "'Any'" not in listed
