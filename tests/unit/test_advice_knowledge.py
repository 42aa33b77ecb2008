"""The knowledge base: one valid entry with sources for each of the 38 PlantVillage classes, every label of the
shipped model covered, look-alikes that point to real entries, and bad files reported by file and field."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from leafdoc.advice import Knowledge, KnowledgeError, advice_route
from leafdoc.advice.knowledge import SHIPPED, read_entry
from leafdoc.advice.render import details_markdown, summary_markdown

REPO = Path(__file__).resolve().parents[2]
# PlantVillage's 38 classes as its folders name them: the starter's 34 and these 4 (no source was reachable).
NOT_IN_STARTER = {
    "Peach___Bacterial_spot",
    "Peach___healthy",
    "Soybean___healthy",
    "Squash___Powdery_mildew",
}
STARTER_LABELS = json.loads((REPO / "models" / "starter" / "labels.json").read_text())


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    return Knowledge.load(SHIPPED)


def test_all_38_plantvillage_classes_have_an_entry_and_nothing_else(kb):
    assert len(STARTER_LABELS) == 34
    shipped = set(STARTER_LABELS) | NOT_IN_STARTER
    assert set(kb.entries) - shipped == set(), (
        "a shipped entry for a label neither the starter model nor PlantVillage's other classes have: a class of your "
        "own belongs in a folder of LEAFDOC_ADVICE_DIR; a class leafdoc should ship goes into NOT_IN_STARTER here "
        "(src/leafdoc/advice/knowledge/README.md)"
    )
    assert shipped - set(kb.entries) == set(), "a label without its knowledge file"
    assert len(list(SHIPPED.glob("*.toml"))) == len(shipped)  # one file per class


def test_every_label_of_the_shipped_model_has_an_entry(kb):
    missing = [label for label in STARTER_LABELS if kb.get(label) is None]
    assert missing == []


@pytest.mark.parametrize("path", sorted(SHIPPED.glob("*.toml")), ids=lambda p: p.stem)
def test_every_file_validates_and_cites_its_sources(path):
    entry = read_entry(path)
    assert entry.sources and all(s.title and s.publisher for s in entry.sources)
    assert entry.healthy == ("healthy" in entry.label.lower())
    if entry.healthy:
        assert entry.keep_doing and entry.pathogen is None
    else:
        assert entry.pathogen and entry.spread and entry.actions.cultural
        # chemical options go by active-ingredient group (or say there is none) and defer to the label
        chemical = entry.actions.chemical
        assert any("FRAC" in line or "IRAC" in line or line.startswith("No ") for line in chemical), path.name
        assert any("label" in line and "regulations" in line for line in chemical), path.name
    assert "extension" in entry.when_to_call or "authority" in entry.when_to_call


def test_look_alikes_point_to_real_entries_and_the_measured_confusions_are_there(kb):
    for entry in kb.entries.values():
        for c in entry.confused_with:
            assert c.label in kb.entries and c.label != entry.label, (entry.label, c.label)
    # the starter's most frequent test-split confusions (leafdoc evaluate on its split.json test photos)
    measured = {(e.label, c.label) for e in kb.entries.values() for c in e.confused_with if c.measured}
    assert ("Tomato___Target_Spot", "Tomato___healthy") in measured
    assert ("Corn_(maize)___Northern_Leaf_Blight", "Corn_(maize)___Cercospora_leaf_spot Gray_leaf_spot") in measured
    assert ("Tomato___Septoria_leaf_spot", "Tomato___Leaf_Mold") in measured


def test_a_bad_file_is_reported_with_its_name_and_field(tmp_path):
    good = tomllib.loads((SHIPPED / "tomato-early-blight.toml").read_text())
    bad = dict(good, sources=[])
    (tmp_path / "broken.toml").write_text(_toml(bad))
    with pytest.raises(KnowledgeError) as caught:
        Knowledge.load(tmp_path)
    assert "broken.toml" in caught.value.message and "sources" in caught.value.message

    (tmp_path / "broken.toml").write_text('label = "x"\nsummary = """never closed\n')
    with pytest.raises(KnowledgeError, match="broken.toml: cannot be read as TOML"):
        Knowledge.load(tmp_path)


def test_a_look_alike_without_an_entry_and_a_duplicate_label_are_refused(tmp_path):
    good = tomllib.loads((SHIPPED / "tomato-early-blight.toml").read_text())
    (tmp_path / "a.toml").write_text(_toml(good))
    with pytest.raises(KnowledgeError, match="a.toml: confused_with names 'Tomato___Target_Spot'"):
        Knowledge.load(tmp_path)
    (tmp_path / "b.toml").write_text(_toml(good))
    with pytest.raises(KnowledgeError, match="b.toml: label 'Tomato___Early_blight' is already the label of a.toml"):
        Knowledge.load(tmp_path)


def test_an_extra_folder_adds_new_labels_and_replaces_shipped_ones(tmp_path):
    mine = tomllib.loads((SHIPPED / "potato-healthy.toml").read_text())
    new = dict(mine, label="Cassava___healthy", crop="Cassava", crop_scientific="Manihot esculenta", confused_with=[])
    changed = dict(mine, summary="Our own words for a healthy potato leaf, as our extension office says it.")
    (tmp_path / "cassava.toml").write_text(_toml(new))
    (tmp_path / "potato.toml").write_text(_toml(changed))
    kb = Knowledge.load(SHIPPED, tmp_path)
    assert kb.get("Cassava___healthy").crop == "Cassava"
    assert kb.get("Potato___healthy").summary == changed["summary"]
    assert len(kb.entries) == len(Knowledge.load(SHIPPED).entries) + 1  # one added, one replaced


def test_the_reference_an_answer_carries(kb):
    ref = kb.reference("Corn_(maize)___Common_rust_")
    assert ref["available"] and ref["summary"] == kb.get("Corn_(maize)___Common_rust_").summary
    assert ref["route"] == advice_route("Corn_(maize)___Common_rust_") == "/v1/advice/Corn_%28maize%29___Common_rust_"
    assert ref["sources"][0]["title"].startswith("Compendium of Corn Diseases")
    none = kb.reference("Cassava___Mosaic")
    assert not none["available"] and none["summary"] is None and "Cassava___Mosaic" in none["message"]


def test_the_markdown_puts_the_summary_first_and_keeps_every_section(kb):
    entry = kb.get("Tomato___Late_blight").model_dump(mode="json")
    md = details_markdown(entry)
    order = ["Phytophthora infestans", "What it looks like", "Often confused with", "How it spreads", "What to do"]
    order += ["Chemical options", "When to call", "Sources", "Compendium of Tomato Diseases"]
    positions = [md.index(s) for s in order]
    assert positions == sorted(positions)
    assert summary_markdown(kb.reference("Tomato___Late_blight")).startswith("**What to do:** Late blight")
    assert summary_markdown(None) == ""
    hostile = dict(entry, symptoms="<script>alert(1)</script> spots on the leaves, many of them, all over")
    assert "<script>" not in details_markdown(hostile)


def _toml(data: dict) -> str:
    """A tiny TOML writer for the test's dicts (strings, bools, lists of strings, tables, arrays of tables)."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict | list) or _plain(v)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += [f"[{k}]"] + [f"{kk} = {value(vv)}" for kk, vv in v.items()]
        elif isinstance(v, list) and not _plain(v):
            for item in v:
                lines += [f"[[{k}]]"] + [f"{kk} = {value(vv)}" for kk, vv in item.items()]
    return "\n".join(lines) + "\n"


def _plain(v) -> bool:
    return isinstance(v, list) and (not v or not isinstance(v[0], dict))


def test_the_page_shows_the_summary_a_note_or_nothing(kb):
    from leafdoc.ui.advice import DETAILS_TITLE, advice_markdown

    label = "Apple___Apple_scab"
    answer = {"abstained": False, "label": label, "advice": kb.reference(label)}
    entry = kb.get(label).model_dump(mode="json")
    md = advice_markdown(answer, entry)
    assert md.index("**What to do:**") < md.index(f'<details class="advice-details"><summary>{DETAILS_TITLE}')
    assert "Venturia inaequalis" in md and md.rstrip().endswith("</details>")
    assert "<details" not in advice_markdown(answer, None)  # the entry could not be fetched: the summary alone
    missing = {"abstained": False, "label": "Cassava___Mosaic", "advice": kb.reference("Cassava___Mosaic")}
    assert "no advice for 'Cassava___Mosaic' yet" in advice_markdown(missing, None)
    assert advice_markdown({"abstained": True, "label": None, "advice": None}, None) == ""
