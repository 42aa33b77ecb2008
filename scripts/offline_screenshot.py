"""docs/screenshots/offline-phone.png: the offline page (/app) at 390 x 844 in Debian's headless Chromium, after one
visit to a throw-away `leafdoc serve` of the starter model, with the server stopped and the browser offline: two
example leaves, the guide's blurred leaf and its photo of no leaf at all, diagnosed or refused in the browser; the
early blight leaf tapped to show where the model looked, and its "Was this right?" answered (kept for a connection).
With --limits, offline-phone-limits.png instead: the same page scrolled to what the model knows and, opened, what it
cannot do (the model card's limitations, in the page's language where the card has them).

    .venv/bin/python scripts/offline_screenshot.py [--lang hi] [--limits]   (in that language: offline-phone-hi.png)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from playwright.sync_api import sync_playwright  # noqa: E402
from tests.e2e.test_ui_browser import launch  # noqa: E402
from tests.live_server import start_server  # noqa: E402

PHOTOS = [
    REPO / "examples" / "guide" / "blurred_leaf.jpg",
    REPO / "examples" / "potato_healthy.jpg",
    REPO / "examples" / "tomato_early_blight.jpg",
    REPO / "examples" / "guide" / "not_a_leaf.jpg",
]  # shown newest first: the photo of no leaf on top, then the early blight leaf
OUT = REPO / "docs" / "screenshots" / "offline-phone.png"


def main() -> None:
    lang = sys.argv[sys.argv.index("--lang") + 1] if "--lang" in sys.argv else None
    limits = "--limits" in sys.argv
    out = OUT.with_name("offline-phone" + (f"-{lang}" if lang else "") + ("-limits" if limits else "") + ".png")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        server = start_server(Path(tmp), REPO / "models" / "starter")
        browser = launch(p)
        context = browser.new_context(
            viewport={"width": 390, "height": 844},
            is_mobile=True,
            has_touch=True,
            device_scale_factor=2,
            locale=lang or "en-US",
        )
        page = context.new_page()
        page.set_default_timeout(120_000)
        try:
            page.goto(f"{server.base}/app/")
            page.wait_for_function("() => window.leafdoc && window.leafdoc.ready && window.leafdoc.offline")
            page.wait_for_function("() => navigator.serviceWorker.controller !== null")
        finally:
            server.stop()
        context.set_offline(True)
        page.reload()
        page.wait_for_function("() => window.leafdoc && (window.leafdoc.ready || window.leafdoc.error)")
        page.set_input_files("#photo", [str(f) for f in PHOTOS])
        page.wait_for_function(f"() => leafdoc.results.length >= {len(PHOTOS)}")
        page.click("#answers li:nth-child(2) img")  # the early blight leaf: where the model looked
        page.wait_for_function("() => document.querySelector('#answers li:nth-child(2) img').src.startsWith('blob:')")
        page.locator("#answers li:nth-child(2) .feedback button").first.click()  # "yes": kept for a connection
        page.wait_for_function("() => leafdoc.queue.waiting === 1")
        if limits:  # what it knows, and what it cannot do opened
            page.click("#limits summary")
            page.evaluate("() => window.scrollBy(0, document.querySelector('#knows').getBoundingClientRect().top - 80)")
        else:
            page.evaluate("() => window.scrollTo(0, 0)")  # the top: the line that counts what waits
        page.wait_for_timeout(300)
        page.screenshot(path=str(out))
        browser.close()
    print(out)


if __name__ == "__main__":
    main()
