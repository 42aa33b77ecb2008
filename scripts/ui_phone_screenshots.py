"""Screenshots of the web page on a phone (390 x 844) for docs/web-page.md: docs/screenshots/ui-phone-answer.png (an
early blight leaf the starter model names, with late blight, the urgent look-alike, second: the answer first, with
the caution),
ui-phone-unsure.png (a refusal: no percentage, "could be A or B" and how to tell them apart),
ui-phone-history.png (the visitor's history, kept in the browser), ui-phone-hindi.png (the same early blight answer
for a phone set to Hindi, its advice marked translated, not yet reviewed) and ui-phone-crop.png (the first screen:
the photo, the crop dropdown open, the Diagnose button).

Starts its own `leafdoc serve` of the starter model over a throw-away data home (as tests/e2e/test_ui_phone.py
does) and drives Debian's headless Chromium. About a minute on two cores.

    .venv/bin/python scripts/ui_phone_screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from playwright.sync_api import sync_playwright  # noqa: E402
from tests.e2e.test_ui_browser import launch, warm_up  # noqa: E402
from tests.e2e.test_ui_phone import (  # noqa: E402
    EARLY_BLIGHT_NOT_RULING_OUT_LATE,
    STARTER,
    UNSURE_PHOTO,
    diagnose_on_phone,
    open_phone,
)
from tests.live_server import start_server  # noqa: E402
from ui_screenshots import small_png  # noqa: E402


def shoot(page, path: Path) -> None:
    page.wait_for_timeout(500)
    page.screenshot(path=path)
    print(f"{path}: {small_png(path):,} bytes", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--base", help="a running `leafdoc serve` of the starter model to use instead of starting one")
    args = parser.parse_args()
    if args.base:
        shoot_all(warm_up(args.base), args.out)
        return 0
    with tempfile.TemporaryDirectory(prefix="leafdoc-phone-") as tmp:
        server = start_server(Path(tmp), STARTER)
        try:
            shoot_all(warm_up(server.base), args.out)
        finally:
            server.stop()
    return 0


def shoot_all(url: str, out: Path) -> None:
    with sync_playwright() as p:
        browser = launch(p)
        page = open_phone(browser, url)
        page.wait_for_selector("#crop-choice input")
        page.click("#crop-choice input")  # the crop dropdown open under the photo, before the Diagnose button
        page.get_by_role("option", name="Tomato", exact=True).wait_for()
        shoot(page, out / "ui-phone-crop.png")
        page.get_by_role("option", name="I don't know", exact=True).click()
        diagnose_on_phone(page, EARLY_BLIGHT_NOT_RULING_OUT_LATE)
        shoot(page, out / "ui-phone-answer.png")
        diagnose_on_phone(page, UNSURE_PHOTO)
        shoot(page, out / "ui-phone-unsure.png")
        page.locator("#history").scroll_into_view_if_needed()
        shoot(page, out / "ui-phone-history.png")
        page.context.close()
        page = open_phone(browser, url, locale="hi-IN")  # the phone's language, so its Accept-Language, in Hindi
        diagnose_on_phone(page, EARLY_BLIGHT_NOT_RULING_OUT_LATE)
        shoot(page, out / "ui-phone-hindi.png")
        browser.close()


if __name__ == "__main__":
    raise SystemExit(main())
