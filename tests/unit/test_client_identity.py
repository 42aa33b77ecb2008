"""Who a request is, for the API's per-address limits and the page's host check (real servers:
tests/integration/test_client_addresses.py).

- The page answers to the address the request arrived on, never to any address (ui/guard.py, host_allowed): it
  allowed every IP literal, so `X-Forwarded-Host: 203.0.113.5` made its URLs point at 203.0.113.5.
- Its HTML, JSON and event streams, which can name the host, are sent with `Cache-Control: no-store`.
"""

from __future__ import annotations

import asyncio

import pytest

from leafdoc.ui.guard import SERVER_HEADER, host_allowed, refused_host, with_headers


def scope(headers: dict[str, str], client=("127.0.0.1", 5000), server=("127.0.0.1", 8000)) -> dict:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "headers": raw, "client": client, "server": server}


@pytest.mark.parametrize(
    ("host", "server", "allowed"),
    [
        ("127.0.0.1:8000", "127.0.0.1", True),
        ("192.168.1.10", "192.168.1.10", True),  # the address the visitor reached this server by
        ("[::1]:8000", "::1", True),
        ("127.0.0.1", "::ffff:127.0.0.1", True),  # a server on :: reached over IPv4
        ("localhost:8000", "127.0.0.1", True),
        ("203.0.113.5", "127.0.0.1", False),  # any other address: the hole
        ("203.0.113.5:80", "192.168.1.10", False),
        ("10.0.0.9", None, False),
        ("evil.example", "127.0.0.1", False),
    ],
)
def test_the_page_answers_to_its_own_address_not_to_any(host, server, allowed):
    assert host_allowed(host, frozenset(), server) is allowed


def test_with_allowed_hosts_set_its_names_and_the_servers_own_address():
    allowed = frozenset({"leafdoc.example"})
    assert host_allowed("leafdoc.example", allowed, "10.0.0.5")
    assert host_allowed("10.0.0.5:8000", allowed, "10.0.0.5")
    assert not host_allowed("localhost", allowed, "10.0.0.5")
    assert not host_allowed("203.0.113.5", allowed, "10.0.0.5")


def test_x_forwarded_host_is_checked_as_host_is():
    assert refused_host(scope({"Host": "127.0.0.1:8000", "X-Forwarded-Host": "203.0.113.5"}), frozenset()) == (
        "203.0.113.5"
    )
    assert refused_host(scope({"Host": "127.0.0.1:8000", "X-Forwarded-Host": "127.0.0.1"}), frozenset()) is None


def test_in_the_pages_own_process_the_forwarding_workers_address_counts():
    """On the page's Unix socket (no address of its own) the address is the one the API worker forwarded: only
    such workers can connect there (ui/proxy.py). On a TCP socket, a client's header is not believed."""
    unix = ("/tmp/leafdoc-page-x/page.sock", None)
    forwarded = {"Host": "127.0.0.1:8000", SERVER_HEADER.decode(): "127.0.0.1"}
    assert refused_host(scope(forwarded, server=unix), frozenset()) is None
    assert refused_host(scope({"Host": "127.0.0.1:8000"}, server=unix), frozenset()) == "127.0.0.1"
    forged = {"Host": "203.0.113.5", SERVER_HEADER.decode(): "203.0.113.5"}
    assert refused_host(scope(forged), frozenset()) == "203.0.113.5"


@pytest.mark.parametrize(
    ("content_type", "file_route", "stored"),
    [
        (b"text/html; charset=utf-8", False, False),
        (b"application/json", False, False),
        (b"text/event-stream", False, False),
        (b"text/javascript", False, True),  # the page's scripts and styles name no host: caches may keep them
        (b"image/jpeg", True, True),
    ],
)
def test_answers_that_can_name_the_host_are_not_stored(content_type, file_route, stored):
    sent = []

    async def send(message):
        sent.append(message)

    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type)]}
    asyncio.run(with_headers(send, file_route=file_route)(start))
    headers = dict(sent[0]["headers"])
    assert (headers.get(b"cache-control") != b"no-store") is stored
