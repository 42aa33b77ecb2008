"""The API in the grower's language: `?lang=` or Accept-Language on /v1/predict, /v1/predict/batch, /v1/explain and
/v1/advice/{label}, on the starter model and real photos (examples/): the words in Spanish, French or Hindi,
translated advice marked, an unknown language refused, English by default."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_support import Clients, assert_error, service_settings
from test_advice_api import EXAMPLES, serving_copy
from tests.conftest import PLANTVILLAGE

# The starter's test split: early blight (99%), late blight second (1.1%): a caution.
EARLY_BLIGHT = PLANTVILLAGE / "Tomato___Early_blight" / "early_blight_764.jpg"
HEALTHY_POTATO = EXAMPLES / "potato_healthy.jpg"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("languages-api")
    clients = Clients()
    yield clients(service_settings(root / "home", serving_copy(root / "starter")))
    clients.close()


def post(client, photo: Path, route: str = "/v1/predict", **kw):
    return client.post(route, files={"file": (photo.name, photo.read_bytes(), "image/jpeg")}, **kw)


def test_spanish_by_query_parameter_with_the_advice_marked_unreviewed(api):
    r = post(api, EARLY_BLIGHT, params={"lang": "es"})
    assert r.status_code == 200, r.text
    assert r.headers["content-language"] == "es" and "accept-language" in r.headers["vary"].lower()
    a = r.json()
    assert a["label"] == "Tomato___Early_blight" and a["language"] == "es"
    assert a["top_k"][0]["name"] == "Tomate — Tizón temprano"
    assert a["advice"]["title"] == "Tomate — Tizón temprano" and a["advice"]["summary"].startswith("Tizón temprano,")
    assert a["advice"]["translation"] == "unreviewed" and "advice" in a["unreviewed"]
    assert a["unreviewed_note"] == "traducido, aún sin revisar"
    assert a["caution"]["message"].startswith("Compruebe que no sea Tomate — Tizón tardío")


def test_hindi_by_accept_language_and_english_without_either(api):
    a = post(api, HEALTHY_POTATO, headers={"Accept-Language": "hi-IN,hi;q=0.9,en;q=0.5"}).json()
    assert a["language"] == "hi" and a["label"] == "Potato___healthy"
    assert a["advice"]["title"] == "आलू — स्वस्थ" and a["advice"]["summary"].startswith("इस पत्ती पर कोई बीमारी नहीं मिली")
    assert a["unreviewed_note"] == "अनुवादित, अभी समीक्षा नहीं हुई"
    # ?lang= wins over the header; no preference leafdoc speaks: English, nothing marked
    assert (
        post(api, HEALTHY_POTATO, params={"lang": "fr"}, headers={"Accept-Language": "hi"}).json()["language"] == "fr"
    )
    english = post(api, HEALTHY_POTATO, headers={"Accept-Language": "de-DE,de;q=0.9"}).json()
    assert english["language"] == "en" and english["advice"]["summary"].startswith("No disease found on this leaf.")
    assert english["unreviewed"] == [] and english["advice"]["translation"] is None


def test_an_unknown_language_is_refused_naming_the_ones_spoken(api):
    r = post(api, HEALTHY_POTATO, params={"lang": "de"})
    assert_error(r, 422, "unknown_language")
    assert "en, es, fr, hi" in r.json()["message"]


def test_batch_and_explain_take_the_language_too(api):
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in (EARLY_BLIGHT, HEALTHY_POTATO)]
    batch = api.post("/v1/predict/batch", files=files, params={"lang": "fr"}).json()
    assert [r["prediction"]["advice"]["title"] for r in batch["results"]] == [
        "Tomate — Alternariose",
        "Pomme de terre — Saine",
    ]
    explained = post(api, EARLY_BLIGHT, "/v1/explain", params={"lang": "hi"}).json()
    assert explained["advice"]["title"] == "टमाटर — अगेती झुलसा" and explained["overlay_png"]


def test_the_full_advice_entry_is_translated_whole(api):
    r = api.get("/v1/advice/Tomato___Late_blight", params={"lang": "fr"})
    assert r.status_code == 200 and r.headers["content-language"] == "fr"
    e = r.json()
    assert e["title"] == "Tomate — Mildiou" and e["language"] == "fr" and e["translation"] == "unreviewed"
    assert e["urgent"].startswith("Il peut tuer une culture en quelques jours")
    assert e["confused_with"][0]["how_to_tell"].startswith("Les taches d'alternariose sont sèches")
    # the whole entry: symptoms, spread, each action, when to call, what the starter model measured
    assert e["symptoms"].startswith("Grandes plages irrégulières") and e["spread"].startswith("Les spores")
    assert (
        e["actions"]["chemical"][0].startswith("Fongicides de contact") and "(FRAC M05)" in e["actions"]["chemical"][0]
    )
    assert e["when_to_call"].startswith("Appelez")
    assert e["confused_with"][0]["measured"].startswith("Sur 156 photos de Tomate — Mildiou que le modèle de départ")
    assert e["untranslated"] == []
    assert api.get("/v1/advice/Tomato___Late_blight").json().get("untranslated") in (None, [])
    other = api.get("/v1/advice/Apple___Apple_scab", params={"lang": "hi"}).json()
    assert other["title"] == "सेब — सेब की पपड़ी (ऐपल स्कैब)" and other["untranslated"] == []
    assert other["actions"]["chemical"][0].startswith("हरी नोक") and "(FRAC M04)" in other["actions"]["chemical"][0]
