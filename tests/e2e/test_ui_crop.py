"""The web page's crop dropdown (Debian's headless Chromium, a real `leafdoc serve` of the starter model): it lists
"I don't know" and the serving model's crops from GET /v1/models, and a crop picked there reaches the answer: a
held-out photo the model takes for another crop is answered within the crop picked, and saying so."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.conftest import PLANTVILLAGE, REPO
from tests.crop_photos import other_crop_photo_or_skip, words
from tests.e2e.test_ui_browser import CHROMIUM, WAIT_MS, go_to, launch, warm_up

from leafdoc.ui.text import pretty_label
from leafdoc.words.photo_guide import serving_crops

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")

STARTER = REPO / "models" / "starter"


@pytest.fixture(scope="module")
def found():
    return other_crop_photo_or_skip(STARTER, PLANTVILLAGE)


@pytest.fixture(scope="module")
def server(tmp_path_factory, found) -> Iterator:
    from tests.live_server import start_server

    live = start_server(tmp_path_factory.mktemp("crop-page"), STARTER)
    try:
        warm_up(live.base)
        yield live
    finally:
        live.stop()


def headline(page) -> str:
    return page.inner_text("#verdict h2")


def test_the_crop_picked_on_the_page_reaches_the_answer(server, found):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (scripts/system-packages.sh installs it)")
    photo, truth, unaided = found
    crop = words(truth)
    listed = serving_crops(httpx.get(f"{server.base}/v1/models", timeout=60).json())
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-GB")
            page.set_default_timeout(WAIT_MS)
            go_to(page, f"{server.base}/ui/", drawn="#crop-choice input")
            assert page.input_value("#crop-choice input") == "I don't know"
            # unaided: the other crop's condition (named, or "not sure" for a field photo it is unsure of)
            page.set_input_files("#leaf-photo input[type=file]", str(photo))
            page.wait_for_function(
                "(want) => { const h = document.querySelector('#verdict h2');"
                " return h && (h.innerText.includes(want) || h.innerText.startsWith('Not sure')); }",
                arg=pretty_label(unaided).split(" — ")[0],
            )
            assert "You said this is" not in page.inner_text("#verdict")
            # the dropdown holds the serving model's crops (filled when the page opened)
            page.click("#crop-choice input")
            # (the chosen one is marked with a tick on a line of its own)
            options = [o.split("\n")[-1].strip() for o in page.get_by_role("option").all_inner_texts()]
            assert options[0] == "I don't know"
            assert [o.lower() for o in options[1:]] == listed
            page.get_by_role("option", name=crop[:1].upper() + crop[1:], exact=True).click()
            # picking the crop answers the same photo again, within that crop
            page.wait_for_function(
                "(want) => document.getElementById('verdict').innerText.includes(want)",
                arg=f"You said this is {crop}",
            )
            shown = headline(page)
            assert pretty_label(unaided) not in shown, shown
            said = page.inner_text("#verdict")
            if "Not sure" not in shown:
                assert shown.lower().startswith(pretty_label(truth).split(" — ")[0].lower()), shown
            assert "another crop than" in said  # unaided, the model gave most of its probability to another crop
            # every label in the bars is of the crop picked
            bars = page.inner_text("#top-k") if page.locator("#top-k").is_visible() else ""
            for line in bars.splitlines():
                if " — " in line:
                    assert line.lower().startswith(pretty_label(truth).split(" — ")[0].lower()), bars
        finally:
            browser.close()


def test_on_a_phone_the_crop_comes_between_the_photo_and_the_diagnose_button(server):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (scripts/system-packages.sh installs it)")
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            page.set_default_timeout(WAIT_MS)
            go_to(page, f"{server.base}/ui/", drawn="#crop-choice input")
            photo, crop, button = (
                page.locator(s).bounding_box() for s in ("#leaf-photo", "#crop-choice", "#diagnose-button")
            )
            assert photo["y"] + photo["height"] <= crop["y"] + 1, (photo, crop)
            assert crop["y"] + crop["height"] <= button["y"] + 1, (crop, button)
            assert button["y"] + button["height"] <= 844, "the Diagnose button is off the first screen"
        finally:
            browser.close()
