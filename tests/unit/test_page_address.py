"""The address the web page's own process calls the API at (ui/server.py local_api_url): the server's own port,
on loopback when it listens on every interface, brackets around an IPv6 address."""

from __future__ import annotations

from leafdoc.ui.server import local_api_url


def test_the_page_calls_the_api_on_this_machine_at_the_servers_port():
    assert local_api_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"
    assert local_api_url("", 8001) == "http://127.0.0.1:8001"
    assert local_api_url("::", 8002) == "http://[::1]:8002"
    assert local_api_url("127.0.0.1", 8003) == "http://127.0.0.1:8003"
    assert local_api_url("192.168.1.5", 8004) == "http://192.168.1.5:8004"
    assert local_api_url("fe80::1", 8005) == "http://[fe80::1]:8005"
    assert local_api_url("localhost", 8006) == "http://localhost:8006"
