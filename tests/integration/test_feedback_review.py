"""Feedback, review and monitoring through the API, on SQLite and on a real PostgreSQL: every answer has an
unguessable id; a user's thumbs down with "it is actually ..." is recorded (and replaced when repeated); an
admin sees the most informative answers first and labels one, whose kept photo becomes a new dataset version;
without LEAFDOC_KEEP_PHOTOS no photo is kept and nothing can enter a dataset; feedback is rate-limited per
client; /v1/monitoring counts what was answered, for the admin token only (unless LEAFDOC_MONITORING_OPEN); no
answer names a server path."""

from __future__ import annotations

import secrets
import time

import pytest
from fastapi.testclient import TestClient
from service_support import ADMIN, TOKEN, Clients, assert_error, leaf_photos, model_copy, service_settings
from sqlalchemy import select

from leafdoc.data import predictions
from leafdoc.data.catalog import Catalog, DatasetItemRow, utcnow
from leafdoc.imaging.photos import sha256_bytes


@pytest.fixture(scope="module")
def answering(tiny_model, tmp_path_factory):
    return model_copy(tiny_model, tmp_path_factory.mktemp("m") / "answers", min_confidence=0.0)


@pytest.fixture
def make_client(tmp_path, answering, database_url):
    clients = Clients()
    yield lambda **kw: clients(service_settings(tmp_path / "home", answering, database_url=database_url, **kw))
    clients.close()


def predict(client, photo: bytes, name="leaf.jpg", **form) -> dict:
    r = client.post("/v1/predict", files={"file": (name, photo, "image/jpeg")}, data=form or None)
    assert r.status_code == 200, r.text
    return r.json()


def feedback(client, pid: str, **body):
    return client.post(f"/v1/predictions/{pid}/feedback", json=body)


def test_thumbs_down_reviewed_by_an_admin_joins_a_new_dataset_version(make_client, leaf_folder, tmp_path):
    client = make_client(keep_photos=True)
    photos = leaf_photos(leaf_folder)
    sent = {p.name: p.read_bytes() for p in photos[:3]}
    # the second one with the crop the grower gave (crop first): the review queue shows it
    answers = [
        predict(client, data, name, **({"crop": "apple"} if i == 1 else {}))
        for i, (name, data) in enumerate(sent.items())
    ]
    ids = [a["prediction_id"] for a in answers]
    assert len(set(ids)) == 3 and all(len(i) >= 22 for i in ids)

    wrong = answers[1]
    labels = client.get(f"/v1/models/{wrong['model_version']}").json()["labels"]
    other = next(x for x in labels if x != wrong["top_k"][0]["label"])
    r = feedback(client, wrong["prediction_id"], correct=True)
    assert r.status_code == 200, r.text
    r = feedback(client, wrong["prediction_id"], correct=False, label=other)  # replaces the first
    assert r.status_code == 200 and r.json()["correct"] is False and r.json()["label"] == other
    assert feedback(client, answers[0]["prediction_id"], correct=True).status_code == 200

    assert_error(client.get("/v1/review"), 401, "unauthorized")
    queue = client.get("/v1/review", headers=ADMIN).json()
    assert queue["keep_photos"] is True
    first = queue["items"][0]
    assert first["prediction_id"] == wrong["prediction_id"]  # disagreement first
    assert first["feedback_correct"] is False and first["feedback_label"] == other and first["has_photo"]
    assert first["crop_given"] == "apple" and queue["items"][1]["crop_given"] is None
    assert [i["prediction_id"] for i in queue["items"]][1] == answers[0]["prediction_id"]
    assert answers[2]["prediction_id"] not in {i["prediction_id"] for i in queue["items"]}  # no feedback

    photo = client.get(first["photo_url"], headers=ADMIN)
    assert photo.status_code == 200 and photo.content == sent[wrong["file"]]
    assert_error(client.get(first["photo_url"]), 401, "unauthorized")

    assert not client.get("/v1/datasets", headers=ADMIN).json()["datasets"]  # nothing enters without a label
    assert_error(client.post(f"/v1/review/{wrong['prediction_id']}", json={"label": other}), 401, "unauthorized")
    r = client.post(f"/v1/review/{wrong['prediction_id']}", json={"label": other}, headers=ADMIN)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["prediction"]["reviewed_label"] == other
    assert done["upload"]["version"] == 1 and done["upload"]["classes"] == {other: 1}
    [ds] = client.get("/v1/datasets", headers=ADMIN).json()["datasets"]
    assert ds["name"] == "tiny" and ds["versions"][0]["n_images"] == 1
    with client.app.state.leafdoc.catalog.Session() as s:  # the photo itself, by content, with the admin's label
        [(sha, label)] = s.execute(select(DatasetItemRow.sha256, DatasetItemRow.label)).all()
    assert sha == sha256_bytes(sent[wrong["file"]]) and label == other
    reviewed = {i["prediction_id"] for i in client.get("/v1/review", headers=ADMIN).json()["items"]}
    assert wrong["prediction_id"] not in reviewed  # reviewed answers leave the queue

    for body in (r.text, str(queue), client.get("/v1/monitoring", headers=ADMIN).text):
        assert str(tmp_path) not in body


def test_without_keep_photos_no_photo_is_kept_and_nothing_can_join_a_dataset(make_client, leaf_folder):
    client = make_client()
    data = leaf_photos(leaf_folder)[0].read_bytes()
    a = predict(client, data)
    assert feedback(client, a["prediction_id"], correct=False).status_code == 200
    [item] = client.get("/v1/review", headers=ADMIN).json()["items"]
    assert item["has_photo"] is False and item["photo_url"] is None
    body = assert_error(
        client.post(f"/v1/review/{a['prediction_id']}", json={"label": "x"}, headers=ADMIN), 409, "conflict"
    )
    assert "LEAFDOC_KEEP_PHOTOS" in body["hint"] and "cannot join a dataset" in body["message"]
    photo = client.get(f"/v1/review/{a['prediction_id']}/photo", headers=ADMIN)
    assert "none to show" in assert_error(photo, 409, "conflict")["message"]  # not the label route's words
    state = client.app.state.leafdoc
    assert not state.store.exists(sha256_bytes(data))


def test_unknown_ids_and_labels_are_refused(make_client, leaf_folder):
    client = make_client()
    a = predict(client, leaf_photos(leaf_folder)[0].read_bytes())
    assert_error(feedback(client, secrets.token_urlsafe(16), correct=True), 404, "not_found")
    pid = a["prediction_id"]  # one character changed (not the last: it carries only 2 of the 128 bits)
    assert_error(feedback(client, ("B" if pid[0] != "B" else "C") + pid[1:], correct=True), 404, "not_found")
    body = assert_error(
        feedback(client, a["prediction_id"], correct=False, label="Banana___nope"), 422, "invalid_request"
    )
    assert "Banana___nope" in body["message"]
    for lax in ("maybe", "yes", 1):  # "yes" and 1 were taken for true: a client's slip read as a verdict
        assert_error(feedback(client, a["prediction_id"], correct=lax), 422, "invalid_request")
    assert_error(
        client.post(f"/v1/review/{secrets.token_urlsafe(16)}", json={"label": "x"}, headers=ADMIN), 404, "not_found"
    )


def test_feedback_is_rate_limited_per_client(make_client, leaf_folder):
    client = make_client(feedback_per_minute=3)
    pid = predict(client, leaf_photos(leaf_folder)[0].read_bytes())["prediction_id"]
    for _ in range(3):
        assert feedback(client, pid, correct=True).status_code == 200
    r = feedback(client, pid, correct=True)
    body = assert_error(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) >= 1 and "a minute" in body["message"]
    other = TestClient(client.app, client=("203.0.113.7", 4000))  # another address is not affected
    assert feedback(other, pid, correct=False).status_code == 200


def test_review_queue_puts_disagreement_then_low_confidence_first(make_client):
    client = make_client()
    catalog: Catalog = client.app.state.leafdoc.catalog
    now = utcnow()

    def row(pid, conf, abstained=False, correct=None):
        return {
            "id": pid, "created": now, "hour": predictions.hour_of(now), "model_version": 1, "label": "a",
            "confidence": conf, "abstained": abstained, "reason": "unsure" if abstained else None,
            "ood_score": None, "score_bin": None, "photo_sha256": None, "photo_name": None,
            "feedback_correct": correct,
        }  # fmt: skip

    predictions.insert_many(
        catalog,
        [
            row("agreed-low", 0.4, correct=True),
            row("abstained", 0.3, abstained=True),
            row("wrong-sure", 0.99, correct=False),
            row("wrong-unsure", 0.5, correct=False),
            row("plain", 0.2),  # no feedback, answered: not in the queue
        ],
    )
    order = [i["prediction_id"] for i in client.get("/v1/review", headers=ADMIN).json()["items"]]
    assert order == ["wrong-unsure", "wrong-sure", "abstained", "agreed-low"]

    assert_error(client.post("/v1/review/abstained/dismiss"), 401, "unauthorized")
    r = client.post("/v1/review/abstained/dismiss", headers=ADMIN)  # e.g. a photo of a rose
    assert r.status_code == 200 and r.json()["reviewed"] is True and r.json()["reviewed_label"] is None
    order = [i["prediction_id"] for i in client.get("/v1/review", headers=ADMIN).json()["items"]]
    assert order == ["wrong-unsure", "wrong-sure", "agreed-low"]


def test_monitoring_counts_answers_abstentions_and_feedback(make_client, leaf_folder):
    client = make_client()
    photos = [p.read_bytes() for p in leaf_photos(leaf_folder)[:4]]
    answers = [predict(client, d) for d in photos]
    r = client.post("/v1/predict", files={"file": ("flat.png", b"not an image", "image/png")})
    assert r.status_code == 422  # not an answer: not counted
    feedback(client, answers[0]["prediction_id"], correct=True)
    feedback(client, answers[1]["prediction_id"], correct=False)
    client.app.state.leafdoc.prediction_log.flush()
    client.app.state.leafdoc.monitor.forget()
    m = client.get("/v1/monitoring", headers=ADMIN).json()
    [hour] = m["buckets"]
    assert hour["answers"] == 4 and hour["feedback"] == 2 and hour["agreed"] == 1 and hour["agreement"] == 0.5
    given = {}
    for a in answers:
        if not a["abstained"]:
            given[a["label"]] = given.get(a["label"], 0) + 1
    assert hour["labels"] == given
    assert m["drift"]["checked"] is False  # 4 answers: too few to tell
    day = client.get("/v1/monitoring", params={"period": "day"}, headers=ADMIN).json()
    assert day["buckets"][0]["answers"] == 4 and day["buckets"][0]["start"].endswith("T00:00Z")


def test_monitoring_needs_the_admin_token_unless_the_operator_opened_it(make_client, leaf_folder):
    """The figures tell a business's volumes and the diseases its growers see (security round 3): a visitor without
    the token gets a 401 saying what to send, and how the operator could open them; a wrong token is refused and
    counted like any admin route's; the token gets the figures; LEAFDOC_MONITORING_OPEN=true shows them to anyone."""
    client = make_client(admin_failures_per_minute=2)
    predict(client, leaf_photos(leaf_folder)[0].read_bytes())
    client.app.state.leafdoc.prediction_log.flush()
    body = assert_error(client.get("/v1/monitoring"), 401, "unauthorized")
    assert "admin token" in body["message"] and "Bearer" in body["hint"] and "LEAFDOC_MONITORING_OPEN" in body["hint"]
    assert "buckets" not in body and "labels" not in str(body)
    assert_error(
        client.get("/v1/monitoring", params={"period": "day"}, headers={"X-Admin-Token": "guess"}), 401, "unauthorized"
    )
    assert_error(client.get("/v1/monitoring", headers={"Authorization": "Bearer guess2"}), 401, "unauthorized")
    # Wrong tokens are counted per client as for every admin route: the third in the minute is a 429, right token too.
    assert_error(client.get("/v1/monitoring", headers=ADMIN), 429, "rate_limited")

    client = make_client(admin_failures_per_minute=2)  # a fresh server (and bucket) on the same catalog
    [hour] = client.get("/v1/monitoring", headers=ADMIN).json()["buckets"]
    assert hour["answers"] == 1 and sum(hour["labels"].values()) == 1
    assert client.get("/v1/monitoring", headers={"X-Admin-Token": TOKEN}).status_code == 200
    assert "/v1/monitoring" in client.get("/openapi.json").json()["paths"]
    said = client.get("/openapi.json").json()["paths"]["/v1/monitoring"]["get"]
    assert {"401", "403"} <= set(said["responses"]) and said["security"]  # the docs say it needs the token

    closed = make_client(admin_token=None)  # no admin token at all: shown to no one, and the hint says the two ways
    body = assert_error(closed.get("/v1/monitoring"), 403, "admin_disabled")
    assert "LEAFDOC_ADMIN_TOKEN" in body["hint"] and "LEAFDOC_MONITORING_OPEN" in body["hint"]

    opened = make_client(monitoring_open=True)
    [hour] = opened.get("/v1/monitoring").json()["buckets"]
    assert hour["answers"] == 1
    assert opened.get("/v1/monitoring", headers={"Authorization": "Bearer anything"}).status_code == 200
    assert_error(opened.get("/v1/review"), 401, "unauthorized")  # opening the figures opens nothing else
    assert make_client(admin_token=None, monitoring_open=True).get("/v1/monitoring").status_code == 200


def test_monitoring_shows_feedback_at_once_though_its_figures_are_cached(make_client, leaf_folder):
    """/v1/monitoring is cached for 30 s per worker; feedback given to that worker is counted on its next
    call (the desktop app's Monitor tab, opened just after a thumbs-down, said 0 feedback)."""
    client = make_client()
    answer = predict(client, leaf_photos(leaf_folder)[0].read_bytes())
    client.app.state.leafdoc.prediction_log.flush()
    [hour] = client.get("/v1/monitoring", headers=ADMIN).json()["buckets"]  # now cached
    assert hour["answers"] == 1 and hour["feedback"] == 0
    feedback(client, answer["prediction_id"], correct=False)
    [hour] = client.get("/v1/monitoring", headers=ADMIN).json()["buckets"]
    assert hour["answers"] == 1 and hour["feedback"] == 1 and hour["agreed"] == 0


def test_records_wait_in_a_bounded_buffer_and_are_written_in_batches(make_client, leaf_folder):
    client = make_client(prediction_buffer=2, prediction_flush_seconds=60.0)
    state = client.app.state.leafdoc
    data = leaf_photos(leaf_folder)[0].read_bytes()
    ids = [predict(client, data)["prediction_id"] for _ in range(3)]
    assert state.prediction_log.dropped == 1  # the third found the buffer full: answered, not recorded
    assert "leafdoc_prediction_records_dropped_total 1.0" in client.get("/metrics").text
    time.sleep(0.1)
    written = state.prediction_log.flush()
    assert written == 2
    assert [predictions.get(state.catalog, i).id for i in ids[:2]] == ids[:2]
    assert_error(feedback(client, ids[2], correct=True), 404, "not_found")
