"""Security round 5 (2026-12): what all visitors together may leave in the web page's Gradio queue
(ui/queue_guard.py), replayed against a real `leafdoc serve`."""

from __future__ import annotations

import secrets

import pytest
from tests.e2e.test_security_round4 import client_from, join, load_event, read_results
from tests.live_server import answering_copy, start_server

from leafdoc.ui.queue_guard import BUSY, BUSY_RETRY_AFTER_SECONDS, TOO_MANY

pytestmark = pytest.mark.e2e

PER_VISITOR, TOTAL = 4, 6  # LEAFDOC_UI_EVENTS_PER_VISITOR and LEAFDOC_UI_EVENTS_TOTAL here (defaults 20 and 200)


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("round5")
    srv = start_server(
        root,
        answering_copy(tiny_model, root / "model"),
        LEAFDOC_UI_EVENTS_PER_VISITOR=str(PER_VISITOR),
        LEAFDOC_UI_EVENTS_TOTAL=str(TOTAL),
    )
    yield srv
    srv.stop()


def test_many_addresses_together_cannot_fill_the_pages_queue(server):
    """Round 4 bounded each address (20 events), not their sum: a client with many addresses (many IPv4 ones, many
    IPv6 /64s) could still grow the page's process without bound. Now past LEAFDOC_UI_EVENTS_TOTAL outstanding events
    a new one, from any address, is answered 503 busy with Retry-After; reading a result frees a place."""
    addresses = ("127.0.0.10", "127.0.0.11", "127.0.0.12")
    clients = [client_from(a, server.base) for a in addresses]
    first, second, third = clients
    try:
        fn = load_event(first)
        before = server.log.read_text(errors="replace")
        mine = [secrets.token_hex(8) for _ in range(PER_VISITOR)]
        assert [join(first, fn, s).status_code for s in mine] == [200] * PER_VISITOR
        over = join(first, fn, secrets.token_hex(8))  # this address's own bound comes first
        assert (over.status_code, over.json()["detail"]) == (503, TOO_MANY.format(count=PER_VISITOR))

        assert [join(second, fn, secrets.token_hex(8)).status_code for _ in range(TOTAL - PER_VISITOR)] == [200] * (
            TOTAL - PER_VISITOR
        )
        for c in (second, third):  # under its own bound, but the page's queue is full
            busy = join(c, fn, secrets.token_hex(8))
            assert (busy.status_code, busy.json()["detail"]) == (503, BUSY), busy.text
            assert busy.headers["retry-after"] == str(BUSY_RETRY_AFTER_SECONDS)
            assert str(server.home) not in busy.text and "/tmp" not in busy.text

        assert "process_completed" in read_results(first, mine[0])  # a result read frees a place
        later = secrets.token_hex(8)
        assert join(third, fn, later).status_code == 200
        assert "process_completed" in read_results(third, later)
        added = server.log.read_text(errors="replace")[len(before) :]
        assert added.count("LEAFDOC_UI_EVENTS_TOTAL") == 1, added  # said once, not per refusal
        assert "Traceback" not in added
    finally:
        for c in clients:
            c.close()
