"""The layers of docs/architecture.md, checked on every module's imports (lazy ones inside functions too):
no module imports from a layer above it, the verbs keep apart (train/ imports neither evaluate/ nor
inference/), nothing imports cli, and there is no import cycle."""

from __future__ import annotations

import ast
import re
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


def rooms_of(graph: dict[str, set[str]]) -> dict[str, tuple[int, int, set[str]]]:
    """Each room (a package or a top-level module of leafdoc) as docs/architecture.md's floors table gives it: its
    floor (one above everything it imports; 1 for a room that imports nothing), its lines, what of leafdoc it imports
    (core/ left out, as the table leaves it out)."""
    imports: dict[str, set[str]] = {}
    lines: dict[str, int] = {}
    for name, path in modules().items():
        room = part(name)
        if room != "leafdoc":  # leafdoc/__init__.py: the version, no room of its own
            lines[room] = lines.get(room, 0) + len(path.read_text().splitlines())
            imports.setdefault(room, set()).update(part(t) for t in graph[name] if part(t) not in (room, "leafdoc"))
    floor: dict[str, int] = {}

    def floor_of(room: str) -> int:
        if room not in floor:
            floor[room] = 1 + max((floor_of(t) for t in imports[room]), default=0)
        return floor[room]

    return {room: (floor_of(room), lines[room], imports[room] - {"core"}) for room in imports}


def floors_table(text: str) -> dict[str, tuple[int, float, set[str]]]:
    """docs/architecture.md's "house, floor by floor": room -> (floor, thousands of lines, imports)."""
    block = text.split("## The house, floor by floor", 1)[1].split("```", 2)[1]
    rows: dict[str, tuple[int, float, set[str]]] = {}
    last = None
    for line in block.splitlines()[2:]:  # the fence's newline, then the header
        m = re.match(r"\s*(\d+)\s+(\S+?)/?(?:\.py)?\s+([\d.]+)k\s*(.*)$", line)
        if m:
            last = m.group(2)
            said = set(m.group(4).split()) - {"-", "(nothing)"}
            rows[last] = (int(m.group(1)), float(m.group(3)), said)
        elif line.strip() and last:  # a row's imports continued on the next line
            rows[last][2].update(line.split())
    return rows


def test_docs_architecture_floors_table_is_the_imports_as_they_are(graph):
    """Every room of src/leafdoc in the table, on its floor, with what it imports and about its size: a contributor
    reads the table to find where things are; a room missing from it (offline/ was) or a floor that moved misleads."""
    doc = floors_table((SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8"))
    real = rooms_of(graph)
    assert sorted(set(real) - set(doc)) == [], "rooms missing from docs/architecture.md's floors table"
    assert sorted(set(doc) - set(real)) == [], "docs/architecture.md's floors table names rooms that are gone"
    wrong = []
    for room, (floor, lines, imports) in sorted(real.items()):
        said_floor, said_k, said_imports = doc[room]
        if said_floor != floor or said_imports != imports:
            wrong.append(f"{room}: floor {floor} importing {' '.join(sorted(imports)) or '-'}")
        if abs(said_k * 1000 - lines) > max(0.25 * lines, 200):
            wrong.append(f"{room}: {lines / 1000:.1f}k lines, not {said_k}k")
    assert wrong == [], "docs/architecture.md's floors table, as the code is: " + "; ".join(wrong)


def test_the_floors_table_is_read_as_written():
    table = floors_table(
        "## The house, floor by floor\n\ntext\n\n```\nfloor  room  lines  imports\n"
        "  3    data/   2.5k   imaging\n"
        "  9    cli/    1.8k   advice data\n                      words\n"
        "  2    imaging/  1.0k   -\n  1    core/   0.9k   (nothing)\n  3    modelfolder.py  0.3k  runtime\n```\n"
    )
    assert table == {
        "data": (3, 2.5, {"imaging"}),
        "cli": (9, 1.8, {"advice", "data", "words"}),
        "imaging": (2, 1.0, set()),
        "core": (1, 0.9, set()),
        "modelfolder": (3, 0.3, {"runtime"}),
    }


def test_every_sizeable_module_is_named_in_docs_architecture():
    """A module of 200 lines or more is named in docs/architecture.md (as `name.py`, `package/name.x` or
    `package.name`), so a contributor looking for where something lives finds it there."""
    doc = (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    unnamed = []
    for name, path in modules().items():
        package, _, stem = name.removeprefix("leafdoc.").rpartition(".")
        if len(path.read_text().splitlines()) < 200:
            continue
        if (
            path.name not in doc
            and f"{package.replace('.', '/')}/{stem}." not in doc
            and f"{package}.{stem}" not in doc
        ):
            unnamed.append(str(path.relative_to(SRC / "leafdoc")))
    assert unnamed == [], "name these in docs/architecture.md's tables, with what each is for"
