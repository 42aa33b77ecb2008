"""A per-client rate limit for open routes that write (feedback): a token bucket per client address,
`per_minute` tokens refilled evenly, at most `max_clients` addresses remembered (least recently seen
forgotten first), so a flood of addresses costs bounded memory. Per API worker: with N workers a client
gets at most N times the rate."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

from leafdoc.errors import LeafdocError


class RateLimited(LeafdocError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, hint: str | None = None, retry_after: int = 1):
        super().__init__(message, hint=hint)
        self.headers = {"Retry-After": str(retry_after)}


class RateLimiter:
    def __init__(self, per_minute: int, max_clients: int, clock=time.monotonic):
        self.rate = per_minute / 60.0
        self.burst = float(per_minute)
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str, what: str) -> None:
        """One request of `client`, or RateLimited with the seconds to wait."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                wait = math.ceil((1.0 - tokens) / self.rate)
                raise RateLimited(
                    f"too many {what} from this address: at most {int(self.burst)} a minute.",
                    hint=f"Wait {wait} s and send it again.",
                    retry_after=wait,
                )
            self._buckets[client] = (tokens - 1.0, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
