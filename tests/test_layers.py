"""The package's layers run one way: a module imports only from its own layer or those below, at
the top of the file or inside a function alike, so that serving a model never loads the trainer and
no two packages import each other. The layers are stated once, here and in docs/design.md."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import noshow

PACKAGE = Path(noshow.__file__).parent
# Lowest first; a module may import its own layer and the layers before it.
LAYERS = (
    ("noshow", "noshow.errors", "noshow.files", "noshow.allocator"),
    ("noshow.nn",),
    ("noshow.stats",),
    ("noshow.data",),
    ("noshow.model",),
    ("noshow.clinic",),
    ("noshow.training",),
    ("noshow.distributed",),
    ("noshow.evaluation", "noshow.store", "noshow.onnx_export", "noshow.estimators"),
    ("noshow.serve", "noshow.benchmarks"),
    ("noshow.cli", "noshow.__main__"),
)
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str:
    """``noshow.clinic.reasons`` -> ``noshow.clinic``: the package (or top-level module) it is in."""
    return ".".join(module.split(".")[:2])


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if ".migrations" not in name:  # Alembic's scripts, run by Alembic, import no noshow code
            found[name] = path
    return found


def imported(path: Path) -> set[str]:
    """Every noshow module ``path`` imports, anywhere in the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {name for name in names if name == "noshow" or name.startswith("noshow.")}


def test_every_module_of_the_package_is_in_a_layer():
    assert sorted({unit_of(name) for name in modules()} - set(RANK)) == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_imports_from_a_layer_above_its_own(name):
    path = modules()[name]
    above = sorted(other for other in imported(path) if RANK[unit_of(other)] > RANK[unit_of(name)])
    assert above == [], f"{name} (layer {RANK[unit_of(name)]}) imports upward: {above}"


def test_no_two_packages_import_each_other_even_through_others():
    graph = {unit_of(name): set() for name in modules()}
    for name, path in modules().items():
        graph[unit_of(name)] |= {unit_of(other) for other in imported(path)} - {unit_of(name)}
    done, on_path = set(), []

    def visit(unit: str) -> None:  # depth first; a unit met again on its own path closes a circle
        assert unit not in on_path, f"import circle: {' -> '.join(on_path[on_path.index(unit):] + [unit])}"
        if unit not in done:
            on_path.append(unit)
            for other in sorted(graph[unit]):
                visit(other)
            on_path.pop()
            done.add(unit)

    for unit in sorted(graph):
        visit(unit)


def test_only_the_command_line_imports_the_benchmarks():
    # Measuring speed and memory is no part of what is measured.
    importers = sorted(name for name, path in modules().items()
                       if unit_of(name) not in ("noshow.benchmarks", "noshow.cli")
                       and any(unit_of(other) == "noshow.benchmarks" for other in imported(path)))
    assert importers == []


def test_serving_a_model_file_loads_neither_the_training_loop_nor_evaluation():
    import subprocess
    import sys

    code = ("import sys, noshow.model, noshow.clinic.scoring; "
            "print(sorted(m for m in sys.modules if m.startswith(('noshow.training', 'noshow.evaluation'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
