"""The words of feedback, review and monitoring on the web page (pure functions of the API's answers)."""

from __future__ import annotations

from leafdoc.advice.render import label_name
from leafdoc.core.i18n import N_, gettext
from leafdoc.ui.text import esc, percent, pretty_label
from leafdoc.words.feedback import thanks_words

PHOTOS_KEPT = N_(
    "**Photos are kept on this server**: an admin may look at yours and, once labelled, add it to the training photos."
)
PHOTO_SENT = N_("Your photo is sent to the leafdoc server for the diagnosis.")
PHOTO_NOT_KEPT = N_(
    "The photo is used for this diagnosis only: the server keeps the answer (and your feedback), not the photo."
)


def privacy_note(keep_photos: bool | None, lang: str = "en") -> str:
    if keep_photos:
        return gettext(lang, PHOTOS_KEPT)
    return gettext(lang, PHOTO_SENT if keep_photos is None else PHOTO_NOT_KEPT)


def thanks(correct: bool, label: str | None, lang: str = "en", refused: bool = False) -> str:
    # named as the "It is actually…" menu named it, in the page's language (it said the label's English words)
    return thanks_words(lang, correct, esc(label_name(label, lang)) if label else None, refused)


REVIEW_COLUMNS = ["when", "answer", "sure", "user said", "photo", "id"]
NO_PHOTOS_KEPT = (
    "This server does not keep the photos it diagnoses, so no answer here can join a dataset: read what users said, "
    "and dismiss what has nothing to teach. (Whoever runs the server can keep photos with "
    "`LEAFDOC_KEEP_PHOTOS=true`; answers from then on have theirs.)"
)
NO_PHOTO = "No photo was kept with this answer (it came before the server kept photos), so it cannot join a dataset."


def cannot_add(item: dict | None, keep_photos: bool) -> str | None:
    """Why the answer chosen in the Review tab cannot join a dataset (*Add to the dataset* is then disabled and this
    is said under it): only a kept photo can. "" with no answer chosen; None when it can."""
    if item is not None and item.get("has_photo"):
        return None
    if not keep_photos:
        return NO_PHOTOS_KEPT
    return "" if item is None else NO_PHOTO


def review_rows(items: list[dict]) -> list[list[str]]:
    rows = []
    for i in items:
        if i["abstained"]:
            answer = f"abstained ({i['reason']}); best guess {pretty_label(i['top_label'] or '?')}"
        else:
            answer = pretty_label(i["label"] or "?")
        if i.get("crop_given"):
            answer += f" (crop given: {i['crop_given']})"
        if i["feedback_correct"] is None:
            said = "—"
        elif i["feedback_correct"]:
            said = "✓ right"
        elif i["abstained"] and i["feedback_label"]:  # a refusal is no answer to be wrong about
            said = f"said it is {pretty_label(i['feedback_label'])}"
        else:
            said = "✗ wrong" + (f": {pretty_label(i['feedback_label'])}" if i["feedback_label"] else "")
        rows.append(
            [
                str(i["created"])[:16].replace("T", " "),
                answer,
                percent(i["confidence"]),
                said,
                "kept" if i["has_photo"] else "not kept",
                i["prediction_id"][:10],
            ]
        )
    return rows


def review_choice(item: dict) -> str:
    return f"{item['prediction_id'][:10]} · {pretty_label(item['top_label'] or '?')}"


def reviewed(answer: dict, retrain: str = "the Retrain tab") -> str:
    """What labelling a review answer did; `retrain` names where to retrain (the web page: phone.tab_where, which
    says where a phone keeps that tab)."""
    up = answer["upload"]
    return (
        f"✓ Labelled **{esc(pretty_label(answer['prediction']['reviewed_label']))}**: the photo is in "
        f"**{esc(up['dataset'])} v{up['version']}** ({up['n_images']} photos). Retrain on it in {retrain}."
        if up["created_version"]
        else f"✓ Labelled; the photo was already in {esc(up['dataset'])} v{up['version']}, so no new version."
    )


SMALL_BASE = 100  # answers or photos: below this, one of them is more than a percent of them, so counts are said


def share_of(count: int, total: int) -> str:
    """`count` of `total` as the Monitor tab says it: "3%" of many, "0 of 6" of a few (a percentage of 6 photos, "<1%"
    or "17%", reads as a measure it is not)."""
    return f"{count:,} of {total:,}" if total < SMALL_BASE else percent(count / total if total else None)


def abstained(figures: dict) -> int:
    """How many of a window's or a baseline's answers abstained (GET /v1/monitoring's counts by reason)."""
    return sum((figures.get("abstentions") or {}).values())


def drift_summary(report: dict) -> str:
    d = report["drift"]
    w = report["drift_window"]
    who = f"the serving model (version {report['model_version']})"
    head = f"**Last {w['hours']} hours, by {who}:** {w['answers']} answers"
    if w["answers"]:
        head += f", {share_of(abstained(w), w['answers'])} abstained"
        if w["feedback"]:
            head += f", feedback agreed {w['agreed']} of {w['feedback']} times"
    base = report.get("baseline")
    if base:
        n = base["answers"]
        head += f". On its {n:,} validation photos it abstained on {share_of(abstained(base), n)}."
    else:
        head += ". This model has no validation baseline, so drift is not checked."
    if not d.get("checked"):
        return head + (f"\n\nNo drift verdict: {esc(d.get('why', ''))}." if base else "")
    if not d["warnings"]:
        return head + "\n\n✓ **No drift:** the answers look like those on the validation photos."
    return head + "\n\n" + "\n".join(f"- ⚠ **{esc(x['message'])}**" for x in d["warnings"])


OPEN_TO_EVERYONE = "show these figures to everyone with `LEAFDOC_MONITORING_OPEN=true`"


def monitoring_refused(exc: Exception, enter: str, sent_token: bool) -> str | None:
    """Markdown saying why the figures were refused (GET /v1/monitoring's 401 or 403: the admin token) and what to do,
    in the app's words (`enter`: how to give it the token); None for any other failure."""
    status = getattr(exc, "status", None)
    if status == 401 and not sent_token:
        title = "The figures need the admin token"
        message = (
            "They tell how many photos this service answers and which diseases its growers see, so only the people "
            "who run it can read them."
        )
        hint = f"{enter} No token? Ask whoever runs this server; they can also {OPEN_TO_EVERYONE}."
    elif status == 401:
        title, message = "Admin token refused", "That admin token is wrong."
        hint = f"Check it with whoever runs this server. {enter}"
    elif status == 403:
        title = "Figures shown to no one"
        message = "This server has no admin token set, so it shows its monitoring figures to no one."
        hint = f"Whoever runs it can set `LEAFDOC_ADMIN_TOKEN` (then enter that token here), or {OPEN_TO_EVERYONE}."
    else:
        return None
    return f"## {title}\n\n**{message}**\n\n{hint}"
