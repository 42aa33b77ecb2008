"""What an operator sees when a backing service is misconfigured or away: a catalog URL that cannot be opened, a
bucket that does not exist, an S3 endpoint written without its scheme. Each is a plain message naming the setting to
check (the CLI: `error:` and `what to do:`, exit 1; the API: /readyz's checks and a 503), never a traceback, never a
password."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from tests.backends import S3_ENV, create_bucket, s3_server
from tests.integration.service_support import ADMIN, Clients, class_zip, service_settings
from tests.live_server import free_port

from leafdoc.core.errors import ConfigError, ServerFault
from leafdoc.data.catalog import make_engine
from leafdoc.data.store import open_store
from leafdoc.service.errors import SERVER_HINT


def leafdoc(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "LEAFDOC_HOME": str(tmp_path / "home"), "COLUMNS": "400", **env}
    return subprocess.run(
        [sys.executable, "-m", "leafdoc.cli.main", *args], env=full, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("command", [["models", "list"], ["worker", "--burst"]])
def test_a_database_that_cannot_be_reached_is_named_without_its_password(tmp_path, command):
    port = free_port()  # nothing listens there
    proc = leafdoc(tmp_path, *command, LEAFDOC_DATABASE_URL=f"postgresql://leafdoc:s3cret-pw@127.0.0.1:{port}/leafdoc")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Traceback" not in out and "s3cret-pw" not in out, out
    assert f"error: the catalog at postgresql://leafdoc:***@127.0.0.1:{port}/leafdoc cannot be opened" in out, out
    assert "Connection refused" in out, out
    assert "what to do: Check LEAFDOC_DATABASE_URL" in out, out


def test_a_database_url_that_is_not_one_is_named(tmp_path):
    proc = leafdoc(tmp_path, "models", "list", LEAFDOC_DATABASE_URL="leafdoc-db:5432")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out, out
    assert "error: LEAFDOC_DATABASE_URL='leafdoc-db:5432' is not a database URL leafdoc can open" in out, out
    assert "postgresql://user:password@host:5432/database" in out, out


def test_postgres_urls_as_managed_services_write_them_are_accepted():
    engine = make_engine("postgres://leafdoc:pw@db.example:5432/leafdoc")  # Heroku, Render, Fly... hand these out
    assert engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
    assert engine.url.host == "db.example" and engine.url.database == "leafdoc"


@pytest.fixture(scope="module")
def s3_endpoint():
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_keys(monkeypatch):
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)


def test_a_missing_bucket_is_a_server_fault_naming_the_settings(s3_endpoint, s3_keys):
    store = open_store("s3://no-such-bucket/store", s3_endpoint)
    for call in (lambda: store.put(b"a leaf"), lambda: store.get("0" * 64), lambda: store.write_named("ckpt", b"x")):
        with pytest.raises(ServerFault) as caught:
            call()
        assert "the store's bucket 'no-such-bucket' cannot be" in caught.value.message
        assert "NoSuchBucket" in caught.value.message
        assert "LEAFDOC_STORE_URL (s3://no-such-bucket/store: the bucket must exist" in caught.value.hint
        assert f"LEAFDOC_S3_ENDPOINT_URL ({s3_endpoint})" in caught.value.hint


def test_an_s3_endpoint_without_its_scheme_is_named(s3_keys):
    with pytest.raises(ConfigError) as caught:
        open_store("s3://leafdoc/store", "minio:9000")
    assert caught.value.message.startswith("LEAFDOC_S3_ENDPOINT_URL='minio:9000' is not an endpoint URL")
    assert "http://minio:9000" in caught.value.hint


def test_a_replica_whose_bucket_is_missing_says_so_in_readyz_and_answers_503(
    tmp_path, s3_endpoint, s3_keys, tiny_model, leaf_folder
):
    """One replica seeds the registry into the bucket; a second, on the same catalog but with LEAFDOC_STORE_URL naming
    a bucket that does not exist, cannot fetch the serving model: /readyz says why (it was a 500 `internal`), and
    an upload is a 503 server fault that names the bucket (it was a 500), without the server's addresses."""
    catalog = f"sqlite:///{tmp_path / 'shared-catalog.sqlite'}"
    good = create_bucket(s3_endpoint, "leafdoc-good")
    with Clients() as clients:
        first = clients(
            service_settings(
                tmp_path / "one",
                tiny_model,
                database_url=catalog,
                store_url=f"s3://{good}/store",
                s3_endpoint_url=s3_endpoint,
            )
        )
        assert first.get("/readyz").json()["model_version"] == 1
        second = clients(
            service_settings(
                tmp_path / "two",
                None,
                database_url=catalog,
                store_url="s3://leafdoc-typo/store",
                s3_endpoint_url=s3_endpoint,
            )
        )
        r = second.get("/readyz")
        assert r.status_code == 503, r.text
        model = r.json()["checks"]["model"]
        assert "model version 1 cannot be loaded: the store's bucket 'leafdoc-typo' cannot be read" in model, model
        assert "NoSuchBucket" in model and s3_endpoint not in r.text
        assert r.json()["checks"]["catalog"] == "ok"

        r = second.post(
            "/v1/uploads", files={"file": ("l.zip", class_zip(leaf_folder), "application/zip")}, headers=ADMIN
        )
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "server_fault" and r.json()["hint"] == SERVER_HINT
        assert "the store's bucket 'leafdoc-typo' cannot be written" in r.json()["message"]
        assert s3_endpoint not in r.text
