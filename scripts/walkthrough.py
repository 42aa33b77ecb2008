"""The README's walkthrough: docs/walkthrough.webp, an animated image of the web page at work.

Starts its own `leafdoc serve` (API and job worker) over a throw-away data home (scripts/demo_home.py: the
starter model, a sample of PlantVillage from ../shared/datasets) with LEAFDOC_KEEP_PHOTOS=true, and drives
Debian's headless Chromium through the page at /ui: diagnose a tomato leaf -> the advice under it -> a second
leaf the model gets wrong, a thumbs down saying what it actually is -> the admin reviews it into a new dataset
version -> a zip of new photos is uploaded -> a retraining -> the new version is promoted -> the
Monitor tab. Each step is a viewport screenshot with its caption burned in (and a frame every few seconds
while the page waits), assembled with Pillow: no ffmpeg needed. Five to eight minutes on two cores.

    .venv/bin/python scripts/walkthrough.py [--out docs/walkthrough.webp] [--frames DIR]

tests/e2e/test_walkthrough.py runs the same steps (WALK) against a tiny model, without making the image.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
sys.path.insert(0, str(REPO))  # for the browser test's helpers

from tests.e2e.test_ui_browser import (  # noqa: E402
    diagnose,
    fill,
    versions_table,
    wait_for_image,
    wait_for_text,
)

from leafdoc.ui.text import pretty_label  # noqa: E402

WIDTH = 960  # frames are the 1280 x 900 viewport scaled to this width, with a caption band above
BAND = 46
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
TRAIN_WAIT_MS = 1_800_000  # one epoch on a busy two-core machine, with margin
WAIT_FRAMES = 8


@dataclass
class Film:
    """Frames of the page, each with its caption; `keep=False` only counts them (the test's steps)."""

    page: object
    keep: bool = True
    frames: list[tuple[Image.Image, str, int]] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)

    def shot(self, caption: str, ms: int = 3000, focus: str | None = None) -> None:
        if focus:
            self.page.locator(focus).first.scroll_into_view_if_needed()
        self.page.mouse.move(0, 0)  # no button in its hover colour
        self.page.evaluate("document.querySelectorAll('.toast-close').forEach(b => b.click())")  # the notices
        self.page.wait_for_timeout(500)
        self.captions.append(caption)
        if self.keep:
            png = self.page.screenshot()
            self.frames.append((Image.open(io.BytesIO(png)).convert("RGB"), caption, ms))

    def while_waiting(
        self, caption: str, done_js: str, focus: str, every_s: float = 5.0, timeout_ms: int = TRAIN_WAIT_MS
    ) -> None:
        """A frame every `every_s` seconds until `done_js` is true; at most WAIT_FRAMES of them are kept,
        evenly spread (the page at work, sped up)."""
        deadline = time.monotonic() + timeout_ms / 1000
        first = len(self.frames)
        while not self.page.evaluate(done_js):
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout_ms / 1000:.0f} s for: {done_js}")
            self.shot(caption, ms=700, focus=focus)
            self.page.wait_for_timeout(int(every_s * 1000))
        if caption not in self.captions:  # done before the first look
            self.captions.append(caption)
        waited = self.frames[first:]
        if len(waited) > WAIT_FRAMES:
            step = len(waited) / WAIT_FRAMES
            self.frames[first:] = [waited[int(i * step)] for i in range(WAIT_FRAMES)]


@dataclass
class Walk:
    """What the steps need: the server's admin token, the photos and the dataset."""

    token: str
    right_photo: Path  # a leaf the model gets right: thumbs up
    wrong_photo: Path  # a leaf the model gets wrong: thumbs down, "it is actually `actual`"
    actual: str
    new_photos: Path  # a zip of class folders to upload
    dataset: str
    epochs: int | None = None  # the Retrain tab's Head epochs box; None: as the serving model was trained
    fine_tune_epochs: int | None = None  # its Fine-tuning epochs box; None: as the serving model was trained


def step_diagnose(film: Film, walk: Walk) -> None:
    diagnose(film.page, walk.right_photo)
    film.shot("1 · A grower photographs a leaf: the diagnosis, how sure, and the spots that led to it", 4000)
    details = film.page.locator("#verdict details")
    if details.count():  # an abstention has no advice
        details.locator("summary").click()
        film.page.wait_for_timeout(300)
    film.shot(
        "2 · What to do: the advice under it (symptoms, look-alikes, treatment, sources)", 4500, "#verdict details"
    )
    film.page.click("#feedback-up")
    wait_for_text(film.page, "feedback-status", "recorded as right")
    film.shot("3 · Was this right? A thumbs up is recorded", 2500, "#feedback")


def step_feedback(film: Film, walk: Walk) -> None:
    page = film.page
    page.evaluate("window.scrollTo(0, 0)")
    diagnose(page, walk.wrong_photo)
    page.evaluate("document.querySelectorAll('#verdict details').forEach(d => d.open = false)")
    condition = pretty_label(walk.actual).split(" — ")[-1].lower()
    article = "An" if condition[:1] in "aeiou" else "A"
    film.shot(f"4 · {article} {condition} leaf: the model gets this one wrong", 4000)
    page.click("#feedback-actual input")
    page.get_by_role("option", name=pretty_label(walk.actual)).click()
    # the pick shown in the box before "No" is pressed, and the thanks naming it: on a loaded machine "No" was once
    # sent before the pick, and the review queue then had no label to offer
    page.wait_for_function(
        "name => document.querySelector('#feedback-actual input').value === name", arg=pretty_label(walk.actual)
    )
    page.click("#feedback-down")
    wait_for_text(page, "feedback-status", "recorded as wrong")
    wait_for_text(page, "feedback-status", pretty_label(walk.actual))
    film.shot("5 · Thumbs down: \u201cit is actually\u2026\u201d; the photo is kept for review", 4000, "#feedback")


def step_review(film: Film, walk: Walk) -> None:
    page = film.page
    page.evaluate("window.scrollTo(0, 0)")
    page.get_by_role("tab", name="Review").click()
    fill(page, "review-token", walk.token)  # typed once: every admin tab has it for the rest of the visit
    page.click("#review-load")
    wait_for_text(page, "review-status", "answer(s) to review")
    wait_for_image(page, "review-photo")
    film.shot("6 · The admin's review queue: disagreements and low confidence first", 4000)
    if page.input_value("#review-label input") != pretty_label(walk.actual):
        raise AssertionError(f"the review tab does not offer {walk.actual!r} for the photo")
    page.click("#review-add")
    wait_for_text(page, "review-status", "the photo is in")
    film.shot("7 · Labelled by the admin, the photo joins a new dataset version", 3500)


def step_upload(film: Film, walk: Walk) -> None:
    page = film.page
    page.evaluate("window.scrollTo(0, 0)")
    page.get_by_role("tab", name="Retrain").click()  # the token typed in Review is in its box already
    page.wait_for_function("!document.querySelector('#job-status').innerText.includes('Enter the admin token')")
    page.set_input_files("#upload-zip input[type=file]", str(walk.new_photos))
    fill(page, "upload-dataset", walk.dataset)
    page.click("#upload-button")
    wait_for_text(page, "upload-result", "Uploaded")
    film.shot("8 · A zip of newly labelled photos is uploaded: another dataset version", 3500, "#upload-result")


def step_retrain(film: Film, walk: Walk) -> None:
    page = film.page
    for box, value in (("train-epochs", walk.epochs), ("train-fine-tune-epochs", walk.fine_tune_epochs)):
        if value is not None:  # else as the serving model was trained
            fill(page, box, str(value))
            page.locator(f"#{box}").get_by_role("textbox").press("Tab")  # Gradio takes the value on blur
            page.wait_for_timeout(800)
    page.click("#train-button")
    wait_for_text(page, "retrain-status", "Training job")
    film.while_waiting(
        "9 · Retraining, warm-started from the serving model; the page follows the job (sped up)",
        "/succeeded|failed|cancelled/.test(document.querySelector('#job-status').innerText)",
        focus="#job-status",
    )
    said = page.inner_text("#job-status")
    if "succeeded" not in said:
        raise AssertionError(f"the training job did not succeed:\n{said}")
    page.wait_for_function("document.querySelector('#model-versions').innerText.includes('job ')")
    film.shot("10 · A new model version, scored on held-out photos against the serving one", 5000, "#job-status")


def step_promote(film: Film, walk: Walk) -> int:
    """Promote the newest version unless the promotion rule already did; the version now serving."""
    page = film.page
    page.click("#refresh-models")
    page.wait_for_function("document.querySelector('#model-versions').innerText.includes('job ')")
    page.click("#promote-version input")
    newest = page.get_by_role("option", name=re.compile(r"^v\d+ ")).first
    label = newest.inner_text()
    version = int(label.split()[0][1:])
    if "serving" in label:  # the rule promoted it when the job ended
        page.keyboard.press("Escape")
        film.shot(
            f"11 · Version {version} did as well as the serving one: the rule promoted it", 4000, "#model-versions"
        )
        return version
    newest.click()
    page.locator("#promote-button").scroll_into_view_if_needed()
    reason = page.get_by_label("Reason (kept in the history)")
    reason.fill("walkthrough: showing the promote step")
    page.click("#promote-button")
    wait_for_text(page, "retrain-status", f"version {version} is now serving")
    serving = [r[0] for r in versions_table(page) if "serving" in r[1]]
    if serving != [str(version)]:
        raise AssertionError(f"the versions table says {serving} is serving, not {version}")
    film.shot(
        f"11 · The admin promotes version {version} (the reason is kept): it answers from now on",
        4500,
        "#model-versions",
    )
    return version


def step_monitor(film: Film, walk: Walk) -> None:
    page = film.page
    page.evaluate("window.scrollTo(0, 0)")
    page.get_by_role("tab", name="Monitor").click()  # drawn as it opens: the token typed in Review is in
    wait_for_text(page, "monitor-summary", "Last 24 hours")
    page.wait_for_function("(document.querySelector('#monitor-activity img') || {naturalWidth: 0}).naturalWidth > 0")
    film.shot("12 · Monitor: the answers against the serving model's validation baseline", 5000)


WALK = (step_diagnose, step_feedback, step_review, step_upload, step_retrain, step_promote, step_monitor)


def caption_frame(img: Image.Image, caption: str) -> Image.Image:
    scaled = img.resize((WIDTH, round(img.height * WIDTH / img.width)), Image.Resampling.LANCZOS)
    out = Image.new("RGB", (WIDTH, scaled.height + BAND), (22, 101, 52))
    out.paste(scaled, (0, BAND))
    draw = ImageDraw.Draw(out)
    draw.text((14, BAND // 2), caption, fill="white", font=ImageFont.truetype(BOLD, 19), anchor="lm")
    return out


def save_animation(frames: list[tuple[Image.Image, str, int]], out: Path, frames_dir: Path | None) -> int:
    """An animated WebP (lossy, quality 75); each frame also as PNG in `frames_dir`. The file's size."""
    images = [caption_frame(img, caption) for img, caption, _ in frames]
    if frames_dir:
        frames_dir.mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(images):
            im.save(frames_dir / f"{i:03d}.png")
    last = [ms for _, _, ms in frames]
    last[-1] = 6000
    tmp = out.with_suffix(".tmp.webp")
    images[0].save(tmp, save_all=True, append_images=images[1:], duration=last, loop=0, quality=75, method=6)
    tmp.replace(out)
    return out.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "walkthrough.webp")
    parser.add_argument("--frames", type=Path, default=None, help="also keep every frame as a PNG here")
    args = parser.parse_args()

    import os

    from demo_home import DATASET, PLANTVILLAGE, copy_photos, make_demo_home
    from playwright.sync_api import sync_playwright
    from tests.e2e.test_ui_browser import launch, open_page, warm_up

    from leafdoc.desktop.local_server import LocalServer

    os.environ["LEAFDOC_KEEP_PHOTOS"] = "true"
    with tempfile.TemporaryDirectory(prefix="leafdoc-walk-") as tmp:
        root = Path(tmp)
        make_demo_home(root, 40, taper=3)
        archive = root / "new-photos.zip"
        new = copy_photos(root / "new", 60, 3)
        with zipfile.ZipFile(archive, "w") as zf:
            for f in sorted(new.rglob("*.jpg")):
                zf.write(f, f.relative_to(new).as_posix())
        walk = Walk(
            token="",
            right_photo=REPO / "examples" / "tomato_early_blight.jpg",
            # The starter model says Tomato late blight (96.5%) for this early blight leaf: a confused pair.
            wrong_photo=PLANTVILLAGE / "Tomato___Early_blight" / "early_blight_80.jpg",
            actual="Tomato___Early_blight",
            new_photos=archive,
            dataset=DATASET,
        )
        film = Film(page=None)
        server = LocalServer(root / "serve.log")
        server.start()
        try:
            server.wait_ready()
            walk.token = server.token
            url = warm_up(server.base)
            with sync_playwright() as p:
                browser = launch(p)
                film.page = open_page(browser, url)
                for step in WALK:
                    print(f"{step.__name__}…", flush=True)
                    step(film, walk)
                browser.close()
        except Exception:
            print(server.log_tail(), file=sys.stderr)
            if args.frames and film.frames:  # what the page showed up to the failure
                save_animation(film.frames, args.frames / "partial.webp", args.frames)
            raise
        finally:
            server.stop()
    size = save_animation(film.frames, args.out, args.frames)
    print(f"{args.out}: {len(film.frames)} frames, {size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
