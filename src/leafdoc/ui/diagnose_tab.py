"""The Diagnose tab: a photo in, the verdict, the most likely labels and the heat map out, and under the
answer "was this right?" (thumbs up / down, and "it is actually ..."), sent to the feedback route."""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import gradio as gr

from leafdoc.advice.render import label_name
from leafdoc.api_client import ApiError
from leafdoc.core.i18n import N_, gettext
from leafdoc.core.settings import Settings
from leafdoc.ui import advice, carry, feedback_text, history, text
from leafdoc.ui.common import EXAMPLE_LABELS, EXAMPLES, PageFiles, api_client, png, problem, sent_name
from leafdoc.ui.i18n import said, t
from leafdoc.ui.language import page_language
from leafdoc.words import photo_guide
from leafdoc.words.feedback import asks_feedback
from leafdoc.words.labels import crop_name, is_healthy
from leafdoc.words.model_card import limits_note
from leafdoc.words.photo_errors import photo_error_words

log = logging.getLogger(__name__)

COULD_NOT_DIAGNOSE = N_("Could not diagnose this photo")
DIAGNOSE_FIRST = N_("Diagnose a photo first.")
NOT_SENT = N_("Feedback not sent")
PICK_FIRST = N_("Pick what it is first.")


def _no_scores() -> dict:
    # No label in an update: the label (t("most_likely"), set when the page is built) is Gradio's I18nData, which
    # its API route (/gradio_api/call/...) cannot write as JSON: the event's answer was cut off there.
    return gr.update(value=None, visible=True)


def _verdict_update(md: str, kind: str) -> dict:
    return gr.update(value=md, elem_classes=["verdict", f"verdict-{kind}"])


def feedback_updates(answer: dict | None, lang: str) -> tuple:
    """What the feedback box shows under `answer`, as /app does (offline/static/app.js `feedbackRow`): under a diagnosis
    "Was this right?", ✓ Yes, ✗ No and "It is actually…"; under a refusal no Yes or No (there is no answer to be right
    or wrong: a "yes" was stored as correct), only "What is it? (if you know)" and Send; under a photo refused as
    unusable nothing (take another). In the order of the outputs: the box, the question, Yes, No, Send, the dropdown's
    label."""
    if not answer or not asks_feedback(answer):
        return (gr.update(visible=False), gr.update(), gr.update(), gr.update(), gr.update(visible=False))
    refused = bool(answer.get("abstained"))
    return (
        gr.update(visible=True),
        said("what_is_it" if refused else "was_this_right", lang),
        gr.update(visible=not refused),
        gr.update(visible=not refused),
        gr.update(visible=refused),
    )


def crop_choices(crops: list[str], lang: str = "en") -> list[tuple]:
    """The crop dropdown's choices: "I don't know" (every label), then the serving model's crops as the API names
    them (`tomato`, `bell pepper`, the value sent), shown in the page's language with a capital."""
    return [(t("crop_unknown"), ""), *((crop_name(c, lang), c) for c in crops)]


_LABELS: dict[int, list[str]] = {}  # a version's labels never change: fetched once (its card is 35 KB), a few kept
_LABELS_KEPT = 8


def labels_of(api, version: int) -> list[str]:
    """The labels of a model version, for the "What is it?" list: fetched from the API once per version, not with
    every diagnosis."""
    if version not in _LABELS:
        if len(_LABELS) >= _LABELS_KEPT:
            _LABELS.pop(next(iter(_LABELS)))
        _LABELS[version] = list(api.model(version).get("labels", []))
    return _LABELS[version]


# Gradio's Image fires `change` twice when a photo replaces another (the same file, the same visitor, at once): each
# photo after the first was diagnosed twice, recorded twice for review and counted twice by monitoring. The second of
# two events for one photo, crop and visitor within AGAIN_SECONDS is skipped. The Diagnose button asks again, but not
# while that photo's diagnosis is on its way: tapped during a slow upload, it made a second one (the slow-network
# review of session 72: two POST /v1/explain for one photo, one answer shown).
AGAIN_SECONDS, AGAIN_KEPT = 10.0, 1024


class RecentPhotos:
    """The (visitor, photo, crop) diagnosed in the last AGAIN_SECONDS, at most AGAIN_KEPT of them, and those whose
    diagnosis is on its way (shared by the photo's events and the Diagnose button)."""

    def __init__(self) -> None:
        self.seen: OrderedDict[tuple, float] = OrderedDict()
        self.running: Counter[tuple] = Counter()
        self.lock = threading.Lock()

    @contextmanager
    def diagnosing(self, key: tuple, asked: bool) -> Iterator[bool]:
        """Whether to diagnose `key` now (False: its answer is on its way, or, unless `asked`, was just given), checked
        and, if so, marked on its way under one lock, so that two events arriving together cannot both go."""
        now = time.monotonic()
        with self.lock:
            last = self.seen.pop(key, None)
            self.seen[key] = now
            while len(self.seen) > AGAIN_KEPT:
                self.seen.popitem(last=False)
            go = self.running[key] == 0 and (asked or last is None or now - last >= AGAIN_SECONDS)
            if go:
                self.running[key] += 1
        if not go:
            yield False
            return
        try:
            yield True
        finally:
            with self.lock:
                self.running[key] -= 1
                if self.running[key] <= 0:
                    del self.running[key]


def diagnose_handler(
    settings: Settings, files: PageFiles, asked: bool = False, recent: RecentPhotos | None = None
) -> Callable:
    """The diagnosis of the photo shown; `asked`: the Diagnose button's, which with no photo asks for one (clicked
    with none, it left the page as it was: nothing seemed to happen), where a photo removed just empties the answer.
    `recent`: the photos diagnosed lately and on their way, shared by the handlers of one page."""

    recent = recent if recent is not None else RecentPhotos()

    def diagnose(photo: dict | None, crop: str | None, request: gr.Request):
        """`photo` is Gradio's file description (the event runs with preprocess=False): the page checks
        it and reads the file itself, and a photo that cannot be decoded gets the server's own answer. `crop`: the
        crop the visitor picked ("": they do not know), sent as the API's `crop`."""
        lang = page_language(request)
        # heat map (shown, empty), its note, the answer's state, the feedback box's parts, the dropdown, status, history
        no_answer = (None, gr.update(visible=True), None, *feedback_updates(None, lang))
        no_feedback = (*no_answer, gr.update(choices=[], value=None), "", "")
        if not photo:
            if asked:
                gr.Warning(said("no_photo_toast", lang))
                return _verdict_update(said("no_photo", lang), "error"), _no_scores(), *no_feedback
            return _verdict_update(said("empty_verdict", lang), "empty"), _no_scores(), *no_feedback
        visitor = getattr(request, "session_hash", None)
        with recent.diagnosing((visitor, photo.get("path"), crop), asked) as go:
            if not go:
                return (gr.skip(),) * (2 + len(no_feedback))  # this photo's answer is being given already
            return _diagnosed(photo, crop, lang, request, no_feedback)

    def _diagnosed(photo: dict, crop: str | None, lang: str, request: gr.Request, no_feedback: tuple):
        try:
            path, name = files.open(photo)
            with api_client(settings, request) as api:
                # the event runs unprocessed: a visitor may send anything as the crop (the API checks a string)
                picked = crop.strip() if isinstance(crop, str) else ""
                answer = api.explain(path.read_bytes(), name, crop=picked or None, lang=lang)
                entry = api.advice_for(answer)
                labels = labels_of(api, answer["model_version"])
        except Exception as exc:
            message, hint = problem(exc, "Diagnosis")
            if isinstance(exc, ApiError) and (words := photo_error_words(exc.code, sent_name(photo), lang)):
                message, hint = words  # the photo's own problem, in the page's language
            return (
                _verdict_update(text.error_text(message, hint, title=gettext(lang, COULD_NOT_DIAGNOSE)), "error"),
                _no_scores(),
                *no_feedback,
            )
        refused = bool(answer.get("abstained"))
        kind = "unsure" if refused else "ok" if is_healthy(answer.get("label")) else "sick"
        # A refusal shows no heat map: the map is of the top label, which a refusal does not give (a daisy refused as
        # not a leaf showed where the model looked for corn common rust).
        heat = png(base64.b64decode(answer["overlay_png"])) if answer.get("overlay_png") and not refused else None
        # every label in the page's words, as the desktop app names them; the answer's own names first (the server's
        # advice folder may name a lab's labels): the answer names only its top three
        named = {item["label"]: item["name"] for item in answer.get("top_k") or [] if item.get("name")}
        top = answer.get("label")
        choices = [(named.get(x) or label_name(x, lang), x) for x in labels if x != top]
        pick = said("pick_then_send" if refused else "actually", lang)
        return (
            _verdict_update(text.verdict(answer) + advice.advice_markdown(answer, entry), kind),
            # a refusal shows no percentage: its candidates are named in the verdict, without figures
            gr.update(value=None if refused else text.top_k_scores(answer), visible=not refused),
            # its words for a screen reader: the answer's name (Gradio's own were alt="" inside an unnamed button)
            gr.update(
                value=heat,
                visible=not refused,
                alt_text=said("heat_map_alt", lang).format(name=named.get(top) or label_name(top, lang))
                if top
                else None,
            ),
            gr.update(visible=not refused),
            {
                "prediction_id": answer["prediction_id"],
                "label": answer.get("label"),
                "abstained": refused,
                "reason": answer.get("reason"),
            },
            *feedback_updates(answer, lang),
            gr.update(choices=choices, value=None, label=pick),
            "",
            history.entry_html(path, answer, name),  # for the visitor's history, kept in their browser
        )

    return diagnose


def feedback_handler(settings: Settings, correct: bool) -> Callable:
    def send(answer: dict | None, actual: str | None, request: gr.Request):
        """Yes (thumbs up), No (thumbs down), with "it is actually ..." when picked, for the answer shown."""
        lang = page_language(request)
        if not answer:
            return gettext(lang, DIAGNOSE_FIRST)
        label = None if correct else (actual or None)
        if answer.get("abstained"):
            # A refusal is no answer to be right or wrong about: only what the leaf is says something. The page shows
            # no Yes or No under one, nor anything under a poor photo; a click left from before sends nothing.
            if not asks_feedback(answer) or correct:
                return ""
            if not label:
                return gettext(lang, PICK_FIRST)
        try:
            with api_client(settings, request) as api:
                api.feedback(answer["prediction_id"], correct, label)
        except Exception as exc:
            message, hint = problem(exc, "Sending the feedback")
            return text.error_text(message, hint, title=gettext(lang, NOT_SENT))
        return feedback_text.thanks(correct, label, lang, refused=bool(answer.get("abstained")))

    return send


def example_name(photo, lang: str = "en") -> str:
    """An example's button: its label's name in `lang` (`Tomato — Early blight`, `Tomate — Tizón temprano`), as an
    answer names it; a photo of no known label, its file name's words (`tomato early blight`)."""
    label = EXAMPLE_LABELS.get(photo.name)
    return label_name(label, lang) if label else photo.stem.replace("_", " ")


def example_samples(photos, lang: str = "en") -> tuple[list[list[str]], list[str]]:
    """The example photos as the examples' samples (one photo each) and their buttons' names in `lang`."""
    return [[str(p)] for p in photos], [example_name(p, lang) for p in photos]


def examples_of(crops: list[str] | None, photos=EXAMPLES) -> list:
    """The example photos of the serving model's crops (`crops` as the API names them: `tomato`, `bell pepper`;
    an example's crop is its file name's start, `tomato_early_blight.jpg`): a lab's tomato model shows only the tomato
    example, since it would refuse the others as leaves it was not trained on. None known (the API did not answer):
    all of them."""
    if crops is None:
        return list(photos)
    starts = tuple(c.replace(" ", "_").lower() + "_" for c in crops)
    return [p for p in photos if p.stem.lower().startswith(starts)] if starts else []


def serving_limits(api, models: dict, lang: str) -> str | None:
    """The serving model's limitations in its card's words under a title in `lang` (words/model_card.py), or None
    when its card states none or cannot be read (what the model knows is said without them)."""
    try:
        return limits_note(api.model(models["serving_version"]), lang)
    except Exception:
        log.warning("the serving model's card could not be read for its limitations", exc_info=True)
        return None


def notes_handler(settings: Settings, guide: list, examples: bool = False) -> Callable:
    """On opening the page: whether the server keeps photos, what the serving model knows (which crops, and
    which of them from photos taken on the plant), and its crops in the crop dropdown; the photo guide, in the
    page's language (`guide_words`); and, with `examples`, the example photos of the serving model's crops."""

    def notes(request: gr.Request):
        lang = page_language(request)
        keep, knows, crops = None, None, None  # crops: the serving model's, once the API has said them
        try:
            with api_client(settings, request) as api:
                keep = bool(api.ready().get("keep_photos"))
                models = api.models()
                knows, crops = photo_guide.knows_note(models, lang), photo_guide.serving_crops(models)
                if knows:  # and the serving model's limitations, from its card, folded under a title
                    knows = "\n\n".join(filter(None, [knows, serving_limits(api, models, lang)]))
        except Exception:
            pass
        shown = []
        if examples:
            samples, labels = example_samples(examples_of(crops), lang)
            shown = [gr.update(samples=samples, sample_labels=labels, visible=bool(samples))]
        return (
            feedback_text.privacy_note(keep, lang),
            gr.update(value=knows or "", visible=bool(knows)),
            # hidden when the serving model knows no crops (its labels name none: a lab's "late blight", "healthy"),
            # or none serves: "I don't know" alone is no choice; shown as it was if the API did not say (None)
            # the crop a language link carried (ui/carry.py), else none
            gr.update(
                choices=crop_choices(crops or [], lang),
                value=carry.carried_crop(request, crops or [], crop_choices),
                visible=crops is None or bool(crops),
            ),
            *guide_words(lang)[: len(guide)],
            *shown,
            carry.done_html(),  # the crop menu is set: a carried photo can be put back
        )

    return notes


def history_words(request: gr.Request) -> str:
    """The history's box in the page's language, as the page loads."""
    return history.box_html(page_language(request))


def diagnose_tab(settings: Settings, files: PageFiles, blocks: gr.Blocks) -> None:
    with gr.Row(equal_height=False, elem_id="diagnose-row"):
        with gr.Column(scale=1, elem_id="photo-side"):
            photo = gr.Image(
                sources=["upload", "webcam"],
                type="filepath",
                image_mode=None,  # keep the file as sent: the server decodes it (EXIF, modes) like in training
                label=t("leaf_photo"),
                height=380,
                buttons=["download", "fullscreen"],  # never "share": a grower's photo to Hugging Face
                alt_text=t("leaf_photo_alt"),
                elem_id="leaf-photo",
            )
            crop = gr.Dropdown(
                label=t("crop_label"),
                info=t("crop_info"),
                choices=crop_choices([]),  # the serving model's crops once the page has asked (notes_handler)
                value="",
                interactive=True,
                elem_id="crop-choice",
            )
            button = gr.Button(t("diagnose_button"), variant="primary", elem_id="diagnose-button")
            examples = None
            if EXAMPLES:  # served as they are (static paths, see build_app), never copied
                samples, labels = example_samples(EXAMPLES)  # until the page knows the serving model's crops
                examples = gr.Examples(samples, inputs=[photo], label=t("examples_label"), example_labels=labels)
            gr.Markdown(t("good_answer_tip"), elem_classes=["small-note"])
            # this page asks the server for every answer; /app keeps the model on the phone (the slow-network review:
            # with the connection gone, nothing here said where to go)
            gr.Markdown(t("offline_link"), elem_id="offline-link", elem_classes=["small-note"])
            privacy = gr.Markdown(
                feedback_text.privacy_note(None), elem_id="photo-privacy", elem_classes=["small-note"]
            )
            knows = gr.Markdown("", visible=False, elem_id="model-knows", elem_classes=["small-note"])
        with gr.Column(scale=1, elem_id="answer-side"):
            verdict = gr.Markdown(t("empty_verdict"), elem_id="verdict", elem_classes=["verdict", "verdict-empty"])
            scores = gr.Label(label=t("most_likely"), num_top_classes=5, show_heading=False, elem_id="top-k")
            shown = gr.State(None)  # the answer shown: its prediction_id, for the feedback
            with gr.Group(visible=False, elem_id="feedback") as feedback_box:
                with gr.Row(equal_height=False, elem_id="feedback-row"):
                    question = gr.Markdown(t("was_this_right"), elem_id="feedback-question")
                    up = gr.Button(t("yes"), size="sm", elem_id="feedback-up")
                    down = gr.Button(t("no"), size="sm", elem_id="feedback-down")
                actual = gr.Dropdown(
                    label=t("actually"),
                    choices=[],
                    value=None,
                    interactive=True,
                    elem_id="feedback-actual",
                )
                # under a refusal: after the menu, as one reads it (pick what it is, then Send)
                # a button that looks like one (secondary, it read as a line of text under the menu)
                send = gr.Button(t("send"), size="sm", variant="primary", visible=False, elem_id="feedback-send")
                said = gr.Markdown(elem_id="feedback-status")
            heat = gr.Image(
                label=t("heat_map"),
                type="pil",
                format="png",
                interactive=False,
                height=320,
                # no "share" (to Hugging Face Spaces Discussions: a grower's photo to a third party), and room for the
                # title beside the two left at 360 px
                buttons=["download", "fullscreen"],
                elem_id="heat-map",
            )
            heat_note = gr.Markdown(t("heat_map_note"), elem_id="heat-map-note", elem_classes=["small-note"])
    guide = guide_accordion()
    with gr.Accordion(t("history_title"), open=True, elem_id="history"):
        box = gr.HTML(history.box_html())  # in the visitor's language as the page loads
    record = gr.HTML("", elem_id="history-entry")  # the last answer's history entry, for the page's script
    recent = RecentPhotos()  # one for the photo's events and the button: a tap while its answer is on its way waits
    fn = diagnose_handler(settings, files, recent=recent)
    outputs = [verdict, scores, heat, heat_note, shown, feedback_box, question, up, down, send, actual, said, record]
    photo.change(fn, [photo, crop], outputs, concurrency_limit=4, show_progress="minimal", preprocess=False)
    button.click(
        diagnose_handler(settings, files, asked=True, recent=recent),
        [photo, crop],
        outputs,
        concurrency_limit=4,
        preprocess=False,
    )
    # picking another crop answers the photo shown again, within that crop
    crop.input(fn, [photo, crop], outputs, concurrency_limit=4, show_progress="minimal", preprocess=False)
    up.click(feedback_handler(settings, True), [shown, actual], [said], concurrency_limit=4)
    down.click(feedback_handler(settings, False), [shown, actual], [said], concurrency_limit=4)
    send.click(feedback_handler(settings, False), [shown, actual], [said], concurrency_limit=4)  # under a refusal
    shown_examples = [examples.dataset] if examples is not None else []
    notes = notes_handler(settings, guide, bool(shown_examples))
    done = gr.HTML("", elem_id=carry.DONE_ID)  # hidden by the page's CSS (ui/history.py), as #history-entry
    blocks.load(notes, None, [privacy, knows, crop, *guide, *shown_examples, done])
    blocks.load(history_words, None, [box])


def _entry_words(entry: photo_guide.GuideEntry, lang: str, pictured: bool) -> str:
    caption, photo, answer = (text.esc(gettext(lang, w)) for w in (entry.caption, entry.photo, entry.answer))
    return f"**{caption}**\n\n{photo} {answer}" if pictured else f"**{caption}**: {photo} {answer}"


def guide_words(lang: str) -> list:
    """The photo guide's words in `lang`, in the order of `guide_accordion`'s components: its title, the tips, each
    pictured entry, each entry without a picture, the credits."""
    shown = photo_guide.pictured()
    words = [
        gr.update(label=gettext(lang, photo_guide.TITLE)),
        "\n".join(f"- {gettext(lang, tip)}" for tip in photo_guide.TIPS),
        *(_entry_words(e, lang, True) for e in shown),
        *(_entry_words(e, lang, False) for e in photo_guide.ENTRIES if e not in shown),
    ]
    return [*words, text.esc(photo_guide.credits(lang))] if shown else words


def guide_accordion() -> list:
    """How to take a photo leafdoc can read: tips, then example photos with what leafdoc answers for each
    (the words are words/photo_guide.py's, shared with the desktop app). Returns the components that hold words,
    which the page sets in the visitor's language as it loads (`guide_words`)."""
    shown = photo_guide.pictured()
    with gr.Accordion(photo_guide.TITLE, open=False, elem_id="photo-guide") as accordion:
        held = [accordion, gr.Markdown("\n".join(f"- {tip}" for tip in photo_guide.TIPS))]
        with gr.Row(equal_height=True):
            for entry in shown:
                kind = "guide-good" if entry.good else "guide-bad"
                with gr.Column(min_width=170, elem_classes=["guide-entry", kind]):
                    gr.Image(  # served as it is (static paths, see build_app), never copied
                        str(entry.path),
                        show_label=False,
                        interactive=False,
                        container=False,
                        height=150,
                        buttons=[],
                        elem_classes=["guide-photo"],
                    )
                    held.append(gr.Markdown(_entry_words(entry, "en", True)))
        for entry in photo_guide.ENTRIES:
            if entry not in shown:
                held.append(gr.Markdown(_entry_words(entry, "en", False)))
        if shown:
            held.append(gr.Markdown(text.esc(photo_guide.credits()), elem_classes=["small-note"]))
    return held
