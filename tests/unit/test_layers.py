"""The layers of docs/architecture.md, checked on every module's imports (lazy ones inside functions too):
no module imports from a layer above it, the verbs keep apart (train/ imports neither evaluate/ nor
inference/), nothing imports cli, and there is no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SRC = Path(__file__).resolve().parents[2] / "src"

# Bottom to top; a module may import from its own layer or below (within a layer, see APART and SIDEWAYS).
LAYERS = [
    {"leafdoc", "core"},  # settings, errors, atomic writes: what every layer uses
    {"imaging", "words", "runtime", "advice"},  # the base, grouped by what each serves
    {"modelfolder", "api_client"},  # the training <-> serving contract; the faces' HTTP client
    {"data"},
    {"train", "evaluate", "inference", "model_versions"},  # the verbs, and the versions of their models
    {"lifecycle"},
    {"cli", "service", "ui", "offline", "desktop", "experiments"},  # the faces
]
# Layers whose packages keep apart: none imports another of its layer but for the arrows in SIDEWAYS. The base's
# groups serve different things; within the verbs, evaluating runs the serving path, but training imports no
# scoring and no serving (lifecycle/training.py joins them), and serving imports no training (so no TensorFlow).
SIDEWAYS = {("evaluate", "inference")}
LAYER_OF = {part: i for i, parts in enumerate(LAYERS) for part in parts}
APART = {LAYER_OF["imaging"], LAYER_OF["train"]}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "leafdoc").rglob("*.py")):
        if "migrations" in path.parts:  # Alembic's scripts, run by Alembic
            continue
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every leafdoc module `name` imports, wherever the import statement is (module level or in a function)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "leafdoc")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] == "leafdoc":
                out.update(f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names)
    return out - {name}


def part(module: str) -> str:
    """leafdoc.train.trainer -> train; leafdoc.model_versions -> model_versions; leafdoc -> leafdoc."""
    return module.split(".")[1] if "." in module else "leafdoc"


def wrong_way(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for name, targets in graph.items():
        here = part(name)
        assert here in LAYER_OF, f"{name}: add its package to a layer of LAYERS (and to docs/architecture.md)"
        for target in sorted(targets):
            there = part(target)
            if there == "cli" and here != "cli":
                found.append(f"{name} imports {target}: nothing imports cli (it is a face, not a library)")
            elif there == here:
                continue
            elif LAYER_OF[there] > LAYER_OF[here]:
                found.append(f"{name} imports {target}, a layer above it")
            elif LAYER_OF[there] == LAYER_OF[here] and LAYER_OF[here] in APART and (here, there) not in SIDEWAYS:
                found.append(f"{name} imports {target}: {here}/ may not import {there}/")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {t for t in imports_of(name, path, known) if t in known} for name, path in known.items()}


def test_the_graph_sees_lazy_imports(graph):
    # lifecycle/training.py imports the trainer at module level; the CLI imports the lifecycle inside a function.
    assert "leafdoc.train.trainer" in graph["leafdoc.lifecycle.training"]
    assert "leafdoc.lifecycle.training" in graph["leafdoc.cli.main"]


def test_no_module_imports_from_a_layer_above_it_and_train_imports_no_scoring_or_serving(graph):
    assert wrong_way(graph) == []


def test_there_is_no_import_cycle(graph):
    assert cycles(graph) == []


def test_the_checks_catch_what_they_are_for():
    """The rules, on made-up graphs: each wrong arrow is named."""
    bad = {
        "leafdoc.train.trainer": {"leafdoc.evaluate.metrics", "leafdoc.inference.predictor"},
        "leafdoc.model_versions": {"leafdoc.lifecycle.training"},
        "leafdoc.service.run": {"leafdoc.cli.main"},
        "leafdoc.evaluate.score": {"leafdoc.inference.predictor"},  # allowed
        "leafdoc.imaging.photos": {"leafdoc.words.photo_guide", "leafdoc.core.errors"},  # the first is not
        "leafdoc.cli.main": {"leafdoc.cli.printing"},  # allowed: within the CLI
    }
    found = wrong_way(bad)
    assert len(found) == 5 and all(
        any(t in f for f in found) for t in ("evaluate", "inference", "above", "cli", "imaging/ may not import words/")
    )
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
