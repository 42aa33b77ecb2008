"""A model is loaded and answers one made-up photo before it serves (service/serving.py, warm_up): a process's first
prediction pays for what is set up lazily (image plugins, OpenCV's and ONNX Runtime's first calls), 200-300 ms
against 15-20 ms for the next ones, and without the warm-up that was the first visitor's wait after every start,
worker restart or promotion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "models" / "starter"
PHOTO = REPO / "examples" / "tomato_early_blight.jpg"

# A fresh process, as an API worker is: the model is loaded by create_app (the worker's start), then the first
# request's photo and five more are timed through the serving function the route calls.
CHILD = """
import json, statistics, sys, time
from leafdoc.service import serving
from leafdoc.service.app import create_app

holder = create_app().state.leafdoc.holder
assert holder.loaded is not None, holder.last_error
data = open(sys.argv[1], "rb").read()
times = []
for _ in range(6):
    start = time.perf_counter()
    out = serving.predict_bytes(holder, data, "photo.jpg", 3)
    times.append((time.perf_counter() - start) * 1000)
print(json.dumps({"first": times[0], "later": statistics.median(times[1:]), "label": out.label}))
"""


def run_child(tmp_path: Path, model: Path, warm_up: bool) -> dict:
    tmp_path.mkdir()
    env = {**os.environ, "LEAFDOC_HOME": str(tmp_path / "home"), "LEAFDOC_MODEL_DIR": str(model), "LEAFDOC_UI": "0"}
    code = CHILD if warm_up else "from leafdoc.service import serving\nserving.warm_up = lambda loaded: None\n" + CHILD
    out = subprocess.run(
        [sys.executable, "-c", code, str(PHOTO)], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_fresh_worker_answers_its_first_photo_about_as_fast_as_the_next(tmp_path):
    got = run_child(tmp_path / "warm", STARTER, warm_up=True)
    assert got["label"] == "Tomato___Early_blight", got
    assert got["first"] < 2 * got["later"] + 40, got
    # Without the warm-up the same first answer is the slow one: the check above can tell the two apart.
    cold = run_child(tmp_path / "cold", STARTER, warm_up=False)
    assert cold["first"] > 2 * cold["later"] + 40, cold


def test_the_warm_up_runs_before_the_swap_and_a_model_it_fails_on_is_served_anyway(tmp_path, tiny_model, monkeypatch):
    from leafdoc.core.settings import Settings
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.store import open_store
    from leafdoc.inference.predictor import Predictor
    from leafdoc.model_versions import Registry
    from leafdoc.service import serving

    s = Settings(home=tmp_path / "home", model_check_seconds=0)
    s.ensure_home()
    catalog = Catalog(s.catalog_url)
    seen: list = []
    real = Predictor.predict_arrays

    def predict_arrays(self, x, outputs):
        seen.append(holder.loaded)  # what was serving while this prediction ran
        return real(self, x, outputs)

    monkeypatch.setattr(Predictor, "predict_arrays", predict_arrays)
    try:
        registry = Registry(s, catalog, open_store(s.store_location))
        registry.register(tiny_model, source="test", serve="promote")
        holder = serving.ModelHolder(s, registry)
        first = holder.current()
        assert seen == [None]  # one prediction, made before the model was swapped in
        assert serving.predict_bytes(holder, PHOTO.read_bytes(), "a.jpg", 1).model_version == first.version

        def broken(self, data, name):
            raise RuntimeError("boom")

        monkeypatch.setattr(Predictor, "load", broken)
        registry.register(tiny_model, source="test", serve="promote")
        assert holder.refresh().version == first.version + 1  # the failed warm-up was logged, not fatal
    finally:
        catalog.dispose()
