"""The house's layout: no import circles and no import from a lower floor to a higher one.

Every `import` of `pipeline/` counts, those inside functions and under TYPE_CHECKING too: a
lazy import is still an arrow. Floors, lowest first: the ground floor (every module or package
not named below: wire, errors, text, jsonio, durable, project, models/, media/, ...), client/,
prepare/, job/ and sim/, run/ account/ and catalog/, report/, review/, api.py (and its helpers
results.py, what it answers; report_stamp.py, when reports are written again; status_now.py, a
status as it stands now), cli.py (with commands.py, the job commands). A module imports from
its own floor or a lower one; `pipeline/__init__.py` may re-export anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"
FLOORS = {"client": 1, "prepare": 2, "job": 3, "sim": 3, "run": 4, "account": 4, "catalog": 4,
          "report": 5, "review": 6, "api": 7, "results": 7, "report_stamp": 7, "status_now": 7,
          "cli": 8, "commands": 8, "__main__": 8}


def modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if f.name == "__init__.py" else parts)] = f
    return out


def imports() -> dict[str, set[str]]:
    """module -> the pipeline modules it imports (resolved to modules that exist)."""
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        tree = ast.parse(f.read_text(encoding="utf-8"))
        pkg = m if f.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[:len(pkg.split(".")) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                names = [mod] + [f"{mod}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                # the deepest existing module the name points at
                while name and name not in mods:
                    name = name.rpartition(".")[0]
                if name and name != m and name != "pipeline" and not m.startswith(name + "."):
                    graph[m].add(name)
    return graph


def room(module: str) -> str:
    """The package (or top-level module) a module belongs to: `pipeline.run.poll` -> `run`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def floor(module: str) -> int:
    return FLOORS.get(room(module), 0)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(u: str, path: list[str]) -> None:
        state[u] = 1
        path.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                found.append(path[path.index(v):] + [v])
            elif v not in state:
                visit(v, path)
        path.pop()
        state[u] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def test_no_module_imports_a_module_that_imports_it_back():
    """No circle between modules of pipeline/, counting imports inside functions."""
    assert cycles(imports()) == []


def test_no_package_imports_a_package_that_imports_it_back():
    """No circle between the packages (rooms) of pipeline/."""
    rooms: dict[str, set[str]] = {}
    for m, targets in imports().items():
        if m == "pipeline":
            continue
        for t in targets:
            if room(t) != room(m):
                rooms.setdefault(room(m), set()).add(room(t))
    assert cycles(rooms) == []


def test_no_import_goes_up_a_floor():
    """A module imports from its own floor or a lower one (pipeline/__init__ re-exports)."""
    up = sorted(f"{m} -> {t}" for m, targets in imports().items() for t in targets
                if m != "pipeline" and floor(t) > floor(m))
    assert up == []


def test_the_run_stage_does_not_write_reports():
    """pipeline/run/ imports nothing of pipeline/report/ (the API writes the reports)."""
    assert not [f"{m} -> {t}" for m, ts in imports().items() for t in ts
                if room(m) == "run" and room(t) == "report"]


def test_the_scan_sees_a_lazy_import_inside_a_function():
    """The scan counts an import written inside a function (so it can fail)."""
    graph = imports()
    assert "pipeline.client" in graph["pipeline.cli"] or any(
        t.startswith("pipeline.") for t in graph["pipeline.cli"])
