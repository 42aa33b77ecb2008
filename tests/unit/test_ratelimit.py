"""The feedback rate limit: 429 with a wait after `per_minute` requests of one address, other addresses
unaffected, tokens come back with time, and bounded memory however many addresses send."""

from __future__ import annotations

import pytest

from leafdoc.service.ratelimit import RateLimited, RateLimiter


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_limit_per_address_with_retry_after_and_refill():
    clock = Clock()
    lim = RateLimiter(per_minute=3, max_clients=100, clock=clock)
    for _ in range(3):
        lim.take("1.1.1.1", "feedback requests")
    with pytest.raises(RateLimited) as err:
        lim.take("1.1.1.1", "feedback requests")
    assert err.value.status == 429 and err.value.headers["Retry-After"] == "20"
    assert "at most 3 a minute" in err.value.message
    lim.take("2.2.2.2", "feedback requests")  # another address is not affected
    clock.t += 20  # one token back
    lim.take("1.1.1.1", "feedback requests")
    with pytest.raises(RateLimited):
        lim.take("1.1.1.1", "feedback requests")


def test_memory_is_bounded_and_the_oldest_address_is_forgotten():
    lim = RateLimiter(per_minute=1, max_clients=50, clock=Clock())
    for i in range(1000):
        lim.take(f"10.0.{i // 256}.{i % 256}", "x")
    assert len(lim) == 50
    lim.take("10.0.0.0", "x")  # forgotten, so it starts afresh
    with pytest.raises(RateLimited):
        lim.take("10.0.3.231", "x")  # the latest one is remembered


def test_an_ipv6_client_is_its_64_not_each_address_it_picks():
    """Security round 4: a client with an IPv6 /64 took a fresh limit with each of its addresses (a phone picks new
    ones at will). Now the /64 is the client; another /64 is another client; an IPv4-mapped address is its IPv4."""
    from leafdoc.runtime.clients import client_key

    lim = RateLimiter(per_minute=3, max_clients=100, clock=Clock())
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::abcd", "2001:db8:1:2:ffff:1:2:3"):
        lim.take(host, "feedback requests")
    with pytest.raises(RateLimited):
        lim.take("2001:db8:1:2:dead:beef::9", "feedback requests")
    lim.take("2001:db8:1:3::1", "feedback requests")  # the next /64: another network
    assert client_key("2001:db8:1:2:dead:beef::9") == "2001:db8:1:2::/64"
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7" and client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("unknown") == "unknown"
