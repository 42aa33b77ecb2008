"""What the web page says about API answers (leafdoc.ui.text), and which address it calls the API at."""

from __future__ import annotations

from leafdoc.core.settings import Settings
from leafdoc.ui import api_base, history, text


def answer(**kw) -> dict:
    base = {
        "model_version": 3,
        "label": "Corn_(maize)___Common_rust_",
        "confidence": 0.874,
        "top_k": [
            {"label": "Corn_(maize)___Common_rust_", "probability": 0.874},
            {"label": "Corn_(maize)___healthy", "probability": 0.1},
        ],
        "abstained": False,
        "reason": None,
        "message": None,
        "candidates": [],
    }
    return {**base, **kw}


def test_labels_read_like_words():
    assert text.pretty_label("Corn_(maize)___Common_rust_") == "Corn (maize) — Common rust"
    assert text.pretty_label("Pepper,_bell___Bacterial_spot") == "Pepper, bell — Bacterial spot"
    assert text.pretty_label("rose") == "rose"
    assert list(text.top_k_scores(answer())) == ["Corn (maize) — Common rust · 87%", "Corn (maize) — healthy · 10%"]


def test_a_diagnosis_names_the_disease_and_how_sure():
    md = text.verdict(answer())
    assert "## Corn (maize) — Common rust" in md and "87% sure" in md and "model version 3" in md
    assert "no disease found" in text.verdict(answer(label="Apple___healthy"))


def test_the_models_label_is_in_the_advices_details_not_under_the_verdict():
    """A grower reads "Corn (maize) — Common rust"; "Corn_(maize)___Common_rust_" is for whoever looks it up."""
    from leafdoc.ui.advice import advice_markdown

    md = text.verdict(answer())
    assert "Corn_(maize)___Common_rust_" not in md and "label:" not in md
    from leafdoc.advice import shipped_knowledge

    kb, label = shipped_knowledge(), "Corn_(maize)___Common_rust_"
    shown = answer(advice=kb.reference(label))
    details = advice_markdown(shown, kb.get(label).model_dump(mode="json"))
    folded = details[details.index("<details") :]
    assert f"label: {text.esc(label)}" in folded and folded.rstrip().endswith("</details>")  # Markdown-escaped


def test_a_framed_photo_says_the_model_looked_only_at_the_square_around_the_leaf():
    from leafdoc.words.photo_guide import FRAMED

    said = "looked only at the square around it"
    assert said in FRAMED
    assert said in text.verdict(answer(framed_box=[1300, 450, 2100, 1250]))
    assert said in text.verdict(answer(label=None, abstained=True, reason="unsure", framed_box=[0, 0, 9, 9]))
    assert said not in text.verdict(answer(framed_box=None)) and said not in text.verdict(answer())


def test_a_refusal_that_found_no_leaf_or_a_poor_photo_does_not_say_the_leaf_was_small():
    """A daisy refused as not_a_leaf was framed as a leaf would be: "the leaf was small" was said of no leaf. The
    desktop app says the same notes (answer_notes), the offline page its copy (test_offline_words)."""
    from leafdoc.core.i18n import gettext
    from leafdoc.words.photo_guide import FRAMED, answer_notes

    said, box = "looked only at the square around it", [0, 0, 9, 9]
    for reason in ("not_a_leaf", "poor_photo"):
        refused = answer(label=None, abstained=True, reason=reason, framed_box=box, light_corrected="warm")
        assert said not in text.verdict(refused), reason
        assert gettext("es", FRAMED) not in answer_notes(refused, "es"), reason
        assert "warmer" in text.verdict(refused)  # the light's note still goes: the colours were corrected
    for reason in ("unsure", "unlike_training", "unknown_leaf"):  # a leaf was found: filling the frame with it helps
        assert said in text.verdict(answer(label=None, abstained=True, reason=reason, framed_box=box)), reason


def test_a_corrected_light_is_said_under_the_answer_with_which_light_it_was():
    said = "than in nearly all the photos the model learnt from, so its colours were corrected first"
    warm = text.verdict(answer(light_corrected="warm"))
    assert said in warm and "The light in this photo was warmer" in warm and "daylight" in warm
    assert "was cooler" in text.verdict(answer(label=None, abstained=True, reason="unsure", light_corrected="cool"))
    assert said not in text.verdict(answer(light_corrected=None)) and said not in text.verdict(answer())
    both = text.verdict(answer(framed_box=[0, 0, 9, 9], light_corrected="warm"))
    assert "looked only at the square around it" in both and said in both


def test_an_abstention_says_not_sure_with_the_servers_message_for_any_reason():
    known = text.verdict(
        answer(
            label=None,
            abstained=True,
            reason="unsure",
            message="Not sure which disease this is. It could be Tomato — Early blight or Tomato — Late blight. "
            "To tell Tomato — Early blight from Tomato — Late blight: rings.",
            candidates=["Tomato___Early_blight", "Tomato___Late_blight"],
            confidence=0.51,
            top_k=[{"label": "Tomato___Early_blight", "probability": 0.51}],
        )
    )
    assert known.startswith("## Not sure")
    assert "**Not sure which disease this is. It could be Tomato — Early blight or Tomato — Late blight.**" in known
    assert "\n- To tell Tomato — Early blight from Tomato — Late blight: rings." in known
    assert "%" not in known and "51" not in known  # a refusal carries no confidence figure
    # A reason code this page has never heard of still shows the server's words, and says "not sure".
    new = text.verdict(answer(label=None, abstained=True, reason="too_far_away", message="Come closer."))
    assert new.startswith("## Not sure") and "**Come closer.**" in new and "too" not in new  # the words, not the code
    bare = text.verdict(answer(label=None, abstained=True, reason=None, message=None))
    assert "not sure enough" in bare


def test_outside_text_cannot_inject_markup():
    md = text.verdict(answer(label="<img src=x onerror=alert(1)>___*bold*"))
    assert "<img" not in md and "&lt;img" in md and "\\*bold\\*" in md


def test_dataset_summary():
    stats = {
        "dataset": "plantvillage",
        "version": 2,
        "n_images": 4500,
        "n_classes": 3,
        "n_measured": 4500,
        "class_counts": {"A___x": 100, "A___y": 250, "B___z": 150},
        "imbalance_ratio": 2.5,
        "size": {"width": {"median": 256.0}, "height": {"median": 256.0}},
        "skipped": [{"file": "bad.jpg", "reason": "truncated"}],
    }
    md = text.stats_summary(stats)
    assert "plantvillage v2" in md and "4,500 images in 3 classes" in md and "**2.50**" in md
    assert "largest A — y (250)" in md and "smallest A — x (100)" in md
    assert "256 × 256 px" in md and "1 unreadable" in md
    balanced = text.stats_summary({**stats, "class_counts": {"a": 5, "b": 5}, "imbalance_ratio": 1.0})
    assert "every class has 5 images" in balanced


def test_model_versions_table_and_job():
    models = {
        "models": [
            {"version": 1, "status": "archived", "serving": False, "created": "2026-11-20T10:00:00", "source": "seed",
             "dataset": "pv", "dataset_version": 1, "metrics": {"test": {"accuracy": 0.9, "macro_f1": 0.88, "n": 1250}},
             "promotion": None},
            {"version": 2, "status": "candidate", "serving": True, "created": "2026-11-21T11:30:00",
             "source": "job:abc", "dataset": "pv", "dataset_version": 2, "metrics": None,
             "promotion": {"promote": True, "reason": "candidate accuracy 0.91 is at least as good"}},
        ]
    }  # fmt: skip
    rows = text.model_rows(models)
    assert rows[0] == ["2", "▶ serving", "promoted automatically", "–", "–", "pv v2", "job:abc", "2026-11-21 11:30"]
    # as `leafdoc models list` and the desktop app say it: with the photos it was measured on (it read "0.900")
    assert rows[1][3:5] == ["90.0% of 1,250", "88.0% of 1,250"]
    assert text.version_options(models)[1] == ("v1 (archived, 90.0% of 1,250)", 1)
    assert text.version_options(models)[0] == ("v2 (serving, –)", 2)
    # A candidate the rule did not promote is stored as "rejected"; an admin can still promote it: not "rejected".
    kept_out = {"version": 3, "status": "rejected", "serving": False, "promotion": {"promote": False, "reason": "x"}}
    assert text.model_rows({"models": [kept_out]})[0][1] == "not promoted"
    assert text.version_options({"models": [kept_out]})[0][0].startswith("v3 (not promoted, ")

    job = {
        "id": "0123456789abcdef",
        "state": "running",
        "dataset": "pv",
        "dataset_version": 2,
        "epoch": 3,
        "epochs": 10,
        "progress": {"phase": "scratch"},
        "metrics": {"last": {"epoch": 3, "loss": 0.5, "val_accuracy": 0.81, "seconds": 12.0}},
    }
    md = text.job_summary(job)
    assert "running" in md and "Epoch **3 / 10**" in md and "seconds" not in md
    assert "Last epoch: loss 0.500 · validation accuracy 81.0%" in md
    test = {"accuracy": 0.641, "ece": 0.2, "n": 39}
    done = text.job_summary({**job, "state": "succeeded", "metrics": {"test": test}})
    assert "Test (39 held-out photos): accuracy 64.1% · calibration error 0.200" in done
    assert text.job_is_active(job) and not text.job_is_active({**job, "state": "failed"})
    failed = text.job_summary({**job, "state": "failed", "error": "out of memory"})
    assert "**Error:** out of memory" in failed
    assert "No training job yet" in text.job_summary(None)
    assert text.job_can_cancel(job) and text.job_can_cancel({**job, "state": "queued"})
    cancelling = {**job, "cancel_requested": "2026-11-21T11:31:00"}
    assert "cancelling" in text.job_summary(cancelling) and not text.job_can_cancel(cancelling)
    cancelled = {**cancelling, "state": "cancelled", "error": "cancelled by an admin while it ran"}
    assert "⊘ cancelled" in text.job_summary(cancelled) and "cancelled by an admin" in text.job_summary(cancelled)
    assert not text.job_is_active(cancelled) and not text.job_can_cancel(cancelled) and not text.job_can_cancel(None)


def test_the_page_calls_its_own_server_unless_told_otherwise(tmp_path):
    s = Settings(home=tmp_path)
    assert api_base(s, {"server": ("127.0.0.1", 8000)}) == "http://127.0.0.1:8000"
    assert (
        api_base(s, {"server": ("10.0.0.5", 9000), "headers": [(b"host", b"evil.example")]}) == "http://10.0.0.5:9000"
    )
    assert api_base(s, {"server": ("::1", 8000)}) == "http://[::1]:8000"
    assert api_base(s, {"server": ("/run/leafdoc.sock", None)}) == "http://127.0.0.1:8000"
    told = Settings(home=tmp_path, ui_api_url="http://api.internal:8000/")
    assert api_base(told, {"server": ("127.0.0.1", 8000)}) == "http://api.internal:8000"


def test_the_end_of_a_followed_job_is_said_in_one_line():
    job = {"id": "0123456789abcdef", "state": "succeeded", "candidate_version": 4}
    promoted = {**job, "promotion": {"promoted": True, "reason": "accuracy 0.91 >= 0.90"}}
    assert text.job_outcome(promoted) == ("✓ Training job 01234567 finished: version 4 is now serving.", True)
    kept, ok = text.job_outcome({**job, "promotion": {"promoted": False, "reason": "accuracy 0.80 < 0.90"}})
    assert ok and "version 4 was not promoted (accuracy 0.80 &lt; 0.90)" in kept
    failed, ok = text.job_outcome({**job, "state": "failed", "error": "out of <b>memory</b>"})
    assert not ok and failed.startswith("✗ Training job 01234567 failed: out of") and "<b>" not in failed
    assert text.job_outcome({**job, "state": "cancelled"}) == (
        "⊘ Training job 01234567 was cancelled: nothing was kept.",
        True,
    )


def test_a_field_photo_gets_its_own_headline_and_the_servers_advice():
    from leafdoc.inference.abstain import UNLIKE_TRAINING

    md = text.verdict(answer(abstained=True, label=None, reason="unlike_training", message=UNLIKE_TRAINING))
    assert md.startswith("## Not sure: this photo is not like the ones this model learnt this crop from")
    assert "sheet of paper" in md and "plain background" in md
    assert "unlike\\_training" not in md and "reason:" not in md  # the code is not for a grower: the words say it
    assert "runs past the edges" in md  # a close-up is refused by the same check: the words cover it


def test_a_leaf_a_labs_model_was_not_taught_gets_its_own_headline_in_every_language():
    """unknown_leaf (a lab's model's `other_leaves` check): not a photo to take again, a leaf it does not know; the
    headline says so, in the answer's language, over the server's message."""
    from leafdoc.core.i18n import LANGUAGES, gettext
    from leafdoc.inference.abstain import UNKNOWN_LEAF
    from leafdoc.words.refusals import REASON_HEADLINES

    headline = REASON_HEADLINES["unknown_leaf"]
    for lang in LANGUAGES:
        said = gettext(lang, UNKNOWN_LEAF)
        md = text.verdict(answer(abstained=True, label=None, reason="unknown_leaf", message=said, language=lang))
        assert md.startswith("## " + gettext(lang, headline)), lang
        assert f"**{text.esc(said)}**" in md, lang
        assert "unknown\\_leaf" not in md and "unknown_leaf" not in md, lang  # no reason code ("motivo: ...")
        assert lang == "en" or gettext(lang, headline) != headline, lang  # translated
    md = text.verdict(answer(abstained=True, label=None, reason="unknown_leaf", message=UNKNOWN_LEAF))
    assert "another crop" in md and "sheet of paper" not in md and "% sure" not in md


def test_the_page_its_history_and_the_app_name_a_label_by_the_answers_translated_name():
    """One answer_name for every face: the name the API sent among the top candidates (any of them, not only the
    first), else the label's own words."""
    from leafdoc.ui.history import answer_words
    from leafdoc.words.labels import answer_name

    names = {"Corn_(maize)___Common_rust_": "Maíz — Roya común", "Corn_(maize)___healthy": "Maíz — sano"}
    top_k = [{"label": k, "name": v, "probability": p} for (k, v), p in zip(names.items(), (0.6, 0.3), strict=True)]
    es = answer(language="es", top_k=top_k)
    assert "## Maíz — Roya común" in text.verdict(es)
    assert "Maíz — Roya común" in answer_words(es)
    refused = answer(language="es", top_k=top_k, label=None, abstained=True, candidates=list(names))
    assert "Maíz — Roya común" in answer_words(refused) and "Maíz — sano" in answer_words(refused)
    assert answer_name(es, "Corn_(maize)___healthy") == "Maíz — sano"
    assert answer_name(es, "Tomato___Early_blight") == "Tomato — Early blight"
    assert answer_name(es, None) == "" and answer_name({}, "rose") == "rose"


def test_the_examples_shown_are_the_serving_models_crops():
    """A lab's tomato model shows only the tomato example (it would refuse the others as leaves it was not taught);
    a crop named in two words matches its file name; before the API has said the crops, every example shows."""
    from pathlib import Path

    from leafdoc.ui.diagnose_tab import example_samples, examples_of

    photos = [
        Path(f"/x/{n}.jpg")
        for n in ("apple_cedar_rust", "bell_pepper_healthy", "corn_common_rust", "tomato_early_blight")
    ]
    assert examples_of(["tomato"], photos) == [photos[3]]
    assert examples_of(["bell pepper", "corn"], photos) == [photos[1], photos[2]]
    assert examples_of(["grape"], photos) == [] and examples_of([], photos) == []
    assert examples_of(None, photos) == photos
    assert example_samples(photos[:1]) == ([["/x/apple_cedar_rust.jpg"]], ["Apple — Cedar apple rust"])


def test_a_percentage_never_says_100_nor_0():
    """0.995-0.99999 read "100% sure" and 0.004 "0%"; the API's numbers stay as they are, the words say ">99%". A
    model's probability is never a certainty, even where float32 makes it 1.0 or 0.0 exactly."""
    from leafdoc.words.percent import percent_words

    shown = {p: text.percent(p) for p in (1.0, 0.99999, 0.9999, 0.995, 0.9949, 0.874, 0.125, 0.005, 0.004, 1e-9, 0.0)}
    assert shown == {
        1.0: ">99%",
        0.99999: ">99%",
        0.9999: ">99%",
        0.995: ">99%",
        0.9949: "99%",
        0.874: "87%",
        0.125: "13%",  # half up, as JavaScript's Math.round (Python's round would say 12)
        0.005: "1%",
        0.004: "<1%",
        1e-9: "<1%",
        0.0: "<1%",
    }
    assert text.percent(None) == "–"
    assert percent_words(0.999, "fr") == ">99\u00a0%" and percent_words(0.5, "fr") == "50\u00a0%"
    assert percent_words(0.999, "es") == ">99%" and percent_words(0.999, "hi") == ">99%"


def test_the_clis_figures_never_say_100_nor_0():
    """`leafdoc predict` printed "100.00%" for 0.99999 and "0.00%" for 0.00004."""
    from leafdoc.words.percent import precise_percent

    shown = [precise_percent(p) for p in (1.0, 0.99999, 0.99995, 0.99994, 0.8745, 0.00005, 0.00004, 0.0)]
    assert shown == [">99.99%", ">99.99%", ">99.99%", "99.99%", "87.45%", "0.01%", "<0.01%", "<0.01%"]


def test_an_answer_at_0_999_is_not_said_100_percent_sure_in_any_language():
    from leafdoc.core.i18n import LANGUAGES

    sure = answer(confidence=0.999, top_k=[{"label": "Corn_(maize)___Common_rust_", "probability": 0.999}])
    for lang in LANGUAGES:
        md = text.verdict({**sure, "language": lang})
        assert "100" not in md and ">99" in md, (lang, md)
    assert ">99% sure · disease found" in text.verdict(sure)
    assert "\u00a0" in text.verdict({**sure, "language": "fr"}).split("·")[0]  # "sûr à >99 %"
    assert list(text.top_k_scores(sure)) == ["Corn (maize) — Common rust · >99%"]
    assert "(>99% sure)" in history.answer_words({**sure, "confidence": 1.0})  # float32's 1.0 too
    assert "(>99% sure)" in history.answer_words(sure)


def test_the_example_buttons_are_named_in_the_pages_language():
    """They were their file names ("tomato early blight") in every language."""
    from leafdoc.ui.common import EXAMPLE_LABELS, EXAMPLES
    from leafdoc.ui.diagnose_tab import example_samples

    assert {p.name for p in EXAMPLES} <= set(EXAMPLE_LABELS), "an example photo without its label"
    names = {lang: example_samples(EXAMPLES, lang)[1] for lang in ("en", "es", "fr", "hi")}
    assert "Tomato — Early blight" in names["en"] and "Tomate — Tizón temprano" in names["es"]
    assert "Pomme de terre — Saine" in names["fr"] and "मक्का — सामान्य रतुआ" in names["hi"]
    for lang in ("es", "fr", "hi"):
        assert not set(names[lang]) & set(names["en"]), lang
        assert not any("_" in n for n in names[lang]), names[lang]


def test_each_example_photo_has_one_label_a_model_knows_in_the_examples_readme(tmp_path):
    """examples/README.md's table is the one list of the example photos' labels (the page reads it): every photo has a
    row, every row names a photo there and a label the starter model knows; a row edited there changes the button."""
    import json
    import shutil

    from leafdoc.ui.common import EXAMPLE_LABELS, EXAMPLES, example_labels
    from leafdoc.ui.where import EXAMPLES_DIR

    known = set(json.loads((EXAMPLES_DIR.parent / "models" / "starter" / "labels.json").read_text()))
    photos, rows = {p.name for p in EXAMPLES}, set(EXAMPLE_LABELS)
    assert len(photos) >= 4
    assert not photos - rows, f"examples/README.md's table lacks a row for {photos - rows}"
    assert not rows - photos, f"examples/README.md names photos not there: {rows - photos}"
    assert not set(EXAMPLE_LABELS.values()) - known, "examples/README.md: a label the starter model does not know"

    shutil.copy(EXAMPLES_DIR / "README.md", tmp_path / "README.md")
    readme = tmp_path / "README.md"
    readme.write_text(readme.read_text().replace("`Potato___healthy`", "`Potato___Late_blight`"))
    assert example_labels(tmp_path) == {**EXAMPLE_LABELS, "potato_healthy.jpg": "Potato___Late_blight"}
    assert example_labels(tmp_path / "nowhere") == {}  # an install without the examples: no buttons to name


def test_the_language_links_are_named_in_the_pages_language():
    """A screen reader announced the links' group as "Language" on the Spanish, French and Hindi pages."""
    from leafdoc.ui.language import switch_html

    for lang, name in (("en", "Language"), ("es", "Idioma"), ("fr", "Langue"), ("hi", "भाषा")):
        said = switch_html(lang)
        assert f'<nav id="language-switch" aria-label="{name}">' in said, said
        assert f'<strong lang="{lang}" aria-current="true">' in said
    assert 'aria-label="Language"' in switch_html()  # before the page knows its language
