"""A retraining job makes the copy the service is set to serve (LEAFDOC_ONNX_VARIANT=int8): the registered
version holds it, card.json records it (sha256, agreement with model.onnx on the validation photos), the job and
the version say that agreement before anyone promotes, and once promoted the API runs that file. A copy that
cannot be made leaves the job succeeding, with a warning, and the version served with its model.onnx."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pytest
from service_support import ADMIN, Clients, job_run_here, service_settings
from tests.conftest import LEARNS, fresh_photos

from leafdoc.data.catalog import Catalog
from leafdoc.data.store import open_store
from leafdoc.inference.predictor import Predictor
from leafdoc.model_versions import Registry
from leafdoc.runtime.cpuflags import int8_problem
from leafdoc.ui.text import job_summary

pytestmark = pytest.mark.integration

# The README's tolerances for an int8 copy against its model.onnx ("Faster serving: int8"), the same as
# tests/integration/test_quantize.py's: probabilities at most 0.4 apart on any photo, 0.05 on average.
MAX_PROB_DIFF = 0.4
MAX_MEAN_PROB_DIFF = 0.05


def unseen_photos() -> list:
    """Real photos of the tiny dataset's classes that it does not hold (conftest's `fresh_photos`, 4 per class)."""
    return [f for f, _ in fresh_photos(n=4)]


@pytest.fixture(autouse=True)
def int8_on_any_cpu(monkeypatch):
    """The service serves the int8 copy whatever the CPU; where its numbers depend on VNNI, the test says so."""
    monkeypatch.setenv("LEAFDOC_INT8_ANY_CPU", "1")


@pytest.fixture
def phases(monkeypatch) -> list[str]:
    """The phases the job writes into its row (what the page and the desktop app show), in order."""
    from leafdoc.service import training

    seen, real = [], training.update_job

    def recording(catalog, job_id, attempt=None, **values):
        if (values.get("progress") or {}).get("phase"):
            seen.append(values["progress"]["phase"])
        return real(catalog, job_id, attempt, **values)

    monkeypatch.setattr(training, "update_job", recording)
    return seen


def run_a_job(settings, leaf_folder) -> tuple[dict, Registry, Catalog, object]:
    """A real retraining job, run in this process as a worker's training process runs it; the API beside it."""
    clients = Clients()
    api = clients(settings)
    # A job that learns (the tiny model's configuration): its copy must keep peaked, differing answers, which a
    # near-uniform model would keep whatever the quantiser did.
    done, catalog = job_run_here(api, settings, leaf_folder, LEARNS)
    return done, Registry(settings, catalog, open_store(settings.store_location)), catalog, (api, clients)


def served_file(api, version: int) -> str:
    """Promote `version` through the API; the file the answering worker's Predictor loaded (and /readyz says)."""
    r = api.post(f"/v1/models/{version}/promote", headers=ADMIN, json={"reason": "test"})
    assert r.status_code == 200, r.text
    ready = api.get("/readyz").json()
    loaded = api.app.state.leafdoc.holder.current()
    assert loaded.version == ready["model_version"] == version
    assert ready["model_file"] == loaded.predictor.model_file.name
    return loaded.predictor.model_file.name


def test_a_retraining_job_makes_the_int8_copy_the_service_then_serves(tmp_path, tiny_model, leaf_folder, phases):
    # promote_margin -1: the rule keeps the candidate back (needs +1 accuracy), so an admin promotes it by hand
    settings = service_settings(tmp_path / "home", tiny_model, onnx_variant="int8", promote_margin=-1.0)
    job, registry, catalog, (api, clients) = run_a_job(settings, leaf_folder)
    try:
        # The job says what it does, after training and before the comparison that decides promotion.
        making = phases.index("making the int8 copy to serve")
        assert phases.index("comparing with the serving model") == making + 1 and "training" in phases[:making]
        # Version 1 (the seeded tiny model) has no int8 copy: it is served with its model.onnx, and says so.
        assert api.get("/readyz").json()["model_file"] == "model.onnx"
        v = job["candidate_version"]
        row = registry.get(v)
        entry = row.card["onnx_variants"]["int8"]
        folder = registry.local_dir(v)
        int8_bytes = (folder / "model.int8.onnx").read_bytes()
        # Stored with the version's files, the bytes card.json names, made from this version's model.onnx.
        assert "model.int8.onnx" in row.files and entry["file"] == "model.int8.onnx"
        assert hashlib.sha256(int8_bytes).hexdigest() == entry["sha256"]
        assert entry["source_sha256"] == hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
        assert entry["calibration"] == {"split": "train", "photos": row.card["dataset"]["split"]["train"]}

        # The job and the version say how the copy agrees with model.onnx on the validation photos, before
        # anyone promotes: the same figures as the card's check.
        copy = job["promotion"]["serving_copy"]
        assert copy["made"] and copy["file"] == "model.int8.onnx" and "warning" not in copy
        assert (
            copy["validation_vs_fp32"]
            == entry["validation_vs_fp32"]
            == row.promotion["serving_copy"]["validation_vs_fp32"]
        )
        assert copy["validation_vs_fp32"]["n"] == row.card["dataset"]["split"]["val"]
        check = copy["validation_vs_fp32"]
        assert f"{check['top1_agreement']:.1%} of {check['n']} validation photos" in job_summary(job)
        assert job["promotion"]["promote"] is False and job["promotion"]["promoted"] is False  # the rule, as ever

        # On real photos the job never saw, the copy answers within the README's tolerance of model.onnx: on a CPU
        # with VNNI, the only CPUs leafdoc serves it on unless told otherwise (leafdoc/cpuflags.py).
        fp32, int8 = Predictor(folder), Predictor(folder, variant="int8", any_cpu=True)
        if int8_problem() is None:
            x = np.stack([fp32.preprocess(p) for p in unseen_photos()])
            diff = np.abs(fp32.predict_arrays(x)["probabilities"] - int8.predict_arrays(x)["probabilities"])
            assert diff.max() <= MAX_PROB_DIFF and diff.mean() <= MAX_MEAN_PROB_DIFF, (diff.max(), diff.mean())

        # Promoted, the API runs the int8 file: its answers are that file's numbers, not model.onnx's.
        assert served_file(api, v) == "model.int8.onnx"
        photo = unseen_photos()[0]
        answer = api.post("/v1/predict?top_k=3", files={"file": (photo.name, photo.read_bytes())}).json()
        assert answer["model_version"] == v
        got = {t["label"]: t["probability"] for t in answer["top_k"]}

        def probs(p: Predictor) -> dict:
            return dict(zip(p.labels, p.predict_arrays(p.preprocess(photo)[None])["probabilities"][0], strict=True))

        expected_int8, expected_fp32 = probs(int8), probs(fp32)
        assert all(abs(got[k] - expected_int8[k]) < 2e-6 for k in got), (got, expected_int8)
        assert any(abs(got[k] - expected_fp32[k]) > 1e-5 for k in got), (got, expected_fp32)

        # A replica on another machine (its own data home; the catalog and the store shared) rebuilds the version
        # from the store, int8 copy included, and serves that file.
        shared = {"database_url": settings.catalog_url, "store_url": settings.store_location}
        replica = clients(service_settings(tmp_path / "replica", tiny_model, onnx_variant="int8", **shared))
        assert replica.get("/readyz").json()["model_file"] == "model.int8.onnx"
        there = replica.app.state.leafdoc.holder.current().predictor.model_file
        assert there.is_relative_to(tmp_path / "replica") and there.read_bytes() == int8_bytes
    finally:
        clients.close()
        catalog.dispose()


def test_a_job_whose_copy_fails_still_succeeds_with_a_warning_and_is_served_with_model_onnx(
    tmp_path, tiny_model, leaf_folder, monkeypatch, caplog
):
    import onnxruntime.quantization

    def broken(*args, **kwargs):
        raise RuntimeError("calibration went wrong on purpose")

    monkeypatch.setattr(onnxruntime.quantization, "quantize_static", broken)  # inside quantize.quantize_int8
    settings = service_settings(tmp_path / "home", tiny_model, onnx_variant="int8", promote_margin=-1.0)
    job, registry, catalog, (api, clients) = run_a_job(settings, leaf_folder)
    try:
        v = job["candidate_version"]
        copy = job["promotion"]["serving_copy"]
        assert copy["made"] is False and copy["file"] is None
        assert "calibration went wrong on purpose" in copy["warning"] and "model.onnx" in copy["warning"]
        assert "calibration went wrong on purpose" in job_summary(job)  # the admin sees it in the job's detail
        row = registry.get(v)
        assert "model.int8.onnx" not in row.files and "onnx_variants" not in row.card
        assert not (registry.local_dir(v) / "model.int8.onnx").exists()
        with caplog.at_level(logging.WARNING, logger="leafdoc.service.serving"):
            assert served_file(api, v) == "model.onnx"
        assert f"model version {v}: serving its model.onnx, not the int8 copy" in caplog.text
    finally:
        clients.close()
        catalog.dispose()
