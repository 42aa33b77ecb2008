"""The third security audit's probes (2026-11-29), replayed against a real `leafdoc serve`: JPEGs read in many scans
held to the decoded-memory budget and a scan limit, the open feedback route's body kept small and its refusal short,
a version number too large for the catalog refused as a bad request, and Gradio's release kept out of the page's
answers. Memory is read from the server process."""

from __future__ import annotations

import io
import json
import time

import httpx
import numpy as np
import pytest
from PIL import Image
from tests.e2e.test_security_probes import leaf_jpeg, rss_mb
from tests.live_server import ADMIN, answering_copy, start_server

from leafdoc.imaging.photos import MAX_JPEG_SCANS, jpeg_frame
from leafdoc.service.errors import MAX_DETAILS
from leafdoc.service.routes.feedback import MAX_BODY_BYTES

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("round3")
    srv = start_server(root, answering_copy(tiny_model, root / "model"))
    yield srv
    srv.stop()


def jpeg(img: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **options)
    return buf.getvalue()


def repeat_last_scan(data: bytes, times: int) -> bytes:
    """The audit's crafted JPEG: its last scan (with the Huffman table written just before it) repeated, which
    libjpeg reads again each time with only a warning."""
    sos = data.rfind(b"\xff\xda")
    dht = data.rfind(b"\xff\xc4", 0, sos)
    start = dht if dht >= 0 and dht + 2 + int.from_bytes(data[dht + 2 : dht + 4], "big") == sos else sos
    end = len(data) - 2  # the EOI marker
    return data[:end] + data[start:end] * times + data[end:]


def test_a_progressive_jpeg_is_costed_at_its_whole_coefficient_buffer(server):
    """6320x6320 (under the 40 MP limit), progressive 4:4:4, 469 KB: libjpeg holds every coefficient of it at full
    size whatever the reduced scale (+229 MB measured); as a baseline JPEG the same picture costs +6 MB."""
    data = jpeg(Image.new("RGB", (6320, 6320), (90, 160, 60)), quality=90, progressive=True, subsampling=0)
    assert jpeg_frame(data).marker == 0xC2
    before = rss_mb(server.proc.pid, "VmHWM")
    r = httpx.post(f"{server.base}/v1/predict", files={"file": ("prog.jpg", data)}, timeout=60)
    assert r.status_code == 413, r.text
    body = r.json()
    assert body["error"] == "image_too_large" and "progressive" in body["message"] and "prog.jpg" in body["message"]
    assert rss_mb(server.proc.pid, "VmHWM") - before < 60


def test_a_jpeg_of_hundreds_of_scans_is_refused_before_it_is_decoded(server):
    """The audit's 495 KB file repeating one refinement scan 300 times cost 4.3 CPU-seconds a request."""
    plain = jpeg(Image.new("RGB", (1200, 900), (90, 160, 60)), quality=90, progressive=True)
    data = repeat_last_scan(plain, 300)
    assert jpeg_frame(data).scans > MAX_JPEG_SCANS
    started = time.monotonic()
    r = httpx.post(f"{server.base}/v1/predict", files={"file": ("scans.jpg", data)}, timeout=60)
    assert r.status_code == 413, r.text
    assert f"at most {MAX_JPEG_SCANS}" in r.json()["message"]
    assert time.monotonic() - started < 1.0


def test_an_ordinary_progressive_photo_is_still_answered(server):
    """A phone-size progressive 4:2:0 photo (as editors and web exports write them), and a baseline one with an EXIF
    thumbnail (its scan is not counted as the photo's)."""
    rng = np.random.default_rng(1)
    arr = np.clip(np.array([60, 150, 50]) + rng.integers(-40, 40, (1500, 2000, 3)), 0, 255).astype(np.uint8)
    photo = Image.fromarray(arr)
    progressive = jpeg(photo, quality=88, progressive=True)
    thumb = jpeg(photo.resize((160, 120)))
    exif = Image.Exif()
    with_thumb = jpeg(photo, quality=88, exif=exif.tobytes())
    assert jpeg_frame(with_thumb).scans == 1 and len(thumb) > 0
    for name, data in (("progressive.jpg", progressive), ("baseline.jpg", with_thumb)):
        r = httpx.post(f"{server.base}/v1/predict", files={"file": (name, data)}, timeout=60)
        assert r.status_code == 200, (name, r.text)
        assert r.json()["top_k"], r.text


def test_the_open_feedback_route_takes_a_small_body_and_answers_a_short_refusal(server):
    """A 979 KB body of 90,000 unknown keys cost about 2 CPU-seconds and was answered with 8 MB of details."""
    r = httpx.post(f"{server.base}/v1/predict", files={"file": ("leaf.jpg", leaf_jpeg())}, timeout=60)
    pid = r.raise_for_status().json()["prediction_id"]
    url = f"{server.base}/v1/predictions/{pid}/feedback"
    huge = json.dumps({f"k{i}": 1 for i in range(90_000)})
    started = time.monotonic()
    r = httpx.post(url, content=huge, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 413, r.text
    assert time.monotonic() - started < 1.0 and len(r.content) < 2000
    many = json.dumps({"correct": True, **{f"k{i}": 1 for i in range(300)}})
    assert len(many) < MAX_BODY_BYTES
    r = httpx.post(url, content=many, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 422, r.text
    body = r.json()
    assert len(body["details"]) == MAX_DETAILS and "(and 299 more problems)" in body["message"], body["message"]
    # an ordinary feedback still goes through
    r = httpx.post(url, json={"correct": True}, timeout=30)
    assert r.status_code == 200, r.text


def test_a_version_too_large_for_the_catalog_is_a_bad_request_not_a_server_error(server):
    huge = "9" * 23
    r = httpx.get(f"{server.base}/v1/models/{huge}", timeout=30)
    assert r.status_code == 422, r.text
    r = httpx.post(f"{server.base}/v1/models/{huge}/promote", headers=ADMIN, timeout=30)
    assert r.status_code == 422, r.text
    r = httpx.get(f"{server.base}/v1/models/{2**31 - 1}", timeout=30)
    assert r.status_code == 404, r.text


def folder_bytes(path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_a_kept_photo_with_bytes_appended_is_stored_as_a_small_copy(tmp_path, tiny_model):
    """With LEAFDOC_KEEP_PHOTOS, a small leaf photo followed by 24 MiB of random bytes made the store grow by 24 MiB
    a request (7 GB a minute a worker); it keeps a 1024-px copy of such a photo now, and a photo as the page sends it
    as it came."""
    srv = start_server(tmp_path, answering_copy(tiny_model, tmp_path / "model"), LEAFDOC_KEEP_PHOTOS="true")
    try:
        rng = np.random.default_rng(3)
        small = leaf_jpeg(3)
        padded = small + rng.integers(0, 256, 24 * 1024 * 1024, dtype=np.uint8).tobytes()
        store = srv.home / "store"
        before = folder_bytes(srv.home)
        ids = []
        for name, data in (("padded.jpg", padded), ("small.jpg", small)):
            r = httpx.post(f"{srv.base}/v1/predict", files={"file": (name, data)}, timeout=60)
            assert r.status_code == 200, r.text
            ids.append(r.json()["prediction_id"])
        for pid in ids:  # each is reviewable once written: feedback puts it in the review queue
            httpx.post(f"{srv.base}/v1/predictions/{pid}/feedback", json={"correct": True}, timeout=30)
        deadline = time.monotonic() + 30
        photos = {}
        while time.monotonic() < deadline and len(photos) < 2:
            for pid in ids:
                r = httpx.get(f"{srv.base}/v1/review/{pid}/photo", headers=ADMIN, timeout=30)
                if r.status_code == 200:
                    photos[pid] = r.content
            time.sleep(0.3)
        assert len(photos) == 2, f"kept photos: {len(photos)} of 2 (store: {store})"
        copy, as_sent = photos[ids[0]], photos[ids[1]]
        assert as_sent == small  # kept as it came
        assert len(copy) < 200_000 and Image.open(io.BytesIO(copy)).size == Image.open(io.BytesIO(small)).size
        assert folder_bytes(srv.home) - before < 2 * 1024 * 1024
    finally:
        srv.stop()


def test_the_apis_answers_carry_nosniff_no_store_and_its_documentation_no_framing(server):
    """The audit's L4: /v1 had no nosniff, an admin's JSON (review queue, uploads) no Cache-Control, and /docs and
    /redoc no frame protection."""
    for path, headers in (("/v1/models", {}), ("/v1/review", ADMIN), ("/v1/uploads", ADMIN), ("/v1/nowhere", {})):
        r = httpx.get(f"{server.base}{path}", headers=headers, timeout=30)
        assert r.headers.get("x-content-type-options") == "nosniff", (path, r.status_code, r.headers)
        assert r.headers.get("cache-control") == "no-store", (path, r.headers)
    for path in ("/docs", "/redoc"):
        r = httpx.get(f"{server.base}{path}", timeout=30)
        assert r.status_code == 200 and r.headers.get("x-frame-options") == "DENY", (path, r.headers)
        assert "frame-ancestors 'none'" in r.headers.get("content-security-policy", "")
    r = httpx.get(f"{server.base}/healthz", timeout=30)
    assert r.headers.get("x-content-type-options") == "nosniff"
    # an address under /ui that the page's mount does not take (a newline in it) gets the API's 404: nosniff too
    # (security round 4)
    r = httpx.get(f"{server.base}/ui/a%0ab", timeout=30)
    assert r.status_code == 404 and r.headers.get("x-content-type-options") == "nosniff", r.headers


def test_the_page_does_not_name_gradios_release(server, tmp_path):
    """The audit's L3: /ui/config, the page's HTML (the same config) and /ui/gradio_api/openapi.json gave Gradio's
    exact version to any visitor. They give its major version only (ui/page.py, `hide_gradio_version`), which the
    Python gradio_client still reads its protocol from. (Gradio's scripts and styles carry the release in their
    own spelling, `6-31-0`, and their file names are its build's hashes: docs/security.md says what is left.)"""
    import gradio
    from gradio_client import Client, handle_file

    from leafdoc.ui.page import PUBLIC_GRADIO_VERSION

    release = gradio.__version__
    assert release.split(".")[0] == PUBLIC_GRADIO_VERSION and release != PUBLIC_GRADIO_VERSION
    answers = {}
    for path in ("/ui/", "/ui/config", "/ui/gradio_api/info", "/ui/gradio_api/openapi.json", "/ui/theme.css"):
        r = httpx.get(f"{server.base}{path}", timeout=120)  # the first visit builds the page
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        answers[path] = r
        assert release not in r.text, (path, r.text[max(0, r.text.find(release) - 80) : r.text.find(release) + 20])
        assert not any(release in f"{k}: {v}" for k, v in r.headers.items()), (path, r.headers)
    assert answers["/ui/config"].json()["version"] == PUBLIC_GRADIO_VERSION
    assert answers["/ui/gradio_api/openapi.json"].json()["info"]["version"] == PUBLIC_GRADIO_VERSION
    assert f'window.gradio_config = {{"version":"{PUBLIC_GRADIO_VERSION}"' in answers["/ui/"].text
    # gradio_client takes the page for the Gradio it is (without a version: Gradio 2, and it would post the page's
    # config to a Hugging Face service to learn its API), and a diagnosis through it is answered
    photo = tmp_path / "leaf.jpg"
    photo.write_bytes(leaf_jpeg())
    client = Client(f"{server.base}/ui/", verbose=False, httpx_kwargs={"timeout": 120})
    try:
        assert client.app_version.major == int(PUBLIC_GRADIO_VERSION)
        verdict = client.predict(handle_file(photo), api_name="/diagnose")[0]
        assert verdict["value"], verdict
    finally:
        client.close()
