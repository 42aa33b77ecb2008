"""Screenshots of the web page for the README: docs/screenshots/ui-diagnose.png, ui-dataset.png, ui-retrain.png.

Starts its own `leafdoc serve` over a throw-away data home (scripts/demo_home.py: the starter model, a
sample of PlantVillage from ../shared/datasets ingested as `plantvillage-sample`), and drives
Debian's headless Chromium the way tests/e2e/test_ui_browser.py does: diagnoses an example photo, opens
the dataset, uploads a zip of new photos and (unless --no-retrain) retrains for one epoch to the end.
The PNGs are reduced to 256 colours so that each stays well under 300 KB.

    .venv/bin/python scripts/ui_screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import zipfile
from pathlib import Path

from demo_home import DATASET, REPO, copy_photos, make_demo_home
from PIL import Image

sys.path.insert(0, str(REPO))  # for the browser test's helpers

from tests.e2e.test_ui_browser import (  # noqa: E402
    diagnose,
    enter_token,
    fill,
    launch,
    open_page,
    show_dataset,
    wait_for_text,
    warm_up,
)

from leafdoc.desktop.local_server import LocalServer  # noqa: E402


def small_png(path: Path, height: int | None = None) -> int:
    """Crop to `height` (keep the top), reduce to 256 colours; the file's size in bytes."""
    img = Image.open(path).convert("RGB")
    if height and img.height > height:
        img = img.crop((0, 0, img.width, height))
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    return path.stat().st_size


def close_toasts(page) -> None:
    page.evaluate("document.querySelectorAll('.toast-close').forEach(b => b.click())")
    page.wait_for_timeout(600)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--no-retrain", action="store_true", help="upload only; do not retrain (minutes)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="leafdoc-shots-") as tmp:
        root = Path(tmp)
        make_demo_home(root, 40, taper=3)
        server = LocalServer(root / "serve.log")
        server.start()
        try:
            server.wait_ready()
            url = warm_up(server.base)
            with sync_playwright() as p:
                browser = launch(p)
                page = open_page(browser, url)

                diagnose(page, REPO / "examples" / "tomato_early_blight.jpg")
                page.mouse.move(0, 0)
                page.wait_for_timeout(500)
                shot = args.out / "ui-diagnose.png"
                page.screenshot(path=shot, full_page=True)
                print(f"{shot}: {small_png(shot, 1000):,} bytes")

                show_dataset(page)
                page.wait_for_timeout(500)
                shot = args.out / "ui-dataset.png"
                page.screenshot(path=shot, full_page=True)
                print(f"{shot}: {small_png(shot, 1500):,} bytes")

                enter_token(page, server.token, expect="Token accepted")
                archive = root / "new-photos.zip"
                new = copy_photos(root / "new", 60, 3)
                with zipfile.ZipFile(archive, "w") as zf:
                    for f in sorted(new.rglob("*.jpg")):
                        zf.write(f, f.relative_to(new).as_posix())
                    zf.writestr("Tomato___Late_blight/notes.txt", "field notes, not a photo")
                page.set_input_files("#upload-zip input[type=file]", str(archive))
                fill(page, "upload-dataset", DATASET)
                page.click("#upload-button")
                wait_for_text(page, "upload-result", "Uploaded")
                if not args.no_retrain:
                    fill(page, "train-epochs", "1")
                    page.click("#train-button")
                    wait_for_text(page, "retrain-status", "Training job")
                    print("retraining (minutes on two cores)…")
                    page.wait_for_function(
                        "/succeeded|failed/.test(document.querySelector('#job-status').innerText)", timeout=1_800_000
                    )
                    page.wait_for_function("document.querySelector('#model-versions').innerText.includes('job ')")
                close_toasts(page)
                page.mouse.move(0, 0)  # no button in its hover colour
                shot = args.out / "ui-retrain.png"
                page.screenshot(path=shot, full_page=True)
                print(f"{shot}: {small_png(shot):,} bytes")
                browser.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
