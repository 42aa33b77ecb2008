"""What serving another model version means, said before it serves, from the API's versions (GET /v1/models): the
desktop app's "Serve this version?" said only "Serve model version 2 from now on?".

`leafdoc models promote` says it from the registry (lifecycle/against_serving.what_changes: both models scored on the
same photos); an app has only what the server answers, so here the figures are those the server keeps: the version's
own promotion decision when it was taken against the version serving now (the same photos), else each version's
test figures on its own test photos, said so. Then the classes the serving version answers that this one does not
know, in the same words."""

from __future__ import annotations

import re
from collections.abc import Callable

from leafdoc.core.i18n import label_words
from leafdoc.words.job_phases import serving_copy_words
from leafdoc.words.model_card import md_escape
from leafdoc.words.percent import measured_share
from leafdoc.words.photo_guide import listed

MIN_FAIR_IMAGES = 20  # fewer test photos cannot tell two models apart (lifecycle/promotion.py promotes by it too)


def some_named(names: list[str], shown: int = 3) -> str:
    """The first `shown` names and how many more, as a sentence lists them: "a, b, c and 5 more"."""
    return listed(names[:shown] + ([f"{len(names) - shown} more"] if len(names) > shown else []))


def class_change(old: list[str], new: list[str], version: int | str, name: Callable[[str], str] = str) -> list[str]:
    """What serving a model of the classes `new` instead of version `version`'s `old` loses: a model that shares no
    class with it (the figures of the two cannot compare), the classes it does not know. `leafdoc models promote`
    (lifecycle/against_serving.py) and the desktop app's "Serve this version?" say it alike."""
    said = []
    if old and new and not set(old) & set(new):
        said.append(
            f"It shares no class with version {version} (none of their labels is the same), so version {version} "
            "could not be right on its photos: the figures do not compare the two models."
        )
    lost = [label for label in old if label not in new]
    if lost and new:
        said.append(
            f"It knows {len(new)} classes where version {version} knew {len(old)}: photos of the {len(lost)} it does "
            f"not know ({some_named([name(x) for x in lost])}) are answered as one of its own or refused."
        )
    return said


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
        return compared_on_test(n, promo.get("metric") or "accuracy", c, s, sv)
    new_test = (new.get("metrics") or {}).get("test") or {}
    old_test = (old.get("metrics") or {}).get("test") or {}
    if not _number(new_test.get("accuracy")):
        return f"Version {new['version']} has no test figures to compare with version {sv}'s."
    said = f"Test accuracy: {_share(new_test)} for version {new['version']}"
    if _number(old_test.get("accuracy")):
        said += f", against {_share(old_test)} for version {sv} (each on its own test photos, not the same)"
    few = [t["n"] for t in (new_test, old_test) if isinstance(t.get("n"), int) and t["n"] < MIN_FAIR_IMAGES]
    return said + (f"; {too_few(min(few))}" if few else "") + "."


def photos(n: int) -> str:
    return f"{n:,} photo" + ("" if n == 1 else "s")


def too_few(n: int) -> str:
    return f"{photos(n)} {'is' if n == 1 else 'are'} too few to tell two models apart"


def compared_on_test(n: int, metric: str, candidate: float, serving: float, serving_version: int) -> str:
    """A new version against the serving one on the same `n` photos of its test split, and whether that is too few."""
    said = f"On {photos(n)} of its test split: {metric} {candidate:.1%}, against {serving:.1%} for version "
    said += str(serving_version)
    return said + (f"; {too_few(n)}" if n < MIN_FAIR_IMAGES else "") + "."


def serving_change(new: dict, models: dict, name: Callable[[str], str] = label_words) -> list[str]:
    """Sentences on serving version `new` (one of GET /v1/models' `models`) instead of the one serving now (`models`
    is the whole answer): both figures, whether they can tell the two apart, and the classes the serving version
    knows that this one does not. [] when nothing serves or `new` serves already."""
    sv = models.get("serving_version")
    old = next((m for m in models.get("models", []) if m.get("version") == sv), None)
    if sv is None or old is None or new.get("version") == sv:
        return []
    said = [_figures(new, sv, old)]
    said += class_change(list(old.get("labels") or []), list(new.get("labels") or []), sv, name)
    return [s for s in said if s]


# How a version came in without the promotion rule (its `promotion.decision`: model_versions.py, cli/models.py).
ARRIVALS = {
    "seed": "the first model, served from the start",
    "added": "added by hand",
    "shipped": "kept as candidate: the starter shipped with leafdoc",
}
# Why the promotion rule kept a candidate back, as its decision's `held_back` says it (lifecycle/promotion.py writes
# them): worse than the serving model beyond the margin on the same photos, too few photos left to tell the two apart
# (and not plainly better on them), it does not know some of the serving model's classes (`lost_classes` of its
# `known_classes`), no test photo left to compare on. In the order the table's few words choose by: what matters most
# first (a candidate both worse and forgetting classes is said to forget them).
FORGETS, WORSE, TOO_FEW, NO_TEST_PHOTOS = "forgets", "worse", "too_few", "no_test_photos"
HELD_BACK = (FORGETS, WORSE, TOO_FEW, NO_TEST_PHOTOS)
# The promotion rule's reason for a candidate that forgets classes (lifecycle/promotion.forgotten_words writes it).
LOST_CLASSES = "does not know {lost} of the serving model's {known} classes"
_LOST_CLASSES = re.compile(LOST_CLASSES.format(lost=r"(\d{1,9})", known=r"(\d{1,9})"))  # int() of 4,300 digits raises


def _held_back(promo: dict) -> tuple[list[str], int | None, int | None]:
    """The decision's `held_back` codes, and with "forgets" the classes lost of those known."""
    held = promo.get("held_back")
    if isinstance(held, list):
        return held, promo.get("lost_classes"), promo.get("known_classes")
    # Decisions stored before the rule wrote `held_back` (registries on disk keep them, and the page and the desktop app
    # still list them) have only the reason in words: read the same codes from it, as the table did then.
    reason = promo.get("reason") or ""
    lost = _LOST_CLASSES.search(reason)
    found = {FORGETS: lost, WORSE: " worse than " in reason, TOO_FEW: "too few" in reason}
    held = [code for code, said in found.items() if said] or ([] if promo.get("n_images") else [NO_TEST_PHOTOS])
    return held, *((int(lost[1]), int(lost[2])) if lost else (None, None))


def promotion_verdict(m: dict) -> str:
    """How a version came in, in a few words for the table: the promotion rule's verdict on a job's candidate
    ("promoted automatically", "kept as candidate: worse on 12 test photos"), or how it came without one ("added by
    hand"); "–" when the registry does not say. `promotion_details` says it whole."""
    promo = m.get("promotion") or {}
    if arrival := ARRIVALS.get(promo.get("decision")):
        return arrival + (" and promoted" if promo.get("decision") == "added" and promo.get("promoted") else "")
    if not promo:
        return "–"
    if promo.get("promote", promo.get("promoted")):
        return "promoted automatically"
    n, serving = promo.get("n_images"), promo.get("serving_version")
    photos = f"{n:,} test photo{'' if n == 1 else 's'}" if isinstance(n, int) else "its test photos"
    held, lost, known = _held_back(promo)
    first = next((code for code in HELD_BACK if code in held), None)
    if first == FORGETS:
        theirs = f"v{serving}'s" if serving else "the serving model's"
        counted = isinstance(lost, int) and isinstance(known, int)
        why = f"does not know {f'{lost} of {theirs} {known}' if counted else f'all of {theirs}'} classes"
    elif first == WORSE:
        why = f"worse on {photos}"
    elif first == TOO_FEW:
        why = f"{photos} are too few to tell"
    elif first == NO_TEST_PHOTOS:
        why = "no test photos left to compare on"
    else:
        why = ""
    return "kept as candidate" + (f": {why}" if why else "")


def promotion_details(m: dict) -> str:
    """How the version chosen under the table came in, whole: the verdict, why in the registry's words (for a job's
    candidate, the promotion rule's figures on both models) and the copy it is served as."""
    promo = m.get("promotion") or {}
    if not promo:
        return f"**Version {m['version']}:** the registry does not say how it came in."
    lines = [f"**Version {m['version']}: {md_escape(promotion_verdict(m))}.**"]
    if promo.get("reason"):
        lines.append(f"Why: {md_escape(promo['reason'])}.")
    if copy := serving_copy_words(promo):
        lines.append(md_escape(copy))
    return "  \n".join(lines)


def rollback_target(history: list[dict] | None) -> int | None:
    """The version a rollback would serve, from GET /v1/models' `history` (the serving events, oldest first), as the
    registry works it out (serving_stack): None when no earlier version served. The desktop app and the Retrain tab
    offer a rollback by it."""
    stack = serving_stack([(ev.get("action"), ev.get("version")) for ev in history or []])
    return stack[-2] if len(stack) >= 2 else None
