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
