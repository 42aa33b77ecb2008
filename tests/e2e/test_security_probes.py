"""Every probe of the security audit (issue 18), replayed against a real `leafdoc serve` with no token, as a
hostile client would: the holes it found (D2-D7; D1, the web page's file access, is in test_ui_file_access.py)
and what held. Memory is read from the server process itself (/proc/PID/status)."""

from __future__ import annotations

import io
import socket
import struct
import tempfile
import threading
import time
import zipfile
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from tests.conftest import synthetic_image
from tests.integration.service_support import zip_of
from tests.live_server import ADMIN, answering_copy, start_server

pytestmark = pytest.mark.e2e

MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model):
    """A server of its own: its memory high-water mark must not be raised by other tests' requests."""
    root = tmp_path_factory.mktemp("probes")
    leaves = root / "leaves"
    for i, (label, colour) in enumerate((("Apple___healthy", (40, 160, 60)), ("Corn___rust", (150, 90, 40)))):
        for k in range(4):
            synthetic_image(leaves / label / f"{k}.png", size=(64, 64), color=colour, seed=10 * i + k)
    srv = start_server(root, answering_copy(tiny_model, root / "model"), dataset=leaves)
    yield srv
    srv.stop()


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def grey16_png(side: int) -> bytes:
    """A 16-bit greyscale PNG that compresses to almost nothing (a gradient)."""
    arr = (np.arange(side, dtype=np.uint32)[None, :] * 10 % 65535).astype(np.uint16).repeat(side, 0)
    return png_bytes(Image.fromarray(arr, "I;16"))


def leaf_jpeg(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array([40, 160, 60]) + rng.integers(-30, 30, (96, 96, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(buf, "JPEG")
    return buf.getvalue()


def server_paths(server) -> list[str]:
    return [str(server.home), str(server.home.resolve()), tempfile.gettempdir() + "/", str(Path.cwd())]


def assert_names_no_server_path(server, text: str) -> None:
    for path in server_paths(server):
        assert path not in text, f"the answer names a server path ({path}): {text[:400]}"


# ---- D2: memory per request ------------------------------------------------------------------------------


def test_a_16_bit_png_costs_its_decoded_size_not_a_gigabyte(server):
    """6300x6300 16-bit greyscale (77 KB on the wire, under the 40 MP limit): the audit measured +1 GB of RSS
    and 3.2 s per request. Decoded it is 79 MB; the answer must come with far less than the old cost."""
    data = grey16_png(6300)
    before = rss_mb(server.proc.pid, "VmHWM")
    started = time.monotonic()
    r = httpx.post(f"{server.base}/v1/predict", files={"file": ("grey16.png", data)}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["top_k"], r.text
    grew = rss_mb(server.proc.pid, "VmHWM") - before
    assert grew < 250, f"peak RSS grew by {grew:.0f} MB for one 16-bit PNG (the decoded image is 79 MB)"
    assert time.monotonic() - started < 10


def test_four_heavy_pngs_at_once_stay_within_the_budget(server):
    """Four at once peaked at 4.1 GB before. Each photo may hold at most 3 bytes x 40 MP = 114 MiB of decoded
    pixels and a worker decodes at most LEAFDOC_MAX_CONCURRENT_DECODES (4) at once."""
    data = grey16_png(6300)
    before = rss_mb(server.proc.pid, "VmHWM")
    answers: list[int] = []

    def send() -> None:
        answers.append(
            httpx.post(f"{server.base}/v1/predict", files={"file": ("g.png", data)}, timeout=180).status_code
        )

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200] * 4
    grew = rss_mb(server.proc.pid, "VmHWM") - before
    assert grew < 4 * 120, f"peak RSS grew by {grew:.0f} MB for four 16-bit PNGs at once"


def test_an_image_over_the_decoded_bytes_budget_is_refused_from_its_header(server):
    """8-bit RGBA at 6300x6300 decodes to 151 MiB, over the budget (3 bytes x 40 MP): refused before decoding."""
    data = png_bytes(Image.new("RGBA", (6300, 6300), (30, 140, 60, 200)))
    before = rss_mb(server.proc.pid, "VmHWM")
    r = httpx.post(f"{server.base}/v1/predict", files={"file": ("big.png", data)}, timeout=60)
    assert r.status_code == 413, r.text
    body = r.json()
    assert body["error"] == "image_too_large"
    assert "big.png" in body["message"] and "MiB" in body["message"], body
    assert rss_mb(server.proc.pid, "VmHWM") - before < 60


def test_the_pixel_limit_is_checked_from_the_header(server):
    """A PNG whose header claims 50,000 x 50,000 pixels (2.5 GP) is refused without decoding it."""
    ihdr = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    data += struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    r = httpx.post(f"{server.base}/v1/predict", files={"file": ("bomb.png", data)}, timeout=30)
    assert r.status_code == 413, r.text
    assert "50000x50000" in r.json()["message"]


# ---- D3: a part over the per-image limit is refused while it streams in ----------------------------------


def test_a_huge_part_in_a_batch_is_refused_while_it_streams_and_the_others_answer(server):
    """One 190 MiB part went into memory (+194 MB RSS) before being refused. Now it is dropped once it passes
    the 25 MiB per-image limit, and the good photo beside it still gets its diagnosis."""
    huge = b"\xff\xd8" + bytes(190 * MB)
    before = rss_mb(server.proc.pid, "VmHWM")
    r = httpx.post(
        f"{server.base}/v1/predict/batch",
        files=[("files", ("huge.jpg", huge)), ("files", ("leaf.jpg", leaf_jpeg()))],
        timeout=120,
    )
    assert r.status_code == 200, r.text
    first, second = r.json()["results"]
    assert first["error"]["error"] == "image_too_large" and "huge.jpg" in first["error"]["message"], first
    assert first["prediction"] is None
    assert second["error"] is None and second["prediction"]["top_k"], second
    grew = rss_mb(server.proc.pid, "VmHWM") - before
    # The client builds the 190 MiB body on its side; the server keeps at most one image's worth of it.
    assert grew < 80, f"peak RSS grew by {grew:.0f} MB for a 190 MiB part (kept whole before: +194 MB)"


def test_a_single_image_over_the_limit_without_a_length_is_refused_while_it_streams(server):
    """A chunked body (no Content-Length) is refused once it passes the single-image route's limit."""

    def chunks():
        for _ in range(60):
            yield bytes(MB)

    r = httpx.post(f"{server.base}/v1/predict", content=chunks(), headers={"content-type": "image/jpeg"}, timeout=60)
    assert r.status_code == 413, r.text
    assert r.json()["error"] in ("image_too_large", "request_too_large")


def test_a_body_over_the_route_limit_is_refused_before_it_is_read(server):
    """Content-Length of 300 MB on /v1/predict: 413 from the headers alone (the body is never sent)."""
    host, port = server.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 314572800\r\n\r\n"
        )
        head = s.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head


# ---- D4, D5: zips and labels -----------------------------------------------------------------------------


def upload(server, zip_bytes: bytes, name: str = "photos.zip", dataset: str = "probes") -> httpx.Response:
    return httpx.post(
        f"{server.base}/v1/uploads",
        files={"file": (name, zip_bytes, "application/zip")},
        data={"dataset": dataset},
        headers=ADMIN,
        timeout=120,
    )


def test_a_zip_whose_names_are_flagged_utf8_but_are_not_is_a_clear_rejection(server):
    """zipfile raised UnicodeDecodeError (a 500). Flag bit 11 (UTF-8) set on a name that is Latin-1."""
    raw = bytearray(zip_of({"Apple___healthy/caf\xe9.png": leaf_jpeg()}))
    name_utf8 = "Apple___healthy/caf\xe9.png".encode()
    name_latin1 = "Apple___healthy/caf\xe9.png".encode("latin-1") + b"_"  # same length, invalid UTF-8
    assert len(name_utf8) == len(name_latin1)
    raw = bytes(raw).replace(name_utf8, name_latin1)
    r = upload(server, raw, "badnames.zip")
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "bad_upload"
    assert "badnames.zip" in body["message"] and "UTF-8" in body["message"], body
    assert_names_no_server_path(server, r.text)


def test_labels_from_zip_folders_follow_the_label_rule(server):
    """A 5,000-character folder name, control characters (a terminal escape) and a leading space all became
    class labels before. Each photo in such a folder is now rejected with the reason; the good one lands."""
    good = png_bytes(Image.new("RGB", (64, 64), (30, 150, 50)))
    bad = {
        "x" * 5000: "characters",
        "ctl\x01\x1b[31mred": "control or invisible",
        " leading": "space",
    }
    members = {f"{label}/a.png": png_bytes(Image.new("RGB", (64, 64), (i * 40, 90, 40))) for i, label in enumerate(bad)}
    members["Apple___healthy/good.png"] = good
    r = upload(server, zip_of(members), "labels.zip", dataset="labels")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["added"] == 1 and body["classes"] == {"Apple___healthy": 1}, body
    reasons = " | ".join(x["reason"] for x in body["rejected"])
    for why in bad.values():
        assert why in reasons, reasons
    # Names are shown escaped, never as raw terminal escape codes.
    shown = [x["file"] for x in body["rejected"]] + [x["reason"] for x in body["rejected"]]
    assert not any("\x1b" in s or "\x01" in s for s in shown), shown
    assert any("\\x1b" in s for s in shown), shown
    datasets = httpx.get(f"{server.base}/v1/datasets", timeout=30).json()["datasets"]
    assert "labels" in [d["name"] for d in datasets]


def test_a_form_label_with_control_characters_is_refused(server):
    r = httpx.post(
        f"{server.base}/v1/uploads",
        files={"files": ("a.png", png_bytes(Image.new("RGB", (64, 64), (30, 150, 50))))},
        data={"label": "bad\x1b[2Jlabel", "dataset": "labels"},
        headers=ADMIN,
        timeout=60,
    )
    assert r.status_code == 422, r.text
    assert "control" in r.json()["message"]


def test_unsafe_zip_members_and_zip_bombs_are_refused_by_name(server):
    """What held: ../ and absolute member paths, a symlink member, a member that compresses 1000:1."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("../escape/a.png", leaf_jpeg())
        zf.writestr("/abs/b.png", leaf_jpeg())
        link = zipfile.ZipInfo("Apple___healthy/link.png")
        link.external_attr = (0o120777 << 16) | 0x20  # a symlink member pointing at /etc/passwd
        zf.writestr(link, "/etc/passwd")
        zf.writestr("Apple___healthy/bomb.png", bytes(20 * MB))
        zf.writestr("Apple___healthy/ok.jpg", leaf_jpeg(3))
    r = upload(server, buf.getvalue(), "evil.zip", dataset="evil")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["added"] == 1, body
    rejected = {x["file"]: x["reason"] for x in body["rejected"]}
    assert "unsafe path" in rejected["evil.zip:../escape/a.png"]
    assert "unsafe path" in rejected["evil.zip:/abs/b.png"]
    assert "zip bomb" in rejected["evil.zip:Apple___healthy/bomb.png"]
    assert "root:" not in r.text  # the symlink's target was never followed
    assert not (server.home.parent / "escape").exists()


# ---- D6: server paths in answers ----------------------------------------------------------------------------


def test_no_answer_names_where_the_server_keeps_things(server):
    """GET /v1/datasets showed the upload's path under the data home, /v1/models `seed:/…/models/starter`,
    and a broken upload's error its temp path. Every answer is read for the server's paths."""
    not_zip = upload(server, b"this is not a zip", "notzip.zip", dataset="paths")
    assert not_zip.status_code == 422
    assert "notzip.zip" in not_zip.json()["message"]
    good = upload(server, zip_of({"Apple___healthy/p.png": leaf_jpeg(5)}), "good.zip", dataset="paths")
    assert good.status_code == 201, good.text
    answers = [not_zip, good]
    for route in ("/v1/datasets", "/v1/models", "/v1/models/1", "/v1/datasets/paths/stats", "/v1/advice"):
        answers.append(httpx.get(f"{server.base}{route}", timeout=60))
    for route in ("/v1/uploads", "/v1/training-jobs"):
        answers.append(httpx.get(f"{server.base}{route}", headers=ADMIN, timeout=60))
    answers.append(httpx.post(f"{server.base}/v1/models/999/promote", headers=ADMIN, timeout=30))
    for label in ("Apple___healthy", "..%2F..%2Fetc%2Fpasswd", "No___such_label"):  # the advice of a label
        answers.append(httpx.get(f"{server.base}/v1/advice/{label}", timeout=30))
    for r in answers:
        assert r.status_code < 500, r.text
        assert_names_no_server_path(server, r.text)
    sources = [v["source"] for d in answers[2].json()["datasets"] for v in d["versions"]]
    assert any("good.zip" in s for s in sources), sources
    assert all(not s.startswith("/") for s in sources), sources
    assert answers[3].json()["models"][0]["source"] == "seed:model", answers[3].json()["models"][0]


# ---- D7: a client that hangs up ----------------------------------------------------------------------------


def test_a_client_that_hangs_up_is_not_a_server_error(server):
    """200 disconnects mid-body made 15,510 log lines and 200 counts of status 500. Now: 499, one line each."""
    host, port = server.base.removeprefix("http://").split(":")
    log_before = server.log.read_text(errors="replace")
    for route in ("/v1/predict", "/v1/predict/batch"):
        for _ in range(10):
            with socket.create_connection((host, int(port)), timeout=10) as s:
                s.sendall(
                    f"POST {route} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                    f"Content-Length: 1000000\r\n\r\n--b\r\nContent-Disposition: form-data; name=file; "
                    f'filename="a.jpg"\r\n\r\n'.encode()
                    + bytes(20_000)
                )
    time.sleep(1.0)
    new_log = server.log.read_text(errors="replace")[len(log_before) :]
    assert "Traceback" not in new_log and "unexpected error" not in new_log, new_log[-3000:]
    assert new_log.count("client disconnected") == 20, new_log[-3000:]
    metrics = httpx.get(f"{server.base}/metrics", timeout=30).text
    served = [line for line in metrics.splitlines() if line.startswith("leafdoc_http_requests_total{")]
    for route in ("/v1/predict", "/v1/predict/batch"):
        assert not any(f'route="{route}"' in line and 'status="500"' in line for line in served), served
        assert any(f'route="{route}"' in line and 'status="499"' in line for line in served), served


# ---- what held: tokens -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, params",
    [
        ({}, {}),
        ({"Authorization": "Bearer wrong"}, {}),
        ({"Authorization": "Bearer live-admin-toke"}, {}),  # a prefix of the right token
        ({"Authorization": "Bearer live-admin-token-and-more"}, {}),
        ({}, {"token": "live-admin-token"}),  # tokens in query strings are ignored (they end up in logs)
        ({}, {"access_token": "live-admin-token"}),
    ],
)
def test_admin_routes_refuse_anything_but_the_token_in_the_header(server, headers, params):
    r = httpx.get(f"{server.base}/v1/uploads", headers=headers, params=params, timeout=30)
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "unauthorized"
