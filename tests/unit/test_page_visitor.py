"""The API counts a call of the web page against the visitor it names only when the call carries the page's key
(service/ratelimit.py, page_visitor); the page names its visitor with that key (ui/where.py, visitor_headers). A real
server: tests/integration/test_page_visitors.py."""

from __future__ import annotations

import pytest
from tests.unit.test_client_identity import scope

from leafdoc.core.settings import Settings
from leafdoc.service.ratelimit import page_visitor
from leafdoc.ui.where import visitor_headers

KEY = "k" * 32


def test_a_page_call_counts_against_the_visitor_it_names_with_the_pages_key(tmp_path):
    settings = Settings(home=tmp_path, ui_page_key=KEY)
    headers = visitor_headers(settings, {"client": ("203.0.113.7", 41000)})
    assert page_visitor(scope(headers), KEY)["client"] == ("203.0.113.7", 0)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Leafdoc-Visitor": "203.0.113.7"},  # no key
        {"X-Leafdoc-Visitor": "203.0.113.7", "X-Leafdoc-Page-Key": "k" * 31},  # a wrong one
        {"X-Leafdoc-Page-Key": KEY},  # a key, no visitor
        {"X-Forwarded-For": "203.0.113.7"},
    ],
)
def test_without_the_pages_key_the_connections_own_address_counts(headers):
    assert page_visitor(scope(headers), KEY)["client"] == ("127.0.0.1", 5000)


def test_each_settings_has_a_page_key_of_its_own_unless_set(tmp_path, monkeypatch):
    monkeypatch.delenv("LEAFDOC_UI_PAGE_KEY", raising=False)
    a, b = Settings(home=tmp_path), Settings(home=tmp_path)
    assert len(a.ui_page_key) >= 32 and a.ui_page_key != b.ui_page_key
    monkeypatch.setenv("LEAFDOC_UI_PAGE_KEY", KEY)  # what `leafdoc serve` hands its workers and the page's process
    assert Settings(home=tmp_path).ui_page_key == KEY
    assert visitor_headers(a, {"client": None}) == {}
