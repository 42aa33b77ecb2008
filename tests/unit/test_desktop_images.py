"""The desktop app's pictures are decoded by Pillow (widgets.decode_image), in the worker threads that fetch them, and
never by Qt's image plugins there: Qt, reading bytes in a worker that holds Python's lock, probes its plugins, the
SVG plugin's probe connects a Qt signal, and a UI thread disconnecting one from a Python object being freed waited
for Python's lock while holding Qt's: the suite hung once on the monitoring tab (2026-11-29)."""

from __future__ import annotations

import base64
import io
import os
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

pytest.importorskip("PySide6", reason="the [desktop] extra (PySide6) is not installed")
from PySide6.QtGui import QImage, QImageReader  # noqa: E402

from leafdoc.desktop import dataset, diagnose, monitor  # noqa: E402
from leafdoc.desktop.widgets import decode_image  # noqa: E402


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def pixels(image: QImage) -> np.ndarray:
    """(H, W, 4) RGBA of a QImage."""
    image = image.convertToFormat(QImage.Format.Format_RGBA8888)
    row = image.bytesPerLine()
    raw = np.frombuffer(bytes(image.constBits()), np.uint8).reshape(image.height(), row)
    return raw[:, : image.width() * 4].reshape(image.height(), image.width(), 4)


def test_a_photo_is_shown_upright_at_most_its_size_and_a_picture_keeps_its_transparency():
    # A 300x200 photo: red left half, blue right half, stored rotated (EXIF orientation 6: turn it clockwise).
    arr = np.zeros((200, 300, 3), np.uint8)
    arr[:, :150] = (220, 20, 20)
    arr[:, 150:] = (20, 20, 220)
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = encoded(Image.fromarray(arr), "JPEG", quality=95, exif=exif)
    shown = decode_image(photo)
    assert (shown.width(), shown.height()) == (200, 300)  # upright: turned a quarter
    top, bottom = pixels(shown)[20, 100, :3], pixels(shown)[280, 100, :3]
    assert top[0] > 180 > top[2] and bottom[2] > 180 > bottom[0], (top, bottom)  # the red half on top
    small = decode_image(photo, 120)
    assert (small.width(), small.height()) == (80, 120)

    glass = np.zeros((10, 10, 4), np.uint8)
    glass[..., 1], glass[:5, :, 3] = 200, 255  # the top half green and opaque, the rest transparent
    picture = pixels(decode_image(encoded(Image.fromarray(glass, "RGBA"), "PNG")))
    assert picture[2, 2].tolist() == [0, 200, 0, 255] and picture[8, 8, 3] == 0

    assert decode_image(b"not a picture").isNull() and decode_image(b"").isNull()


def test_an_heic_photo_is_decoded_too():
    pillow_heif = pytest.importorskip("pillow_heif", reason="the [heic] extra (pillow-heif) is not installed")
    buf = io.BytesIO()
    pillow_heif.from_pillow(Image.new("RGB", (64, 48), (30, 160, 40))).save(buf, quality=90)
    shown = decode_image(buf.getvalue(), 32)
    assert (shown.width(), shown.height()) == (32, 24)
    assert abs(int(pixels(shown)[12, 16, 1]) - 160) < 12


@pytest.fixture
def no_qt_decoding_off_the_ui_thread(monkeypatch):
    """Qt's decoders, made to fail when called from any thread but the main one."""
    main = threading.main_thread()

    def guard(original):
        def call(*args, **kwargs):
            if threading.current_thread() is not main:
                raise AssertionError("Qt decoded an image in a worker thread")
            return original(*args, **kwargs)

        return call

    monkeypatch.setattr(QImage, "fromData", guard(QImage.fromData))
    monkeypatch.setattr(QImage, "loadFromData", guard(QImage.loadFromData))
    monkeypatch.setattr(QImageReader, "read", guard(QImageReader.read))


def in_a_worker(fn):
    out: dict = {}

    def run():
        try:
            out["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    if "error" in out:
        raise out["error"]
    return out["result"]


def test_the_workers_that_fetch_pictures_decode_them_without_qt(no_qt_decoding_off_the_ui_thread, monkeypatch):
    png = encoded(Image.new("RGB", (40, 30), (250, 250, 250)), "PNG")
    jpeg = encoded(Image.new("RGB", (400, 300), (90, 140, 60)), "JPEG")

    class Client:
        def dataset_plot(self, *args, **kwargs):
            return png

        def monitoring(self, period):
            return {"period": period}

        def explain(self, *args, **kwargs):
            return {"label": "Tomato___healthy", "model_version": 1, "overlay_png": base64.b64encode(png).decode()}

        def advice_for(self, answer):
            return None

        def model(self, version):
            return {"labels": ["Tomato___healthy"]}

    monkeypatch.setattr(monitor.monitor_plots, "activity", lambda report: png)
    monkeypatch.setattr(monitor.monitor_plots, "scores", lambda report: png)
    monkeypatch.setattr(monitor.monitor_plots, "labels", lambda report: png)
    with pytest.raises(AssertionError, match="worker thread"):  # the guard itself works
        in_a_worker(lambda: QImage.fromData(png))

    _, plot = in_a_worker(lambda: dataset.fetch_plot(Client(), "d", "sizes", None, None))
    _, pictures = in_a_worker(lambda: monitor.fetch_monitoring(Client(), "day"))
    assert (plot.width(), plot.height()) == (40, 30) and all(p.width() == 40 for p in pictures)

    photo = io.BytesIO(jpeg)
    path = type("P", (), {"read_bytes": lambda self: photo.getvalue(), "name": "leaf.jpg"})()
    shown = []
    answer = in_a_worker(lambda: diagnose.diagnose_file(Client(), path, 3, lambda *v: shown.append(v)))
    thumbnail = shown[0][1]
    assert max(thumbnail.width(), thumbnail.height()) <= diagnose.THUMB and not thumbnail.isNull()
    assert answer["overlay"].width() == 40
