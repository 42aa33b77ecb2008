"""Helpers shared by the service tests (test_service*.py, test_model_versions.py): settings for a tmp data
home serving a copy of the tiny model, photos and zips to send, the admin header."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from leafdoc.core.settings import Settings
from leafdoc.service.app import create_app

TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def service_settings(home: Path, model_dir: Path | None, **overrides) -> Settings:
    values = dict(
        home=home,
        model_dir=model_dir,
        admin_token=TOKEN,
        model_check_seconds=0.0,  # follow the serving pointer at every request
        worker_poll_seconds=0.1,
        default_dataset="tiny",
        # Never shed: an in-process TestClient's event loop shares its process (and GIL) with the test, and the cores
        # with the other test process, so a stall of a second is no flood (a 422 check was once answered 503 `busy`,
        # "queue 1.1 s"). The tests of shedding set it (test_load_shedding, test_overload).
        shed_after_seconds=0.0,
    )
    values.update(overrides)
    s = Settings(**values)
    s.ensure_home()
    return s


class Clients:
    """TestClients on new apps (each one like an API worker process), all closed by close()."""

    def __init__(self) -> None:
        self.opened: list[TestClient] = []

    def __call__(self, settings: Settings) -> TestClient:
        c = TestClient(create_app(settings), raise_server_exceptions=False)
        c.__enter__()
        self.opened.append(c)
        return c

    def close(self) -> None:
        for c in self.opened:
            c.__exit__(None, None, None)

    def __enter__(self) -> Clients:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def job_run_here(api: TestClient, settings: Settings, folder: Path, options: dict):
    """A real retraining job on `folder` (ingested as `tiny`), submitted through `api` and run in this process as a
    worker's training process runs it. Returns the finished job's record (asserted succeeded) and the catalog
    (the caller disposes of it)."""
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.ingest import ingest
    from leafdoc.data.store import open_store
    from leafdoc.service import training
    from leafdoc.service.jobs import claim

    catalog = Catalog(settings.catalog_url)
    ingest(folder, catalog, open_store(settings.store_location), "tiny")
    job = api.post("/v1/training-jobs", headers=ADMIN, json={"options": options}).json()
    assert claim(catalog, job["id"], "here:1") == 1
    assert training.run_job(settings, job["id"], 1) == 0
    done = api.get(f"/v1/training-jobs/{job['id']}").json()
    assert done["state"] == "succeeded", done["error"]
    return done, catalog


def assert_error(r, status: int, code: str) -> dict:
    """An error answer: this status, this code, a message and what to do (every error of the API has both)."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code, body
    assert body["message"] and body.get("hint"), body
    return body


def model_copy(src: Path, dest: Path, *, min_confidence: float | None = None, note: str | None = None) -> Path:
    """A copy of a model folder, optionally with another abstention threshold in its card."""
    shutil.copytree(src, dest)
    card = json.loads((dest / "card.json").read_text())
    if min_confidence is not None:
        card["abstain"] = {**(card.get("abstain") or {}), "min_confidence": min_confidence}
    if note is not None:
        card["note"] = note
    (dest / "card.json").write_text(json.dumps(card))
    return dest


def leaf_photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def photo_bytes(seed: int = 0, size=(64, 48), fmt: str = "JPEG") -> bytes:
    """A noisy green photo (not a leaf, but a usable image)."""
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array([50, 150, 60]) + rng.integers(-40, 40, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format=fmt)
    return buf.getvalue()


def flat_photo(colour=(128, 128, 128), size=(64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def class_zip(folder: Path, top: str = "leaves", extra: dict[str, bytes] | None = None) -> bytes:
    """A zip of a class-folder dataset (inside one top folder, as zipping the folder makes it)."""
    members = {f"{top}/{p.parent.name}/{p.name}": p.read_bytes() for p in leaf_photos(folder)}
    members.update(extra or {})
    return zip_of(members)


@contextlib.contextmanager
def worker_process(home: Path, env: dict[str, str], log: Path):
    """`leafdoc worker` as its own process (as a pod or a machine runs it), its output in `log`; killed at the end
    if still running."""
    log.parent.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("leafdoc")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(exe), "worker"],
            env={**os.environ, **env, "LEAFDOC_HOME": str(home)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
