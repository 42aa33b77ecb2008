"""A folder-size batch on the Diagnose tab, against a fake client that answers at once: choosing the 150 photos of a
folder froze the window for about 20 s (tab clicks took 2.7-13.8 s to show) while 150 cards, each with a 34-label
drop-down, were built and 150 requests queued in one turn of the event loop; the top card stayed "Diagnosing…"
while the history filled."""

from __future__ import annotations

import base64
import io
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"


import pytest  # noqa: E402
from PIL import Image  # noqa: E402

pytest.importorskip("PySide6.QtWidgets")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QTimer  # noqa: E402
from tests.e2e.desktop_support import close_dialogs, dialogs_shown, unreachable_window  # noqa: E402

PHOTOS = 150
LABELS = [f"Crop{c}___Condition_{i}" for c in range(6) for i in range(6)][:34]


def _png(size: int = 96) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (40, 140, 60)).save(buf, "PNG")
    return buf.getvalue()


class FakeClient:
    """What diagnose_file asks of a LeafdocClient, answered at once."""

    base_url = "http://fake"
    admin_token = None

    def __init__(self):
        self.overlay = base64.b64encode(_png(64)).decode()
        self.in_flight = 0
        self.most_in_flight = 0
        self.explained = 0

    def explain(self, data, name, top_k=3, crop=None, lang=None):
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(0.002)
        self.in_flight -= 1
        self.explained += 1
        top = [{"label": LABELS[i], "probability": p} for i, p in enumerate([0.8, 0.15, 0.05][:top_k])]
        return {
            "abstained": False,
            "label": LABELS[0],
            "confidence": 0.8,
            "top_k": top,
            "model_version": 1,
            "prediction_id": f"p-{name}",
            "overlay_png": self.overlay,
            "explained_label": LABELS[0],
        }

    def advice_for(self, answer):
        return None

    def model(self, version):
        return {"version": version, "labels": LABELS}

    def models(self):
        return {"models": [], "serving_version": 1}

    def close(self):
        pass


@pytest.fixture
def window(qtbot, tmp_path):
    """The main window, its server unreachable (the "Cannot connect" dialog closed), then given the fake client."""
    w = unreachable_window(qtbot, tmp_path, size=(1100, 760))
    w.session.client = FakeClient()
    w.session.is_connected = True
    yield w
    close_dialogs()


def test_a_folder_of_150_photos_never_freezes_the_window_and_the_top_card_is_answered(qtbot, window, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    png = _png()
    files = []
    for i in range(PHOTOS):
        path = folder / f"leaf_{i:03d}.png"
        path.write_bytes(png)
        files.append(path)
    tab = window.diagnose
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    qtbot.wait(200)
    started = time.perf_counter()
    tab._diagnose_all(files)
    ticks.append(time.perf_counter())  # the call itself blocks the loop: it counts as a gap
    progress = getattr(tab, "progress", None)  # (checked below, once the freeze is)
    said_first = progress.text() if progress is not None and progress.isVisible() else None
    qtbot.waitUntil(lambda: len(tab.history) == PHOTOS, timeout=120_000)
    ended = time.perf_counter()
    timer.stop()
    during = [started] + [t for t in ticks if t >= started] + [ended]
    longest = max(b - a for a, b in zip(during, during[1:], strict=False))
    print(f"longest gap between 50 ms ticks: {longest * 1000:.0f} ms; batch {ended - started:.1f} s")
    # a click shown within half a second at worst, on two shared cores (the old code: 2 s here, every card built
    # at once; about 150 ms now, growing slowly with the number of cards laid out)
    assert longest < 0.5, f"the window froze for {longest * 1000:.0f} ms"
    # while it ran, a line over the cards said how far it was; gone once done
    assert said_first == f"0 of {PHOTOS} photos diagnosed…" and not progress.isVisible()
    assert len(tab.cards) == PHOTOS and not dialogs_shown()
    # every card answered, the top one (the newest) too: none left saying "Diagnosing…"
    assert all(card.answer is not None for card in tab.cards)
    top = tab.cards_layout.itemAt(0).widget()
    assert top.title.text() != "Diagnosing…" and top.title.text() == tab.cards[-1].title.text()
    # the requests were not all handed to the thread pool at once: other tabs' calls still get a thread
    assert window.session.client.most_in_flight <= 3
    # the "It is actually…" box of an answered card still holds every other label when opened
    bar = tab.cards[0].feedback
    assert bar is not None and bar.actual.findData(LABELS[5]) > 0
