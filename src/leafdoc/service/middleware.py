"""ASGI middleware: request size limits (413 before the body is read when Content-Length says so, and
while it streams otherwise) and the worker's budget of body bytes in flight (503 `busy`), the admin token checked
before an admin route reads its body (wrong tokens limited per client), load shedding when the worker's event loop
falls behind, and request metrics by route template."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from starlette.routing import BaseRoute, Match

from leafdoc.core.errors import LeafdocError, too_large
from leafdoc.runtime.memory import TRIM_AFTER_BYTES, malloc_trim
from leafdoc.service.deps import WrongToken, admin_token_given, check_admin_token
from leafdoc.service.errors import error_body
from leafdoc.service.prometheus import ServiceMetrics
from leafdoc.service.ratelimit import RateLimited, RateLimiter, RedisRateLimiter, page_visitor, take_off_loop

SHED_ROUTES = frozenset(("/v1/predict", "/v1/predict/batch", "/v1/explain"))  # the routes load shedding applies to


async def _answer(send, exc: LeafdocError) -> None:
    """An error answered by a middleware, before the app (and before the body is read)."""
    body = json.dumps(error_body(exc)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (getattr(exc, "headers", None) or {}).items()]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


BUSY_BODY_RETRY_SECONDS = 3


class BodiesInFlight(LeafdocError):
    status = 503
    code = "busy"  # as load shedding's: turned away unread, so the client may send it again (api_client does)

    def __init__(self, budget: int):
        super().__init__(
            f"this server is busy: it is taking in {budget // 1024**2} MiB of other requests' bodies, all it takes "
            "at once.",
            hint="Send the request again in a few seconds (Retry-After); a smaller photo or batch gets in sooner.",
        )
        self.headers = {"Retry-After": str(BUSY_BODY_RETRY_SECONDS)}


class BodyBudget:
    """The bytes of request bodies one API worker has let in and not finished with (`used`), at most `total`."""

    def __init__(self, total: int):
        self.total, self.used = total, 0
        self.trim = malloc_trim()  # a body of TRIM_AFTER_BYTES or more returns the freed memory when done

    def take(self, n: int) -> bool:
        if self.used + n > self.total:
            return False
        self.used += n
        return True

    def give(self, n: int) -> None:
        self.used -= n
        if n >= TRIM_AFTER_BYTES and self.trim is not None:
            # In a thread (ctypes lets go of the GIL): trimming 300 MB of freed 64 KiB blocks took 40 ms.
            asyncio.get_running_loop().run_in_executor(None, self.trim, 0)


class BodyLimit:
    """Each route's body limit (`limit_for`), refused from Content-Length (413) before the body is read, else as it
    streams in; and, with a `budget`, the bodies the worker takes in at once: a request is let in only while the bytes
    its Content-Length declares (a chunked body: its route's limit, all it may send) fit in what is left of the
    budget, else it is answered 503 `busy` with Retry-After, unread. Its bytes are given back once it is answered.
    (Counting a chunked body as it came instead, four 192 MiB batches sent at once each got a quarter of the budget
    in and were all refused; counted whole from the start, the first is served and the others told to come back.)"""

    def __init__(self, app, limit_for: Callable[[str], int], budget: BodyBudget | None = None):
        self.app = app
        self.limit_for = limit_for
        self.budget = budget if budget is not None and budget.total > 0 else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope.get("path", ""))
        budget = self.budget
        if budget is not None:
            limit = min(limit, budget.total)  # more could never get in
        headers = dict(scope.get("headers", []))
        header = headers.get(b"content-length")
        declared = int(header) if header is not None and header.isdigit() else None
        if declared is not None and declared > limit:
            return await _answer(send, too_large(limit, declared))
        held = 0  # of the budget, given back at the end
        if budget is not None:
            held = declared if declared is not None else (limit if b"transfer-encoding" in headers else 0)
            if held and not budget.take(held):
                return await _answer(send, BodiesInFlight(budget.total))
        received = 0
        over: LeafdocError | None = None  # set once the body passed the limit while it was read
        replaced = False

        async def limited_receive():
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = too_large(limit)
                    raise over
            return message

        async def answer_over(message):
            # FastAPI reads a JSON body inside its own try and answers any error there as 400 "There was an error
            # parsing the body": a body cut off at the limit is answered 413 all the same, whoever read it.
            nonlocal replaced
            if over is None:
                return await send(message)
            if message["type"] == "http.response.start" and not replaced:
                replaced = True
                await _answer(send, over)

        try:
            await self.app(scope, limited_receive, answer_over)
        finally:
            if held:
                budget.give(held)


class AdminGate:
    """The admin token of a request to an admin route (`routes`, each with what its refusal's hint adds), checked from
    its headers before anything reads its body: FastAPI reads and parses a JSON body before it runs the route's
    dependencies, so a 190 MiB body to /v1/models/rollback cost +570 MB before its 401. Wrong tokens are counted per
    client address (`failures`: a bucket per address in Redis with a Redis queue, shared by every worker and replica,
    else in this worker): once a client has used them up, its admin requests are answered 429 with Retry-After, right
    token or not, until its bucket refills, so a token cannot be guessed at network speed. A shared bucket is asked off
    the event loop (Redis may take up to its 1 s timeout), so predictions on the loop never wait for it.

    A call of the web page made for a visitor counts as that visitor's (ratelimit.page_visitor, with the page's key from
    the app's settings), here and in every route inside this middleware (the feedback route's limit): the page calls
    from the server's own address, which all its visitors shared."""

    def __init__(
        self, app, routes: list[tuple[BaseRoute, str]], token: str | None, failures: RateLimiter | RedisRateLimiter
    ):
        self.app, self.routes, self.token, self.failures = app, routes, token, failures

    async def _take(self, client: str, cost: float) -> None:
        await take_off_loop(self.failures, client, "wrong admin tokens", cost)

    async def __call__(self, scope, receive, send):
        opens = None  # for an admin route: what the hint of its refusal adds
        if scope["type"] == "http":
            scope = page_visitor(scope, _page_key(scope))
            opens = next((o for r, o in self.routes if r.matches(scope)[0] == Match.FULL), None)
        if opens is not None:
            client = scope["client"][0] if scope.get("client") else "unknown"
            try:
                await self._take(client, cost=0)
                check_admin_token(self.token, admin_token_given(scope.get("headers", [])), opens)
            except WrongToken as wrong:
                return await _answer(send, await self._counted(client, wrong))
            except LeafdocError as exc:
                return await _answer(send, exc)
        await self.app(scope, receive, send)

    async def _counted(self, client: str, wrong: WrongToken) -> LeafdocError:
        """A wrong token counted against `client`: its 401, or the 429 of the one that used its bucket up."""
        try:
            await self._take(client, cost=1.0)
        except RateLimited as limited:
            return limited
        return wrong


def _page_key(scope) -> str | None:
    """The web page's key (Settings.ui_page_key) of the app serving `scope` (Starlette puts the app in the scope)."""
    state = getattr(getattr(scope.get("app"), "state", None), "leafdoc", None)
    return getattr(getattr(state, "settings", None), "ui_page_key", None)


class Busy(LeafdocError):
    status = 503
    code = "busy"

    def __init__(self, lag: float):
        super().__init__(
            f"this server is busy: its queue of requests is {lag:.1f} s long.",
            hint="Send the request again in a second (Retry-After); if this lasts, the service needs more API workers "
            "or replicas.",
        )
        self.headers = {"Retry-After": "1"}


class LoopLag:
    """How far behind its schedule one event loop runs: a timer due every `interval` seconds, and how late it fires.
    Under a flood every callback waits its turn in the loop's queue, this timer's too, so its lateness is about how
    long a request now waits for each step it takes (a prediction on the loop holds it 5-15 ms)."""

    def __init__(self, interval: float = 0.1, on_measure: Callable[[float], None] | None = None):
        self.interval, self.on_measure = interval, on_measure
        self.last = 0.0
        self._due: float | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Run the timer on the running loop (again, if the app was last served by another loop, as tests do). The
        first check is due from now, not from when the loop first gets to the timer: a flood that starts it counts."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._due, self.last = loop.time() + self.interval, 0.0
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(self._due - loop.time(), 0.0))
            self.last = max(loop.time() - self._due, 0.0)
            if self.on_measure:
                self.on_measure(self.last)
            self._due = loop.time() + self.interval

    def now(self) -> float:
        """Seconds behind: the timer in flight if it is overdue already, else its last lateness."""
        if self._due is None:
            return 0.0
        overdue = asyncio.get_running_loop().time() - self._due
        return overdue if overdue > 0 else self.last


class ShedLoad:
    """Answers a prediction (SHED_ROUTES) 503 `busy` with Retry-After when the worker's event loop runs more than
    `after` seconds behind (LoopLag), rather than doing work its client will have given up on: when the request
    starts (before its body is read) and again when its body is in, just before the prediction, as a request's
    steps each wait their turn on the loop. A shed request costs well under a millisecond against 5-15 for a
    prediction, so a flood drains instead of growing, and what is never shed (the probes, /metrics, feedback, the
    admin routes, the web page) is answered within a few times `after` (docs/load-tests.md, "Overload"). Slow
    clients do not trigger it: waiting on the network leaves the loop free. `after` 0: never."""

    def __init__(self, app, after: float, metrics: ServiceMetrics):
        self.app, self.after, self.metrics = app, after, metrics
        self.lag = LoopLag(on_measure=metrics.loop_lag.set)

    def _check(self) -> None:
        lag = self.lag.now()
        if lag > self.after:
            self.metrics.shed.inc()
            raise Busy(lag)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.after <= 0:
            return await self.app(scope, receive, send)
        self.lag.start()
        if scope.get("path") not in SHED_ROUTES:
            return await self.app(scope, receive, send)
        try:
            self._check()
        except Busy as exc:
            return await _answer(send, exc)

        async def checked_receive():
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                self._check()  # raised into the route's body read: answered as its error, with Retry-After
            return message

        return await self.app(scope, checked_receive, send)


class RequestMetrics:
    """Counts and times every answer by route template. A request answered before routing (413 from BodyLimit, 503
    from ShedLoad) is counted under its path when that is one of `paths` (the app's routes without parameters),
    else under `unmatched`, so that clients cannot make labels up."""

    def __init__(self, app, metrics: ServiceMetrics, paths: frozenset[str] = frozenset()):
        self.app = app
        self.metrics = metrics
        self.paths = paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500
        counted = False

        def count():
            # Before the response's last part is sent: a client that has its whole answer finds it counted in the
            # next scrape (counted after the send, a scrape right after the last answer missed it now and then).
            nonlocal counted
            counted = True
            path = scope.get("path")
            name = getattr(scope.get("route"), "path", None) or (path if path in self.paths else "unmatched")
            method = scope.get("method", "GET")
            self.metrics.requests.labels(method, name, str(status)).inc()
            self.metrics.latency.labels(method, name).observe(time.perf_counter() - start)

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False) and not counted:
                count()
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if not counted:  # no whole response was sent (an error before it, a client gone): counted as it ended
                count()


class ApiHeaders:
    """Headers on the API's own answers (/ui and /app send their own, ui/guard.py and offline/routes.py, and get only
    `nosniff` where they lack it): `nosniff` on every one (a browser never takes a JSON answer or a photo for a script
    or a page), `no-store` on the /v1 answers that set no caching of their own (an admin's review queue or uploads
    list must not stay in a shared cache), and no framing of /docs and /redoc by any site."""

    OWN_HEADERS = ("/ui", "/app")
    NOT_FRAMED = ("/docs", "/redoc")

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path:
            return await self.app(scope, receive, send)
        # nosniff on the pages' answers too where they lack it: an address under /ui that the page's mount does not
        # take (a newline in it) is answered by the API's 404 (security round 4)
        extra = [(b"x-content-type-options", b"nosniff")]
        if not path.startswith(self.OWN_HEADERS):  # the pages set their own caching and framing
            if path.startswith("/v1/"):
                extra.append((b"cache-control", b"no-store"))
            if path.startswith(self.NOT_FRAMED):
                extra += [(b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'")]

        async def with_headers(message):
            if message["type"] == "http.response.start":
                have = {name.lower() for name, _ in message.get("headers", [])}
                added = [(n, v) for n, v in extra if n not in have]
                if added:
                    message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        return await self.app(scope, receive, with_headers)
