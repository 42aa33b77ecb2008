"""One typed answer (inference/answer.py): every diagnosis route declares and returns the `Answer` built by the
Predictor's one loop, the prediction log and the metrics read it as such, and `leafdoc predict --json` gives the
same fields for the same photo. A route that hands back a dict it built itself fails."""

from __future__ import annotations

import typing

import pytest
from fastapi.routing import APIRoute
from tests.conftest import make_leaf_folder
from tests.integration.service_support import Clients, service_settings

from leafdoc.data import predictions
from leafdoc.inference.answer import Answer, ExplainAnswer
from leafdoc.inference.predictor import Predictor
from leafdoc.service import serving
from leafdoc.service.schemas import BatchAnswer

DIAGNOSIS = {"/v1/predict": Answer, "/v1/predict/batch": BatchAnswer, "/v1/explain": ExplainAnswer}


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    folder = make_leaf_folder(tmp_path_factory.mktemp("photo"), per_class=1)
    return sorted(folder.rglob("*.jpg"))[0]


def test_every_diagnosis_route_declares_the_typed_answer_it_returns():
    from leafdoc.service.routes.predict import router

    routes = {r.path: r for r in router.routes if isinstance(r, APIRoute)}
    assert set(routes) == set(DIAGNOSIS)
    for path, model in DIAGNOSIS.items():
        route = routes[path]
        # The endpoint's own return type is the documented model: a handler typed `-> dict` is refused here.
        assert typing.get_type_hints(route.endpoint)["return"] is model, path
        assert route.response_model is model, path


def test_a_route_answers_with_the_predictors_answer_and_a_hand_built_dict_fails(
    tmp_path, tiny_model, photo, monkeypatch
):
    data = photo.read_bytes()
    own = Predictor(tiny_model).predict_files([photo], k=2)[0]
    with Clients() as clients:
        api = clients(service_settings(tmp_path / "home", tiny_model))
        r = api.post("/v1/predict?top_k=2", files={"file": (photo.name, data, "image/jpeg")})
        assert r.status_code == 200, r.text
        got = Answer.model_validate(r.json())
        # The same answer as the library's for this photo; the API adds only its id, version and the name sent.
        assert got.model_dump(exclude={"prediction_id", "model_version", "file"}) == own.model_dump(
            exclude={"prediction_id", "model_version", "file"}
        )
        assert got.prediction_id and got.model_version == 1 and got.file == photo.name
        # The prediction log recorded it from the typed answer (its top label, confidence and decision).
        log = api.app.state.leafdoc.prediction_log
        log.flush()
        row = predictions.get(log.catalog, got.prediction_id)
        assert (row.label, row.confidence, row.abstained) == (got.top_k[0].label, got.confidence, got.abstained)
        assert row.photo_name == photo.name and row.model_version == 1

        real = serving.predict_bytes
        monkeypatch.setattr(serving, "predict_bytes", lambda *a, **k: real(*a, **k).model_dump(mode="json"))
        r = api.post("/v1/predict", files={"file": (photo.name, data, "image/jpeg")})
        assert r.status_code == 500, r.text  # the same fields, but not an Answer: the route cannot record it
