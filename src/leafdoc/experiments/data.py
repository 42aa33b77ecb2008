"""The images an experiment trains on: the recipe's folder (or a capped subset of it), ingested into
the experiment's own data home, plus an optional explicit test folder read straight from disk.

A subset is written as a `path,label` CSV and ingested from it, so no image is copied. The dataset's
name carries a digest of the selection: a different subset is a different dataset, never a new
version of the old one (a version holds every image of its parent, so subsets would pile up).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from leafdoc.core.atomic import atomic_write_bytes
from leafdoc.core.errors import ConfigError
from leafdoc.data.sources import list_labelled_folder
from leafdoc.experiments.recipe import Recipe
from leafdoc.imaging.photos import sha256_bytes
from leafdoc.inference.field import calibration_part


@dataclass
class Selection:
    root: Path  # the recipe's data folder
    files: list[tuple[Path, str]]  # (path, label), training data
    test_files: list[tuple[Path, str]]  # (path, label), the explicit test folder's (may be empty)
    classes: list[str]
    dataset: str  # name in the experiment's catalog
    extra_files: list[tuple[Path, str]] = field(default_factory=list)  # (path, label), data.extra's training half
    extra_root: Path | None = None
    extra_nonleaf: list[Path] = field(default_factory=list)  # data.extra.nonleaf, for the unlike-training check

    def digest(self) -> str:
        if not self.extra_files:
            return _digest(self.files, self.root)
        return _digest(self.files + self.extra_files, self.root)

    def extra_shas(self) -> frozenset[str]:
        """The training half of data.extra by content: what prepare(train_only=...) keeps out of the split."""
        return frozenset(sha256_bytes(p.read_bytes()) for p, _ in self.extra_files)


def _digest(files: list[tuple[Path, str]], root: Path) -> str:
    h = hashlib.sha256()
    for path, label in files:
        h.update(f"{label}\0{path.relative_to(root) if path.is_relative_to(root) else path}\n".encode())
    return h.hexdigest()[:10]


def _folder(root: Path, rel: str, what: str, recipe: Recipe) -> Path:
    path = Path(rel) if Path(rel).is_absolute() else root / rel
    if not path.is_dir():
        raise ConfigError(
            f"{recipe.where()}: {what} {path} is not a folder.",
            hint="Pass the folder that holds the shared datasets with --data DIR (default: ../shared/datasets).",
        )
    return path


def _sample(files: list[Path], cap: int | None) -> list[Path]:
    """At most `cap` files, spread over the folder: by a hash of the name, not the first names (file
    names often follow the source's order, so the first N can all come from one source)."""
    if cap is None or len(files) <= cap:
        return sorted(files)
    return sorted(sorted(files, key=lambda p: hashlib.sha256(p.name.encode()).hexdigest())[:cap])


def _pick_classes(available: list[str], want: int | list[str] | None, where: str, root: Path) -> list[str]:
    if want is None:
        return available
    if isinstance(want, int):
        return available[:want]
    missing = [c for c in want if c not in available]
    if missing:
        raise ConfigError(
            f"{where}: data.classes names folders that are not in {root}: {', '.join(map(repr, missing))}.",
            hint=f"Use some of: {', '.join(available[:10])}{', ...' if len(available) > 10 else ''}.",
        )
    return sorted(want)


def _by_class(files: list[tuple[Path, str]]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for path, label in files:
        out.setdefault(label, []).append(path)
    return out


def select(recipe: Recipe, data_root: Path, quick: bool) -> Selection:
    spec, q = recipe.data, recipe.quick
    root = _folder(Path(data_root), spec.path, "data.path", recipe)
    listed, _ = list_labelled_folder(root)
    grouped = _by_class(listed)
    want = q.classes if quick and q.classes is not None else spec.classes
    classes = _pick_classes(sorted(grouped), want, recipe.where(), root)
    cap = q.per_class if quick and q.per_class is not None else spec.per_class
    files = [(p, c) for c in classes for p in _sample(grouped[c], cap)]
    test_files: list[tuple[Path, str]] = []
    if spec.test_path:
        test_root = _folder(Path(data_root), spec.test_path, "data.test_path", recipe)
        test_grouped = _by_class(list_labelled_folder(test_root)[0])
        test_cap = q.test_per_class if quick and q.test_per_class is not None else spec.test_per_class
        test_files = [(p, c) for c in classes for p in _sample(test_grouped.get(c, []), test_cap)]
    extra_files: list[tuple[Path, str]] = []
    extra_root = None
    if spec.extra:
        extra_root = _folder(Path(data_root), spec.extra.path, "data.extra.path", recipe)
        extra_grouped = _by_class(list_labelled_folder(extra_root)[0])
        unknown = sorted(set(extra_grouped) - set(grouped))
        if unknown:
            raise ConfigError(
                f"{recipe.where()}: data.extra {extra_root} has class folders that {root} lacks: "
                f"{', '.join(map(repr, unknown))}.",
                hint="Name the extra source's class folders like the main folder's.",
            )
        cap = spec.extra.per_class if quick else None
        for c in classes:
            train_half, held = [], []
            for p in _sample(extra_grouped.get(c, []), None):  # each photo read and hashed once
                (train_half if calibration_part(p) else held).append(p)
            extra_files += [(p, c) for p in _sample(train_half, cap)]
            test_files += [(p, c) for p in _sample(held, cap)]
    name = spec.name or recipe.name
    sel = Selection(root, files, test_files, classes, name, extra_files, extra_root)
    if spec.extra:
        sel.extra_nonleaf = [_folder(Path(data_root), d, "data.extra.nonleaf", recipe) for d in spec.extra.nonleaf]
    sel.dataset = f"{name}-{sel.digest()}"
    return sel


def write_csv(sel: Selection, path: Path) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["path", "label"])
    for p, label in sel.files + sel.extra_files:
        writer.writerow([str(p.resolve()), label])
    atomic_write_bytes(path, buf.getvalue().encode())
    return path


def link_folder(sel: Selection, dest: Path) -> Path:
    """The selection as a class-folder tree (hard links where possible), for `directory_dataset`."""
    import shutil

    for p, label in sel.files:
        target = dest / label / p.name
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.hardlink_to(p)
        except OSError:  # another file system, or links not allowed: a copy reads the same
            shutil.copy2(p, target)
    return dest
