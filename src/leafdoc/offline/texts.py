"""The offline page's words in every language leafdoc speaks (core/i18n.py: English, Spanish, French, Hindi), sent
once in model.json so the page speaks them with no connection: its own lines, the server's refusals (abstain.py,
quality.py, fieldcrops.py, lookalikes.py: the same catalog messages, so the page says what the server says) and the
advice's titles, summaries and how to tell look-alikes apart (the knowledge base's words). static/words.js puts
them together as abstain.decide and answer.refusal_message do.
"""

from __future__ import annotations

from leafdoc.advice.lookalikes import COULD_BE, TELL_APART, URGENT, URGENT_FLOOR, URGENT_TOP, how_to_tell_words
from leafdoc.core.i18n import LANGUAGES, N_, NAMES, OR, UNREVIEWED_NOTE, Advice, Rendering, gettext, render
from leafdoc.imaging.quality import PROBLEM_WORDS
from leafdoc.inference.abstain import (
    NOT_A_LEAF,
    PHOTO_ADVICE,
    PHOTO_ADVICE_OR_CROP,
    POOR_PHOTO,
    SEMICOLONS,
    UNKNOWN_LEAF,
    UNLIKE_TRAINING,
    UNSURE,
    UNSURE_WHAT,
)
from leafdoc.inference.cropfirst import CROP_MISMATCH, crop_indices, crops_of, single_label_words
from leafdoc.inference.fieldcrops import crop_of, crop_words, crops_known, lab_only_words, learnt_crops
from leafdoc.words import history
from leafdoc.words.feedback import (
    ACTUALLY,
    NO,
    SEND,
    THANKS_RIGHT,
    THANKS_TOLD,
    THANKS_WRONG,
    WAS_IT_RIGHT,
    WHAT_IS_IT,
    YES,
)
from leafdoc.words.model_card import LIMITS_TITLE, limits_words
from leafdoc.words.percent import SPACE_BEFORE_SIGN
from leafdoc.words.photo_guide import FRAMED, NOT_FRAMED_WITH, knows_sentences

PAGE = {
    "pick": N_("Take or choose a photo of one leaf"),
    "loading": N_("Loading the model…"),
    "downloading": N_("Downloading the model once, for use with no connection: {got} of {total} MB…"),
    "stalled": N_("nothing came for {s} seconds"),
    "download_failed": N_(
        "The model could not be loaded ({error}). Check the connection, then try again: what is already downloaded "
        "is kept."
    ),
    "retry": N_("Try again"),
    "diagnosing": N_("Diagnosing {file}…"),
    "ready_offline": N_("Ready, also with no connection: {n} conditions of leaves (model version {version})."),
    "ready_online": N_("Ready while this page stays open (this browser cannot keep it for offline use)."),
    "note": N_(
        "Diagnosed on this device, with no connection: the photo leaves it only if you say whether the answer was "
        "right (it is then sent with your answer when there is a connection). This page runs the server's checks: the "
        "photo (too small, dark, over-exposed, one colour, black and white, blurred), whether it is a leaf like the "
        "ones the model learnt from or a field photo, and the model's own doubt."
    ),
    "full_page": N_("With a connection, the full page also exports your history as CSV."),
    "no_checks": N_(
        "This model comes without the checks of whether a photo is a leaf like the ones it learnt from, so the page "
        "answers only when the model is very sure: photograph one leaf on a plain sheet."
    ),
    "strict": N_(
        "Here, with no connection, leafdoc answers only when it is very sure, as it cannot check that the photo is "
        "like the ones it learnt from: send it with a connection for a full answer."
    ),
    "not_sure": N_("Not sure"),
    "poor_photo": N_("Take another photo: this one cannot be read"),  # the full page's heading (ui/text.py)
    "sure": N_("{percent}% sure"),
    "on_device": N_("{file} · {ms} ms on this device"),
    # the browser's own reason (in English) goes to the answer's tooltip, not into the grower's sentence
    "cannot_read": N_(
        "{file}: this browser cannot read this photo. Take another one, or send it from the full page when there is "
        "a connection."
    ),
    "language": N_("Language"),
    "heat_map": N_("Tap the photo to see where the model looked."),
    "earlier": N_("Earlier on this device"),
    "crop": N_("Crop (if you know it)"),
    "crop_unknown": N_("I don't know"),
    "unreviewed": UNREVIEWED_NOTE,
    "framed": FRAMED,  # the leaf was small: the model read the square around it (photo_guide.said_framed's rule)
    # feedback, kept on the device and sent when there is a connection (static/feedback.js)
    "was_right": WAS_IT_RIGHT,
    "yes": YES,
    "no": NO,
    "what_is_it": WHAT_IS_IT,
    "send": SEND,
    "queued": N_("Thank you. Your answer and the photo will be sent to the server when there is a connection."),
    "waiting": N_("Answers waiting for a connection to be sent: {n}"),
    "sent_earlier": N_("Sent to the server: {n} answers given with no connection."),
    "sent_other": N_(
        "✓ Sent. The server answered this photo differently, so your “no” was not recorded against its answer."
    ),
    "not_sent": N_("Not sent: {error}"),
    "not_kept": N_("Your answer could not be kept on this device ({error})."),
    "queue_full": N_("{n} answers are already waiting to be sent: connect to the internet first, to send them."),
    "thanks_right": THANKS_RIGHT,
    "thanks_wrong": THANKS_WRONG,
    "thanks_told": THANKS_TOLD,
    "actually": ACTUALLY,
}
# Templates the page fills in (their {placeholders} kept), by what the server's decision and answer call them.
TEMPLATES = {
    "poor_photo": POOR_PHOTO,
    "semicolons": SEMICOLONS,
    "unsure": UNSURE,
    "unsure_what": UNSURE_WHAT,  # a healthy leaf among the candidates (abstain.unsure_words)
    "photo_advice": PHOTO_ADVICE,
    "photo_advice_or_crop": PHOTO_ADVICE_OR_CROP,  # candidates of several crops
    "could_be": COULD_BE,
    "tell_apart": TELL_APART,
    "or": OR,
    "not_a_leaf": NOT_A_LEAF,
    "unlike_training": UNLIKE_TRAINING,
    "unknown_leaf": UNKNOWN_LEAF,  # a lab's model's `other_leaves` check (static/checks.js `otherLeafScore`)
    "crop_mismatch": CROP_MISMATCH,  # the crop named all but ruled out (static/app.js `mismatched`)
    "urgent": URGENT,
}
# When an answer warns of an urgent look-alike (lookalikes.urgent_lookalike_words): among its top few, above a floor.
URGENT_RULE = {"top": URGENT_TOP, "floor": URGENT_FLOOR}


def language_texts(lang: str, labels: list[str], knowledge, card_field: dict | None, card: dict | None = None) -> dict:
    """Everything the page says in `lang` for a model of `labels` (`card`: its card, for its limitations)."""
    advice, urgent = {}, {}
    say = Rendering(lang, knowledge.resolve)
    for label in labels:
        ref = knowledge.reference(label, lang)
        if ref["available"]:
            entry = knowledge.get(label)
            advice[label] = {
                "title": ref["title"],
                "summary": ref["summary"],
                "healthy": entry.healthy,
                "urgent": bool(entry.urgent),
                "unreviewed": ref["translation"] == "unreviewed",
            }
            if entry.urgent:  # why it cannot wait (the warning on a milder look-alike's answer says it)
                urgent[label] = say(Advice(label, "urgent", " ".join(entry.urgent.split())))
    # How to tell a from b, in the order a "not sure" names them (either entry may say it, and a's is read first)
    how_to_tell = {}
    for a in labels:
        for b in labels:
            if a != b and (how := how_to_tell_words(knowledge, a, b)):
                how_to_tell[f"{a}|{b}"] = say(how)
    learnt = learnt_crops(card_field)
    lab_only = {}
    if learnt:
        for crop in sorted({crop_of(label) for label in labels} - set(learnt)):
            lab_only[crop] = render(lab_only_words(f"{crop}___", learnt), lang)
    # crop first: each crop's name, and for a crop known by one label, why naming it cannot narrow the answer; none
    # for a model whose labels name no crop (the page then hides its crop picker, app.js)
    crops = {crop: render(crop_words(crop), lang) for crop in crops_of(labels)}
    single_label = {}
    for crop in crops:
        own = [labels[i] for i in crop_indices(labels, crop)]
        if len(own) == 1:
            single_label[crop] = render(single_label_words(own[0]), lang, knowledge.resolve)
    return {
        "name": NAMES[lang],
        "page": {key: gettext(lang, text) for key, text in PAGE.items()},
        "not_framed_with": list(NOT_FRAMED_WITH),  # the refusals the framing note does not go with (words.js)
        "history": history.templates(lang),
        # a percentage's sign as the language sets it (words/percent.py; words.js fills in the figure)
        "percent": "{share}" + SPACE_BEFORE_SIGN.get(lang, "") + "%",
        "templates": {key: gettext(lang, text) for key, text in TEMPLATES.items()},
        "problems": {code: gettext(lang, text) for code, text in PROBLEM_WORDS.items()},
        "lab_only": lab_only,
        "how_to_tell": how_to_tell,
        "urgent": urgent,
        "crops": crops,
        "single_label": single_label,
        "advice": advice,
        # what the model knows and, folded under a title, what it cannot do: as the web page says them under the photo
        # (its first sentence bold there: `**` taken off here, the page makes it bold)
        "knows": [k.replace("**", "") for k in knows_sentences(labels, crops_known(labels, card_field), lang)],
        "limits_title": gettext(lang, LIMITS_TITLE),
        "limits": limits_words({"card": card or {}}, lang) or [],
    }


def all_texts(labels: list[str], knowledge, card_field: dict | None, card: dict | None = None) -> dict:
    return {lang: language_texts(lang, labels, knowledge, card_field, card) for lang in LANGUAGES}
