"""What serving another model version means, said before it serves, from the API's versions (GET /v1/models): the
desktop app's "Serve this version?" said only "Serve model version 2 from now on?".

`leafdoc models promote` says it from the registry (lifecycle/against_serving.what_changes: both models scored on the
same photos); an app has only what the server answers, so here the figures are those the server keeps: the version's
own promotion decision when it was taken against the version serving now (the same photos), else each version's
test figures on its own test photos, said so. Then the classes the serving version answers that this one does not
know, in the same words."""

from __future__ import annotations

from collections.abc import Callable

from leafdoc.core.i18n import label_words
from leafdoc.words.percent import measured_share
from leafdoc.words.photo_guide import listed

MIN_FAIR_IMAGES = 20  # fewer test photos cannot tell two models apart (lifecycle/promotion.py promotes by it too)


def serving_stack(events: list[tuple[str, int]]) -> list[int]:
    """The versions that served, the one serving now last, from the serving events (action, version), oldest first:
    a rollback takes the last one off, and the one under it serves again. What a rollback would serve is the one
    before the last; the registry rolls back by it (model_versions.Registry.rollback), the desktop app says it
    (desktop/versions.py) from GET /v1/models' `history`."""
    stack: list[int] = []
    for action, version in events:
        if action == "rollback":
            if stack:
                stack.pop()
        elif not stack or stack[-1] != version:
            stack.append(version)
    return stack


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _share(test: dict) -> str:
    """ "41.7% of 12 photos", or "41.7%" when the card does not say on how many."""
    return measured_share(test) + (" photos" if isinstance(test.get("n"), int) and test["n"] > 0 else "")


def _figures(new: dict, sv: int, old: dict) -> str | None:
    promo = new.get("promotion") or {}
    c, s, n = promo.get("candidate"), promo.get("serving"), promo.get("n_images")
    if promo.get("serving_version") == sv and _number(c) and _number(s) and isinstance(n, int):
        m = promo.get("metric") or "accuracy"
        said = f"On {n:,} photos of its test split: {m} {c:.1%}, against {s:.1%} for version {sv}"
        return said + (f"; {n} photos are too few to tell two models apart" if n < MIN_FAIR_IMAGES else "") + "."
    new_test = (new.get("metrics") or {}).get("test") or {}
    old_test = (old.get("metrics") or {}).get("test") or {}
    if not _number(new_test.get("accuracy")):
        return f"Version {new['version']} has no test figures to compare with version {sv}'s."
    said = f"Test accuracy: {_share(new_test)} for version {new['version']}"
    if _number(old_test.get("accuracy")):
        said += f", against {_share(old_test)} for version {sv} (each on its own test photos, not the same)"
    few = [t["n"] for t in (new_test, old_test) if isinstance(t.get("n"), int) and t["n"] < MIN_FAIR_IMAGES]
    return said + (f"; {min(few)} photos are too few to tell two models apart" if few else "") + "."


def serving_change(new: dict, models: dict, name: Callable[[str], str] = label_words) -> list[str]:
    """Sentences on serving version `new` (one of GET /v1/models' `models`) instead of the one serving now (`models`
    is the whole answer): both figures, whether they can tell the two apart, and the classes the serving version
    knows that this one does not. [] when nothing serves or `new` serves already."""
    sv = models.get("serving_version")
    old = next((m for m in models.get("models", []) if m.get("version") == sv), None)
    if sv is None or old is None or new.get("version") == sv:
        return []
    said = [_figures(new, sv, old)]
    old_labels, new_labels = list(old.get("labels") or []), list(new.get("labels") or [])
    if old_labels and new_labels and not set(old_labels) & set(new_labels):
        said.append(
            f"It shares no class with version {sv} (none of their labels is the same), so version {sv} could not be "
            "right on its photos: the figures do not compare the two models."
        )
    lost = [label for label in old_labels if label not in new_labels]
    if lost and new_labels:
        names = listed([name(x) for x in lost[:3]] + ([f"{len(lost) - 3} more"] if len(lost) > 3 else []))
        said.append(
            f"It knows {len(new_labels)} classes against {len(old_labels)} for version {sv}: photos of the "
            f"{len(lost)} it does not know ({names}) are answered as one of its own or refused."
        )
    return [s for s in said if s]
