"""A visitor of the web page is counted as itself by the API's per-address limits, not as the page's own address
(the page calls the API from the server's own socket): 11 wrong tokens typed into the page by one anonymous visitor
rate-limited every admin's right token in the page's Retrain and Review tabs (security round 3, M2). On a real
`leafdoc serve` (test_client_addresses.py's: the serving image's FORWARDED_ALLOW_IPS, which does not trust 127.0.0.3
and the like, so each loopback address a client connects from is a visitor of its own)."""

from __future__ import annotations

import httpx
from tests.integration import test_client_addresses as addresses
from tests.integration.test_client_addresses import LIMIT, PAGE_KEY, ROLLBACK, client_from
from tests.live_server import ADMIN

server = addresses.server  # a server of this module's own, as that module starts it


def page_call(client: httpx.Client, fn: str, data: list) -> str:
    """One event of the page called as the page's own script calls it (Gradio's /call/ route): its stream's text."""
    r = client.post(f"/ui/gradio_api/call/{fn}", json={"data": data}, timeout=300)
    assert r.status_code == 200, r.text[:300]
    return client.get(f"/ui/gradio_api/call/{fn}/{r.json()['event_id']}", timeout=300).text


def test_a_visitor_of_the_page_is_counted_as_itself_not_as_the_page(server):
    attacker, admin = client_from("127.0.0.3", server.base, 300), client_from("127.0.0.4", server.base, 300)
    with attacker, admin:
        answers = [page_call(attacker, "check_token", [f"wrong-{i}"]) for i in range(LIMIT + 1)]
        assert all("too many" not in a for a in answers[:LIMIT]), answers
        assert "too many" in answers[LIMIT], answers[LIMIT][:500]
        # Another visitor's right token is accepted, in the Retrain tab and the Review tab...
        assert "Token accepted" in page_call(admin, "check_token", [server.token])
        assert "too many" not in page_call(admin, "refresh", [server.token])
        # ...and the visitor who used up its wrong tokens waits, its right token too.
        assert "too many" in page_call(attacker, "check_token", [server.token])
    # The page's own address was not the one counted: the API's admin routes still answer from loopback's 127.0.0.1.
    assert httpx.get(f"{server.base}/v1/review", headers=ADMIN, timeout=60).status_code == 200


def test_the_api_believes_the_visitor_a_call_names_only_with_the_pages_key(server):
    """The page's headers: with its key, each named visitor has a bucket of its own (the page's calls); without it
    (a client's guess), the connection's own address is counted, whatever visitor the call names."""

    def named(client: httpx.Client, key: str) -> list[int]:
        statuses = []
        for i in range(LIMIT + 2):
            visitor = {"X-Leafdoc-Visitor": f"198.51.100.{i + 1}", "X-Leafdoc-Page-Key": key}
            statuses.append(client.post(ROLLBACK, headers={"Authorization": f"Bearer g{i}", **visitor}).status_code)
        return statuses

    with client_from("127.0.0.8", server.base) as c:
        assert named(c, PAGE_KEY) == [401] * (LIMIT + 2)
    with client_from("127.0.0.9", server.base) as c:
        assert named(c, "a guess at the page's key")[LIMIT:] == [429, 429]
