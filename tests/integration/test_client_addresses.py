"""The address a client's wrong admin tokens and feedback are counted against, on a real `leafdoc serve` started with
the serving image's FORWARDED_ALLOW_IPS (deploy/serve.Dockerfile), directly and behind deploy/nginx/nginx.conf; and
the page's host check on the same server.

- A client cannot reset its wrong-token limit with a forged X-Forwarded-For: with the image's old `*`, uvicorn took the
  header's first entry, which the client wrote, and nginx appended to it (200 wrong tokens, no 429).
- The page answers only to this server's own address (not any address), also via X-Forwarded-Host, and its config,
  which names the host, is not kept by caches.

Loopback has many addresses (127.0.0.0/8): a client here connects from 127.0.0.2 and the like, which the image does
not trust (it trusts 127.0.0.1, where a proxy on the same machine connects from).
"""

from __future__ import annotations

import gzip
import json

import httpx
import pytest
from tests.integration.test_deploy import image_env, nginx_in_front
from tests.live_server import ADMIN, answering_copy, start_server

ROLLBACK = "/v1/models/rollback"
LIMIT = 10  # LEAFDOC_ADMIN_FAILURES_PER_MINUTE's default
PAGE_KEY = "the-page-key-of-this-test-server"  # serve makes a random one unless set


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model):
    """A server of its own (its buckets are this module's), trusting forwarded headers as the serving image does."""
    root = tmp_path_factory.mktemp("addresses")
    srv = start_server(
        root,
        answering_copy(tiny_model, root / "model"),
        FORWARDED_ALLOW_IPS=image_env("serve")["FORWARDED_ALLOW_IPS"],
        LEAFDOC_UI_PAGE_KEY=PAGE_KEY,
    )
    yield srv
    srv.stop()


def client_from(address: str, base: str, timeout: float = 60) -> httpx.Client:
    """A client whose connections come from `address` (one of loopback's)."""
    return httpx.Client(base_url=base, timeout=timeout, transport=httpx.HTTPTransport(local_address=address))


def wrong_tokens(client: httpx.Client, n: int, forge: bool) -> list[int]:
    statuses = []
    for i in range(n):
        headers = {"Authorization": f"Bearer guess-{i}"}
        if forge:  # a new address each time: with the old trust, a new bucket each time
            headers["X-Forwarded-For"] = f"203.0.113.{i + 1}"
        statuses.append(client.post(ROLLBACK, headers=headers).status_code)
    return statuses


def test_a_forged_x_forwarded_for_does_not_reset_the_wrong_token_limit(server):
    with client_from("127.0.0.2", server.base) as c:
        statuses = wrong_tokens(c, LIMIT + 5, forge=True)
        assert statuses[:LIMIT] == [401] * LIMIT and statuses[LIMIT:] == [429] * 5, statuses
        # ...and the right token from that address waits too; another address is not affected.
        assert c.post(ROLLBACK, headers={**ADMIN, "X-Forwarded-For": "203.0.113.99"}).status_code == 429
    with client_from("127.0.0.6", server.base) as other:
        assert other.get("/v1/review", headers=ADMIN).status_code == 200


def test_through_nginx_a_forged_x_forwarded_for_does_not_reset_the_wrong_token_limit(server, tmp_path):
    with nginx_in_front(tmp_path, server.base.removeprefix("http://")) as base, client_from("127.0.0.5", base) as c:
        statuses = wrong_tokens(c, LIMIT + 5, forge=True)
        assert statuses[:LIMIT] == [401] * LIMIT and statuses[LIMIT:] == [429] * 5, statuses
        # The API counted the address nginx saw (127.0.0.5), not nginx's own (127.0.0.1) nor the forged ones.
        with client_from("127.0.0.7", base) as other:
            assert other.get("/v1/review", headers=ADMIN).status_code == 200
        # nginx sends its own X-Forwarded-Host (the Host asked for): a client's does not reach the page.
        forged = c.get("/ui/config", headers={"X-Forwarded-Host": "203.0.113.5"})
        assert forged.status_code == 200 and "203.0.113.5" not in forged.text, forged.text[:300]


@pytest.mark.parametrize("header", ["Host", "X-Forwarded-Host"])
def test_the_page_refuses_an_address_that_is_not_this_servers(server, header):
    r = httpx.get(f"{server.base}/ui/config", headers={header: "203.0.113.5"}, timeout=300)
    assert r.status_code == 400, r.text[:300]
    assert "LEAFDOC_ALLOWED_HOSTS" in r.text and "203.0.113.5" not in json.dumps(dict(r.headers))
    # The address the server was reached by still works, and what names it is not kept by a cache.
    own = httpx.get(f"{server.base}/ui/config", timeout=300)
    assert own.status_code == 200 and own.json()["root"].startswith(server.base), own.text[:300]
    assert own.headers["cache-control"] == "no-store"
    page = httpx.get(f"{server.base}/ui/", timeout=300)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"


def test_the_pages_html_goes_gzipped_to_a_browser_that_takes_it(server):
    """The slow-network review of session 72: the page's HTML (about 350 kB, never cached) went uncompressed, 6.5 s of
    each visit over Slow 3G. Gzipped for a browser that asks (a tenth of it), as it was to one that does not."""
    plain = httpx.get(f"{server.base}/ui/", headers={"Accept-Encoding": "identity"}, timeout=300)
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    with httpx.stream("GET", f"{server.base}/ui/", headers={"Accept-Encoding": "gzip"}, timeout=300) as r:
        wire = b"".join(r.iter_raw())
        assert r.headers["content-encoding"] == "gzip" and r.headers["cache-control"] == "no-store"
    assert gzip.decompress(wire) == plain.content and len(wire) < len(plain.content) / 4, (
        len(wire),
        len(plain.content),
    )
