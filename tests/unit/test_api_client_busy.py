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
