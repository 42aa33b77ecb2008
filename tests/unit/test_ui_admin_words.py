"""What the web page's admin tabs say (ui/text.py, ui/feedback_text.py, ui/monitor_plots.py): the models table's short
verdicts and the chosen version's whole reason, the upload's duplicates by name, the API's hints in the page's
controls, why a review answer cannot join a dataset, counts where a percentage of a few photos would mislead (the
Monitor's words and pictures), and where a phone keeps the tab the words send to."""

from __future__ import annotations

import zipfile

import pytest

from leafdoc.core.errors import LeafdocError
from leafdoc.data.sources import iter_zip
from leafdoc.ui import feedback_text, monitor_plots, text
from leafdoc.words.serving_change import promotion_details, promotion_verdict

# Promotion decisions as a retraining job keeps them (lifecycle/promotion.py's words), and as the registry writes
# the others (model_versions.py, cli/models.py).
RULE = {"metric": "accuracy", "margin": 0.0, "serving_version": 1}
WORSE = {
    **RULE,
    "n_images": 12,
    "candidate": 0.8333,
    "serving": 0.9167,
    "promote": False,
    "reason": "candidate accuracy 0.8333 is worse than serving v1 0.9167 (margin 0.0) on 12 test images (28 left "
    "out: the serving model trained on them); on the same photos the candidate alone is right on 0, the serving "
    "model alone on 1 (McNemar p = 1)",
}
TOO_FEW = {
    **RULE,
    "n_images": 6,
    "promote": False,
    "reason": "candidate accuracy 1.0000 is at least as good as serving v1 0.8333 (margin 0.0) on 6 test images (24 "
    "left out: the serving model trained on them); on the same photos the candidate alone is right on 1, the serving "
    "model alone on 0 (McNemar p = 1); fewer than 20 test images are left and they do not show the candidate better "
    "beyond chance: too few to replace the serving model automatically, an admin can promote it by hand",
}
FORGETS = {
    **RULE,
    "n_images": 60,
    "promote": False,
    "reason": "candidate accuracy 0.9500 is at least as good as serving v1 0.9000 (margin 0.0) on 60 test images; "
    "it does not know 31 of the serving model's 34 classes (Apple___Apple_scab and 30 more): served, it would answer "
    "those leaves as something else, so it is not promoted automatically; an admin can promote it by hand",
}
NONE_LEFT = {
    **RULE,
    "n_images": 0,
    "promote": False,
    "reason": "no test image is left to compare on: the serving model trained on all 30; an admin can promote it "
    "by hand",
}
BETTER = {
    **RULE,
    "n_images": 140,
    "promote": True,
    "promoted": True,
    "reason": "candidate accuracy 0.9571 is at least as good as serving v1 0.9429 (margin 0.0) on 140 test images",
    "serving_copy": {
        "variant": "int8",
        "made": True,
        "file": "model.int8.onnx",
        "validation_vs_fp32": {"top1_agreement": 0.993, "n": 150, "max_abs_prob_diff": 0.012},
    },
}
SEED = {"decision": "seed", "promoted": True, "reason": "first model, from starter"}


def version(n: int, promotion: dict | None, **kw) -> dict:
    return {"version": n, "status": "candidate", "serving": False, "promotion": promotion, **kw}


@pytest.mark.parametrize(
    ("promotion", "said"),
    [
        (BETTER, "promoted automatically"),
        (WORSE, "kept as candidate: worse on 12 test photos"),
        (TOO_FEW, "kept as candidate: 6 test photos are too few to tell"),
        (FORGETS, "kept as candidate: does not know 31 of v1's 34 classes"),
        (NONE_LEFT, "kept as candidate: no test photos left to compare on"),
        (SEED, "the first model, served from the start"),
        ({"decision": "added", "promoted": True, "reason": "added from lab"}, "added by hand and promoted"),
        (None, "–"),
    ],
)
def test_the_models_table_says_each_versions_promotion_in_a_few_words(promotion, said):
    """The promotion cell held the rule's paragraph (400 characters, McNemar's p): rows were a screen tall, and on a
    phone their cells came out blank. It says the verdict; the chosen version's reason is said whole below the table."""
    [row] = text.model_rows({"models": [version(3, promotion)]})
    assert row[text.MODEL_COLUMNS.index("promotion")] == said
    assert len(said) <= 60 and "McNemar" not in " ".join(row)
    details = promotion_details(version(3, promotion))
    assert details.startswith(f"**Version 3: {said}.**" if promotion else "**Version 3:**")
    if promotion:
        assert text.esc(promotion["reason"]) in details  # the whole reason, for the version chosen


def test_the_verdict_reads_the_promotion_rules_own_words_on_the_classes_a_candidate_does_not_know(tmp_path):
    from leafdoc.lifecycle.promotion import forgotten
    from leafdoc.modelfolder import write_labels

    serving, candidate = tmp_path / "serving", tmp_path / "candidate"
    labels = [f"Crop___condition_{i}" for i in range(34)]
    for folder, knows in ((serving, labels), (candidate, labels[:3])):
        folder.mkdir()
        write_labels(folder, knows)
    promotion = {**FORGETS, "reason": "candidate accuracy 0.9500 is at least as good; " + forgotten(candidate, serving)}
    assert promotion_verdict(version(4, promotion)) == "kept as candidate: does not know 31 of v1's 34 classes"


def test_the_chosen_versions_details_say_the_copy_it_is_served_as():
    details = promotion_details(version(5, BETTER))
    assert "Served as model.int8.onnx: same top-1 as model.onnx on 99.3% of 150 validation photos" in details


def test_the_version_menus_choices_are_short_enough_to_show_whole():
    """ "v1 (serving, test accuracy 99.1% of 5,221)" was cut in its menu (299 px of text in 288 px; less on a phone):
    the menu's label says what the figure is."""
    test = {"accuracy": 0.991, "n": 5221}
    models = {"models": [version(12, WORSE, status="rejected", metrics={"test": test})]}
    [(said, value)] = text.version_options(models)
    assert said == "v12 (not promoted, 99.1% of 5,221)" and value == 12
    assert len(said) <= 36


def test_the_upload_summary_names_the_duplicates_it_skipped():
    up = {
        "dataset": "lab",
        "version": 3,
        "added": 1,
        "duplicates": [{"file": f"new.zip:rust/{i:02}.jpg", "of": "earlier version"} for i in range(12)]
        + [{"file": "new.zip:rust/copy.jpg", "of": "new.zip:rust/00.jpg"}],
        "near_duplicates": [{"file": "new.zip:rust/a.jpg", "similar_to": "0123456789ab (rust)"}],
        "rejected": [],
        "n_images": 40,
        "n_classes": 2,
    }
    said = text.upload_summary(up).replace("\\", "")  # as the page shows it (names escaped, never links)
    assert "13 exact duplicate(s) skipped" in said
    assert "- skipped new.zip:rust/00.jpg: already in the dataset" in said
    assert "- skipped new.zip:rust/09.jpg" in said and "rust/10.jpg" not in said  # the first ten ...
    assert "- … and 3 more" in said  # ... and how many more
    assert "- new.zip:rust/a.jpg: like 0123456789ab (rust)" in said  # a near-duplicate, with the photo it is like


def test_a_hint_to_upload_with_a_label_names_the_pages_box_for_it(tmp_path):
    """The server's hint for a zip of one class in sub-folders said "upload the zip with label=rust": a form field of
    the API, which the page has no box named for. It says which box to type it in."""
    archive = tmp_path / "up.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("photos/rust/field1/a.jpg", "photos/rust/field2/b.jpg"):
            zf.writestr(name, b"not read: refused before")
    with pytest.raises(LeafdocError) as refused:
        list(iter_zip(archive, relative_names=True))  # as the upload route reads it
    hint = refused.value.hint
    assert "label=rust" in hint
    said = text.in_page_words(hint)
    assert "label=" not in said and f"type rust in “{text.UPLOAD_LABEL}” and upload the zip again" in said
    assert "or upload it to a dataset that already has a class 'rust'" in said
    assert text.in_page_words(None) is None and text.in_page_words("Upload it again.") == "Upload it again."


def test_a_rollback_with_nothing_to_roll_back_to_says_what_to_press_on_the_page(tmp_path):
    """The page's Roll back with one version served told its visitor to run `leafdoc models promote` or POST to the
    API (the review of session 71): the registry's own hint, said in the page's controls."""
    from leafdoc.core.errors import Conflict
    from leafdoc.core.settings import Settings
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.store import open_store
    from leafdoc.model_versions import Registry

    settings = Settings(home=tmp_path / "home")
    settings.ensure_home()
    registry = Registry(settings, Catalog(settings.catalog_url), open_store(settings.store_location))
    with pytest.raises(Conflict) as refused:
        registry.rollback()
    said = text.in_page_words(refused.value.hint)
    assert said == "To serve another version, pick it in “Version (status, test accuracy)” and press “Promote”."


def test_an_answer_without_a_kept_photo_cannot_be_added_and_the_page_says_why():
    kept, lost = {"has_photo": True}, {"has_photo": False}
    assert feedback_text.cannot_add(kept, keep_photos=True) is None
    assert feedback_text.cannot_add(kept, keep_photos=False) is None  # kept before the server stopped keeping them
    assert feedback_text.cannot_add(lost, keep_photos=True) == feedback_text.NO_PHOTO
    assert feedback_text.cannot_add(None, keep_photos=True) == ""  # nothing chosen: nothing to say
    why = feedback_text.cannot_add(lost, keep_photos=False)
    assert why == feedback_text.cannot_add(None, keep_photos=False) == feedback_text.NO_PHOTOS_KEPT
    assert "does not keep the photos" in why and why.count("LEAFDOC_KEEP_PHOTOS") == 1  # named once, for the admin


def report(base_answers: int, base_abstained: int, answers: int, abstained: int) -> dict:
    window = {"hours": 24, "answers": answers, "abstentions": {"unsure": abstained} if abstained else {}}
    window |= {"abstention_rate": abstained / answers if answers else None, "feedback": 0, "agreed": 0}
    window |= {"score_bins": {"0": answers}, "labels": {"Tomato___healthy": answers}}
    return {
        "model_version": 2,
        "period": "hour",
        "buckets": [],
        "drift_window": window,
        "baseline": {
            "answers": base_answers,
            "abstentions": {"unsure": base_abstained} if base_abstained else {},
            "abstention_rate": base_abstained / base_answers,
            "score_bins": {"0": base_answers},
            "label_shares": {"Tomato___healthy": 1.0},
        },
        "drift": {"checked": False, "why": f"{answers} answers; drift is checked from 50 on"},
    }


def test_the_monitor_says_counts_of_a_few_photos_not_percentages():
    """A lab's first model had 6 validation photos: "it abstained on <1%" of them (none), a figure no 6 photos give."""
    few = feedback_text.drift_summary(report(6, 0, 3, 1))
    assert "On its 6 validation photos it abstained on 0 of 6." in few and "<1%" not in few
    assert "3 answers, 1 of 3 abstained" in few and "33%" not in few
    many = feedback_text.drift_summary(report(5198, 131, 400, 12))
    assert "On its 5,198 validation photos it abstained on 3%." in many and "400 answers, 3% abstained" in many
    assert feedback_text.share_of(99, 99) == "99 of 99" and feedback_text.share_of(1, 100) == "1%"


def legends(monkeypatch, draw, given: dict) -> list[str]:
    """The legend entries of a Monitor picture (drawn, not saved)."""
    figures = []
    monkeypatch.setattr(monitor_plots, "_png", figures.append)
    draw(given)
    [fig] = figures
    return [
        t.get_text() for legend in (*fig.legends, *(ax.get_legend() for ax in fig.axes)) if legend for t in legend.texts
    ]


def test_the_monitor_pictures_say_when_their_validation_figures_rest_on_a_few_photos(monkeypatch):
    few, many = report(6, 0, 3, 1), report(5198, 131, 400, 12)
    assert "abstained on validation: 0 of 6" in legends(monkeypatch, monitor_plots.activity, few)
    assert "abstained on validation: 3%" in legends(monkeypatch, monitor_plots.activity, many)
    said = legends(monkeypatch, monitor_plots.scores, few)
    assert "validation photos (only 6)" in said
    assert "threshold (set on only 6 validation photos): refused as not a leaf from here" in said
    said = legends(monkeypatch, monitor_plots.scores, many)
    assert "validation photos" in said and "threshold: refused as not a leaf from here" in said
    assert "validation photos (only 6)" in legends(monkeypatch, monitor_plots.labels, few)
    assert "validation photos" in legends(monkeypatch, monitor_plots.labels, many)


def looks(monkeypatch, draw, given: dict) -> list[tuple]:
    """How each series of a Monitor picture looks in its legend, colour left out: a bar's hatch, a line's dashes
    and marker."""
    from matplotlib.lines import Line2D

    figures = []
    monkeypatch.setattr(monitor_plots, "_png", figures.append)
    draw(given)
    [fig] = figures
    handles = [
        h for legend in (*fig.legends, *(ax.get_legend() for ax in fig.axes)) if legend for h in legend.legend_handles
    ]
    return [
        ("line", h.get_linestyle(), h.get_marker()) if isinstance(h, Line2D) else ("bar", h.get_hatch())
        for h in handles
    ]


def test_the_monitor_pictures_series_can_be_told_apart_without_their_colours(monkeypatch):
    """The accessibility review of session 72: the abstained and answered bars were red and green, the served and
    validation bars green and grey, told apart by colour alone (red and green look alike to about one man in twelve).
    Now no two series of a picture look the same in black and white."""
    given = report(5198, 131, 400, 12) | {
        "buckets": [hour("2026-12-02T08:00", 120, 4), hour("2026-12-02T09:00", 90, 2)]
    }
    for draw in (monitor_plots.activity, monitor_plots.scores, monitor_plots.labels):
        seen = looks(monkeypatch, draw, given)
        assert len(seen) >= 2 and len(set(seen)) == len(seen), (draw.__name__, seen)


def hour(start: str, answers: int, abstained: int) -> dict:
    """An hour of GET /v1/monitoring's buckets."""
    rate = abstained / answers if answers else None
    return {"start": start, "answers": answers, "abstentions": {"unsure": abstained} if abstained else {},
            "abstention_rate": rate}  # fmt: skip


def test_an_hour_of_a_few_answers_draws_no_abstained_percentage_but_its_count(monkeypatch):
    """An hour of 2 answers, one refused, drew a 50% point on the abstained line (far over "twice validation"), and one
    of 1 a 100% point: an alarm from one photo. Now only an hour of feedback_text.SMALL_BASE answers or more has a
    point; a few answers' hour says "1 of 2" over its bar, and the caption says why."""
    busy = [hour("2026-12-01T06:00:00+00:00", 150, 6), hour("2026-12-01T08:00:00+00:00", 120, 3)]
    few = [hour("2026-12-01T07:00:00+00:00", 2, 1), hour("2026-12-01T09:00:00+00:00", 1, 1)]
    given = report(5198, 131, 400, 12) | {"buckets": [busy[0], few[0], busy[1], few[1]]}
    assert [monitor_plots.drawn_share(b) for b in given["buckets"]] == [4.0, None, 2.5, None]
    assert monitor_plots.drawn_share(hour("t", 99, 99)) is None and monitor_plots.drawn_share(hour("t", 100, 1)) == 1
    figures = []
    monkeypatch.setattr(monitor_plots, "_png", figures.append)
    monitor_plots.activity(given)
    [fig] = figures
    bars, line = fig.axes
    [shares] = [x for x in line.get_lines() if x.get_label() == "abstained %"]
    drawn = [(x, y) for x, y in zip(shares.get_xdata(), shares.get_ydata(), strict=True) if y == y]  # not NaN
    assert drawn == [(0, 4.0), (2, 2.5)], drawn  # no point for the hours of 2 answers and of 1
    assert line.get_ylim()[1] < 10  # nor is the axis stretched to 100% for them
    assert sorted(t.get_text() for t in bars.texts) == ["1 of 1", "1 of 2"]
    caption = bars.get_xlabel()
    assert "Abstained % is drawn for hours of 100 answers or more" in caption and '"1 of 2"' in caption
    figures.clear()
    monitor_plots.activity(given | {"buckets": busy})  # every hour a point: the caption says only the rule
    assert figures[0].axes[0].get_xlabel() == "Abstained % is drawn for hours of 100 answers or more."
    assert monitor_plots.few_caption("day", True).startswith("Abstained % is drawn for days of 100 answers")


@pytest.mark.parametrize(("lang", "name"), [("en", "Retrain"), ("es", "Reentrenar"), ("hi", "फिर से प्रशिक्षण")])
def test_the_words_that_send_to_the_retrain_tab_name_it_as_the_tabs_do_and_say_where_a_phone_keeps_it(lang, name):
    """At 390 px the row of tabs shows Diagnose and Dataset; Retrain is under its ⋯ menu. The Dataset tab of a new
    server said "Add labelled photos in the **Retrain** tab" (and so to a Spanish page, whose tab is "Reentrenar")."""
    from leafdoc.ui import dataset_tab, phone

    hint = dataset_tab.no_dataset(lang)
    assert f"in the **{name}** tab{phone.OVERFLOW}, with the admin token" in hint
    assert phone.OVERFLOW == '<span class="on-narrow"> (if it is not among the tabs: under **⋯** at their right)</span>'
    assert ".on-narrow { display: none; }" in phone.CSS  # shown on a phone's screen only
    assert phone.CSS.index("@media (max-width: 640px) {\n  .on-narrow { display: inline; }") > 0
    up = {"dataset": "tiny", "version": 3, "n_images": 41, "created_version": True}
    done = {"upload": up, "prediction": {"reviewed_label": "Tomato___healthy"}}
    said = feedback_text.reviewed(done, phone.tab_where("tab_retrain", lang))
    assert said.endswith(f"Retrain on it in the **{name}** tab{phone.OVERFLOW}.")
    assert feedback_text.reviewed(done).endswith("Retrain on it in the Retrain tab.")  # the desktop app's words


@pytest.mark.parametrize("lang", ["en", "es", "fr", "hi"])
def test_the_growers_privacy_note_names_no_server_setting(lang):
    """A grower read "(it runs with `LEAFDOC_KEEP_PHOTOS=true`)" under the photo: the setting is the admin's word."""
    for keep in (True, False, None):
        note = feedback_text.privacy_note(keep, lang)
        assert note and "LEAFDOC_" not in note and "`" not in note, (keep, note)
    assert feedback_text.privacy_note(True, lang) != feedback_text.privacy_note(False, lang)


def test_an_uploads_file_names_are_never_links_and_a_huge_hint_is_left_as_it_is():
    """Security round 8: the page's Markdown made `www.evil-example.com.jpg` and `x@evil.example.jpg` links by
    themselves; and the hint rewriting ran seconds over a hint repeating a zip's folder name."""
    import time

    said = text.upload_summary(
        {
            "dataset": "d",
            "version": 2,
            "added": 0,
            "duplicates": [{"file": "z.zip:a/www.evil-example.com.jpg", "of": "earlier version"}],
            "rejected": [{"file": "x@evil.example.jpg", "reason": "not an image"}],
        }
    )
    assert "www\\.evil-example\\.com\\.jpg" in said and "x\\@evil\\.example\\.jpg" in said
    hint = "upload the zip with label=x, or to a dataset " * 5_000
    start = time.perf_counter()
    assert text.in_page_words(hint) == hint
    assert time.perf_counter() - start < 0.1


@pytest.mark.parametrize("lang", ["es", "fr", "hi"])
def test_the_thanks_for_a_no_names_what_the_leaf_is_in_the_pages_language(lang):
    """The i18n review of session 73: "✓ Gracias: registrado como incorrecto (en realidad es Apple — Cedar apple rust)":
    the condition picked from a menu in Spanish was named back in English."""
    from leafdoc.advice.render import label_name

    said = feedback_text.thanks(False, "Apple___Cedar_apple_rust", lang)
    assert label_name("Apple___Cedar_apple_rust", lang) in said and "Cedar apple rust" not in said, said
