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
    # at once; then about 150 ms, growing with the cards laid out: the two tests below). The longest now is most
    # often Python's full garbage collection, once, near 70 cards (about 0.1 s of CPU in this test's process).
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


def answered(tab, path, client: FakeClient) -> None:
    """A card for `path` with the fake server's answer and its feedback bar, and its row in the history, at once."""
    from leafdoc.desktop.diagnose import ResultCard, diagnose_file

    card = ResultCard(path, "en")
    tab.cards.append(card)
    tab.cards_layout.insertWidget(0, card)
    tab._answered(card, diagnose_file(client, path, 3, lambda *a: None))


def test_a_card_added_lays_out_the_words_of_no_other_card_again(qtbot, window, tmp_path, monkeypatch):
    """Each card added or answered had every card's words laid out again: the scroll area asked the column of cards
    for its height at the width the widest card would like as well as at its own, and a card's layout keeps its
    height for one width: three questions at another width for each card shown, about 0.1 ms a card each time, the
    event loop's gap growing with the cards. Only the newest ones, changed last, are asked again now."""
    from PySide6.QtWidgets import QApplication, QHBoxLayout

    import leafdoc.desktop.diagnose as diagnose

    asked: list[tuple[object, int]] = []

    class Counted(QHBoxLayout):  # a card's own layout (ResultCard's first QHBoxLayout), counting what it is asked
        def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt's name
            asked.append((self, width))
            return super().heightForWidth(width)

    monkeypatch.setattr(diagnose, "QHBoxLayout", Counted)
    tab = window.diagnose
    tab.empty_hint.setVisible(False)
    photo = tmp_path / "leaf.png"
    photo.write_bytes(_png())
    for _ in range(30):
        answered(tab, photo, window.session.client)
        QApplication.processEvents()
    shown = list(tab.cards)
    asked.clear()
    answered(tab, photo, window.session.client)  # one more, at the top
    QApplication.processEvents()
    own = {card.layout(): card.layout().geometry().width() for card in shown}
    assert sum(layout in own for layout, _ in asked) >= len(shown)  # (the count counts)
    elsewhere = {layout for layout, width in asked if layout in own and width != own[layout]}
    assert len(elsewhere) <= 3, f"{len(elsewhere)} of the {len(shown)} cards shown were laid out at another width"


def test_a_row_added_to_the_history_measures_only_the_rows_near_the_view(qtbot, window, tmp_path):
    """The history's columns fit their contents: each row added measured every row of the table again (about 0.15 ms
    a row at 150 rows); the rows in view and the 50 nearest them now (widgets.ROWS_MEASURED)."""
    from PySide6.QtWidgets import QApplication, QStyledItemDelegate

    measured: list[int] = []

    class Counted(QStyledItemDelegate):  # how the table measures a cell
        def sizeHint(self, option, index):  # noqa: N802 - Qt's name
            measured.append(index.row())
            return super().sizeHint(option, index)

    tab = window.diagnose
    delegate = Counted(tab.table)
    tab.table.setItemDelegate(delegate)
    photo = tmp_path / "leaf.png"
    photo.write_bytes(_png())
    for _ in range(PHOTOS):
        answered(tab, photo, window.session.client)
        QApplication.processEvents()
    measured.clear()
    answered(tab, photo, window.session.client)
    QApplication.processEvents()
    rows = set(measured)
    assert PHOTOS in rows  # the new row was measured
    assert len(rows) <= 60, f"adding a row measured {len(rows)} rows of {PHOTOS + 1}"
