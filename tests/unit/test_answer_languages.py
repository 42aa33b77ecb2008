"""An answer in the language asked for (Answer.build's `lang`): the refusal's words, the look-alikes, the urgent
warning, the advice and the labels' names come from the catalogs; translated advice is marked "translated, not yet
reviewed"; English is as it always was."""

from __future__ import annotations

import numpy as np
import pytest

from leafdoc.advice import shipped_knowledge
from leafdoc.imaging.quality import PhotoProblem, _problem
from leafdoc.inference.abstain import decide
from leafdoc.inference.answer import Answer
from leafdoc.modelfolder import ModelCard

LABELS = ["Potato___Late_blight", "Tomato___Early_blight", "Tomato___Late_blight", "Tomato___healthy"]
CARD = ModelCard.model_construct(abstain={"min_confidence": 0.6})
KNOWLEDGE = shipped_knowledge()


def answer(p: list[float], lang: str, problems: tuple[PhotoProblem, ...] = ()) -> Answer:
    probs = np.array(p)
    order = np.argsort(-probs)
    top_k = [{"label": LABELS[i], "probability": float(probs[i])} for i in order]
    decision = decide(probs, LABELS, CARD, problems)
    return Answer.build(file=None, model_version=1, top_k=top_k, decision=decision, knowledge=KNOWLEDGE, lang=lang)


UNSURE = [0.05, 0.45, 0.45, 0.05]  # early or late blight of tomato: not sure, and how to tell them apart
EARLY_NOT_RULING_OUT_LATE = [0.01, 0.85, 0.13, 0.01]  # early blight, with urgent late blight among the top 3


def test_english_is_as_before():
    a = answer(UNSURE, "en")
    assert a.language == "en" and a.unreviewed == [] and a.unreviewed_note is None
    assert a.message.startswith("Not sure which disease this is. It could be Tomato — Early blight or Tomato — Late")
    assert "To tell Tomato — Early blight from Tomato — Late blight: Late blight patches are large" in a.message
    assert a.advice is None


@pytest.mark.parametrize(
    ("lang", "opening", "names", "tell", "note"),
    [
        (
            "es",
            "No es seguro qué enfermedad es. Podría ser",
            "Tomate — Tizón temprano o Tomate — Tizón tardío",
            "Para distinguir Tomate — Tizón temprano de Tomate — Tizón tardío: Las zonas afectadas",
            "traducido, aún sin revisar",
        ),
        (
            "fr",
            "Pas sûr de la maladie. Ce pourrait être",
            "Tomate — Alternariose ou Tomate — Mildiou",
            "Pour distinguer Tomate — Alternariose de Tomate — Mildiou : Les plages de mildiou",
            "traduit, pas encore relu",
        ),
        (
            "hi",
            "पक्का नहीं कि यह कौन-सी बीमारी है। यह",
            "टमाटर — अगेती झुलसा या टमाटर — पछेती झुलसा",
            "टमाटर — अगेती झुलसा और टमाटर — पछेती झुलसा में फ़र्क़ पहचानने के लिए: पछेती झुलसा के चकत्ते",
            "अनुवादित, अभी समीक्षा नहीं हुई",
        ),
    ],
)
def test_a_refusal_in_another_language_names_the_candidates_and_how_to_tell_them_apart(
    lang, opening, names, tell, note
):
    a = answer(UNSURE, lang)
    assert a.abstained and a.language == lang
    assert a.message.startswith(opening), a.message
    assert names in a.message and tell in a.message, a.message
    assert "Not sure" not in a.message and "To tell" not in a.message and "%" not in a.message
    # the how-to-tell text is translated advice: marked
    assert a.unreviewed == ["message"] and a.unreviewed_note == note
    assert [s.name for s in a.top_k][:2] == names.split({"es": " o ", "fr": " ou ", "hi": " या "}[lang])


def test_an_answer_in_hindi_carries_its_advice_and_the_urgent_look_alike_in_hindi_marked_unreviewed():
    a = answer(EARLY_NOT_RULING_OUT_LATE, "hi")
    assert a.label == "Tomato___Early_blight" and not a.abstained
    assert a.advice.title == "टमाटर — अगेती झुलसा" and a.advice.summary.startswith("अगेती झुलसा, एक कवक पत्ती धब्बा")
    assert a.advice.language == "hi" and a.advice.translation == "unreviewed"
    assert a.caution.label == "Tomato___Late_blight" and a.caution.name == "टमाटर — पछेती झुलसा"
    assert a.caution.message.startswith("जाँच लें कि यह टमाटर — पछेती झुलसा तो नहीं है")
    assert "यह ठंडे, गीले मौसम में कुछ ही दिनों में फ़सल को मार सकता है" in a.caution.message  # its `urgent`
    assert a.unreviewed == ["caution", "advice"] and a.unreviewed_note == "अनुवादित, अभी समीक्षा नहीं हुई"
    english = answer(EARLY_NOT_RULING_OUT_LATE, "en")
    assert english.advice.translation is None and english.caution.message.startswith("Check that it is not Tomato")


def test_a_poor_photo_is_explained_in_french_with_its_figures():
    small = _problem(
        "too_small",
        "the photo is too small ({w}x{h} pixels): send one at least {min_side} pixels on its short side",
        w=40,
        h=30,
        min_side=64,
    )
    dark = _problem("too_dark", "the photo is too dark: take it in daylight, or uncover the lens")
    a = answer(UNSURE, "fr", (small, dark))
    assert a.reason == "poor_photo" and a.problems == ["too_small", "too_dark"]
    assert a.message == (
        "Inutilisable : la photo est trop petite (40x30 pixels) : envoyez-en une d'au moins 64 pixels sur son "
        "petit côté ; la photo est trop sombre : prenez-la à la lumière du jour, ou découvrez l'objectif."
    )
    assert a.unreviewed == []  # the code's words, not advice


def test_the_full_entry_on_the_page_is_in_the_language_look_alikes_named_too():
    from leafdoc.advice.knowledge import translated_entry
    from leafdoc.advice.render import details_markdown

    entry = KNOWLEDGE.get("Tomato___Early_blight")
    md = details_markdown(translated_entry(entry, "es"))
    assert "**Cómo se ve**" in md and "Manchas marrón oscuro de hasta 1 cm" in md
    assert "**Tomate — Mancha diana**:" in md and "Tomato — Target Spot" not in md  # the look-alike's name
    measured = "(De 152 fotos de Tomate — Tizón temprano que el modelo inicial de leafdoc no vio al entrenarse, tomó 1"
    assert f"{measured} por Tomate — Mancha bacteriana" in md
    assert "Not yet translated" not in md and "Aún sin traducir" not in md
    assert "**Tomato — Target spot**:" in details_markdown(translated_entry(entry, "en"))  # as the answer names it


def test_in_english_the_full_entry_names_each_look_alike_as_an_answer_and_its_own_entry_do():
    """Gray leaf spot's look-alike read "Corn (maize) — Northern Leaf Blight" (PlantVillage's label words) above
    "leafdoc's starter model hesitated with Corn (maize) — Northern corn leaf blight"; citrus greening's read
    "Haunglongbing", PlantVillage's misspelling, where its entry and every answer say "Huanglongbing"."""
    from leafdoc.advice.knowledge import translated_entry
    from leafdoc.advice.render import details_markdown

    md = details_markdown(translated_entry(KNOWLEDGE.get("Corn_(maize)___Cercospora_leaf_spot Gray_leaf_spot"), "en"))
    assert "**Corn (maize) — Northern corn leaf blight**:" in md and "Northern Leaf Blight" not in md
    named = 0
    for label, entry in KNOWLEDGE.entries.items():
        md = details_markdown(translated_entry(entry, "en"))
        for c in entry.confused_with:
            other = KNOWLEDGE.get(c.label)
            if other is not None:
                assert f"- **{other.crop} — {other.condition}**:" in md, (label, c.label)
                named += 1
    assert named >= 40  # every shipped entry's look-alikes, checked


@pytest.mark.parametrize(
    ("lang", "cause"),
    [
        ("es", "*Alternaria linariae (syn. A. tomatophila) y Alternaria solani*"),
        ("fr", "*Alternaria linariae (syn. A. tomatophila) et Alternaria solani*"),
        ("hi", "*Alternaria linariae (syn. A. tomatophila) और Alternaria solani*"),
    ],
)
def test_the_cause_is_named_in_the_language_of_the_page_around_its_latin(lang, cause):
    """The i18n review of session 73: "Causa: Alternaria linariae (syn. A. tomatophila) and Alternaria solani" on a
    Spanish page, and "A complex of wood-infecting fungi: ..." for grape esca."""
    from leafdoc.advice.knowledge import translated_entry
    from leafdoc.advice.render import details_markdown

    entry = translated_entry(KNOWLEDGE.get("Tomato___Early_blight"), lang)
    assert cause in details_markdown(entry) and "pathogen" not in entry["untranslated"], entry["untranslated"]
    esca = translated_entry(KNOWLEDGE.get("Grape___Esca_(Black_Measles)"), lang)["pathogen"]["name"]
    assert "wood-infecting" not in esca and "Phaeomoniella chlamydospora" in esca, esca
