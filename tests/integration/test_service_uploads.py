"""POST /v1/uploads as an admin sees it: a zip of class folders or labelled files becomes a new
dataset version; bad files are rejected alone with their reason; concurrent uploads both land whole;
records survive a restart; retrain=true queues a job."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from service_support import ADMIN, Clients, assert_error, class_zip, leaf_photos, photo_bytes, service_settings, zip_of

ZIP = "application/zip"


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def make_client(home, tiny_model):
    clients = Clients()
    yield lambda **overrides: clients(service_settings(home, tiny_model, **overrides))
    clients.close()


@pytest.fixture
def client(make_client):
    return make_client()


def upload(client, *, files=None, content=None, params=None, data=None, headers=None):
    h = {**ADMIN, **(headers or {})}
    return client.post("/v1/uploads", files=files, content=content, params=params, data=data, headers=h)


def test_zip_with_a_corrupt_image_and_an_unsafe_path_rejects_those_alone(client, leaf_folder):
    n_good = len(leaf_photos(leaf_folder))
    data = class_zip(
        leaf_folder,
        extra={
            "leaves/Apple___healthy/corrupt.jpg": b"\xff\xd8\xff\xe0 this is not a jpeg",
            "../escape.jpg": photo_bytes(3),
        },
    )
    r = upload(client, files={"file": ("leaves.zip", data, ZIP)})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["dataset"] == "tiny" and body["version"] == 1 and body["created_version"] is True
    assert body["added"] == n_good and body["n_classes"] == 3
    rejected = {x["file"]: x["reason"] for x in body["rejected"]}
    assert set(rejected) == {"leaves.zip:leaves/Apple___healthy/corrupt.jpg", "leaves.zip:../escape.jpg"}
    assert "unsafe" in rejected["leaves.zip:../escape.jpg"]
    assert "corrupt" in rejected["leaves.zip:leaves/Apple___healthy/corrupt.jpg"]
    assert body["training_job"] is None and body["retrain"] is None
    [ds] = client.get("/v1/datasets").json()["datasets"]
    assert ds["versions"][0]["n_images"] == n_good
    # What training will read: every good photo, byte for byte, under its class folder's label.
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.datasets import get_version, version_items
    from leafdoc.data.store import open_store
    from leafdoc.imaging.photos import sha256_bytes

    settings = client.app.state.leafdoc.settings
    catalog, store = Catalog(settings.catalog_url), open_store(settings.store_location)
    items = {sha: label for sha, label, _ in version_items(catalog, get_version(catalog, "tiny", 1))}
    catalog.dispose()
    assert items == {sha256_bytes(p.read_bytes()): p.parent.name for p in leaf_photos(leaf_folder)}
    assert all(sha256_bytes(store.get(sha)) == sha for sha in items)

    again = upload(client, files={"file": ("leaves.zip", data, ZIP)}).json()  # the same photos again
    assert again["created_version"] is False and again["added"] == 0 and len(again["duplicates"]) == n_good


def test_a_zip_one_level_above_its_class_folders_is_refused_and_registers_nothing(client, leaf_folder):
    """A zip of a folder of splits (data/{train,test}/<classes>) became two classes, "train" and "test"; a zip of the
    folder above the dataset's (outer/mydata/<classes>) one class, "mydata". Refused as a folder is, naming the zip
    as sent and which folder to zip instead."""
    settings = client.app.state.leafdoc.settings
    stored = sorted(Path(settings.store_location).rglob("*"))  # the serving model's files, before the uploads
    photos = leaf_photos(leaf_folder)
    splits = zip_of(
        {f"data/{'train' if i % 2 else 'test'}/{p.parent.name}/{p.name}": p.read_bytes() for i, p in enumerate(photos)}
    )
    body = assert_error(upload(client, files={"file": ("leaves.zip", splits, ZIP)}), 422, "bad_upload")
    assert body["message"].startswith("leaves.zip: data/train/, data/test/ are dataset splits, not classes"), body
    assert ", ".join(sorted({p.parent.name for p in photos})) in body["message"], body  # the classes inside them
    assert "make a zip of the folder data/train/" in body["hint"] and "upload that zip" in body["hint"], body
    above = zip_of({f"outer/mydata/{p.parent.name}/{p.name}": p.read_bytes() for p in photos})
    body = assert_error(upload(client, files={"file": ("outer.zip", above, ZIP)}), 422, "bad_upload")
    assert "outer.zip: all its photos are in sub-folders of one folder, outer/mydata/" in body["message"], body
    assert "zip the folder outer/mydata/ itself" in body["hint"], body
    assert str(settings.home) not in str(body)
    # nothing half-ingested: no dataset, no upload record, no photo in the store, no spooled file left
    assert client.get("/v1/datasets").json()["datasets"] == []
    assert client.get("/v1/uploads", headers=ADMIN).json() == {"uploads": []}
    assert sorted(Path(settings.store_location).rglob("*")) == stored
    assert not any((settings.home / "uploads").iterdir())


def test_files_with_a_label_and_raw_zip_bodies(client, leaf_folder):
    photos = leaf_photos(leaf_folder / "Apple___healthy")[:3]
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
    files.append(("files", ("readme.txt", b"hello", "text/plain")))
    r = upload(client, files=files, data={"label": "Apple___healthy", "dataset": "garden"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["dataset"] == "garden" and body["added"] == 3 and body["classes"] == {"Apple___healthy": 3}
    assert [x["file"].rsplit("/", 1)[-1] for x in body["rejected"]] == ["readme.txt"]

    flat = zip_of({p.name: p.read_bytes() for p in leaf_photos(leaf_folder / "Apple___Apple_scab")[:3]})
    r = upload(
        client, content=flat, params={"dataset": "garden", "label": "Apple___Apple_scab"}, headers={"content-type": ZIP}
    )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2 and r.json()["classes"] == {"Apple___Apple_scab": 3, "Apple___healthy": 3}


def test_upload_error_answers(make_client, leaf_folder):
    c = make_client(max_request_bytes=200_000)
    assert_error(upload(c), 422, "bad_upload")  # nothing sent
    body = assert_error(upload(c, files={"files": ("a.jpg", photo_bytes(0))}), 422, "bad_upload")
    assert "label" in body["message"]
    assert_error(upload(c, files={"file": ("broken.zip", b"PK\x03\x04 nope", ZIP)}), 422, "bad_upload")
    assert_error(upload(c, files={"file": ("a.zip", zip_of({}), ZIP)}), 422, "bad_upload")  # empty zip
    two = [("file", ("a.zip", zip_of({"x/a.jpg": photo_bytes(0)}), ZIP)), ("file", ("b.jpg", photo_bytes(1)))]
    assert_error(upload(c, files=two), 422, "bad_upload")
    bad_name = {"file": ("a.zip", zip_of({"x/a.jpg": photo_bytes(0)}), ZIP)}
    assert_error(upload(c, files=bad_name, data={"dataset": "../etc"}), 422, "bad_upload")
    assert_error(upload(c, files=bad_name, data={"dataset": "x", "label": "a/b"}), 422, "bad_upload")
    # a yes/no field that is neither (it was taken for no, and no job started, without a word)
    body = assert_error(upload(c, files=bad_name, data={"dataset": "x", "retrain": "maybe"}), 422, "invalid_request")
    assert "retrain" in body["message"] and "'maybe'" in body["message"] and "retrain=true" in body["hint"]
    huge = {"file": ("big.zip", b"\0" * 300_000, ZIP)}
    body = assert_error(upload(c, files=huge), 413, "request_too_large")
    assert "200,000" in body["message"]
    assert_error(c.get("/v1/uploads/nope", headers=ADMIN), 404, "not_found")
    assert c.get("/v1/uploads", headers=ADMIN).json() == {"uploads": []}
    assert not any((c.app.state.leafdoc.settings.home / "uploads").iterdir())  # spooled files cleaned up


def test_retrain_true_queues_a_job_only_when_photos_were_added(client, leaf_folder):
    data = class_zip(leaf_folder)
    r = upload(client, files={"file": ("leaves.zip", data, ZIP)}, data={"retrain": "true"})
    assert r.status_code == 201, r.text
    job = r.json()["training_job"]
    assert job["state"] == "queued" and job["upload_id"] == r.json()["upload_id"] and job["dataset_version"] == 1
    assert "queued" in r.json()["retrain"]
    listing = client.get("/v1/training-jobs", headers=ADMIN).json()
    assert listing["queue_length"] == 1 and listing["jobs"][0]["id"] == job["id"]
    assert client.app.state.leafdoc.queue.length() == 1  # in the Huey queue too
    again = upload(client, files={"file": ("leaves.zip", data, ZIP)}, params={"retrain": "true"}).json()
    assert again["training_job"] is None and "nothing new" in again["retrain"]
    assert client.get("/v1/training-jobs", headers=ADMIN).json()["queue_length"] == 1


def test_two_uploads_at_once_both_land_whole(client, leaf_folder):
    classes = sorted(p.name for p in leaf_folder.iterdir())
    zips = [
        zip_of({f"{c}/{p.name}": p.read_bytes() for c in classes for p in leaf_photos(leaf_folder / c)[half::2]})
        for half in (0, 1)
    ]
    results = [None, None]

    def send(i: int) -> None:
        results[i] = upload(client, files={"file": (f"part{i}.zip", zips[i], ZIP)})

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [201, 201], [r.text for r in results]
    assert sorted(r.json()["version"] for r in results) == [1, 2]
    [ds] = client.get("/v1/datasets").json()["datasets"]
    assert ds["latest"] == 2
    assert ds["versions"][-1]["n_images"] == len(leaf_photos(leaf_folder))  # the latest holds both halves


def test_a_restart_loses_no_accepted_upload(make_client, leaf_folder):
    first = make_client()
    r = upload(first, files={"file": ("leaves.zip", class_zip(leaf_folder), ZIP)}, data={"retrain": "1"})
    accepted = r.json()
    first.__exit__(None, None, None)
    second = make_client()  # a new server process on the same data home
    again = second.get(f"/v1/uploads/{accepted['upload_id']}", headers=ADMIN)
    assert again.status_code == 200
    assert again.json() == accepted
    assert [u["upload_id"] for u in second.get("/v1/uploads", headers=ADMIN).json()["uploads"]] == [
        accepted["upload_id"]
    ]
    assert second.get(f"/v1/training-jobs/{accepted['training_job']['id']}").json()["state"] == "queued"
    assert second.app.state.leafdoc.queue.waiting_job_ids() == {accepted["training_job"]["id"]}


def test_an_upload_names_the_photos_leafdoc_would_refuse_to_diagnose(client, leaf_folder):
    """A black-and-white photo in a lab's upload is kept for training, and the answer (and the page's summary of it)
    names it with its problem: nothing said so before."""
    import io as _io

    from PIL import Image

    from leafdoc.ui.text import upload_summary

    grey = _io.BytesIO()
    Image.open(leaf_photos(leaf_folder)[0]).convert("L").resize((300, 280)).save(grey, "JPEG")
    data = class_zip(leaf_folder, extra={"leaves/Apple___healthy/grey.jpg": grey.getvalue()})
    body = upload(client, files={"file": ("leaves.zip", data, ZIP)}).json()
    assert body["added"] == len(leaf_photos(leaf_folder)) + 1, body
    assert body["poor_photos"] == [{"file": "leaves.zip:leaves/Apple___healthy/grey.jpg", "problems": ["no_colour"]}]
    said = upload_summary(body)
    assert "1 photo(s) added that leafdoc would refuse to diagnose" in said
    assert "- leaves\\.zip\\:leaves/Apple\\_\\_\\_healthy/grey\\.jpg: black and white" in said  # escaped, no link
