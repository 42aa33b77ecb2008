"""ui/queue_guard.py's bookkeeping of what each visitor has outstanding in Gradio's queue, on a stand-in queue with
Gradio's attribute names (the real server: tests/e2e/test_security_round4.py)."""

from __future__ import annotations

from types import SimpleNamespace

from leafdoc.ui.queue_guard import STALE_SECONDS, VisitorEvents


def a_queue() -> SimpleNamespace:
    return SimpleNamespace(pending_event_ids_session={}, pending_messages_per_session={}, event_ids_to_events={})


def test_a_result_read_frees_its_place_and_one_left_unread_is_dropped_with_its_messages():
    queue, events = a_queue(), VisitorEvents(cap=2)
    for session, event_id in (("s1", "e1"), ("s2", "e2")):
        queue.pending_event_ids_session[session] = {event_id}
        queue.pending_messages_per_session[session] = ["its result"]
        events.add("10.0.0.1", session, event_id, now=0.0)
    queue.event_ids_to_events["e2"] = object()  # still running
    events.forget_done(queue, now=1.0)
    assert events.outstanding("10.0.0.1") == 2

    queue.pending_event_ids_session["s1"].discard("e1")  # its page read it
    events.forget_done(queue, now=2.0)
    assert events.outstanding("10.0.0.1") == 1

    events.forget_done(queue, now=STALE_SECONDS + 10)  # running long: kept
    assert events.outstanding("10.0.0.1") == 1 and "s2" in queue.pending_messages_per_session
    del queue.event_ids_to_events["e2"]  # done, never read
    events.forget_done(queue, now=STALE_SECONDS + 10)
    assert events.outstanding("10.0.0.1") == 0 and events.by_visitor == {}
    assert "s2" not in queue.pending_messages_per_session and "s2" not in queue.pending_event_ids_session


class StandInQueue:
    """Gradio's queue as the guard sees it: `push` records the event as pending for its session."""

    def __init__(self):
        self.pending_event_ids_session, self.pending_messages_per_session, self.event_ids_to_events = {}, {}, {}
        self.n = 0

    async def push(self, body, request, username):
        self.n += 1
        self.pending_event_ids_session.setdefault(body.session_hash, set()).add(f"e{self.n}")
        return True, f"e{self.n}", "success"


def push_from(blocks, address: str, session: str):
    import asyncio

    body = SimpleNamespace(fn_index=0, session_hash=session)
    request = SimpleNamespace(client=SimpleNamespace(host=address))
    return asyncio.run(blocks._queue.push(body, request, None))


def test_all_visitors_together_are_bounded_and_told_to_come_back(caplog):
    """Security round 5: each address within its own cap, but past `total_cap` outstanding events in all, a new
    event from any address is refused 503 with Retry-After (and the log says it once); a result read frees a place."""
    import logging

    import pytest
    from fastapi import HTTPException

    from leafdoc.ui.queue_guard import BUSY, BUSY_RETRY_AFTER_SECONDS, limit_visitor_events

    blocks = SimpleNamespace(_queue=StandInQueue(), fns={0: object()})
    events = limit_visitor_events(blocks, cap=2, total_cap=3)
    assert [push_from(blocks, a, s)[0] for a, s in (("10.0.0.1", "s1"), ("10.0.0.1", "s2"), ("10.0.0.2", "s3"))] == [
        True
    ] * 3
    with caplog.at_level(logging.WARNING, logger="leafdoc.ui.queue_guard"):
        for address in ("10.0.0.2", "10.0.0.3"):
            with pytest.raises(HTTPException) as refused:
                push_from(blocks, address, "s4")
            assert (refused.value.status_code, refused.value.detail) == (503, BUSY)
            assert refused.value.headers == {"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)}
    assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
    assert "LEAFDOC_UI_EVENTS_TOTAL" in caplog.records[0].getMessage() and len(caplog.records) == 1
    blocks._queue.pending_event_ids_session["s1"].clear()  # its page read it
    assert push_from(blocks, "10.0.0.3", "s5")[0] is True
    assert events.total == 3 == sum(len(v) for v in events.by_visitor.values())


def test_a_gradio_that_renamed_what_the_guard_uses_is_served_unguarded_and_the_log_says_so(caplog):
    """A Gradio upgrade that renames any of the queue's attributes the guard uses must not stop the page (nor break
    every event two minutes later, when the guard first drops a stale result), and the log must say the guard is off
    and why."""
    import logging

    from leafdoc.ui.queue_guard import GRADIO_QUEUE_NAMES, limit_visitor_events

    for name in GRADIO_QUEUE_NAMES:
        queue = StandInQueue()
        if name == "push":
            queue = SimpleNamespace(**{k: v for k, v in vars(queue).items()})  # no push at all
        else:
            delattr(queue, name)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="leafdoc.ui.queue_guard"):
            assert limit_visitor_events(SimpleNamespace(_queue=queue, fns={}), cap=2, total_cap=3) is None
        [said] = [r.getMessage() for r in caplog.records]
        assert said.startswith("the web page's queue guard is OFF") and f"has no {name} " in said, said
        assert "push" not in vars(queue) or name == "push"  # the queue is left as it was
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="leafdoc.ui.queue_guard"):
        assert limit_visitor_events(SimpleNamespace(fns={}), cap=2) is None  # no queue at all
    assert "queue guard is OFF" in caplog.text


def test_the_page_builds_and_answers_with_a_gradio_whose_queue_lacks_the_guards_names(monkeypatch, tmp_path, caplog):
    """The real page (ui/page.py build_app) on the installed Gradio with `pending_event_ids_session` renamed, as an
    upgrade might: it is built and answers, and the log says the guard is off. The installed Gradio as it is has
    every name (the guard is on)."""
    import logging

    import gradio as gr
    import gradio.queueing
    from fastapi.testclient import TestClient

    from leafdoc.core.settings import Settings
    from leafdoc.ui.page import build_app
    from leafdoc.ui.queue_guard import GRADIO_QUEUE_NAMES, VisitorEvents, limit_visitor_events

    assert isinstance(limit_visitor_events(gr.Blocks().queue(), cap=2, total_cap=3), VisitorEvents)
    missing = [n for n in GRADIO_QUEUE_NAMES if not hasattr(gr.Blocks().queue()._queue, n)]
    assert missing == [], f"this Gradio renamed {missing}: ui/queue_guard.py must follow"

    made = gradio.queueing.Queue.__init__

    def renamed(self, *args, **kwargs):
        made(self, *args, **kwargs)
        self.pending_sessions = self.__dict__.pop("pending_event_ids_session")

    monkeypatch.setattr(gradio.queueing.Queue, "__init__", renamed)
    with caplog.at_level(logging.WARNING, logger="leafdoc.ui.queue_guard"):
        app, _ = build_app(Settings(home=tmp_path / "home"))
    assert "the web page's queue guard is OFF" in caplog.text and "pending_event_ids_session" in caplog.text
    with TestClient(app) as client:
        assert client.get("/config").status_code == 200
