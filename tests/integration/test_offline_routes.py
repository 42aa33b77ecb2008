"""The offline page's routes (/app) without a browser: its files, the serving model's description and file, its own
Content-Security-Policy on its path only (the API and /ui keep theirs), and a plain note when ONNX Runtime Web
is not installed."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from fastapi.testclient import TestClient
from tests.integration.service_support import service_settings

from leafdoc.offline import CONTENT_SECURITY_POLICY, routes
from leafdoc.offline.halve import half_weights
from leafdoc.service.app import create_app
from leafdoc.ui.guard import CONTENT_SECURITY_POLICY as PAGE_POLICY


@pytest.fixture
def client(tmp_path, tiny_model):
    with TestClient(create_app(service_settings(tmp_path / "home", tiny_model)), base_url="http://localhost") as c:
        yield c


def test_the_page_and_its_files_carry_their_own_policy(client):
    page = client.get("/app/")
    assert page.status_code == 200 and 'src="app.js"' in page.text
    for name in (
        "app.js",
        "prepare.js",
        "checks.js",
        "sw.js",
        "app.css",
        "manifest.webmanifest",
        "icon-192.png",
        "status.json",
    ):
        r = client.get(f"/app/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, name
        assert r.headers["cross-origin-embedder-policy"] == "require-corp", name
    assert client.get("/app/manifest.webmanifest").json()["display"] == "standalone"
    # the service worker's cache is named after the page's files: a change to them reinstalls it
    worker = client.get("/app/sw.js").text
    assert f'"leafdoc-offline-{routes.build()}"' in worker and "__BUILD__" not in worker
    assert client.get("/app", follow_redirects=False).headers["location"] == "/app/"
    # exactly what the page needs: WebAssembly compiled, no eval, no inline script, nothing from other sites
    assert "'wasm-unsafe-eval'" in CONTENT_SECURITY_POLICY
    assert "'unsafe-eval'" not in CONTENT_SECURITY_POLICY and "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "http" not in CONTENT_SECURITY_POLICY and "*" not in CONTENT_SECURITY_POLICY
    # ... and only on its path: the page at /ui does not compile WebAssembly, the API sends no page policy
    assert "wasm-unsafe-eval" not in PAGE_POLICY
    assert "content-security-policy" not in client.get("/v1/models").headers
    # the tab's icon, asked for at /favicon.ico by every page (a 404 in the browser's console): the leaf
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/png"
    assert icon.content == (routes.STATIC / "icon-192.png").read_bytes()
    # nothing but the page's own files by name
    for name in ("../routes.py", "__init__.py", "index.html", "vendor"):
        assert client.get(f"/app/{name}").status_code == 404, name


INJECTED = "<script>alert(1)</script><img src=x onerror=alert(2)>"


@pytest.mark.parametrize("path", ["/app/nope", "/app/nope/deeper/still", "/app/" + INJECTED, "/app/a/" + INJECTED])
def test_an_unknown_address_under_app_is_a_small_page_back_to_it_never_echoing_the_address(client, path):
    """An unknown /app address answered a bare "not found" in plain text (one level deep) or the API's JSON (deeper);
    now a page in the page's style that links back to /app/, and repeats nothing of the address."""
    r = client.get(path)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), r.headers
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY  # the page's own policy: no script runs
    page = r.text
    assert "<h2>Page not found</h2>" in page and '<a id="back" href="/app/">Open the leafdoc page</a>' in page
    assert 'href="/app/app.css"' in page  # the page's style, from any depth
    assert "<script" not in page and "onerror" not in page and "alert" not in page and "nope" not in page
    # in the browser's language
    spanish = client.get(path, headers={"Accept-Language": "es-ES,es;q=0.9"}).text
    assert '<html lang="es">' in spanish and "Page not found" not in spanish and 'href="/app/"' in spanish


def test_the_apis_unknown_routes_stay_json_with_a_hint(client):
    for path in ("/v1/unknown", "/v1/" + INJECTED):
        r = client.get(path)
        assert r.status_code == 404 and r.headers["content-type"] == "application/json", r.headers
        body = r.json()
        assert body["error"] == "not_found" and body["hint"] == "See /docs for the routes.", body


def read_checks(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """checks.bin as static/checks.js reads it: the card's numbers and the arrays."""
    assert data[:4] == b"LDCK"
    length = int.from_bytes(data[4:8], "little")
    header = json.loads(data[8 : 8 + length])
    start = 8 + length
    arrays = {}
    for name, a in header["arrays"].items():
        dtype = np.dtype("<f2" if a["dtype"] == "float16" else "<f4")
        n = int(np.prod(a["shape"]))
        arrays[name] = np.frombuffer(data, dtype, n, start + a["offset"]).reshape(a["shape"])
    return header["card"], arrays


def test_the_model_it_runs_is_the_serving_one_with_its_checks(client, tiny_model):
    described = client.get("/app/model.json").json()
    version = described["version"]
    assert described["model"] == f"model/{version}/model.onnx"
    assert described["input"]["size"] > 0 and described["labels"]
    model = client.get(f"/app/{described['model']}")
    # the serving model, most of its weights in half precision (offline/halve.py), the size the page is told
    whole = (tiny_model / "model.onnx").read_bytes()
    assert model.status_code == 200 and model.content == half_weights(whole) != whole
    assert len(model.content) == described["model_bytes"] < 0.7 * len(whole)
    assert client.get(f"/app/model/{version + 1}/model.onnx").status_code == 404
    # the page runs the not-a-leaf check itself, so it answers at the server's own threshold
    assert described["checks"] == f"model/{version}/checks.bin"
    assert described["min_confidence"] == described["server_min_confidence"]
    # the page's words in every language leafdoc speaks, the server's own messages among them
    assert set(described["texts"]) == {"en", "es", "fr", "hi"}
    assert "plain background" in described["texts"]["en"]["templates"]["not_a_leaf"]
    assert described["texts"]["es"]["page"]["language"] == "Idioma"
    checks = client.get(f"/app/{described['checks']}")
    assert checks.status_code == 200 and len(checks.content) == described["checks_bytes"]
    card, arrays = read_checks(checks.content)
    card_json = json.loads((tiny_model / "card.json").read_text())
    assert card["ood"] == {"weights": card_json["ood"]["weights"], "threshold": card_json["ood"]["threshold"]}
    with np.load(tiny_model / "ood.npz") as z:  # every fitted number, to the bit, in its own precision
        for name in ("feat_mean", "feat_whiten", "class_means_w", "colour_mean", "colour_whiten", "centre", "spread"):
            assert arrays[name].dtype == z[name].dtype and np.array_equal(arrays[name], z[name]), name
    assert client.get(f"/app/model/{version + 1}/checks.bin").status_code == 404


def test_a_model_without_checks_is_held_to_the_stricter_threshold(tmp_path, tiny_model):
    """A model folder without ood.npz (from before the check): the page cannot check what a photo is, so it answers
    only above the stricter of the card's thresholds, and says so."""
    bare = tmp_path / "bare"
    shutil.copytree(tiny_model, bare)
    (bare / "ood.npz").unlink()
    card = json.loads((bare / "card.json").read_text())
    card["abstain"]["min_confidence"] = 0.5
    card["field"] = {**(card.get("field") or {}), "learnt": {"crops": ["x"], "min_confidence": 0.9}}
    (bare / "card.json").write_text(json.dumps(card))
    with TestClient(create_app(service_settings(tmp_path / "home", bare)), base_url="http://localhost") as c:
        described = c.get("/app/model.json").json()
        assert described["checks"] is None
        assert described["server_min_confidence"] == 0.5
        assert described["min_confidence"] == 0.9  # the field photos' threshold, for every photo
        assert c.get(f"/app/model/{described['version']}/checks.bin").status_code == 404


def test_without_onnx_runtime_web_the_page_says_what_to_install(client, tmp_path, monkeypatch):
    monkeypatch.setattr(routes, "VENDOR", tmp_path / "nothing")
    status = client.get("/app/status.json").json()
    assert status["missing"] == list(routes.VENDOR_FILES)
    assert "scripts/install.sh" in status["note"] and "npm" in status["note"]
    r = client.get("/app/ort/ort-wasm-simd-threaded.wasm")
    assert r.status_code == 404 and "npm ci" in r.text
    assert client.get("/app/ort/other.wasm").status_code == 404


def test_text_and_webassembly_are_sent_gzipped_to_a_browser_that_takes_it(client, tmp_path, monkeypatch):
    import gzip

    plain = (routes.STATIC / "app.js").read_bytes()
    # httpx asks for gzip and decodes it: read the bytes as they came over the wire
    with client.stream("GET", "/app/app.js", headers={"Accept-Encoding": "gzip, br"}) as r:
        wire = b"".join(r.iter_raw())
    assert r.headers["content-encoding"] == "gzip" and "accept-encoding" in r.headers["vary"].lower()
    assert gzip.decompress(wire) == plain and len(wire) < len(plain) / 2
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    for refuses in ("identity", "gzip;q=0", "br"):
        r = client.get("/app/app.js", headers={"Accept-Encoding": refuses})
        assert "content-encoding" not in r.headers and r.content == plain, refuses
    # ONNX Runtime Web's .wasm (a stand-in here: the real one is 14.2 MB, 3.7 MB gzipped)
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    wasm = bytes(range(256)) * 64 + b"\0" * 100_000
    for name in routes.VENDOR_FILES:
        (vendor / name).write_bytes(wasm)
    monkeypatch.setattr(routes, "VENDOR", vendor)
    with client.stream("GET", "/app/ort/ort-wasm-simd-threaded.wasm", headers={"Accept-Encoding": "gzip"}) as r:
        wire = b"".join(r.iter_raw())
    assert (
        r.headers["content-type"] == "application/wasm" and gzip.decompress(wire) == wasm and len(wire) < len(wasm) / 10
    )
    # the model is sent as it is (float weights shrink by 7%)
    version = client.get("/app/model.json").json()["version"]
    r = client.get(f"/app/model/{version}/model.onnx", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in r.headers


def test_the_model_is_halved_once_however_many_ask_and_sent_whole_where_halving_fails(client, tiny_model, monkeypatch):
    """The security review of session 73: the first visitors after a start each halved the model at once (30 took a
    worker from 252 to 957 MB), and a model that serves but the halving could not read answered 500 on /app, and was
    read again on every visit. Now one build, kept; a failure sends the model whole, once decided."""
    import threading

    whole = (tiny_model / "model.onnx").read_bytes()
    calls = []
    real = routes.halve.half_weights

    def slow_halve(model: bytes) -> bytes:
        calls.append(1)
        threading.Event().wait(0.3)  # the others ask meanwhile
        return real(model)

    monkeypatch.setattr(routes, "_BUILT", {})
    monkeypatch.setattr(routes.halve, "half_weights", slow_halve)
    answers = []
    askers = [
        threading.Thread(target=lambda: answers.append(client.get("/app/model.json").json()["model_bytes"]))
        for _ in range(8)
    ]
    for t in askers:
        t.start()
    for t in askers:
        t.join()
    assert len(calls) == 1 and len(answers) == 8 and set(answers) == {len(real(whole))}, (calls, answers)

    def broken(model: bytes) -> bytes:
        calls.append(1)
        raise ValueError("a constant of 66 bytes")

    monkeypatch.setattr(routes, "_BUILT", {})
    monkeypatch.setattr(routes.halve, "half_weights", broken)
    calls.clear()
    version = client.get("/app/model.json").json()["version"]
    for _ in range(3):
        sent = client.get(f"/app/model/{version}/model.onnx")
        assert sent.status_code == 200 and sent.content == whole
    assert client.get("/app/model.json").json()["model_bytes"] == len(whole) and len(calls) == 1
    # a model too large to halve in memory is sent from its file, as it is
    monkeypatch.setattr(routes, "_BUILT", {})
    monkeypatch.setattr(routes, "HALVE_MAX_BYTES", len(whole) - 1)
    calls.clear()
    assert client.get(f"/app/model/{version}/model.onnx").content == whole and not calls
    assert client.get("/app/model.json").json()["model_bytes"] == len(whole)


def test_a_dropped_download_of_the_model_goes_on_where_it_stopped(client):
    """A phone on a weak signal that lost the connection at 6 of 7.6 MB downloaded it all again. Now the model and
    its checks carry an ETag and answer a range of their bytes (If-Range: the same version only), so the page asks
    for the rest; a browser that has them is told so (304)."""
    described = client.get("/app/model.json").json()
    for name in ("model", "checks"):
        whole = client.get(f"/app/{described[name]}")
        body, etag = whole.content, whole.headers["etag"]
        assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
        assert etag == f'"sha256-{hashlib.sha256(body).hexdigest()[:32]}"', etag  # the page checks the bytes by it
        assert client.get(f"/app/{described[name]}").headers["etag"] == etag  # the same bytes, the same tag
        cut = len(body) * 2 // 3
        rest = client.get(f"/app/{described[name]}", headers={"Range": f"bytes={cut}-", "If-Range": etag})
        assert rest.status_code == 206 and rest.headers["content-range"] == f"bytes {cut}-{len(body) - 1}/{len(body)}"
        assert body[:cut] + rest.content == body
        middle = client.get(f"/app/{described[name]}", headers={"Range": "bytes=10-19"})
        assert middle.status_code == 206 and middle.content == body[10:20]
        tail = client.get(f"/app/{described[name]}", headers={"Range": "bytes=-7"})
        assert tail.status_code == 206 and tail.content == body[-7:]
        # another version's part is never mixed in: the whole file again
        other = client.get(f"/app/{described[name]}", headers={"Range": f"bytes={cut}-", "If-Range": '"another"'})
        assert other.status_code == 200 and other.content == body
        hostile = (b"bytes=\xb2-", "bytes=" + "9" * 5000 + "-")  # a digit int() refuses; past int()'s 4,300 digits
        for ignored in ("bytes=0-1,5-9", "bytes=abc-", "items=0-9", "bytes=9-2", "bytes=-", *hostile):  # RFC 9110
            sent = client.get(f"/app/{described[name]}", headers={"Range": ignored})
            assert sent.status_code == 200 and sent.content == body, ignored
        past = client.get(f"/app/{described[name]}", headers={"Range": f"bytes={len(body)}-"})
        assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(body)}" and not past.content
        had = client.get(f"/app/{described[name]}", headers={"If-None-Match": etag})
        assert had.status_code == 304 and not had.content
        assert client.get(f"/app/{described[name]}", headers={"If-None-Match": '"old"'}).content == body


def test_a_range_is_sent_from_the_file_made_once_not_copied_for_each_asker():
    """The security review of session 74: each range was a copy of the model (7 MB), held until its reader had read
    it: 150 slow readers took a worker from 267 to 1,351 MB. A view of the one copy now."""
    from types import SimpleNamespace

    body = bytes(range(256)) * 4000
    asked = SimpleNamespace(headers={"range": "bytes=1000-"})
    sent = routes._resumable(asked, body, "sha256-x")
    assert sent.status_code == 206 and isinstance(sent.body, memoryview) and sent.body.obj is body
    assert bytes(sent.body) == body[1000:]
