"""Feedback, review and monitoring on the web page in a real browser, against a real `leafdoc serve` that
keeps photos: a user gives a thumbs down saying what the leaf actually is; an admin reviews it in the Review
tab, labels it, and sees the new dataset version; the Monitor tab asks for the admin token (a visitor without one
is told why and what to do) and, given it, shows the answers. The admin types the token once, in any admin tab.
Screenshots of each step go to the test's tmp folder (LEAFDOC_SCREENSHOTS=dir keeps them elsewhere)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from tests.conftest import TINY_CLASSES, make_leaf_folder
from tests.e2e.test_ui_browser import (
    CHROMIUM,
    enter_token,
    fill,
    launch,
    leaf_photo,
    open_page,
    wait_for_image,
    wait_for_text,
    warm_up,
)
from tests.live_server import TOKEN, answering_copy, start_server

from leafdoc.api_client import LeafdocClient
from leafdoc.ui.text import pretty_label

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")


@pytest.fixture(scope="module")
def keeping_server(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("keeping")
    server = start_server(
        root,
        answering_copy(tiny_model, root / "model"),
        dataset=make_leaf_folder(root / "leaves"),
        LEAFDOC_KEEP_PHOTOS="true",
    )
    try:
        warm_up(server.base)
        yield server
    finally:
        server.stop()


def test_thumbs_down_then_admin_review_makes_a_new_dataset_version(keeping_server, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed")
    shots = Path(os.environ.get("LEAFDOC_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    base = keeping_server.base
    with LeafdocClient(base) as api:
        [before] = api.datasets()
    actually = TINY_CLASSES[2]  # a photo of the first class, said to be of the third

    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = open_page(browser, f"{base}/ui/")
            wait_for_text(page, "photo-privacy", "Photos are kept on this server")
            # what the serving model (the tiny one: no field photos) knows, from GET /v1/models
            knows = wait_for_text(page, "model-knows", "This model knows 3 kinds of leaf of 2 crops")
            assert "one leaf on a plain background (photograph them that way): apple and corn" in knows
            page.set_input_files("#leaf-photo input[type=file]", str(leaf_photo()))
            page.wait_for_selector("#feedback-down", state="visible")
            page.click("#feedback-actual input")
            page.get_by_role("option", name=pretty_label(actually)).click()
            page.click("#feedback-down")
            said = wait_for_text(page, "feedback-status", "recorded as wrong")
            assert pretty_label(actually) in said
            page.screenshot(path=str(shots / "feedback.png"), full_page=True)

            page.get_by_role("tab", name="Monitor").click()  # no admin token typed yet: no figures
            locked = wait_for_text(page, "monitor-summary", "The figures need the admin token")
            assert "Paste the server's admin token in the box above" in locked and "Show the figures" in locked
            assert "LEAFDOC_MONITORING_OPEN=true" in locked  # what the operator could do instead
            assert "1 answers" not in locked and not page.locator("#monitor-activity").is_visible()
            page.screenshot(path=str(shots / "monitor-locked.png"), full_page=True)

            page.get_by_role("tab", name="Review").click()
            wait_for_text(page, "review-status", "needs the server's admin token")
            fill(page, "review-token", TOKEN)
            page.click("#review-load")
            wait_for_text(page, "review-status", "1 answer(s) to review")
            wait_for_image(page, "review-photo")
            assert page.input_value("#review-label input") == pretty_label(actually)
            page.screenshot(path=str(shots / "review.png"), full_page=True)
            assert page.locator("#review-add").is_enabled()  # its photo was kept: nothing said against adding it
            assert page.inner_text("#review-add-note").strip() == ""
            page.click("#review-add")
            done = wait_for_text(page, "review-status", "the photo is in")
            assert re.search(rf"tiny v{before['latest'] + 1}\b", done), done

            page.get_by_role("tab", name="Monitor").click()  # the token typed in Review: the figures at once
            summary = wait_for_text(page, "monitor-summary", "Last 24 hours")
            assert "1 answers" in summary and "feedback agreed 0 of 1" in summary
            # the tiny model's few validation photos, counted: a percentage of 3 photos ("<1%") is no measure
            assert re.search(r"On its (\d+) validation photos it abstained on \d+ of \1\.", summary), summary
            wait_for_image(page, "monitor-activity")
            page.screenshot(path=str(shots / "monitor.png"), full_page=True)
        finally:
            browser.close()

    with LeafdocClient(base) as api:
        [after] = api.datasets()
    assert after["latest"] == before["latest"] + 1
    assert after["versions"][-1]["n_images"] == before["versions"][-1]["n_images"] + 1


def test_the_admin_token_is_typed_once_for_every_admin_tab(keeping_server):
    """Typed in one admin tab, the token is in the others' boxes for the rest of the visit: Review and Monitor load
    without it typed again, and a wrong one is refused on each. Without one, each tab says what to do. The token is
    kept nowhere but the page: not in the URL, not in the browser's storage, gone when the page is reloaded."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed")
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = open_page(browser, f"{keeping_server.base}/ui/")
            page.get_by_role("tab", name="Review").click()
            assert "Load the queue" in wait_for_text(page, "review-status", "needs the server's admin token")
            page.get_by_role("tab", name="Monitor").click()
            wait_for_text(page, "monitor-summary", "The figures need the admin token")

            wrong = enter_token(page, "not-the-token", expect="failed")  # typed once, in the Retrain tab
            assert "admin token is wrong" in wrong
            page.get_by_role("tab", name="Review").click()
            refused = wait_for_text(page, "review-status", "Loading the review queue failed")
            assert "admin token is wrong" in refused and "Traceback" not in refused
            assert page.input_value("#review-token input") == "not-the-token"
            page.get_by_role("tab", name="Monitor").click()
            assert "That admin token is wrong" in wait_for_text(page, "monitor-summary", "Admin token refused")
            assert not page.locator("#monitor-activity").is_visible()

            fill(page, "monitor-token", TOKEN)  # the right one, typed once, in the Monitor tab this time
            page.click("#monitor-refresh")
            wait_for_text(page, "monitor-summary", "Last 24 hours")
            wait_for_image(page, "monitor-activity")
            page.get_by_role("tab", name="Review").click()
            wait_for_text(page, "review-status", "answer(s) to review")
            page.get_by_role("tab", name="Retrain").click()  # follows the jobs without the token typed there
            page.wait_for_function("!document.querySelector('#job-status').innerText.includes('Enter the admin token')")
            assert "Cannot follow" not in page.inner_text("#job-status")
            assert page.input_value("#admin-token input") == TOKEN

            kept = page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie")
            assert TOKEN not in kept and TOKEN not in page.url
            page.reload()
            page.wait_for_selector("#leaf-photo")
            page.get_by_role("tab", name="Review").click()
            wait_for_text(page, "review-status", "needs the server's admin token")
            assert page.input_value("#review-token input") == ""
        finally:
            browser.close()
