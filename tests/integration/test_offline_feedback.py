"""The offline page's feedback queue (src/leafdoc/offline/static/feedback.js) sending to a real `leafdoc serve`: Node
runs the page's own `flush` with a queue held in memory (the page's is IndexedDB) against the starter's server. What
a grower said must reach the server as feedback on the server's answer to the same photo; what the server refuses
(an unknown label, a photo over its size limit) leaves the queue with the server's reason; what cannot go now (the
feedback rate limit, the server gone) stays queued, and a photo already sent is not sent again. Skipped without node
or the shared photos."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.conftest import PLANTVILLAGE, REPO
from tests.live_server import ADMIN, start_server
from tests.unit.node_support import needs_node, run_node

pytestmark = needs_node

STARTER = REPO / "models" / "starter"

# The queue in memory, as the page's IndexedDB queue behaves (add/all/put/remove/count); its entries come in and go
# out as JSON, each photo named by its path and read into a Blob.
SCRIPT = r"""
import { readFileSync } from "node:fs";
const f = await import(process.argv[1]);
let text = "";
for await (const chunk of process.stdin) text += chunk;
const { base, entries, cases } = JSON.parse(text);
const photo = (path) => new Blob([readFileSync(path)], { type: "image/jpeg" });
const rows = new Map(entries.map((e) => [e.id, { ...e, photo: photo(e.path) }]));
const queue = {
  add: async (e) => { const id = Math.max(0, ...rows.keys()) + 1; rows.set(id, { ...e, id }); return id; },
  all: async () => [...rows.values()].sort((a, b) => a.id - b.id).map((e) => ({ ...e })),
  put: async (e) => { rows.set(e.id, { ...e }); },
  remove: async (id) => { rows.delete(id); },
  count: async () => rows.size,
};
const out = base ? await f.flush(queue, base) : null;
const left = [...rows.values()].map(({ photo, ...kept }) => kept);
const rules = cases.map(([said, server]) => f.feedbackFor(said, server));
console.log(JSON.stringify({ out, left, rules }));
"""


def flush(base: str | None, entries: list[dict], cases: list | None = None) -> dict:
    return run_node(SCRIPT, "feedback.js", {"base": base, "entries": entries, "cases": cases or []})


def test_feedback_rules_say_only_what_the_grower_said_about_the_servers_answer():
    X, Y = "Tomato___Early_blight", "Tomato___Late_blight"
    cases = [
        # "yes" to X: right where the server said X too; else the grower's X as what it is
        ({"correct": True, "label": None, "answered": X}, {"label": X, "abstained": False}),
        ({"correct": True, "label": None, "answered": X}, {"label": Y, "abstained": False}),
        ({"correct": True, "label": None, "answered": X}, {"label": X, "abstained": True}),
        # "no, it is Y"
        ({"correct": False, "label": Y, "answered": X}, {"label": Y, "abstained": False}),
        ({"correct": False, "label": Y, "answered": X}, {"label": X, "abstained": False}),
        ({"correct": False, "label": Y, "answered": None}, {"label": Y, "abstained": True}),
        # a bare "no": wrong where the server gave the same answer; about another answer, nothing
        ({"correct": False, "label": None, "answered": X}, {"label": X, "abstained": False}),
        ({"correct": False, "label": None, "answered": X}, {"label": Y, "abstained": False}),
        ({"correct": False, "label": None, "answered": X}, {"label": X, "abstained": True}),
    ]
    rules = flush(None, [], cases)["rules"]
    assert rules == [
        {"correct": True, "label": None},
        {"correct": False, "label": X},
        {"correct": False, "label": X},
        {"correct": True, "label": None},
        {"correct": False, "label": Y},
        {"correct": False, "label": Y},
        {"correct": False, "label": None},
        None,
        None,
    ]


def review(base: str) -> dict[str, dict]:
    items = httpx.get(f"{base}/v1/review", params={"limit": 500}, headers=ADMIN, timeout=30).raise_for_status()
    return {i["prediction_id"]: i for i in items.json()["items"]}


def predictions_made(base: str) -> float:
    """The photos the server has answered or refused (its Prometheus counters)."""
    text = httpx.get(f"{base}/metrics", timeout=30).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(("leafdoc_predictions_total", "leafdoc_abstentions_total"))
    )


def test_the_queue_reaches_a_real_server_and_keeps_what_cannot_go_yet(tmp_path):
    if not PLANTVILLAGE.is_dir():
        pytest.skip(f"shared datasets not found at {PLANTVILLAGE}")
    blight = sorted((PLANTVILLAGE / "Tomato___Early_blight").glob("*.jpg"))[:3]
    scab = sorted((PLANTVILLAGE / "Apple___Apple_scab").glob("*.jpg"))[:1]
    big = tmp_path / "big.jpg"  # over the server's size limit (LEAFDOC_MAX_IMAGE_BYTES below)
    big.write_bytes(blight[0].read_bytes() + b"\0" * 400_000)
    server = start_server(
        tmp_path / "serve", STARTER, LEAFDOC_FEEDBACK_PER_MINUTE="3", LEAFDOC_MAX_IMAGE_BYTES="300000"
    )
    try:
        # what the page answered (its decision is the server's: tests/e2e/test_offline_page.py), asked once here
        answered = httpx.post(
            f"{server.base}/v1/predict", files={"file": (blight[0].name, blight[0].read_bytes(), "image/jpeg")}
        ).json()
        assert not answered["abstained"], answered
        page_label = answered["label"]

        def entry(i: int, path: Path, said: dict, crop: str | None = None) -> dict:
            return {"id": i, "path": str(path), "name": path.name, "crop": crop, "lang": "en", "said": said}

        entries = [
            entry(1, blight[0], {"correct": True, "label": None, "answered": page_label}),
            entry(
                2, scab[0], {"correct": False, "label": "Apple___Black_rot", "answered": "Apple___Apple_scab"}, "Apple"
            ),
            entry(3, blight[1], {"correct": False, "label": "Banana___Sigatoka", "answered": page_label}),
            entry(4, big, {"correct": True, "label": None, "answered": page_label}),
            # the fourth feedback of the minute: over the limit of 3, so it waits, its photo already sent
            entry(5, blight[2], {"correct": False, "label": "Tomato___Late_blight", "answered": page_label}, "Tomato"),
        ]
        before = predictions_made(server.base)
        first = flush(server.base, entries)
        out, left = first["out"], first["left"]
        done = {r["id"]: r for r in out["results"]}
        assert sorted(done) == [1, 2, 3, 4], out
        # 1: "yes" recorded as right on the server's answer, which was the page's
        assert done[1]["ok"] and done[1]["feedback"] == {"correct": True, "label": None}
        # 2: "no, it is black rot" recorded with that label
        assert done[2]["ok"] and done[2]["feedback"] == {"correct": False, "label": "Apple___Black_rot"}
        # 3 and 4: refused by the server, taken off the queue with its reason (not tried again)
        assert not done[3]["ok"] and "is not one of the labels" in done[3]["error"], done[3]
        assert not done[4]["ok"] and "300000" in done[4]["error"].replace(",", ""), done[4]
        # 5: the rate limit stops the flush; the entry stays, with the server's answer to its photo kept
        assert out["stopped"] and out["retryAfter"] and out["retryAfter"] > 0, out
        assert [e["id"] for e in left] == [5] and left[0]["answer"]["prediction_id"], left
        records = review(server.base)
        assert records[done[1]["answer"]["prediction_id"]]["feedback_correct"] is True
        two = records[done[2]["answer"]["prediction_id"]]
        assert two["feedback_correct"] is False and two["feedback_label"] == "Apple___Black_rot"
        assert two["crop_given"] == "apple", two  # the crop the grower named went with the photo (as recorded)
        # the photo answered, the label refused: no feedback on its record (in the review queue only if it abstained)
        assert (records.get(done[3]["answer"]["prediction_id"]) or {}).get("feedback_correct") is None
        assert predictions_made(server.base) - before == 4  # photos 1, 2, 3, 5 (4 refused before any answer)
        # tried again while still limited: the photo is not sent a second time
        again = flush(server.base, left)
        assert again["out"]["stopped"] and [e["id"] for e in again["left"]] == [5]
        assert predictions_made(server.base) - before == 4
    finally:
        server.stop()
    # the server gone: nothing sent, nothing lost
    gone = flush(server.base, left)
    assert gone["out"]["stopped"] and gone["out"]["results"] == [] and gone["left"] == left, gone
