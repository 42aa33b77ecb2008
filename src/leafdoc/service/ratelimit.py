"""A per-client rate limit for open routes that write (feedback): a token bucket per client address,
`per_minute` tokens refilled evenly.

The same buckets count wrong admin tokens (`admin_failure_limiter`) and kept photos (`kept_photo_limiter`).

With a Redis queue (LEAFDOC_QUEUE_URL=redis://...) the buckets live in that Redis, so every API worker and
every replica draws from the same bucket (RedisRateLimiter: one atomic script per request, each bucket
expiring once it is full again). Otherwise they live in each API worker's memory (RateLimiter: at most
`max_clients` addresses remembered, least recently seen forgotten first, so a flood of addresses costs
bounded memory), and with N workers a client gets at most N times the rate. If Redis cannot be reached the
worker's own buckets stand in (fail open to the per-worker limit, never to no limit), so the limit never stops
feedback or an admin because Redis is down; and Redis is not asked again for `RETRY_SECONDS`, so a Redis that
never answers costs one 1 s wait per worker every 5 s, not one per request. The worker's own buckets count every
request even while Redis answers, so they hold from the first request Redis misses (and after a Redis restart
that lost its buckets) instead of starting full.

The client is the connection's address as uvicorn decided it (behind a trusted proxy, from its X-Forwarded-For), or,
for a call the web page makes for one of its visitors, that visitor's address (`page_visitor`): the page calls the
API from the server's own socket, so without it every visitor of the page was one address, and 10 wrong tokens typed
into the page by anyone locked every admin out of the page's Retrain and Review tabs."""

from __future__ import annotations

import hmac
import logging
import math
import threading
import time
from collections import OrderedDict

from leafdoc.core.errors import LeafdocError
from leafdoc.core.settings import PAGE_KEY_HEADER, VISITOR_HEADER, Settings
from leafdoc.runtime.clients import client_key

log = logging.getLogger(__name__)


# What the web page adds to each API call it makes for a visitor (ui/where.py, visitor_headers): the visitor's address,
# and Settings.ui_page_key, a secret only the page and its API hold, without which the address is not believed.
_VISITOR, _PAGE_KEY = VISITOR_HEADER.lower().encode(), PAGE_KEY_HEADER.lower().encode()


def page_visitor(scope, page_key: str | None):
    """`scope` with `client` set to the visitor a call of the web page names, when the call carries the page's key;
    otherwise `scope` itself (its own connection's address counts), whatever the headers say."""
    key = visitor = None
    for name, value in scope.get("headers", ()):
        if name == _PAGE_KEY and key is None:
            key = value
        elif name == _VISITOR and visitor is None:
            visitor = value
    if not page_key or key is None or visitor is None or not hmac.compare_digest(key, page_key.encode()):
        return scope
    address = visitor.decode("latin-1").strip()[:64]
    return {**scope, "client": (address, 0)} if address else scope


class RateLimited(LeafdocError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, hint: str | None = None, retry_after: int = 1):
        super().__init__(message, hint=hint)
        self.headers = {"Retry-After": str(retry_after)}


class RateLimiter:
    """`per_minute` requests a minute per client; with `seconds`, that many per `seconds` instead (kept photos: an
    hour)."""

    def __init__(self, per_minute: int, max_clients: int, clock=time.monotonic, seconds: float = 60.0):
        self.rate = per_minute / seconds
        self.burst = float(per_minute)
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str, what: str, cost: float = 1.0) -> None:
        """One request of `client`, or RateLimited with the seconds to wait. `cost` 0: only whether `client` has a
        token left (RateLimited if not), taking none. An IPv6 client is its /64 (runtime/clients.py)."""
        client = client_key(client)
        now = self.clock()
        with self._lock:
            if cost == 0 and client not in self._buckets:
                return  # a client never counted is not remembered just for being looked at
            tokens, at = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                raise limited(what, self.burst, self.rate, tokens)
            self._buckets[client] = (tokens - cost, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)


def limited(what: str, burst: float, rate: float, tokens: float) -> RateLimited:
    wait = math.ceil((1.0 - tokens) / rate)
    period = "a minute" if round(burst / rate) == 60 else f"in {round(burst / rate)} s"
    return RateLimited(
        f"too many {what} from this address: at most {int(burst)} {period}.",
        hint=f"Wait {wait} s and send it again.",
        retry_after=wait,
    )


# The same bucket as RateLimiter.take, atomically in Redis, on Redis's clock: [1 if taken, tokens left]. Cost 0 only
# looks (and writes nothing).
_TAKE = """
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local v = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = math.min(burst, (tonumber(v[1]) or burst) + (now - (tonumber(v[2]) or now)) * rate)
local taken = 0
if tokens >= 1 then
  tokens = tokens - cost
  taken = 1
end
if cost == 0 then
  return {taken, tostring(tokens)}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1)
return {taken, tostring(tokens)}
"""


RETRY_SECONDS = 5.0  # after Redis failed a limiter, how long its worker uses its own buckets before asking again


class RedisRateLimiter:
    """Buckets shared by every API worker through Redis, and this worker's own beside them (they stand in when Redis
    fails)."""

    shared = True  # a call may wait on the network (up to 1 s): take_off_loop asks it in a thread

    def __init__(
        self, url: str, per_minute: int, max_clients: int, prefix: str = "leafdoc:ratelimit:", seconds: float = 60.0
    ):
        import redis

        self.rate = per_minute / seconds
        self.burst = float(per_minute)
        self.prefix = prefix
        self.client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.script = self.client.register_script(_TAKE)
        self.fallback = RateLimiter(per_minute, max_clients, seconds=seconds)
        self._warned = False
        self._skip_until = 0.0  # monotonic time until which Redis is not asked (it failed just before)

    def take(self, client: str, what: str, cost: float = 1.0) -> None:
        import redis

        if time.monotonic() >= self._skip_until:
            try:
                taken, tokens = self.script(keys=[self.prefix + client_key(client)], args=[self.rate, self.burst, cost])
            except redis.RedisError as exc:
                self._skip_until = time.monotonic() + RETRY_SECONDS
                if not self._warned:  # the error names Redis's host: the log only, never an answer
                    log.warning("rate limit: Redis cannot be reached (%s); this worker's own limit applies", exc)
                    self._warned = True
            else:
                if self._warned:
                    log.info("rate limit: Redis answers again; the shared limit applies")
                self._warned = False
                if not int(taken):
                    raise limited(what, self.burst, self.rate, float(tokens))
        self.fallback.take(client, what, cost)


async def take_off_loop(limiter: RateLimiter | RedisRateLimiter, client: str, what: str, cost: float = 1.0) -> None:
    """`limiter.take` from a route or a middleware: a limiter shared through Redis may wait on the network (up to its
    1 s timeout), so it is asked in a thread, off the event loop every request of the worker shares; a worker's own
    limiter answers at once, in place."""
    if getattr(limiter, "shared", False):
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(limiter.take, client, what, cost)
    else:
        limiter.take(client, what, cost)


def rate_limiter(settings: Settings) -> RateLimiter | RedisRateLimiter:
    """The feedback limit: shared through Redis when the job queue is in Redis, else per API worker."""
    if url := settings.redis_url:
        return RedisRateLimiter(url, settings.feedback_per_minute, settings.rate_limit_clients)
    return RateLimiter(settings.feedback_per_minute, settings.rate_limit_clients)


def admin_failure_limiter(settings: Settings) -> RateLimiter | RedisRateLimiter:
    """Wrong admin tokens per client address a minute (LEAFDOC_ADMIN_FAILURES_PER_MINUTE), shared like the feedback
    limit: per API worker, every worker and replica multiplied a guesser's tries even with Redis."""
    n, clients = settings.admin_failures_per_minute, settings.rate_limit_clients
    if url := settings.redis_url:
        return RedisRateLimiter(url, n, clients, prefix="leafdoc:adminfail:")
    return RateLimiter(n, clients)


def kept_photo_limiter(settings: Settings) -> RateLimiter | RedisRateLimiter:
    """Photos kept per client address an hour (LEAFDOC_KEPT_PHOTOS_PER_CLIENT_HOUR), shared like the feedback limit."""
    n, clients = settings.kept_photos_per_client_hour, settings.rate_limit_clients
    if url := settings.redis_url:
        return RedisRateLimiter(url, n, clients, prefix="leafdoc:keptphotos:", seconds=3600.0)
    return RateLimiter(n, clients, seconds=3600.0)
