"""The offline page's routes (/app) without a browser: its files, the serving model's description and file, its own
Content-Security-Policy on its path only (the API and /ui keep theirs), and a plain note when ONNX Runtime Web
is not installed."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.integration.service_support import service_settings

from leafdoc.offline import CONTENT_SECURITY_POLICY, routes
from leafdoc.service.app import create_app
from leafdoc.ui.guard import CONTENT_SECURITY_POLICY as PAGE_POLICY


@pytest.fixture
def client(tmp_path, tiny_model):
    with TestClient(create_app(service_settings(tmp_path / "home", tiny_model)), base_url="http://localhost") as c:
        yield c


def test_the_page_and_its_files_carry_their_own_policy(client):
    page = client.get("/app/")
    assert page.status_code == 200 and 'src="app.js"' in page.text
    for name in ("app.js", "prepare.js", "sw.js", "app.css", "manifest.webmanifest", "icon-192.png", "status.json"):
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
    # nothing but the page's own files by name
    for name in ("../routes.py", "__init__.py", "index.html", "vendor"):
        assert client.get(f"/app/{name}").status_code == 404, name


def test_the_model_it_runs_is_the_serving_one(client, tiny_model):
    described = client.get("/app/model.json").json()
    version = described["version"]
    assert described["model"] == f"model/{version}/model.onnx"
    assert described["input"]["size"] > 0 and described["labels"]
    assert 0 < described["server_min_confidence"] <= described["min_confidence"] < 1
    model = client.get(f"/app/{described['model']}")
    assert model.status_code == 200 and model.content == (tiny_model / "model.onnx").read_bytes()
    assert client.get(f"/app/model/{version + 1}/model.onnx").status_code == 404


def test_without_onnx_runtime_web_the_page_says_what_to_install(client, tmp_path, monkeypatch):
    monkeypatch.setattr(routes, "VENDOR", tmp_path / "nothing")
    status = client.get("/app/status.json").json()
    assert status["missing"] == list(routes.VENDOR_FILES)
    assert "scripts/install.sh" in status["note"] and "npm" in status["note"]
    r = client.get("/app/ort/ort-wasm-simd-threaded.wasm")
    assert r.status_code == 404 and "npm ci" in r.text
    assert client.get("/app/ort/other.wasm").status_code == 404
