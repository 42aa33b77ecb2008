"""One prediction answer, the same typed `Answer` everywhere: `leafdoc predict --json`, the API's /v1/predict,
/v1/predict/batch and /v1/explain (their response models, so the OpenAPI schema documents these fields), the
prediction log and the metrics (which read its attributes), and so the web page and the desktop app (their client,
api_client.py, reads the API's JSON back into it).

`advice` is the knowledge base's reference for the diagnosed label (summary, route of the full entry, sources), or a
note that there is none; an abstention carries no advice, since there is no diagnosis to act on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from leafdoc.advice import Knowledge
from leafdoc.advice.lookalikes import tell_apart_words, urgent_lookalike_words
from leafdoc.core.i18n import SOURCE, UNREVIEWED_NOTE, Label, Rendering, gettext
from leafdoc.inference.abstain import Decision


class LabelScore(BaseModel):
    label: str
    probability: float
    name: str | None = Field(
        None, description="The label in words, in the answer's language ('Tomato — Early blight')."
    )


class AdviceSource(BaseModel):
    title: str
    author: str | None = None
    publisher: str
    year: int | None = None
    url: str | None = None


class AdviceRef(BaseModel):
    """What a diagnosis carries from the knowledge base (leafdoc/advice/knowledge)."""

    label: str
    available: bool = Field(description="False: leafdoc has no knowledge file for this label (see `message`).")
    title: str | None = Field(None, description="Crop and condition in words, e.g. 'Tomato — Early blight'.")
    summary: str | None = Field(None, description="Two or three sentences: what it is and what to do first.")
    route: str | None = Field(None, description="GET it for the full entry, e.g. /v1/advice/Tomato___Early_blight.")
    sources: list[AdviceSource] = Field(default_factory=list, description="What the entry rests on.")
    message: str | None = Field(None, description="Why there is no advice, when `available` is false.")
    language: str = Field("en", description="The language of `title`, `summary` and `message` (the answer's).")
    translation: Literal["unreviewed", "reviewed"] | None = Field(
        None,
        description="Null in English (the knowledge files' own words); `unreviewed` when a text of it is a "
        "translation not yet reviewed by someone who knows plant pathology, `reviewed` once it is.",
    )


class Caution(BaseModel):
    label: str = Field(description="The urgent look-alike's label.")
    message: str = Field(description="Why to check for it and how, for a person.")
    name: str | None = Field(None, description="The look-alike in words, in the answer's language.")


class Answer(BaseModel):
    prediction_id: str | None = Field(
        description="This answer's id (unguessable): send feedback to POST /v1/predictions/{prediction_id}/feedback. "
        "Always set by the API; null in `leafdoc predict --json` (nothing is recorded there)."
    )
    file: str | None = Field(None, description="The file name the image was sent with, if any.")
    model_version: int | None = Field(
        description="The registered model version that answered. Always set by the API; null in `leafdoc predict "
        "--json` (a model folder has no registry version)."
    )
    label: str | None = Field(description="The diagnosis; null when the model abstains.")
    confidence: float = Field(
        description="Probability of the most likely label. When `abstained`, a figure the model did not trust enough "
        "to answer with (with a crop that does not fit the leaf, even near 1 over that crop's labels): show "
        "`message` to a person, never `top_k[0]` as a diagnosis."
    )
    top_k: list[LabelScore] = Field(
        description="The most likely labels, most likely first (over the crop's labels only with `crop_given`). When "
        "`abstained`, what the model weighed, not an answer."
    )
    abstained: bool
    reason: Literal["poor_photo", "not_a_leaf", "unlike_training", "unknown_leaf", "unsure"] | None = Field(
        None,
        description="Why the model abstained: poor_photo, not_a_leaf, unlike_training (a field photo to a model "
        "of lab photos), unknown_leaf (a leaf more like other crops and conditions than like the model's own "
        "classes: a lab's model with an `other_leaves` check) or unsure.",
    )
    message: str | None = Field(
        None,
        description="The abstention explained for a person, with no confidence figure; for unsure, which conditions "
        "it could be and how to tell them apart.",
    )
    candidates: list[str] = Field(
        default_factory=list,
        description="For unsure: the labels the model hesitates between. Empty where the crop given does not fit "
        "the leaf, or has one label the leaf is not like (`message` then says what the leaf looks like).",
    )
    problems: list[str] = Field(
        default_factory=list,
        description=(
            "For poor_photo: what is wrong with it (too_small, too_dark, too_bright, one_colour, no_colour, blurred)."
        ),
    )
    ood_score: float | None = Field(
        None, description="How unlike the training leaf photos this one is (not_a_leaf above the card's threshold)."
    )
    min_confidence: float = Field(description="The model's calibrated confidence threshold.")
    advice: AdviceRef | None = Field(
        None,
        description="What to do about the diagnosis: summary, the full entry's route, sources. Null when the "
        "model abstained (no diagnosis, so no advice).",
    )
    caution: Caution | None = Field(
        None,
        description="An urgent look-alike (late blight) among the top candidates of an answer about a milder "
        "disease: which, and how to check for it. Null otherwise.",
    )
    framed_box: list[int] | None = Field(
        None,
        description="Set when the leaf was small in the photo (taken from too far) and the model looked at the "
        "square around it instead of the whole photo: [left, top, right, bottom] in pixels of the photo as sent, "
        "turned upright by its EXIF orientation. Null when the model saw the middle of the photo. Set on a refusal "
        "too: on a not_a_leaf one the square is around what the model took for a leaf.",
    )
    crop_given: str | None = Field(
        None,
        description="The crop the grower said the leaf is of (the request's `crop`, as GET /v1/models lists it under "
        "`crops`, e.g. `tomato`): the answer then chose among that crop's labels only, and `confidence`, `top_k` and "
        "the abstention are over them, renormalised. A crop the model knows by one label only is answered with it "
        "only when the model names it unaided (else not sure). Null: no crop given, every label considered.",
    )
    crop_share: float | None = Field(
        None,
        description="With `crop_given`: how much of the model's probability went to that crop's labels before "
        "renormalising (low: the leaf looked to the model like another crop). Null without a crop.",
    )
    language: str = Field(
        "en",
        description="The language of the answer's words (`message`, `caution`, `advice`): the request's `lang`, "
        "else the best of its Accept-Language that leafdoc speaks (en, es, fr, hi), else en.",
    )
    unreviewed: list[Literal["message", "caution", "advice"]] = Field(
        default_factory=list,
        description="Which of the answer's words hold advice translated by machine or engineer and not yet reviewed "
        "by someone who knows plant pathology (empty in English). Show `unreviewed_note` with them.",
    )
    unreviewed_note: str | None = Field(
        None, description="'translated, not yet reviewed' in the answer's language, when `unreviewed` is not empty."
    )
    light_corrected: Literal["warm", "cool"] | None = Field(
        None,
        description="Set when the sheet around the leaf showed a light warmer (`warm`) or cooler (`cool`) than nearly "
        "all the photos the model learnt from, and the colours were corrected to a typical one of those lights before "
        "the model saw the photo (the card's `input.white_balance: light-range`). Null when they were left as taken.",
    )

    @classmethod
    def build(
        cls,
        *,
        file: str | None,
        model_version: int | None,
        top_k: list[dict],
        decision: Decision,
        knowledge: Knowledge,
        framed_box: list[int] | None = None,
        light_corrected: str | None = None,
        prediction_id: str | None = None,
        crop_given: str | None = None,
        crop_share: float | None = None,
        lang: str = SOURCE,
    ) -> Answer:
        """The answer for one photo from its top-k and its decision (inference/abstain.py), its words in `lang`."""
        label = None if decision.abstained else top_k[0]["label"]
        unreviewed = []
        say = Rendering(lang, knowledge.resolve)
        message = refusal_message(decision, knowledge, say)
        if say.unreviewed:
            unreviewed.append("message")
        say = Rendering(lang, knowledge.resolve)
        found = urgent_lookalike_words(knowledge, label, top_k)
        caution = None if found is None else {"label": found[0], "message": say(found[1]), "name": say(Label(found[0]))}
        if say.unreviewed:
            unreviewed.append("caution")
        advice = None if label is None else knowledge.reference(label, lang)
        if advice and advice.get("translation") == "unreviewed":
            unreviewed.append("advice")
        names = Rendering(lang, knowledge.resolve)
        top_k = [{**item, "name": names(Label(item["label"]))} for item in top_k]
        return cls(
            prediction_id=prediction_id,
            file=file,
            model_version=model_version,
            label=label,
            confidence=top_k[0]["probability"],
            top_k=top_k,
            abstained=decision.abstained,
            reason=decision.reason,
            message=message,
            candidates=list(decision.candidates),
            problems=list(decision.problems),
            ood_score=decision.ood_score,
            min_confidence=round(decision.threshold, 6),
            advice=advice,
            caution=caution,
            framed_box=framed_box,
            light_corrected=light_corrected,
            crop_given=crop_given,
            crop_share=None if crop_share is None else round(crop_share, 6),
            language=lang,
            unreviewed=unreviewed,
            unreviewed_note=gettext(lang, UNREVIEWED_NOTE) if unreviewed else None,
        )


def refusal_message(decision: Decision, knowledge: Knowledge, say: Rendering | None = None) -> str | None:
    """The decision's words, and for "not sure" how to tell its candidates apart (advice/lookalikes.py), said by
    `say` (English by default)."""
    say = say or Rendering(SOURCE, knowledge.resolve)
    said = say(decision.words) if decision.words is not None else decision.message
    hows = tell_apart_words(knowledge, list(decision.candidates)) if decision.abstained else []
    return " ".join([said or "", *(say(h) for h in hows)]).strip() if hows else said


class ExplainAnswer(Answer):
    explained_label: str = Field(description="The label whose heat map this is (the top label by default).")
    heatmap: list[list[float]] = Field(
        description="Class activation map at the last feature map's resolution (rows x columns), ReLU'd and "
        "scaled to 0..1."
    )
    heatmap_scale: float = Field(description="The map's maximum before scaling: raw map = heatmap * heatmap_scale.")
    overlay_png: str = Field(description="Base64 PNG: the heat map coloured and blended over the photo.")
    overlay_size: int


class Unread(BaseModel):
    """A file `leafdoc predict` could not read: its name and why, in words (the others are still answered); the
    error does not name the file again."""

    file: str
    error: str
