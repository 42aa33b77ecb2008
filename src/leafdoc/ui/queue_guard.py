"""A bound on what one visitor may have in the page's Gradio queue, and plain refusals of events the page does not
have (docs/security.md, security round 4).

Gradio's queue takes any number of events (`POST /ui/gradio_api/queue/join`, also behind `/call/`), keeps each
event's result until a page reads it (`/queue/data`), and a page that never reads keeps them: 2,000 joins of the
page's load event by one anonymous client, none read, took the page's process from 229 MB to 1.98 GB and made a
real visitor's page wait 153 s behind them. Now each visitor's address (as the forwarding worker decided it) may
have at most `ui_events_per_visitor` events outstanding: waiting, running, or done and not yet read. The next is
answered 503 with a sentence saying to wait for the page's answers; a result not read within STALE_SECONDS of the
event's start is dropped, which frees it and the visitor's place. All visitors together may have at most
`ui_events_total` outstanding (security round 5: many addresses, 20 each, were still unbounded); past it a new event
is answered 503 "busy" with Retry-After, and the log says so (at most once a minute).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from fastapi import HTTPException

from leafdoc.runtime.clients import client_key

# A result no page has read this long after its event was queued is dropped (a diagnosis takes under a second; a
# page that is open reads each result as it is done, so only a page closed part-way or a client that never reads
# leaves one).
STALE_SECONDS = 120.0
# An event the page does not have (Gradio looked its number up unchecked: a KeyError, 500 and a 90-line traceback in
# the log for each such request).
UNKNOWN_EVENT = "This page has no such action; reload the page (it may have changed since it was opened)."
log = logging.getLogger(__name__)
BUSY = "This page is busy with many visitors' requests right now; try again in a moment."
BUSY_RETRY_AFTER_SECONDS = 5
BUSY_LOG_EVERY_SECONDS = 60.0
TOO_MANY = (
    "This page has {count} requests waiting for their answers on this server already. Wait for them to show, then "
    "try again (or close other tabs of this page)."
)


@dataclass
class VisitorEvents:
    """The events each visitor address has outstanding in a Gradio queue: (session, event id, when queued)."""

    cap: int
    total_cap: int | None = None  # every visitor's together (None: no overall bound)
    by_visitor: dict[str, list[tuple[str, str, float]]] = field(default_factory=dict)
    total: int = 0
    busy_logged: float = float("-inf")

    def forget_done(self, queue, now: float) -> None:
        """Forget events whose results were read; drop results left unread for STALE_SECONDS (Gradio's own
        records of them: the session's unread messages, once it has no other event outstanding)."""
        for visitor in list(self.by_visitor):
            kept = []
            for session, event_id, queued in self.by_visitor[visitor]:
                pending = queue.pending_event_ids_session.get(session)
                if not pending or event_id not in pending:
                    continue  # read (or cancelled): Gradio let it go
                if now - queued > STALE_SECONDS and event_id not in queue.event_ids_to_events:
                    _drop_result(queue, session, event_id)  # done long ago and never read
                    continue
                kept.append((session, event_id, queued))
            self.total -= len(self.by_visitor[visitor]) - len(kept)
            if kept:
                self.by_visitor[visitor] = kept
            else:
                del self.by_visitor[visitor]

    def outstanding(self, visitor: str) -> int:
        return len(self.by_visitor.get(visitor, ()))

    def full(self) -> bool:
        return self.total_cap is not None and self.total >= self.total_cap

    def add(self, visitor: str, session: str, event_id: str, now: float) -> None:
        self.by_visitor.setdefault(visitor, []).append((session, event_id, now))
        self.total += 1


def _drop_result(queue, session: str, event_id: str) -> None:
    pending = queue.pending_event_ids_session.get(session)
    if pending is not None:
        pending.discard(event_id)
        if not pending:
            queue.pending_event_ids_session.pop(session, None)
            queue.pending_messages_per_session.pop(session, None)  # its unread messages: what held the memory


# What the guard uses of Gradio's queue (gradio/queueing.py, `Queue`): its `push`, which every event of the page and of
# its `/call/` API goes through, and its records of each session's pending events and unread messages.
GRADIO_QUEUE_NAMES = ("push", "pending_event_ids_session", "pending_messages_per_session", "event_ids_to_events")
GUARD_OFF = (
    "the web page's queue guard is OFF: this Gradio (%s) has no %s in its queue, so neither one visitor's events "
    "(LEAFDOC_UI_EVENTS_PER_VISITOR) nor all visitors' (LEAFDOC_UI_EVENTS_TOTAL) are bounded and a client that never "
    "reads its answers can fill this process's memory. Install the Gradio of requirements.lock, or serve the page "
    "behind a proxy that limits requests to /ui/gradio_api/queue/join and /ui/gradio_api/call/."
)


def limit_visitor_events(blocks, cap: int, total_cap: int | None = None) -> VisitorEvents | None:
    """Hold each visitor to `cap` outstanding events in `blocks`' queue, and all of them to `total_cap`. With a Gradio
    whose queue lacks GRADIO_QUEUE_NAMES (renamed by an upgrade), the page is served unguarded and the log says so
    (None); tests/unit/test_queue_guard.py checks that the installed Gradio has them, and the round 4 and 5 tests that
    the guard holds on a real server."""
    queue = getattr(blocks, "_queue", None)
    missing = [n for n in GRADIO_QUEUE_NAMES if not hasattr(queue, n)] if queue is not None else ["queue at all"]
    if missing:
        import gradio

        log.warning(GUARD_OFF, getattr(gradio, "__version__", "unknown version"), ", ".join(missing))
        return None
    events = VisitorEvents(cap, total_cap)
    push = queue.push

    async def push_within_cap(body, request, username):
        if body.fn_index is not None and body.fn_index not in getattr(blocks, "fns", {}):
            return False, UNKNOWN_EVENT, "error"
        now = time.monotonic()
        events.forget_done(queue, now)
        client = getattr(request, "client", None)
        visitor = client_key(client.host) if client and client.host else "unknown"  # an IPv6 visitor: its /64
        if events.outstanding(visitor) >= events.cap:
            return False, TOO_MANY.format(count=events.outstanding(visitor)), "queue_full"
        if events.full():
            if now - events.busy_logged >= BUSY_LOG_EVERY_SECONDS:
                events.busy_logged = now
                log.warning(
                    "the web page's queue holds %d events of its visitors, LEAFDOC_UI_EVENTS_TOTAL: new ones are "
                    "answered 503 busy until results are read (or dropped %d s after their start)",
                    events.total,
                    STALE_SECONDS,
                )
            # raised, not returned: Gradio's own 503 for a full queue carries no Retry-After
            raise HTTPException(503, detail=BUSY, headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)})
        success, event_id, state = await push(body, request, username)
        if success and body.session_hash is not None:
            events.add(visitor, body.session_hash, str(event_id), now)
        return success, event_id, state

    queue.push = push_within_cap
    return events


# What a visitor got wrong that Gradio answered with 500 and a 90-line traceback in the log (security round 4): the API
# name of /gradio_api/call/<name> or /run/<name> the page does not have, an upload whose part is no file.
UNKNOWN_API_NAME = "This page has no action of that name; GET /ui/gradio_api/info lists the ones it has."
UPLOAD_NOT_A_FILE = "Send each upload as a file: a form part with a file name (curl -F files=@leaf.jpg)."
UPLOAD_ROUTE = "/gradio_api/upload"


def answer_visitors_mistakes(app) -> None:
    """Answer the requests Gradio's app (`app`, before its first request) raised a server error for although the
    mistake was the visitor's with 404 or 400 and a sentence, one warning line in the log instead of a traceback.
    Any other error stays a 500 with its traceback."""
    from fastapi.responses import JSONResponse
    from gradio import route_utils

    def refuse(request, status: int, message: str) -> JSONResponse:
        log.warning("a page request was refused (%s %r): %s", request.method, request.url.path[:200], message)
        return JSONResponse({"detail": message}, status_code=status)

    async def unknown_api_name(request, exc):
        return refuse(request, 404, UNKNOWN_API_NAME)

    async def not_a_file(request, exc):
        if request.url.path.endswith(UPLOAD_ROUTE) and "GradioUploadFile" in str(exc):
            return refuse(request, 400, UPLOAD_NOT_A_FILE)
        raise exc  # a real error: 500 with its traceback

    # Gradio's own name for an unknown API name: a Gradio without it leaves those requests to its own 500s
    unknown = getattr(route_utils, "FnIndexInferError", None)
    if isinstance(unknown, type) and issubclass(unknown, Exception):
        app.add_exception_handler(unknown, unknown_api_name)
    else:
        log.warning("this Gradio has no route_utils.FnIndexInferError: an unknown API name under /ui stays a 500")
    app.add_exception_handler(TypeError, not_a_file)
