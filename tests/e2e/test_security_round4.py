"""The fourth security round's probes (2026-11-30), replayed against a real `leafdoc serve`: what one visitor may
leave in the web page's Gradio queue (ui/queue_guard.py)."""

from __future__ import annotations

import secrets

import httpx
import pytest
from tests.live_server import answering_copy, start_server

from leafdoc.ui.queue_guard import TOO_MANY

pytestmark = pytest.mark.e2e

CAP = 4  # LEAFDOC_UI_EVENTS_PER_VISITOR for these tests (default 20)


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("round4")
    srv = start_server(root, answering_copy(tiny_model, root / "model"), LEAFDOC_UI_EVENTS_PER_VISITOR=str(CAP))
    yield srv
    srv.stop()


def client_from(address: str, base: str) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=120, transport=httpx.HTTPTransport(local_address=address))


def load_event(c: httpx.Client) -> int:
    """The fn_index of the page's load event that writes its notes (no inputs: any client can send it)."""
    config = c.get("/ui/config").json()
    return next(i for i, d in enumerate(config["dependencies"]) if d.get("api_name") == "notes")


def join(c: httpx.Client, fn: int, session: str) -> httpx.Response:
    body = {"data": [], "fn_index": fn, "session_hash": session, "event_data": None, "trigger_id": None}
    return c.post("/ui/gradio_api/queue/join", json=body)


def read_results(c: httpx.Client, session: str) -> str:
    """Everything the queue sends a page for `session` until it closes the stream (its events are done)."""
    with c.stream("GET", "/ui/gradio_api/queue/data", params={"session_hash": session}) as stream:
        return "".join(line for line in stream.iter_lines())


def test_a_visitor_that_never_reads_its_answers_cannot_fill_the_pages_queue(server, tmp_path):
    """Security round 4: 2,000 joins of the load event by one client, never read, took the page's process from 229 MB
    to 1.98 GB and kept a real visitor's page waiting 153 s. Now one address has at most CAP events outstanding; the
    next is refused with a sentence saying what to do, another visitor is served, and reading frees a place."""
    with client_from("127.0.0.3", server.base) as attacker, client_from("127.0.0.4", server.base) as visitor:
        fn = load_event(attacker)
        sessions = [secrets.token_hex(8) for _ in range(CAP + 6)]
        answers = [join(attacker, fn, s) for s in sessions]
        accepted = [s for s, r in zip(sessions, answers, strict=True) if r.status_code == 200]
        refused = [r for r in answers if r.status_code != 200]
        assert len(accepted) == CAP, [r.status_code for r in answers]
        assert all(r.status_code == 503 for r in refused)
        detail = refused[0].json()["detail"]
        assert detail == TOO_MANY.format(count=CAP)
        assert str(server.home) not in detail and "/tmp" not in detail

        # another address is not held by this one's events
        mine = secrets.token_hex(8)
        assert join(visitor, fn, mine).status_code == 200
        assert "process_completed" in read_results(visitor, mine)

        # the attacker's results, once read, free its places
        assert "process_completed" in read_results(attacker, accepted[0])
        again = secrets.token_hex(8)
        assert join(attacker, fn, again).status_code == 200
        assert join(attacker, fn, secrets.token_hex(8)).status_code == 503


def test_events_and_uploads_the_page_does_not_have_are_refused_without_a_traceback(server):
    """Security round 4: an unknown event number, an unknown API name and an upload whose part is no file were each a
    500 (with no word of what was wrong) and a 90-line traceback in the server's log, for any anonymous request. Now
    each is a 400/404 with a sentence saying what to do, and one warning line in the log."""
    from leafdoc.ui.queue_guard import UNKNOWN_API_NAME, UNKNOWN_EVENT, UPLOAD_NOT_A_FILE

    before = server.log.read_text(errors="replace")
    with client_from("127.0.0.5", server.base) as c:
        c.get("/ui/config")  # the page is built
        unknown = join(c, 99999, secrets.token_hex(8))
        assert (unknown.status_code, unknown.json()["detail"]) == (400, UNKNOWN_EVENT)
        for route in ("call", "run"):
            named = c.post(f"/ui/gradio_api/{route}/nope", json={"data": []})
            assert (named.status_code, named.json()["detail"]) == (404, UNKNOWN_API_NAME)
        upload = c.post("/ui/gradio_api/upload", files={"files": (None, b"abc")})  # a part with no file name
        assert (upload.status_code, upload.json()["detail"]) == (400, UPLOAD_NOT_A_FILE)
        assert c.post("/ui/gradio_api/call/notes", json={"data": []}).status_code == 200  # a real name still works
    added = server.log.read_text(errors="replace")[len(before) :]
    assert "Traceback" not in added and " 500 " not in added
    assert added.count("a page request was refused") == 3
