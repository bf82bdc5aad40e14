"""The rooms of docs/ARCHITECTURE.md, enforced on the source.

- No import circle inside the project. Every import counts: at module level, inside functions, and under
  ``TYPE_CHECKING`` (a lazy or type-only import hides a circle, it does not break one).
- Arrows between rooms point one way (``ALLOWED``).
- A page package (ui/annotate, ui/history, ...) never imports another page package.
- No module over 400 lines.
- Pages reach the store through typed operations, never by a method name.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("medalign_desktop", "training")
MAX_LINES = 400
PAGES = ("annotate", "history", "train", "models", "compare", "export", "team")

# room -> the rooms it may import (besides itself). A room is a top-level package of medalign_desktop
# (store, engine, jobs, report, ui) or a top-level module (app, cli, config, paths, diagnostics), or training.
BASE = {"medalign_desktop", "medalign_desktop.paths", "medalign_desktop.config"}
ALLOWED = {
    "training": set(),
    "medalign_desktop.store": BASE,
    "medalign_desktop.engine": BASE | {"training"},
    "medalign_desktop.jobs": BASE | {"medalign_desktop.store", "training"},
    "medalign_desktop.report": BASE | {"medalign_desktop.store"},
    "medalign_desktop.ui": BASE
    | {
        "medalign_desktop.diagnostics",
        "medalign_desktop.engine",
        "medalign_desktop.jobs",
        "medalign_desktop.report",
        "medalign_desktop.store",
    },
}


def project_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = project_modules()


def _owner(name: str) -> str | None:
    """The project module that ``name`` (a module or a name inside one) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> Iterator[tuple[int, str]]:
    """(line, project module) for every import in ``module``, wherever it stands in the file."""
    path = MODULES[module]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level-1 times
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            # "from a.b import c" imports the module a.b.c when there is one, else a name of a.b
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names
            ]
        else:
            continue
        for target in targets:
            owner = _owner(target)
            if owner and owner != module:
                yield node.lineno, owner


GRAPH = {module: {target for _, target in imports_of(module)} for module in MODULES}


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
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
                    circles.append(sorted(component))
    return circles


def test_the_circle_finder_finds_a_hidden_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert import_circles(graph) == [["a", "b", "c"]]
    assert import_circles({"a": {"b"}, "b": set()}) == []


def test_the_import_reader_counts_lazy_and_type_only_imports(tmp_path, monkeypatch):
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from training import protocol\n"
        "def later():\n    import training.config\n"
    )
    path = tmp_path / "probe.py"
    path.write_text(source, encoding="utf-8")
    monkeypatch.setitem(MODULES, "training.probe", path)
    assert {target for _, target in imports_of("training.probe")} == {"training.protocol", "training.config"}


def test_no_import_circles():
    circles = import_circles(GRAPH)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def room_of(module: str) -> str:
    parts = module.split(".")
    return "training" if parts[0] == "training" else ".".join(parts[:2])


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_rooms_import_only_downhill(room):
    bad = sorted(
        {
            f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}"
            for module in MODULES
            if room_of(module) == room
            for line, target in imports_of(module)
            if room_of(target) != room and room_of(target) not in ALLOWED[room]
        }
    )
    assert not bad, "\n".join(bad)


def page_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] == ["medalign_desktop", "ui"] and len(parts) > 2 and parts[2] in PAGES:
        return parts[2]
    return None


def test_a_page_never_imports_another_page():
    bad = sorted(
        {
            f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}"
            for module in MODULES
            if page_of(module)
            for line, target in imports_of(module)
            if page_of(target) not in (None, page_of(module))
        }
    )
    assert not bad, "\n".join(bad)


def test_every_page_has_its_package():
    ui = ROOT / "medalign_desktop" / "ui"
    assert (ui / "core").is_dir() and (ui / "shell").is_dir()
    flat = sorted(p.name for p in ui.glob("*.py") if p.name != "__init__.py")
    assert not flat, f"modules left flat in ui/: {flat}"


def test_no_module_over_400_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in MODULES.values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_pages_call_the_store_through_typed_operations():
    """No page names a store method by a string (``store.call("name")``), nor calls a function of the store
    without saying whether it writes: pages use ``ctx.store.run(op)`` with ui.core.operations' objects."""
    pattern = re.compile(r"\.call\(\s*[\"']|store\.call\(")
    pages = [path for name, path in MODULES.items() if name.startswith("medalign_desktop.ui.")]
    # the scripts that drive the window (screenshots, benchmarks) go through the same operations
    scripts = sorted((ROOT / "tools").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py"))
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in pages + scripts
        if path.name != "services.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == [], offenders
