"""The offline page's words (src/leafdoc/offline/static/words.js), run in Node on the texts model.json carries
(offline/texts.py), against the server's: every kind of refusal, in every language, must read as the API's `message`
does (abstain.decide's words, with how to tell the look-alikes apart). Skipped without node."""

from __future__ import annotations

import numpy as np
from PIL import Image
from tests.conftest import REPO
from tests.unit.node_support import needs_node, run_node

from leafdoc.advice import shipped_knowledge
from leafdoc.core.i18n import LANGUAGES, Rendering, msg
from leafdoc.imaging.quality import check_photo
from leafdoc.inference.abstain import UNKNOWN_LEAF, Decision, decide
from leafdoc.inference.answer import refusal_message
from leafdoc.offline.texts import all_texts

pytestmark = needs_node

SCRIPT = r"""
const w = await import(process.argv[1]);
let text = "";
for await (const chunk of process.stdin) text += chunk;
const { texts, cases, wanted } = JSON.parse(text);
console.log(JSON.stringify({
  said: cases.map((c) => w.refusal(texts[c.lang], c.decision)),
  preferred: wanted.map((list) => w.preferred(Object.keys(texts), list)),
}));
"""


def probs_for(labels: list[str], shares: dict[str, float]) -> np.ndarray:
    p = np.full(len(labels), (1 - sum(shares.values())) / (len(labels) - len(shares)))
    for label, share in shares.items():
        p[labels.index(label)] = share
    return p


def test_every_refusal_reads_as_the_servers_in_every_language():
    from leafdoc.inference.predictor import Predictor

    starter = Predictor(REPO / "models" / "starter")
    labels, card, knowledge = starter.labels, starter.card, shipped_knowledge()
    texts = all_texts(labels, knowledge, card.field)
    far = float(card.field["threshold"]) + 10  # the unlike-training check refuses the photo
    dark_and_small = check_photo(Image.new("RGB", (40, 30), (6, 8, 5)), starter.size)
    assert [p.code for p in dark_and_small] == ["too_small", "too_dark"]
    decisions = [
        (decide(probs_for(labels, {}), labels, card, dark_and_small), None),
        (decide(probs_for(labels, {"Tomato___healthy": 0.9}), labels, card, field_score=far, field_like=False), None),
        # a field photo whose top answer is a crop known from lab photos only: that crop's own words
        (
            decide(probs_for(labels, {"Apple___Apple_scab": 0.9}), labels, card, field_score=far, field_like=True),
            "Apple",
        ),
        # "not sure" between look-alikes, in either order, two and three of them
        (decide(probs_for(labels, {"Tomato___Early_blight": 0.5, "Tomato___Late_blight": 0.45}), labels, card), None),
        (decide(probs_for(labels, {"Tomato___Late_blight": 0.5, "Tomato___Early_blight": 0.45}), labels, card), None),
        (
            decide(
                probs_for(
                    labels,
                    {
                        "Corn_(maize)___Cercospora_leaf_spot Gray_leaf_spot": 0.4,
                        "Corn_(maize)___Northern_Leaf_Blight": 0.35,
                        "Corn_(maize)___Common_rust_": 0.2,
                    },
                ),
                labels,
                card,
            ),
            None,
        ),
    ]
    # crop first, a crop known by one label (orange): an apple leaf said to be orange is not called orange
    single = decide(probs_for(labels, {"Apple___Apple_scab": 0.9}), labels, card, crop="Orange")
    decisions.append((single, "Orange"))
    # a lab's model's other-leaves check (the card's `other_leaves`): the refusal decide() makes when it fires
    decisions.append((Decision.refuse("unknown_leaf", msg(UNKNOWN_LEAF), 0.5), None))
    # crop first, a crop the model all but rules out: a tomato late blight leaf said to be bell pepper
    mismatch = decide(probs_for(labels, {"Tomato___Late_blight": 0.999}), labels, card, crop="Pepper,_bell")
    decisions.append((mismatch, "Pepper,_bell"))
    # a healthy leaf among the candidates, of two crops (the review of session 71): "what this is", and naming the
    # crop narrows the answer
    healthy = decide(probs_for(labels, {"Tomato___Late_blight": 0.5, "Strawberry___healthy": 0.45}), labels, card)
    assert healthy.message.startswith("Not sure what this is.") and "if you know which crop" in healthy.message
    decisions.append((healthy, None))
    assert [d.reason for d, _ in decisions[:6]] == [
        "poor_photo",
        "not_a_leaf",
        "unlike_training",
        "unsure",
        "unsure",
        "unsure",
    ]
    assert len(decisions[5][0].candidates) == 3
    cases, expected = [], []
    for lang in LANGUAGES:
        for d, crop in decisions:
            # Decision.problems holds the codes; the page's problems carry their figures too (prepare.js)
            shown = dark_and_small if d.reason == "poor_photo" else []
            problems = [{"code": p.code, "params": dict(p.words.params)} for p in shown]
            decision = {"reason": d.reason, "candidates": list(d.candidates), "problems": problems, "crop": crop}
            if d is single:
                decision["single"] = True
            if d is mismatch:
                decision["seen"] = "Tomato___Late_blight"
            cases.append({"lang": lang, "decision": decision})
            expected.append(refusal_message(d, knowledge, Rendering(lang, knowledge.resolve)))
    wanted = [["fr-CA", "en"], ["de-DE", "es"], ["de"], ["hi-IN"], []]
    out = run_node(SCRIPT, "words.js", {"texts": texts, "cases": cases, "wanted": wanted})
    for case, said, server in zip(cases, out["said"], expected, strict=True):
        assert said == server, (case, said, server)
    # the words are each language's own (a check that cannot pass on English copied four times)
    for reason in ("not_a_leaf", "unknown_leaf"):
        said_for = {said for said, case in zip(out["said"], cases, strict=True) if case["decision"]["reason"] == reason}
        assert len(said_for) == 4, reason
    assert "another crop" in expected[7] and "plain background" not in expected[7]  # not advice on the photo
    # look-alike advice, in English and not
    assert "To tell" in expected[3] and "To tell" not in expected[len(decisions) + 3]
    assert mismatch.abstained and "Late blight" in expected[8] and "bell pepper" in expected[8]  # what it looks like
    assert out["preferred"] == ["fr", "es", "en", "hi", "en"]
    healthy_said = [
        said
        for said, case in zip(out["said"], cases, strict=True)
        if "Strawberry___healthy" in case["decision"]["candidates"]
    ]
    assert [said.split(".")[0].split("।")[0] for said in healthy_said] == [
        "Not sure what this is", "No es seguro qué es", "Pas sûr de ce que c'est", "पक्का नहीं कि यह क्या है"
    ]  # fmt: skip


CAUTION = r"""
const w = await import(process.argv[1]);
let text = "";
for await (const chunk of process.stdin) text += chunk;
const { texts, rule, cases } = JSON.parse(text);
console.log(JSON.stringify(cases.map((c) => w.caution(texts[c.lang], rule, c.label, c.top))));
"""


def test_an_answer_warns_of_its_urgent_look_alike_as_the_server_does():
    from leafdoc.advice.lookalikes import urgent_lookalike_words
    from leafdoc.core.i18n import render
    from leafdoc.modelfolder import read_labels
    from leafdoc.offline.texts import URGENT_RULE

    labels = read_labels(REPO / "models" / "starter")
    knowledge = shipped_knowledge()
    texts = all_texts(labels, knowledge, None)

    def top(*pairs):
        return [{"label": label, "probability": p} for label, p in pairs]

    situations = [
        # early blight answered, late blight second above the floor: warned
        (
            "Tomato___Early_blight",
            top(("Tomato___Early_blight", 0.9), ("Tomato___Late_blight", 0.08), ("Tomato___healthy", 0.01)),
        ),
        # ... third, still above the floor: warned
        (
            "Potato___Early_blight",
            top(("Potato___Early_blight", 0.97), ("Potato___healthy", 0.02), ("Potato___Late_blight", 0.006)),
        ),
        # under the floor: not warned
        (
            "Tomato___Early_blight",
            top(("Tomato___Early_blight", 0.996), ("Tomato___Late_blight", 0.004), ("Tomato___healthy", 0.0)),
        ),
        # late blight answered: it is the urgent one
        (
            "Tomato___Late_blight",
            top(("Tomato___Late_blight", 0.9), ("Tomato___Early_blight", 0.09), ("Tomato___healthy", 0.01)),
        ),
        # a condition that is no look-alike of late blight
        (
            "Apple___Apple_scab",
            top(("Apple___Apple_scab", 0.9), ("Tomato___Late_blight", 0.09), ("Apple___healthy", 0.01)),
        ),
    ]
    cases, expected = [], []
    for lang in LANGUAGES:
        for label, top_k in situations:
            cases.append({"lang": lang, "label": label, "top": top_k})
            found = urgent_lookalike_words(knowledge, label, top_k)
            expected.append(
                None if found is None else {"label": found[0], "message": render(found[1], lang, knowledge.resolve)}
            )
    out = run_node(CAUTION, "words.js", {"texts": texts, "rule": URGENT_RULE, "cases": cases})
    assert out == expected
    assert [e is not None for e in expected[:5]] == [True, True, False, False, False]
    assert expected[0]["message"] != expected[5]["message"]  # said in each language


FRAMED_NOTE = r"""
const w = await import(process.argv[1]);
let text = "";
for await (const chunk of process.stdin) text += chunk;
const { texts, cases } = JSON.parse(text);
console.log(JSON.stringify(cases.map((c) => w.framedNote(texts[c.lang], c.r))));
"""


def test_the_framing_note_goes_with_the_same_answers_as_on_the_server():
    """words.js `framedNote` against photo_guide.answer_notes: not with a not_a_leaf or poor_photo refusal (a daisy
    framed as a leaf is no small leaf), with a diagnosis, "not sure" and a field photo; in the page's language."""
    from leafdoc.core.i18n import gettext
    from leafdoc.modelfolder import read_labels
    from leafdoc.words.photo_guide import FRAMED, answer_notes

    texts = all_texts(read_labels(REPO / "models" / "starter"), shipped_knowledge(), None)
    cases, expected = [], []
    for lang in ("en", "hi"):
        for reason in (None, "unsure", "unlike_training", "unknown_leaf", "not_a_leaf", "poor_photo"):
            for framed in (True, False):
                refused = reason is not None
                api = {"abstained": refused, "reason": reason, "framed_box": [0, 0, 9, 9] if framed else None}
                cases.append({"lang": lang, "r": {"abstained": refused, "reason": reason, "framed": framed}})
                expected.append(gettext(lang, FRAMED) if gettext(lang, FRAMED) in answer_notes(api, lang) else None)
    said = run_node(FRAMED_NOTE, "words.js", {"texts": texts, "cases": cases})
    assert said == expected
    assert said.count(None) == 2 * (6 + 2) and said[0].startswith("The leaf was small")


PERCENT_SCRIPT = r"""
const w = await import(process.argv[1]);
let text = "";
for await (const chunk of process.stdin) text += chunk;
const { texts, values } = JSON.parse(text);
const sure = { abstained: false, top: [{ label: "Tomato___Early_blight", probability: 0.999 }] };
console.log(JSON.stringify({
  share: values.map((p) => w.shareWords(p)),
  percent: Object.fromEntries(Object.entries(texts).map(([l, t]) => [l, values.map((p) => w.percentWords(t, p))])),
  history: Object.fromEntries(Object.entries(texts).map(([lang, t]) => [lang, w.answerWords(t, sure)])),
}));
"""


def test_the_offline_page_says_a_percentage_by_the_pages_rule():
    """The offline page said "(100% sure)" at 0.999 (Math.round): words.js `shareWords` is words/percent.py's rule,
    the same figure for every value, with each language's sign ("sûr à >99 %")."""
    from leafdoc.ui.history import answer_words
    from leafdoc.words.percent import percent_words, share_words

    labels = ["Tomato___Early_blight", "Tomato___healthy"]
    texts = all_texts(labels, shipped_knowledge(), None)
    rng = np.random.default_rng(0)
    values = [1.0, 0.99999, 0.9999, 0.999, 0.995, 0.9949999, 0.99, 0.5, 0.125, 0.015, 0.005, 0.004, 1e-9, 0.0]
    values += [float(v) for v in rng.random(300)]
    got = run_node(PERCENT_SCRIPT, "words.js", {"texts": texts, "values": values})
    assert got["share"][:5] == [">99", ">99", ">99", ">99", ">99"] and got["share"][11:14] == ["<1", "<1", "<1"]
    assert got["share"] == [share_words(p) for p in values]
    for lang in LANGUAGES:
        assert got["percent"][lang] == [percent_words(p, lang) for p in values], lang
        named = [{"label": labels[0], "name": texts[lang]["advice"][labels[0]]["title"], "probability": 0.999}]
        python = answer_words({"language": lang, "label": labels[0], "confidence": 0.999, "top_k": named})
        assert got["history"][lang] == python and ">99" in python and "100" not in python, lang
