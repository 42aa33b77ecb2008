"""Screenshots of the web page for the README: docs/screenshots/ui-diagnose.png, ui-advice.png, ui-feedback.png,
ui-review.png, ui-monitor.png, ui-dataset.png, ui-retrain.png.

Starts its own `leafdoc serve` over a throw-away data home (scripts/demo_home.py: the starter model, a
sample of PlantVillage from ../shared/datasets ingested as `plantvillage-sample`) with
LEAFDOC_KEEP_PHOTOS=true, and drives Debian's headless Chromium the way tests/e2e/test_ui_browser.py and
tests/e2e/test_ui_feedback.py do: diagnoses an example photo and unfolds its advice; diagnoses an early
blight leaf the starter model takes for late blight and answers "✗ No, it is actually Tomato — Early
blight"; sends about 190 more photos through the API (PlantVillage leaves, some with feedback, field photos
of corn and flowers, so that the model abstains on some); loads the Review queue and the Monitor tab; opens
the dataset, uploads a zip of new photos and (unless --no-retrain) retrains for one epoch to the end.
The PNGs are reduced to 256 colours so that each stays under 300 KB. 50 to 75 s with --no-retrain on two
cores; the retraining adds minutes.

    .venv/bin/python scripts/ui_screenshots.py [--out docs/screenshots] [--no-retrain]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from demo_home import DATASET, PLANTVILLAGE, REPO, copy_photos, make_demo_home
from PIL import Image

sys.path.insert(0, str(REPO))  # for the browser test's helpers

from tests.e2e.test_ui_browser import (  # noqa: E402
    diagnose,
    enter_token,
    fill,
    launch,
    open_page,
    show_dataset,
    wait_for_image,
    wait_for_text,
    warm_up,
)

from leafdoc.api_client import LeafdocClient  # noqa: E402
from leafdoc.desktop.local_server import LocalServer  # noqa: E402
from leafdoc.ui.text import pretty_label  # noqa: E402

SHARED = PLANTVILLAGE.parent
# The starter model says Tomato late blight (96.5% sure) for this early blight leaf, one of its two errors on the shared
# photos of its test split (as in scripts/walkthrough.py).
WRONG_PHOTO = PLANTVILLAGE / "Tomato___Early_blight" / "early_blight_80.jpg"
ACTUAL = "Tomato___Early_blight"
FEEDBACK = 15  # leaves answered through the API that get feedback (the server allows 20 a minute per address)


def small_png(path: Path, height: int | None = None) -> int:
    """Crop to `height` (keep the top), reduce to 256 colours; the file's size in bytes."""
    img = Image.open(path).convert("RGB")
    if height and img.height > height:
        img = img.crop((0, 0, img.width, height))
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    return path.stat().st_size


def save(page, path: Path, height: int | None = None, **options) -> None:
    page.mouse.move(0, 0)  # no button in its hover colour
    page.wait_for_timeout(500)
    page.screenshot(path=path, full_page=True, **options)
    print(f"{path}: {small_png(path, height):,} bytes", flush=True)


def close_toasts(page) -> None:
    page.evaluate("document.querySelectorAll('.toast-close').forEach(b => b.click())")
    page.wait_for_timeout(600)


def recorded(api: LeafdocClient) -> int:
    """Answers of the last 24 hours in the catalog (GET /v1/monitoring: `api` holds the admin token)."""
    return sum(b["answers"] for b in api.monitoring()["buckets"])


def more_answers(base: str, token: str) -> None:
    """The traffic the Review and Monitor tabs show: 4 PlantVillage leaves of each class (the first FEEDBACK
    of them with a user's feedback: right, or wrong and what the leaf is), 3 field photos of each corn
    disease and 60 flowers, in batches through /v1/predict/batch."""
    leaves = [(f, c.name) for c in sorted(PLANTVILLAGE.iterdir()) if c.is_dir() for f in sorted(c.iterdir())[-4:]]
    fields = [f for c in sorted((SHARED / "field-corn").iterdir()) if c.is_dir() for f in sorted(c.iterdir())[:3]]
    flowers = [f for kind in ("daisy", "roses") for f in sorted((SHARED / "flowers" / kind).iterdir())[:30]]
    photos = [f for f, _ in leaves] + fields + flowers
    answers = []
    with LeafdocClient(base, admin_token=token) as api:
        before = recorded(api)
        for i in range(0, len(photos), 32):
            batch = api.predict_batch([(f.name, f.read_bytes()) for f in photos[i : i + 32]])
            answers += [r["prediction"] for r in batch["results"]]
        given = 0
        for (_, truth), answer in zip(leaves, answers, strict=False):
            if answer and not answer["abstained"] and given < FEEDBACK:
                right = answer["label"] == truth
                api.feedback(answer["prediction_id"], right, None if right else truth)
                given += 1
        deadline = time.monotonic() + 60  # the server writes its records (and photos) in the background
        while recorded(api) < before + len(answers) and time.monotonic() < deadline:
            time.sleep(0.5)
    abstained = sum(1 for a in answers if a and a["abstained"])
    print(f"{len(answers)} more answers ({abstained} abstentions), feedback on {given}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--no-retrain", action="store_true", help="upload only; do not retrain (minutes)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import sync_playwright

    os.environ["LEAFDOC_KEEP_PHOTOS"] = "true"  # the Review tab shows the photos
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
                save(page, args.out / "ui-diagnose.png", 1000)

                page.locator("#verdict details summary").click()  # the advice, unfolded
                top = page.locator("[role=tablist]").first.bounding_box()["y"] - 8
                save(page, args.out / "ui-advice.png", clip={"x": 0, "y": top, "width": 1280, "height": 1100})

                diagnose(page, WRONG_PHOTO)
                page.evaluate("document.querySelectorAll('#verdict details').forEach(d => d.open = false)")
                page.click("#feedback-actual input")
                page.get_by_role("option", name=pretty_label(ACTUAL)).click()
                page.click("#feedback-down")
                wait_for_text(page, "feedback-status", "recorded as wrong")
                save(page, args.out / "ui-feedback.png", 1120)

                more_answers(server.base, server.token)
                page.get_by_role("tab", name="Review").click()
                fill(page, "review-token", server.token)  # typed once: every admin tab has it from now on
                page.click("#review-load")
                wait_for_text(page, "review-status", "answer(s) to review")
                wait_for_image(page, "review-photo")
                save(page, args.out / "ui-review.png", 1150)

                page.get_by_role("tab", name="Monitor").click()  # drawn as it opens, with the token typed in Review
                wait_for_text(page, "monitor-summary", "Last 24 hours")
                for kind in ("activity", "scores", "labels"):
                    wait_for_image(page, f"monitor-{kind}")
                save(page, args.out / "ui-monitor.png")

                show_dataset(page)
                save(page, args.out / "ui-dataset.png", 1500)

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
                save(page, args.out / "ui-retrain.png")
                browser.close()
        except Exception:
            print(server.log_tail(), file=sys.stderr)
            raise
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
