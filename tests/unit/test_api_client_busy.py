"""leafdoc.api_client (the web page's and the desktop app's) sends a prediction again when the server shed it as `busy`
(503 with Retry-After, nothing done), after the wait it asks for, a few times; any other error is not retried. The
server's side is in tests/integration/test_load_shedding.py; here the server is a stand-in that answers in turn."""

from __future__ import annotations

import httpx
import pytest

from leafdoc import api_client as client_module
from leafdoc.api_client import ApiError, LeafdocClient

pytestmark = pytest.mark.unit

BUSY = {"error": "busy", "message": "this server is busy: its queue of requests is 1.3 s long.", "hint": "Send again."}
ANSWER = {"label": "Tomato___healthy", "abstained": False}


def client_answering(answers: list[httpx.Response], monkeypatch) -> tuple[LeafdocClient, list, list[float]]:
    sent, slept = [], []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.read())
        return answers.pop(0)

    c = LeafdocClient("http://leafdoc.test")
    c._http = httpx.Client(base_url=c.base_url, transport=httpx.MockTransport(handler))
    monkeypatch.setattr(client_module.time, "sleep", slept.append)
    return c, sent, slept


def busy(retry_after: str = "1") -> httpx.Response:
    return httpx.Response(503, json=BUSY, headers={"Retry-After": retry_after})


def test_a_shed_prediction_is_sent_again_after_retry_after(monkeypatch):
    c, sent, slept = client_answering([busy("1"), busy("2"), httpx.Response(200, json=ANSWER)], monkeypatch)
    assert c.predict(b"jpeg bytes", "leaf.jpg") == ANSWER
    assert slept == [1.0, 2.0] and len(sent) == 3
    assert all(b"jpeg bytes" in body for body in sent)  # the photo itself each time, not an empty body


def test_the_client_gives_up_with_the_servers_words_and_waits_a_bounded_time(monkeypatch):
    c, sent, slept = client_answering([busy("120")] * 4, monkeypatch)
    with pytest.raises(ApiError) as e:
        c.predict(b"jpeg bytes")
    assert e.value.code == "busy" and e.value.status == 503 and "busy" in str(e.value)
    assert len(sent) == 1 + client_module.BUSY_RETRIES and slept == [client_module.BUSY_WAIT_MAX_SECONDS] * 3


def test_other_errors_are_not_sent_again(monkeypatch):
    no_model = httpx.Response(503, json={"error": "no_model", "message": "No model is serving."})
    c, sent, slept = client_answering([no_model, httpx.Response(200, json=ANSWER)], monkeypatch)
    with pytest.raises(ApiError) as e:
        c.predict(b"jpeg bytes")
    assert e.value.code == "no_model" and len(sent) == 1 and slept == []


def test_a_hostile_servers_not_ready_answer_is_kept_short(monkeypatch):
    """A server the desktop app connects to answered /readyz with a 503 whose `checks` held 50 MB of HTML: the status
    bar drew it (a minute a repaint, 2 GB). The client keeps only what the app shows, cut short (security round 8); a
    server shedding load (busy) is asked again, as every request is."""
    huge = {"ready": False, "checks": {f"<b>c{i}</b>": "<h1>x</h1>" * 100_000 for i in range(50)}, "model_version": 9}
    c, sent, _ = client_answering([busy(), httpx.Response(503, json=huge)], monkeypatch)
    ready = c.ready()
    assert len(sent) == 2 and ready["ready"] is False and ready["model_version"] == 9  # a number is kept
    huge["model_version"] = "<h1>x</h1>" * 100_000
    c, _, _ = client_answering([httpx.Response(503, json=huge)], monkeypatch)
    assert c.ready()["model_version"] is None  # anything else is not
    assert len(ready["checks"]) == client_module.READY_CHECKS
    assert all(len(k) <= 40 and len(v) <= client_module.READY_CHARS for k, v in ready["checks"].items())
    c, _, _ = client_answering([httpx.Response(503, text="<html>down</html>")], monkeypatch)
    with pytest.raises(ApiError, match="503"):
        c.ready()


def test_a_hostile_servers_ready_answer_is_kept_short_too(monkeypatch):
    """Only the 503 was bounded: a 200 /readyz with a 5 MB `model_version` took 4.9 s a paint of the desktop app's
    status bar (security round 9)."""
    huge = {"ready": True, "status": "ok" * 10**6, "checks": {"model": "ok"}, "model_version": "<b>9</b>" * 10**6,
            "keep_photos": "yes", "extra": "x" * 10**6}  # fmt: skip
    c, _, _ = client_answering([httpx.Response(200, json=huge)], monkeypatch)
    ready = c.ready()
    assert ready == {"ready": True, "status": "ok" * 20, "checks": {"model": "ok"}, "model_version": None,
                     "keep_photos": False}  # fmt: skip
    c, _, _ = client_answering([httpx.Response(200, json={**huge, "model_version": 3})], monkeypatch)
    assert c.ready()["model_version"] == 3
    c, _, _ = client_answering([httpx.Response(200, text="<html>a router's page</html>")], monkeypatch)
    with pytest.raises(ApiError, match="not leafdoc's"):
        c.ready()


def test_a_name_too_long_to_send_is_a_readable_error_not_a_crash(tmp_path, monkeypatch):
    """A 70,000-character class typed into the page's upload box made httpx refuse the URL (InvalidURL): the page
    logged a traceback and told the visitor it was a bug in the page."""
    c, sent, _ = client_answering([], monkeypatch)
    c.admin_token = "an-admin-token-of-the-right-size"
    archive = tmp_path / "a.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    with pytest.raises(ApiError) as exc:
        c.upload(archive, dataset="d", label="x" * 70_000)
    assert "far too long" in exc.value.message and "200 characters" in exc.value.hint and sent == []
