"""leafdoc.api_client against a real `leafdoc serve`: what the web page and the desktop app rely on."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from PIL import Image
from tests.conftest import PLANTVILLAGE, TINY_CLASSES
from tests.live_server import free_port

from leafdoc.api_client import ApiError, LeafdocClient, zip_folder


@pytest.fixture
def client(live_server):
    with LeafdocClient(live_server.base, admin_token=live_server.token) as c:
        yield c


def leaf_bytes() -> bytes:
    return sorted((PLANTVILLAGE / TINY_CLASSES[0]).iterdir())[10].read_bytes()


def test_predict_explain_and_batch(client, tiny_model):
    """What the client hands back is the served model's answer on the photo: the two most likely labels
    with the probabilities the model gives them (ONNX Runtime here), the same in a batch, explained for the top one."""
    import numpy as np

    from leafdoc.inference.predictor import Predictor

    p = Predictor(tiny_model)
    probs = p.predict_arrays(p.preprocess(leaf_bytes())[None])["probabilities"][0]
    top2 = [(p.labels[i], float(probs[i])) for i in np.argsort(-probs)[:2]]
    a = client.predict(leaf_bytes(), "leaf.jpg", top_k=2)
    assert a["file"] == "leaf.jpg" and a["label"] == top2[0][0]
    assert [t["label"] for t in a["top_k"]] == [label for label, _ in top2]
    assert [t["probability"] for t in a["top_k"]] == pytest.approx([q for _, q in top2], abs=1e-5)
    e = client.explain(leaf_bytes(), "leaf.jpg")
    assert e["explained_label"] == a["label"] and Image.open(io.BytesIO(_b64(e["overlay_png"]))).format == "PNG"
    b = client.predict_batch([("a.jpg", leaf_bytes()), ("bad.jpg", b"not an image")])
    batched = b["results"][0]["prediction"]["top_k"][:2]
    assert [t["label"] for t in batched] == [t["label"] for t in a["top_k"]]
    assert [t["probability"] for t in batched] == pytest.approx([t["probability"] for t in a["top_k"]], abs=1e-5)
    assert b["results"][1]["error"]["error"] == "bad_image" and "bad.jpg" in b["results"][1]["error"]["message"]


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)


def test_bad_photo_is_a_readable_error(client):
    with pytest.raises(ApiError) as err:
        client.predict(b"\x89PNG but not really", "broken.png")
    assert err.value.status == 422 and "broken.png" in err.value.message


def test_datasets_stats_and_plots(client):
    [ds] = [d for d in client.datasets() if d["name"] == "tiny"]
    stats = client.dataset_stats("tiny", sample=20)
    assert set(stats["class_counts"]) == set(TINY_CLASSES)
    for kind in ("class_distribution", "sizes", "colour", "sharpness", "samples"):
        png = client.dataset_plot("tiny", kind, sample=20)
        img = Image.open(io.BytesIO(png))
        assert img.format == "PNG" and img.width > 200, kind
    with pytest.raises(ApiError) as err:
        client.dataset_plot("no-such-dataset", "sizes")
    assert err.value.status == 404
    assert ds["latest"] >= 1


def test_admin_token_checked(live_server):
    with LeafdocClient(live_server.base, admin_token="wrong") as c, pytest.raises(ApiError) as err:
        c.check_token()
    assert err.value.status == 401 and "wrong" in str(err.value)
    with LeafdocClient(live_server.base) as c, pytest.raises(ApiError) as err:
        c.jobs()
    assert "admin token" in err.value.message
    with LeafdocClient(live_server.base, admin_token=live_server.token) as c:
        c.check_token()  # no error


def test_upload_folder_with_progress(client, tmp_path):
    folder = tmp_path / "new"
    for cls in TINY_CLASSES[:2]:
        (folder / cls).mkdir(parents=True)
        for f in sorted((PLANTVILLAGE / cls).iterdir())[20:22]:
            (folder / cls / f.name).write_bytes(f.read_bytes())
    (folder / TINY_CLASSES[0] / "notes.txt").write_text("not a photo")
    seen = []
    up = client.upload(folder, dataset="client-upload", on_progress=lambda sent, total: seen.append((sent, total)))
    assert up["added"] == 4 and up["dataset"] == "client-upload"
    assert [r["file"].endswith("notes.txt") for r in up["rejected"]] == [True]
    assert seen and seen[-1][0] == seen[-1][1]
    assert {n for n in zipfile.ZipFile(io.BytesIO(zip_folder(folder))).namelist()} >= {f"{TINY_CLASSES[0]}/notes.txt"}


def test_server_down_is_a_readable_error():
    with LeafdocClient(f"http://127.0.0.1:{free_port()}") as c, pytest.raises(ApiError) as err:
        c.models()
    assert "Cannot reach the leafdoc server" in err.value.message and "leafdoc serve" in err.value.hint


def test_cancel_a_job(client, live_server):
    job = client.start_training(options={"epochs": 1, "batch_size": 8, "image_size": 32, "weights": "none"})
    answer = client.cancel_job(job["id"])
    assert answer["id"] == job["id"] and answer["cancel_requested"]
    assert answer["state"] in ("cancelled", "running")  # queued: at once; running: once its worker stopped it
    deadline = time.monotonic() + 60
    while client.job(job["id"])["state"] != "cancelled" and time.monotonic() < deadline:
        time.sleep(0.5)
    done = client.job(job["id"])
    assert done["state"] == "cancelled" and done["candidate_version"] is None and done["finished"]
    assert client.models()["serving_version"] == 1
    with pytest.raises(ApiError) as err:
        client.cancel_job(job["id"])
    assert err.value.status == 409 and err.value.code == "conflict" and "already been cancelled" in err.value.message
    with pytest.raises(ApiError) as err:
        client.cancel_job("no-such-job")
    assert err.value.status == 404
    with LeafdocClient(live_server.base, admin_token="wrong") as c, pytest.raises(ApiError) as err:
        c.cancel_job(job["id"])
    assert err.value.status == 401
