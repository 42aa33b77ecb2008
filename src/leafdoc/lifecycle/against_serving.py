"""Before `leafdoc models add` or `leafdoc models promote` puts a model in front of users: is it worse than the model
serving now, on the same photos? The photos are the new model's own test split (its split.json), read from this data
home's store, less those the serving model trained on; both are scored as served and the service's promotion rule
decides (lifecycle/promotion.py, `LEAFDOC_PROMOTE_METRIC` and `LEAFDOC_PROMOTE_MARGIN`). A lab's 3-class model at
41.7% went in without a word; now it is refused, with both figures, unless `--force`."""

from __future__ import annotations

from pathlib import Path

from leafdoc.core.errors import LeafdocError, ModelError
from leafdoc.data.datasets import get_version, version_items
from leafdoc.lifecycle.promotion import promotion_decision
from leafdoc.lifecycle.workspace import Workspace
from leafdoc.modelfolder import SPLIT_FILE, read_labels, read_split
from leafdoc.words.serving_change import WORSE, class_change, compared_on_test


def own_test_photos(ws: Workspace, folder: Path) -> tuple[list[bytes], list[str]] | None:
    """The labelled photos of the folder's test split that this data home holds; None when there are none (no
    split.json, a dataset from another data home)."""
    if not (Path(folder) / SPLIT_FILE).is_file():
        return None
    try:
        split = read_split(folder)
        row = get_version(ws.catalog, split["dataset"], split["version"])
    except (LeafdocError, KeyError):
        return None
    label_of = {sha: label for sha, label, _ in version_items(ws.catalog, row)}
    shas = [sha for sha in split.get("test", []) if sha in label_of and ws.store.exists(sha)]
    if not shas:
        return None
    return [ws.store.get(sha) for sha in shas], [label_of[sha] for sha in shas]


def compare(ws: Workspace, folder: Path, serving_version: int | None) -> dict | None:
    """The promotion decision of `folder` against the serving version on the same photos, or None when there is
    nothing to compare (no model serving, the same version, no test photos of the folder in this data home)."""
    if serving_version is None:
        return None
    photos = own_test_photos(ws, folder)
    if photos is None:
        return None
    s = ws.settings
    return promotion_decision(
        folder,
        ws.registry.local_dir(serving_version),
        serving_version,
        *photos,
        metric=s.promote_metric,
        margin=s.promote_margin,
        max_pixels=s.max_image_pixels,
    )


def worse(decision: dict | None) -> bool:
    """Whether the decision found the new model worse than the serving one beyond the margin (its `held_back` says
    "worse"; too few photos to promote automatically, or classes it does not know, are not "worse": `add` and
    `promote` are a person's choice, and `what_changes` says both)."""
    return bool(decision) and WORSE in (decision.get("held_back") or [])


def refuse_if_worse(ws: Workspace, folder: Path, serving_version: int | None, what: str, force: bool) -> dict | None:
    """Raise ModelError naming both figures when the folder's model is worse than the serving one, unless `force`;
    returns the decision (None: nothing to compare)."""
    decision = compare(ws, folder, serving_version)
    if worse(decision) and not force:
        m = decision["metric"]
        raise ModelError(
            f"{folder}: {m} {decision['candidate']:.1%} against {decision['serving']:.1%} for version "
            f"{serving_version}, the model serving now, on the same {decision['n_images']} photos (this model's "
            f"test split): it is worse, so it was not {what}. ({decision['reason']})",
            hint="Train it on more photos and compare again, or run the same command with --force to go ahead anyway.",
        )
    return decision


def what_changes(ws: Workspace, folder: Path, serving_version: int | None, decision: dict | None) -> list[str]:
    """What serving the folder's model instead of the serving version means, in sentences for whoever adds or
    promotes it: both figures on the same photos, whether those figures can tell the two apart (too few photos; no
    class in common), and the classes the serving version answers that this one does not know. A lab's 4-photo
    model and a corn model replacing a tomato one were served with "version 3 serves from now on" and nothing else."""
    if serving_version is None:
        return []
    said = []
    if decision and decision.get("candidate") is not None and decision.get("serving") is not None:
        n, m = decision["n_images"], decision["metric"]
        said.append(compared_on_test(n, m, decision["candidate"], decision["serving"], serving_version))
    elif decision is None:  # said, not left out: "version 3 serves from now on" alone read as if it had been compared
        said.append(not_compared(folder, serving_version))
    old, new = read_labels(ws.registry.local_dir(serving_version)), read_labels(folder)
    said += class_change(old, new, serving_version)
    return said


def not_compared(folder: Path, serving_version: int) -> str:
    """Why no figures compare the folder's model with the serving version: the photos it was tested on are not in
    this data home (a model trained in another one, or with no split.json)."""
    try:
        split = read_split(folder)
        tested_on = f"its test photos (dataset {split['dataset']} v{split['version']})"
    except (LeafdocError, KeyError):
        tested_on = f"a record of its test photos ({SPLIT_FILE})"
    return (
        f"Not compared with version {serving_version}: this data home does not hold {tested_on}, so neither "
        f"model's figures on them are known. `leafdoc evaluate {folder} --data DIR` scores it on a folder of photos."
    )
