"""The shape of the package: no import cycles, stages below the command line, light imports where they matter.

Imports are read from the source with ``ast`` (module-level and function-level imports both count: a lazy
import still ties two modules together), so the test needs none of the heavy dependencies.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "aerotune"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The aerotune modules ``path`` imports anywhere in its body (``from a import b`` counts ``a.b`` if a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_graph_sees_lazy_imports():
    graph = import_graph()
    assert "aerotune.report.make" in graph["aerotune.report"]  # imported inside report.__getattr__
    assert "aerotune.tune.study" in graph["aerotune.demo"]  # imported inside run_demo


def test_a_cycle_is_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


#: What the package root imports: the Python API (on first use) and the stages' packages it makes callable.
ROOT_IMPORTS = {"aerotune.api", "aerotune.predict", "aerotune.report", "aerotune.train", "aerotune.tune"}


def test_the_package_root_is_only_the_api_facade():
    assert import_graph()["aerotune"] <= ROOT_IMPORTS


def test_no_import_cycles():
    graph = import_graph()
    # The root re-exports the API, which sits above everything; modules import the root only for __version__.
    # Its own imports are checked above, so they are left out here.
    graph["aerotune"] = set()
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_stages_never_import_the_command_line():
    """Only the front ends run commands: ``python -m aerotune`` and the Python API (aerotune.api)."""
    graph = import_graph()
    offenders = {
        name: sorted(t for t in targets if t.startswith("aerotune.commands"))
        for name, targets in graph.items()
        if not name.startswith("aerotune.commands") and name not in ("aerotune.__main__", "aerotune.api")
    }
    assert not {k: v for k, v in offenders.items() if v}


@pytest.mark.parametrize("module", ["aerotune.predict", "aerotune.predict.scene"])
def test_importing_predict_stays_light(module):
    code = (
        f"import sys, {module}; "
        "print(','.join(m for m in ('torchmetrics', 'matplotlib', 'optuna') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"importing {module} loads {done.stdout.strip()}"


def test_benchmarks_import_names_that_exist():
    """Every ``from aerotune.X import name`` in benchmarks/ (lazy ones too) names something aerotune.X has:
    a refactor that moves a function breaks no benchmark unseen."""
    import importlib

    missing = []
    for path in sorted((SRC.parent / "benchmarks").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aerotune")):
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name) and importlib.util.find_spec(f"{node.module}.{alias.name}") is None:
                    missing.append(f"{path.name}: from {node.module} import {alias.name}")
    assert not missing, missing


ARCHITECTURE = SRC.parent / "docs" / "architecture.md"
FRONT_ENDS = ("aerotune", "aerotune.__main__", "aerotune.api", "aerotune.demo")


def stage_order() -> list[str]:
    """The stage order docs/architecture.md claims, from its line ``Stage order: data → model → ...``."""
    line = next(x for x in ARCHITECTURE.read_text(encoding="utf-8").splitlines() if x.startswith("Stage order:"))
    return [s.strip() for s in line.removeprefix("Stage order:").split("→")]


def stage_of(module: str, stages: list[str]) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in stages else None


def test_the_documented_stage_order_names_every_stage_package():
    stages = stage_order()
    shared = {"commands", "config"}  # the front end and the settings (a shared package, below every stage)
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} - shared
    assert sorted(stages) == sorted(packages)


def backward_imports(graph: dict[str, set[str]], stages: list[str]) -> list[str]:
    """Every import of a later stage by an earlier one."""
    found = []
    for name, targets in graph.items():
        here = stage_of(name, stages)
        for target in targets:
            there = stage_of(target, stages)
            if here and there and stages.index(there) > stages.index(here):
                found.append(f"{name} imports {target}")
    return found


def test_each_stage_imports_only_the_stages_before_it():
    """The order in docs/architecture.md is the import graph's: a stage never imports a later one."""
    later = backward_imports(import_graph(), stage_order())
    assert not later, later


def test_the_shared_modules_import_no_stage():
    stages = [*stage_order(), "commands"]
    graph = import_graph()
    shared = [n for n in graph if stage_of(n, stages) is None and n not in FRONT_ENDS]
    assert "aerotune.config" in shared and "aerotune.outputs" in shared
    offenders = {n: sorted(t for t in graph[n] if stage_of(t, stages)) for n in shared}
    assert not {n: t for n, t in offenders.items() if t}, offenders


def test_the_stage_order_check_catches_a_backward_import():
    stages = stage_order()
    assert stages.index("data") < stages.index("train") < stages.index("tune") < stages.index("report")
    graph = {
        "aerotune.data.patches": {"aerotune.train.fit", "aerotune.config"},
        "aerotune.train.fit": {"aerotune.data"},
    }
    assert backward_imports(graph, stages) == ["aerotune.data.patches imports aerotune.train.fit"]
