"""The page's answers name no folder of the server, and its aliases open only what they stand for (ui/aliases.py,
issue 51 #11). The whole page against a real server: tests/e2e/test_security_probes.py, test_ui_file_access.py."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from leafdoc.core.errors import LeafdocError
from leafdoc.ui.aliases import PathAliases, carries_json, hide_paths_in_answers, map_file_url, map_json_request

pytestmark = pytest.mark.unit

HOME = "/srv/data home/leafdoc"  # a space: URL-quoted as %20
PAGE = f"{HOME}/cache/ui"
EXAMPLES = "/opt/leafdoc/examples"


@pytest.fixture
def aliases() -> PathAliases:
    return PathAliases(
        [
            ("/leafdoc/page-files", PAGE, True),
            ("/leafdoc/examples", EXAMPLES, True),
            ("/leafdoc/data-home", HOME, False),
            ("/leafdoc/install", "/opt/leafdoc", False),
        ]
    )


def test_every_spelling_of_a_folder_is_replaced_by_its_alias(aliases):
    sent = {
        "path": f"{PAGE}/ab12/leaf.jpg",
        "url": "http://h/ui/gradio_api/file=" + f"{PAGE}/ab12/leaf.jpg".replace(" ", "%20"),
        "example": f"{EXAMPLES}/guide/good_leaf.jpg",
        "home": f"{HOME}/catalog.sqlite",
        "install": "/opt/leafdoc/src/leafdoc/ui/page.py",
    }
    for body in (json.dumps(sent), json.dumps(sent).replace("/", "\\/"), json.dumps(sent, ensure_ascii=False)):
        hidden = aliases.hide(body.encode()).decode()
        back = json.loads(hidden)
        assert back == {
            "path": "/leafdoc/page-files/ab12/leaf.jpg",
            "url": "http://h/ui/gradio_api/file=/leafdoc/page-files/ab12/leaf.jpg",
            "example": "/leafdoc/examples/guide/good_leaf.jpg",
            "home": "/leafdoc/data-home/catalog.sqlite",
            "install": "/leafdoc/install/src/leafdoc/ui/page.py",
        }
    # a longer name that only begins like a folder is another folder
    assert (
        aliases.hide(b"/opt/leafdocs/x /opt/leafdoc.old /opt/leafdoc")
        == b"/opt/leafdocs/x /opt/leafdoc.old /leafdoc/install"
    )


def test_a_folder_with_letters_beyond_ascii_is_replaced_however_json_spells_it():
    aliases = PathAliases([("/leafdoc/data-home", "/home/zoë/leafdoc", False)])
    for body in (
        json.dumps({"p": "/home/zoë/leafdoc/x"}),
        json.dumps({"p": "/home/zoë/leafdoc/x"}, ensure_ascii=False),
    ):
        assert json.loads(aliases.hide(body.encode())) == {"p": "/leafdoc/data-home/x"}
    assert aliases.hide(json.dumps("/home/zoë/leafdocé").encode()) == json.dumps("/home/zoë/leafdocé").encode()


def test_an_alias_opens_only_what_is_inside_its_folder(aliases):
    assert aliases.file_path("/leafdoc/page-files/ab12/leaf.jpg") == f"{PAGE}/ab12/leaf.jpg"
    assert aliases.file_path("/leafdoc/examples/./guide/../potato.jpg") == f"{EXAMPLES}/potato.jpg"
    for climbing in ("/leafdoc/page-files/../../catalog.sqlite", "/leafdoc/examples/..", "/leafdoc/page-files"):
        assert aliases.file_path(climbing) == climbing  # as sent: no such file
    assert aliases.file_path("/leafdoc/data-home/catalog.sqlite") == "/leafdoc/data-home/catalog.sqlite"  # a name only
    assert aliases.file_path("/etc/passwd") == "/etc/passwd"  # Gradio's checks and the page's refuse it
    assert aliases.file_path("https://example.org/a.jpg") == "https://example.org/a.jpg"


def test_a_server_path_opens_nothing_and_comes_back_as_sent(aliases):
    for sent in (f"{PAGE}/ab12/leaf.jpg", f"{HOME}/./cache/ui/ab12/leaf.jpg", f"/srv/x/../data home/leafdoc/{'c' * 3}"):
        opened = aliases.file_path(sent)
        assert opened.startswith("/leafdoc-") and HOME not in opened
        assert not os.path.abspath(opened).startswith(("/srv", "/opt"))
        echoed = json.dumps({"error": f"Value: {opened} is not in the list of choices"}).encode()
        assert json.loads(aliases.hide(echoed))["error"] == f"Value: {sent} is not in the list of choices"
    # any string: a right guess and a wrong one come back alike
    for guess in (HOME, "/srv/data home/other"):
        masked = aliases.inward({"data": [guess, {"path": guess}]})
        assert HOME not in json.dumps(masked)
        assert json.loads(aliases.hide(json.dumps(masked).encode())) == {"data": [guess, {"path": guess}]}


def test_a_json_request_is_rewritten_only_when_it_names_something(aliases):
    assert aliases.request_json(b'{"data": [null, "tomato"], "fn_index": 3}') is None
    assert aliases.request_json(b"not json") is None
    body = {"data": [{"path": "/leafdoc/examples/a.jpg", "url": "/ui/gradio_api/file=/leafdoc/examples/a.jpg"}, ""]}
    mapped = json.loads(aliases.request_json(json.dumps(body).encode()))
    assert mapped["data"][0] == {"path": f"{EXAMPLES}/a.jpg", "url": body["data"][0]["url"]}


def test_file_urls_are_mapped(aliases):
    scope = {"type": "http", "path": "/ui/gradio_api/file=/leafdoc/page-files/ab/leaf.jpg", "raw_path": b"x"}
    mapped = map_file_url(scope, aliases)
    assert mapped["path"] == f"/ui/gradio_api/file={PAGE}/ab/leaf.jpg"
    assert mapped["raw_path"] == f"/ui/gradio_api/file={PAGE}/ab/leaf.jpg".replace(" ", "%20").encode()
    real = map_file_url({**scope, "path": f"/ui/gradio_api/file={PAGE}/ab/leaf.jpg"}, aliases)["path"]
    assert real.startswith("/ui/gradio_api/file=/leafdoc-") and HOME not in real
    old_route = map_file_url({**scope, "path": f"/ui/gradio_api/file/{PAGE}/a"}, aliases)["path"]  # `file//srv/...`
    assert not os.path.abspath(old_route.split("/file/", 1)[1]).startswith(HOME)


# ---- around a request --------------------------------------------------------------------------------------------


def run_answer(aliases, messages: list[dict]) -> list[dict]:
    sent: list[dict] = []

    async def send(message) -> None:
        sent.append(message)

    async def go() -> None:
        wrapped = hide_paths_in_answers(send, aliases)
        for message in messages:
            await wrapped(message)

    asyncio.run(go())
    return sent


def start(kind: bytes, length: int | None = None, **extra) -> dict:
    headers = [(b"content-type", kind), *([(b"content-length", str(length).encode())] if length is not None else [])]
    headers += [(k.encode(), v.encode()) for k, v in extra.items()]
    return {"type": "http.response.start", "status": 200, "headers": headers}


def test_a_json_answer_is_sent_whole_with_its_new_length(aliases):
    body = json.dumps([f"{PAGE}/ab/leaf.jpg"]).encode()
    sent = run_answer(
        aliases,
        [
            start(b"application/json", len(body)),
            {"type": "http.response.body", "body": body[:10], "more_body": True},
            {"type": "http.response.body", "body": body[10:]},
        ],
    )
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[1]["body"] == b'["/leafdoc/page-files/ab/leaf.jpg"]'
    assert dict(sent[0]["headers"])[b"content-length"] == str(len(sent[1]["body"])).encode()


def test_an_event_stream_is_sent_line_by_line_and_a_path_cut_in_two_is_still_hidden(aliases):
    line = ("data: " + json.dumps({"output": {"path": f"{PAGE}/ab/image.png"}}) + "\n\n").encode()
    cut = line.index(b"cache/ui")
    sent = run_answer(
        aliases,
        [
            start(b"text/event-stream; charset=utf-8"),
            {"type": "http.response.body", "body": line[:cut], "more_body": True},
            {"type": "http.response.body", "body": line[cut:] + b"data: {", "more_body": True},
            {"type": "http.response.body", "body": b'"msg": "close_stream"}\n\n', "more_body": False},
        ],
    )
    bodies = [m["body"] for m in sent if m["type"] == "http.response.body"]
    hidden = line.replace(PAGE.encode(), b"/leafdoc/page-files")
    assert bodies == [hidden, b'data: {"msg": "close_stream"}\n\n']  # each sent once its line is whole
    assert HOME.encode() not in hidden and b"content-length" not in dict(sent[0]["headers"])


def test_files_and_encoded_answers_pass_as_they_are(aliases):
    body = f"{PAGE}/x".encode()
    for head in (start(b"image/png", len(body)), start(b"application/json", len(body), **{"content-encoding": "gzip"})):
        sent = run_answer(aliases, [head, {"type": "http.response.body", "body": body}])
        assert sent == [head, {"type": "http.response.body", "body": body}]


def run_request(aliases, scope: dict, chunks: list, fail: Exception | None = None):
    answered: list[dict] = []

    async def send(message) -> None:
        answered.append(message)

    async def go():
        queue = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1 or fail is not None}
            for i, c in enumerate(chunks)
        ]

        async def receive():
            if fail is not None and not queue:
                raise fail
            return queue.pop(0) if queue else {"type": "http.disconnect"}

        mapped = await map_json_request(scope, receive, send, aliases)
        if mapped is None:
            return None
        new_scope, replay = mapped
        return new_scope, await replay(), await replay()

    return asyncio.run(go()), answered


def test_an_events_json_body_is_mapped_and_its_length_follows(aliases):
    body = json.dumps({"data": [{"path": "/leafdoc/page-files/ab/leaf.jpg"}, ""], "fn_index": 2}).encode()
    scope = {"type": "http", "method": "POST", "headers": [(b"content-type", b"application/json")]}
    scope["headers"].append((b"content-length", str(len(body)).encode()))
    assert carries_json(scope)
    (new_scope, first, after), answered = run_request(aliases, scope, [body[:7], body[7:]])
    assert json.loads(first["body"])["data"][0]["path"] == f"{PAGE}/ab/leaf.jpg"
    assert dict(new_scope["headers"])[b"content-length"] == str(len(first["body"])).encode()
    assert first["more_body"] is False and after["type"] == "http.disconnect" and not answered


def test_a_body_refused_while_it_is_read_is_answered_and_others_are_not_read(aliases):
    scope = {"type": "http", "method": "POST", "headers": []}
    result, answered = run_request(aliases, scope, [b'{"data": ['], fail=LeafdocError("too big"))
    assert result is None
    assert answered[0]["status"] == 400 and b"too big" in answered[1]["body"]
    assert not carries_json({**scope, "headers": [(b"content-type", b"multipart/form-data; boundary=x")]})
    assert not carries_json({**scope, "method": "GET"})


def test_no_picture_on_the_page_offers_to_share_it(tmp_path):
    """Gradio gives every image a "share" button (to Hugging Face Spaces Discussions) unless told: a grower's photo,
    its heat map, a kept photo under review and a business's figures were one click from a third party."""
    import gradio as gr

    from leafdoc.core.settings import Settings
    from leafdoc.ui.page import build_page

    page = build_page(Settings(home=tmp_path), tmp_path / "ui")
    images = {c.elem_id: c.buttons for c in page.blocks.values() if isinstance(c, gr.Image)}
    assert {"leaf-photo", "heat-map", "review-photo", "monitor-activity"} <= set(images), images
    assert not [name for name, buttons in images.items() if "share" in (buttons or [])], images
