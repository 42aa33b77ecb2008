"""The README's walkthrough (scripts/walkthrough.py) step by step in a real browser against a real `leafdoc
serve` that keeps photos, with the tiny model instead of the starter (so retraining takes seconds) and without
making the animated image: diagnose -> advice -> thumbs up; a thumbs down saying what the leaf actually is ->
admin review into a new dataset version -> upload -> retraining -> promotion -> Monitor. Each step waits for
what the page must say and fails with the page's words otherwise."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest
from tests.conftest import PLANTVILLAGE, TINY_CLASSES, make_leaf_folder
from tests.e2e.test_ui_browser import CHROMIUM, launch, leaf_photo, open_page, warm_up
from tests.live_server import TOKEN, answering_copy, start_server

from leafdoc.api_client import LeafdocClient

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import walkthrough  # noqa: E402


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("walk")
    live = start_server(
        root,
        answering_copy(tiny_model, root / "model"),
        dataset=make_leaf_folder(root / "leaves"),
        LEAFDOC_KEEP_PHOTOS="true",
        LEAFDOC_PROMOTE_MARGIN="-1",  # no candidate passes the rule: the admin's Promote button is what is shown
    )
    try:
        warm_up(live.base)
        yield live
    finally:
        live.stop()


def test_the_walkthrough_steps_run_on_the_page(server, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed")
    archive = tmp_path / "new-photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for cls in TINY_CLASSES:
            for f in sorted((PLANTVILLAGE / cls).iterdir())[40:42]:
                zf.write(f, f"{cls}/{f.name}")
    walk = walkthrough.Walk(
        token=TOKEN,
        right_photo=leaf_photo(10),
        wrong_photo=leaf_photo(11),
        actual=TINY_CLASSES[2],
        new_photos=archive,
        dataset="tiny",
        epochs=2,
        fine_tune_epochs=0,
    )
    with LeafdocClient(server.base) as api:
        [before] = api.datasets()

    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            film = walkthrough.Film(open_page(browser, f"{server.base}/ui/"), keep=False)
            served = None
            for step in walkthrough.WALK:
                served = step(film, walk) or served
        finally:
            browser.close()

    assert film.frames == []  # no image made
    numbers = list(dict.fromkeys(c.split(" · ")[0] for c in film.captions))  # step 9 is shown while it waits
    assert numbers == [str(i) for i in range(1, 13)], film.captions  # every step reached what it shows
    with LeafdocClient(server.base, admin_token=TOKEN) as api:
        [after] = api.datasets()
        models = api.models()
        v2 = api.model(2)
        job = api.job(v2["job_id"])
    assert after["latest"] == before["latest"] + 2  # the reviewed photo, then the upload
    assert after["versions"][-1]["n_images"] == before["versions"][-1]["n_images"] + 1 + 2 * len(TINY_CLASSES)
    assert served == models["serving_version"] == 2
    assert v2["job_id"] and v2["card"]["baseline"]["answers"] > 0  # made by the job, with a monitoring baseline
    assert (job["options"]["epochs"], job["options"]["fine_tune_epochs"]) == (2, 0)  # both Retrain boxes sent
    assert models["history"][-1]["action"] == "promote"
