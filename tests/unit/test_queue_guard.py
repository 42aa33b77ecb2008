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
