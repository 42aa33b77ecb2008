"""A model version's card in words: what it learnt from (and the data's licences), the classes it knows, its test
figures with the photos they were measured on, its limitations. The one rendering of `leafdoc models show`, the web
page's models table and the desktop app's Retrain tab: `card_sections` says what is shown, `card_text` lays it out
for a terminal and `card_markdown` for the page and the app. `limits_note` is the part a grower reads under the
photo (the serving model's limitations).

Every function takes a model version as `GET /v1/models/{version}` answers it (`version`, `status`, `created`,
`source`, `dataset`, `labels`, `card`, ...), already redacted of the server's folders by whoever fetched it; a model
folder read from disk is given in the same shape (cli/models.py). Nothing here imports Gradio or Qt.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

from leafdoc.core.i18n import N_, gettext, label_words
from leafdoc.words.job_phases import version_status_words
from leafdoc.words.labels import names_crop
from leafdoc.words.percent import measured_share, precise_percent

WEAKEST = 3  # the classes of lowest recall shown, when the card keeps per-class figures

# What a grower reads under the photo, above the serving model's limitations: the card's words in the page's
# language where the card has them (`limitations_translated`), else in English, each said so.
LIMITS_TITLE = N_("What this model cannot do")
LIMITS_IN_ENGLISH = N_("In its model card's words, in English:")
LIMITS_TRANSLATED = N_("Its model card's words, translated and not yet reviewed:")


@dataclass
class Section:
    """A titled part of the card: its paragraphs, or (`bullets`) a list."""

    title: str
    lines: list[str] = field(default_factory=list)
    bullets: bool = False
    spaced: bool = False  # long paragraphs: a blank line between them in a terminal


def _share(value) -> str | None:
    """A share to one decimal, never "100.0%" (words/percent.py's rule): ">99.9%"."""
    return precise_percent(value, 1) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _counted_share(value: float, n: int | None) -> str:
    """A test share with the photos it counts: "for 24 of 24", "for 5,219 of 5,221 (>99.9%)"; never ">99.9%" of 24
    photos (a share 24 photos cannot have). Without a count, the share alone."""
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        return _share(value) or ""
    right = round(value * n)
    return f"for {right:,} of {n:,}" + ("" if right == n else f" ({_share(value)})")


def _answered_on_validation(abstain: dict, n: int | None) -> str:
    """The share of the validation photos answered (the rest: "not sure") and right, counted when the card gives
    how many there were: ">99.9%" of 38 photos is not a share 38 photos can have."""
    cov, right = abstain["val_coverage"], abstain.get("val_selective_accuracy")
    sure = abstain.get("min_confidence")
    below = f'; it says "not sure" below {sure:.0%} sure' if isinstance(sure, int | float) else ""
    if not isinstance(n, int) or n <= 0:
        said = f"On its validation photos it answered {_share(cov)} (the rest: not sure)"
        return said + (f", right on {_share(right)} of those answered" if _share(right) else "") + below + "."
    answered = round(cov * n)
    said = (
        f"On its {n:,} validation photos it answered all"
        if answered == n
        else f"On its validation photos it answered {answered:,} of {n:,} ({_share(cov)}) and was not sure of the rest"
    )
    if _share(right) and answered:
        k = round(right * answered)
        them = "of them" if answered == n else f"of the {answered:,} it answered"
        said += ", right on every one" if k == answered else f", right on {k:,} {them} ({_share(right)})"
    return said + below + "."


def _crop_groups(labels: list[str], name: Callable[[str], str] = label_words) -> list[tuple[str, list[str]]]:
    """The labels grouped by crop, in the order the crops first come (PlantVillage's `Crop___condition`); a label
    with no crop part (a lab's own `rose_rust`) is a group of its own name. `name`: a label in words, "Crop —
    Condition" (the faces pass advice.render.label_name, so a class reads as an answer names it: "Huanglongbing
    (citrus greening)", not PlantVillage's misspelt "Haunglongbing")."""
    groups: dict[str, list[str]] = {}
    for label in labels:
        words = name(label)
        crop, _, condition = words.partition(" — ") if names_crop(label) else (words, "", "")
        groups.setdefault(crop, [])
        if condition:
            groups[crop].append(condition)
    return list(groups.items())


def _about(model: dict, card: dict) -> list[str]:
    lines = []
    made = card.get("created") or model.get("created") or ""
    when = made[:16].replace("T", " ") + (" UTC" if made.endswith(("+00:00", "Z")) else "")
    how = f"leafdoc {card['leafdoc_version']}" if card.get("leafdoc_version") else ""
    net = card.get("backbone") or ""
    size = (card.get("input") or {}).get("size")
    if net:
        how = ", ".join(filter(None, [how, net + (f" at {size} px" if size else "")]))
    lines.append((f"Made {when}" if made else "When it was made is not recorded") + (f" ({how})" if how else "") + ".")
    ds = card.get("dataset") or {}
    if ds.get("name") or model.get("dataset"):
        name = ds.get("name") or model.get("dataset")
        version = ds.get("version") or model.get("dataset_version")
        split = ds.get("split") or {}
        parts = [f"{split[k]:,} {w}" for k, w in (("train", "training"), ("val", "validation"), ("test", "test"))]
        parts = [p for p, k in zip(parts, ("train", "val", "test"), strict=True) if isinstance(split.get(k), int)]
        said = f"Dataset {name}" + (f" v{version}" if version else "")
        if parts:
            said += ": " + ", ".join(parts) + " photos"
        if ds.get("split_rule"):
            said += f" (split {ds['split_rule']})"
        lines.append(said + ".")
    parent = card.get("parent_version") or model.get("parent_version")
    if parent:
        lines.append(f"Retrained from model version {parent}.")
    if model.get("source"):
        lines.append(f"Registered from: {model['source']}.")
    return lines


# The line a card trained without --provenance keeps (train/card_text.NO_PROVENANCE, a `leafdoc train` option): what
# an app's reader is told instead, who cannot pass it.
NO_PROVENANCE_START = "Provenance not given:"
NO_PROVENANCE_APP = (
    "Provenance not given: whoever trained this version did not name the photos' sources and licences. Check where "
    "its photos came from before serving it."
)


# The sentence of a trained model's limitations (train/card_text.data_limitations) that tells a lab to score it with a
# command: what an app's reader is told instead.
SCORE_IT_CLI = re.compile(r"Score it on such photos with `leafdoc evaluate [^`]*` before relying on it\.")
SCORE_IT_APP = "Try it on a few such photos whose diagnosis you know before relying on it."


def _limitations(card: dict, face: str = "cli") -> list[str]:
    lines = [p.strip() for p in (card.get("limitations") or "").split("\n") if p.strip()]
    if face == "app":
        lines = [SCORE_IT_CLI.sub(SCORE_IT_APP, p) for p in lines]
    return lines or ["The card states none."]


def _learnt_from(card: dict, face: str = "cli") -> list[str]:
    lines = [p.strip() for p in (card.get("provenance") or "").split("\n") if p.strip()]
    if face == "app":
        lines = [NO_PROVENANCE_APP if p.startswith(NO_PROVENANCE_START) else p for p in lines]
    pre = card.get("pretrained") or {}
    if pre.get("licence") and pre.get("licence") not in (card.get("provenance") or ""):
        where = pre.get("source") or pre.get("url") or "its source"
        weights = pre.get("dataset") or "pretrained"
        lines.append(f"Starting weights: {weights}, from {where} (licence {pre['licence']}).")
    return lines or ["The card does not say what the model learnt from."]


def _figures(
    card: dict, name: Callable[[str], str] = label_words, n_labels: int | None = None, face: str = "cli"
) -> list[str]:
    metrics = card.get("metrics") or {}
    test, val = metrics.get("test") or {}, metrics.get("val") or {}
    lines = []
    if _share(test.get("accuracy")):
        extra = []
        if _share(test.get("top3_accuracy")) and (n_labels is None or n_labels > 3):  # else always right
            extra.append(f"the right answer among the top three {_counted_share(test['top3_accuracy'], test.get('n'))}")
        if isinstance(test.get("macro_f1"), int | float):
            extra.append(f"macro F1 {test['macro_f1']:.3f}")
        if isinstance(test.get("ece"), int | float):
            extra.append(f"calibration error {test['ece']:.3f}")
        photos = " test photos" if isinstance(test.get("n"), int) and test["n"] > 0 else " on the test photos"
        learnt = ((card.get("dataset") or {}).get("test_learnt_by_start")) or 0
        unseen = (
            f", {learnt:,} of which the network it started from learnt: the figure overstates it"
            if learnt
            else ", photos no training saw"
        )
        lines.append(
            f"Test accuracy {measured_share(test)}{photos}{unseen}" + (f" ({'; '.join(extra)})" if extra else "") + "."
        )
    else:
        lines.append("No test figures in this card.")
    selective = test.get("selective") or {}
    coverage = test.get("coverage", selective.get("coverage"))
    answered_right = test.get("selective_accuracy", selective.get("accuracy"))
    abstain = card.get("abstain") or {}
    if _share(coverage):
        said = f"On the test photos it answered {_share(coverage)} (the rest: not sure)"
        if _share(answered_right):
            said += f", right on {_share(answered_right)} of those answered"
        lines.append(said + ".")
    elif _share(abstain.get("val_coverage")):
        lines.append(_answered_on_validation(abstain, val.get("n")))
    if _share(val.get("accuracy")):
        # a model that learnt its validation photos last (train_on_val) is scored on photos it learnt: said so, or its
        # 100% read as a second test beside the share right before it learnt them
        learnt = ((card.get("dataset") or {}).get("val_learnt")) or 0
        after = ", which it then learnt from: not photos it never saw" if learnt else ""
        lines.append(f"Validation accuracy {measured_share(val)} validation photos{after}.")
    per_class = test.get("per_class") or {}
    ranked = sorted(
        (
            (c["recall"], label, c.get("support"))
            for label, c in per_class.items()
            if isinstance(c, dict) and isinstance(c.get("recall"), int | float) and c.get("support")
        ),
        key=lambda r: (r[0], r[1]),
    )
    if ranked and ranked[0][0] >= 1.0:
        lines.append(f"Every class's test photos were all found ({len(ranked)} classes: recall 100% each).")
    elif ranked:
        weakest = []
        for recall, label, support in [r for r in ranked if r[0] < 1.0][:WEAKEST]:
            found = f", {round(recall * support):,} of {support:,}" if isinstance(support, int) else ""
            weakest.append(f"{name(label)} {_share(recall)}{found}")
        lines.append("Weakest classes (recall on the test photos): " + "; ".join(weakest) + ".")
    elif _share(test.get("accuracy")):
        lines.append(
            "This card keeps no per-class figures" + (" (leafdoc evaluate gives them)." if face == "cli" else ".")
        )
    return lines


def card_sections(model: dict, name: Callable[[str], str] = label_words, face: str = "cli") -> list[Section]:
    """The card of one model version (as GET /v1/models/{version} gives it) as titled sections, in reading order;
    `name` names a label ("Crop — Condition"). `face`: "cli" (`leafdoc models show`) says what to do in `leafdoc`
    commands; "app" (the desktop app and the web page, whose users have none to type) in words."""
    card = model.get("card") or {}
    labels = list(model.get("labels") or [])
    version = model.get("version")
    if version is not None:
        # the status in the versions tables' words ("not promoted", not the registry's "rejected")
        status = version_status_words(model)
        title = f"Model version {version}" + (f" · {status}" if status else "")
    else:
        title = "Model folder " + (model.get("folder") or "")
    groups = _crop_groups(labels, name)
    # crops are counted only where every label names one (`Crop___condition`): a lab's "late blight" and "healthy"
    # are two classes, not two crops
    crops = len(groups) if labels and all(map(names_crop, labels)) else 0
    of = f" of {crops} crop{'s' if crops != 1 else ''}" if crops else ""
    classes = Section(
        f"The classes it knows: {len(labels)}{of}",
        [f"{crop} ({len(conds)}): {'; '.join(conds)}" if conds else crop for crop, conds in groups],
        bullets=True,
    )
    return [
        Section(title, _about(model, card)),
        Section("What it learnt from", _learnt_from(card, face), spaced=True),
        classes,
        Section("Test figures", _figures(card, name, len(labels) or None, face)),
        Section("Limitations", _limitations(card, face), spaced=True),
    ]


def card_text(model: dict, width: int = 80, name: Callable[[str], str] = label_words) -> str:
    """The card for a terminal: each section's title, its paragraphs wrapped at `width`, bullets indented."""
    out: list[str] = []
    for i, section in enumerate(card_sections(model, name)):
        if i:
            out.append("")
        out.append(section.title)
        out.append("─" * min(len(section.title), width))
        for j, line in enumerate(section.lines):
            if section.spaced and j:
                out.append("")
            if section.bullets:
                out += textwrap.wrap(
                    line, width, initial_indent="  • ", subsequent_indent="    ", break_on_hyphens=False
                )
            else:
                out += textwrap.wrap(line, width, break_on_hyphens=False) or [""]
    return "\n".join(out)


def md_escape(value: str) -> str:
    """Text safe inside Markdown (the page's and Qt's): HTML escaped, Markdown's emphasis and link characters
    neutralised."""
    return re.sub(r"([\\`*_\[\]#|~])", r"\\\1", html.escape(str(value), quote=False))


def card_markdown(
    model: dict, heading: str = "####", name: Callable[[str], str] = label_words, face: str = "cli"
) -> str:
    """The card as Markdown: a `heading` per section, paragraphs, a list for the classes (`face`: card_sections')."""
    out: list[str] = []
    for section in card_sections(model, name, face):
        out.append(f"{heading} {md_escape(section.title)}")
        if section.bullets:
            out.append("\n".join(f"- {md_escape(line)}" for line in section.lines))
        else:
            out += [md_escape(line) for line in section.lines]
    return "\n\n".join(out)


def limits_words(model: dict | None, lang: str = "en") -> list[str] | None:
    """The serving model's limitations for a grower in `lang`, as plain paragraphs: the card's own words, in `lang`
    where the card has them translated (after a line saying they are not yet reviewed), else in English (after a
    line saying so, in another language). None when the card states none. Under LIMITS_TITLE on the page
    (`limits_note`) and in the desktop app."""
    card = (model or {}).get("card") or {}
    limits = card.get("limitations") or ""
    translations = card.get("limitations_translated")
    text = translations.get(lang) if lang != "en" and limits and isinstance(translations, dict) else None
    text = text if isinstance(text, str) and text.strip() else None
    paragraphs = [p.strip() for p in (text or limits).split("\n") if p.strip()]
    if not paragraphs:
        return None
    if lang != "en":
        paragraphs.insert(0, gettext(lang, LIMITS_TRANSLATED if text else LIMITS_IN_ENGLISH))
    return paragraphs


def limits_note(model: dict | None, lang: str = "en") -> str | None:
    """`limits_words` as Markdown folded under LIMITS_TITLE in `lang`, for the web page."""
    paragraphs = limits_words(model, lang)
    if not paragraphs:
        return None
    body = "\n\n".join(md_escape(p) for p in paragraphs)
    return f"<details><summary>{html.escape(gettext(lang, LIMITS_TITLE))}</summary>\n\n{body}\n\n</details>"
