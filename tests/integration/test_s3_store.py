"""LEAFDOC_STORE_URL=s3://… against a real S3-compatible HTTP server (moto's server mode on loopback):
the blob store itself, then the service storing uploads and model files in the bucket."""

from __future__ import annotations

import boto3
import pytest
from tests.backends import S3_ENV, create_bucket, s3_server
from tests.integration.service_support import ADMIN, Clients, class_zip, leaf_photos, service_settings

from leafdoc.core.errors import NotFound
from leafdoc.data.store import S3Store, open_store
from leafdoc.imaging.photos import sha256_bytes


@pytest.fixture(scope="module")
def s3_endpoint():
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3_endpoint, monkeypatch, request):
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    return create_bucket(s3_endpoint, f"leafdoc-{request.node.name.replace('_', '-')[:40].lower()}")


def test_s3_store_is_content_addressed(s3_endpoint, bucket):
    store = open_store(f"s3://{bucket}/blobs", s3_endpoint)
    assert isinstance(store, S3Store)
    data = b"a leaf, as bytes"
    sha = store.put(data)
    assert sha == sha256_bytes(data)
    assert store.exists(sha) and store.get(sha) == data
    assert store.put(data) == sha  # idempotent
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [f"blobs/{sha[:2]}/{sha}"]
    missing = "0" * 64
    assert not store.exists(missing)
    with pytest.raises(NotFound):
        store.get(missing)


def test_service_keeps_uploads_and_models_in_the_bucket(tmp_path, s3_endpoint, bucket, tiny_model, leaf_folder):
    settings = service_settings(
        tmp_path / "home", tiny_model, store_url=f"s3://{bucket}/leafdoc", s3_endpoint_url=s3_endpoint
    )
    clients = Clients()
    try:
        client = clients(settings)
        r = client.post(
            "/v1/uploads", files={"file": ("leaves.zip", class_zip(leaf_folder), "application/zip")}, headers=ADMIN
        )
        assert r.status_code == 201, r.text
        assert r.json()["added"] == len(leaf_photos(leaf_folder))
        store = open_store(settings.store_location, s3_endpoint)
        for photo in leaf_photos(leaf_folder):
            assert store.exists(sha256_bytes(photo.read_bytes())), photo
        # The served model's files were registered as blobs too, so another machine can rebuild them.
        assert store.exists(sha256_bytes((tiny_model / "model.onnx").read_bytes()))
        r = client.post("/v1/predict", files={"file": ("leaf.jpg", leaf_photos(leaf_folder)[0].read_bytes())})
        assert r.status_code == 200 and r.json()["top_k"], r.text
    finally:
        clients.close()
