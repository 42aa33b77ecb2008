"""scripts/starter_confusions.py, which writes what the starter mixes up into the advice (`measured` notes): the note
says the counts in every language with the same numbers, and rewriting a knowledge file replaces, adds and removes
notes in the right [[confused_with]] blocks and nothing else."""

from __future__ import annotations

import json
import re
import shutil
import sys
import tomllib

import pytest
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
from starter_confusions import note, rewrite_notes  # noqa: E402

from leafdoc.advice import shipped_knowledge  # noqa: E402
from leafdoc.advice.knowledge import read_entry  # noqa: E402
from leafdoc.core.i18n import LANGUAGES  # noqa: E402


def test_a_note_says_what_was_counted_in_every_language():
    x, y = "Tomato — Late blight", "Tomato — Early blight"
    assert note("en", x, y, 2, 152, 4) == (
        "Of 152 photos of Tomato — Early blight that leafdoc's starter model did not see in training, it took 2 for "
        'Tomato — Late blight; on 4 more it could not choose between the two, and said "not sure".'
    )
    assert note("en", x, y, 0, 152, 3) == (
        "Of 152 photos of Tomato — Early blight that leafdoc's starter model did not see in training, on 3 it could "
        'not choose between this and Tomato — Late blight, and said "not sure".'
    )
    assert note("en", x, y, 0, 152, 0) is None
    for lang in LANGUAGES:
        for n, k in ((2, 4), (2, 0), (0, 3)):
            said = note(lang, x, y, n, 152, k)
            assert x in said and y in said
            assert sorted(re.findall(r"\d+", said)) == sorted(str(v) for v in (n, 152, k) if v), (lang, said)


def test_the_shipped_notes_say_it_in_a_growers_words():
    """They said "hesitated with ... and abstained on 19 of its 73 held-out test photos": words of the people who
    train models, in the advice a grower reads under an answer."""
    for label, entry in shipped_knowledge().entries.items():
        for c in entry.confused_with:
            said = (c.measured or "").lower()
            assert not any(word in said for word in ("abstain", "held-out", "held out")), (label, c.measured)
            if c.measured:
                assert said.startswith("of ") and "did not see in training" in said, (label, c.measured)


def test_rewriting_a_knowledge_file_replaces_adds_and_removes_notes(tmp_path):
    source = shipped_knowledge().files["Tomato___Early_blight"]
    path = tmp_path / source.name
    shutil.copy2(source, path)
    before = tomllib.loads(path.read_text(encoding="utf-8"))
    looks = [c["label"] for c in before["confused_with"]]
    notes = {looks[0]: "a new note about the first look-alike", looks[1]: None}
    notes |= {label: None for label in looks[2:]}
    rewrite_notes(path, notes)
    after = tomllib.loads(path.read_text(encoding="utf-8"))
    assert [c.get("measured") for c in after["confused_with"]] == [notes[label] for label in looks]
    # everything else as it was, and still a valid entry
    strip = [{k: v for k, v in c.items() if k != "measured"} for c in before["confused_with"]]
    assert [{k: v for k, v in c.items() if k != "measured"} for c in after["confused_with"]] == strip
    assert {k: v for k, v in after.items() if k != "confused_with"} == {
        k: v for k, v in before.items() if k != "confused_with"
    }
    assert read_entry(path).label == "Tomato___Early_blight"


def test_the_starter_card_says_the_condition_it_most_often_refuses_with_the_advices_counts():
    """The card listed limitations but not that the starter says "not sure" on about a quarter of its held-out corn gray
    leaf spot photos, hesitating with northern leaf blight, which the advice's notes measured. The card's sentence is
    made from the counts the shipped notes say: a retrain that changes them (starter_confusions.py rewrites both)
    and a card left behind fail here."""
    from starter_confusions import MOST_UNSURE, card_limitation, counts_from_notes

    from leafdoc.advice.knowledge import label_resolver
    from leafdoc.core.i18n import SOURCE, Label, render
    from leafdoc.modelfolder import read_card

    knowledge = shipped_knowledge()
    resolve = label_resolver(knowledge)
    held, hesitated = counts_from_notes(knowledge)
    (y, x), k = max(hesitated.items(), key=lambda item: item[1] / held[item[0][0]])
    note_of = next(c.measured for c in knowledge.entries[y].confused_with if c.label == x)
    assert note_of.startswith(f"Of {held[y]} photos ") and f"on {k} it could not choose" in note_of  # read right

    card = read_card(REPO / "models" / "starter")
    said = card.limitations
    sentence = card_limitation(held, hesitated, lambda lab: render(Label(lab), SOURCE, resolve))
    assert sentence is not None and said.endswith(sentence) and said.count(MOST_UNSURE[SOURCE]) == 1
    assert f"{k} of its {held[y]} held-out test photos ({k / held[y]:.0%})" in sentence
    assert render(Label(y), SOURCE, resolve) in sentence and render(Label(x), SOURCE, resolve) in sentence
    # and in each language a grower's page reads the card in: the same counts, the titles as the answers say them
    assert set(card.limitations_translated) == set(LANGUAGES) - {SOURCE}
    for lang, text in card.limitations_translated.items():
        translated = card_limitation(held, hesitated, lambda lab, lang=lang: render(Label(lab), lang, resolve), lang)
        assert text.endswith(translated) and text.count(MOST_UNSURE[lang]) == 1, lang
        assert f"{k} " in translated and f"{held[y]} " in translated and render(Label(y), lang, resolve) in translated


def test_the_card_limitation_is_replaced_not_repeated_and_goes_when_nothing_reaches_the_share():
    from collections import Counter
    from types import SimpleNamespace

    from starter_confusions import card_limitation, counts_from_notes, with_limitation

    looks = [SimpleNamespace(label="b", measured=note("en", "B", "A", 1, 40, 8)), SimpleNamespace(label="c")]
    looks[1].measured = note("en", "C", "A", 0, 40, 2)
    fake = SimpleNamespace(entries={"a": SimpleNamespace(confused_with=looks)})
    held, hesitated = counts_from_notes(fake)
    assert held == Counter({"a": 40}) and hesitated == Counter({("a", "b"): 8, ("a", "c"): 2})
    first = card_limitation(held, hesitated, str.upper)
    assert first.endswith(
        "A, on 8 of its 40 held-out test photos (20%), hesitating with B: such photos are answered "
        "less often than the test accuracy suggests."
    )
    text = with_limitation("Knows only these.", first)
    later = card_limitation(held, Counter({("a", "c"): 6}), str.upper)
    assert with_limitation(text, later) == f"Knows only these. {later}"
    assert card_limitation(held, Counter({("a", "b"): 3}), str.upper) is None  # 7.5%: under the share
    assert with_limitation(text, None) == "Knows only these."
    french = with_limitation("Ne connaît que celles-ci.", card_limitation(held, hesitated, str.lower, "fr"), "fr")
    assert french.startswith("Ne connaît que celles-ci. Le plus souvent « pas sûr » : a, pour 8 de ses 40 photos")
    assert "(20\u00a0%)" in french  # French sets a no-break space before the sign
    again = with_limitation(french, card_limitation(held, Counter({("a", "c"): 6}), str.lower, "fr"), "fr")
    assert again.count("Le plus souvent") == 1 and "hésitant avec c :" in again


def test_the_script_rewrites_the_cards_sentence_in_every_language_it_holds_and_nothing_else(tmp_path):
    """write_card_limitation on a copy of the starter's card with other counts: the English and each translation end
    with the new counts' sentence, the text before it and every other key as they were."""
    from collections import Counter

    from starter_confusions import MOST_UNSURE, write_card_limitation

    model = tmp_path / "starter"
    model.mkdir()
    for name in ("card.json", "labels.json"):
        shutil.copy(REPO / "models" / "starter" / name, model / name)
    before = json.loads((model / "card.json").read_text(encoding="utf-8"))
    y, x = "Tomato___Early_blight", "Tomato___Late_blight"
    write_card_limitation(model, Counter({y: 50}), Counter({(y, x): 10}))
    after = json.loads((model / "card.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in after.items() if not k.startswith("limitations")} == {
        k: v for k, v in before.items() if not k.startswith("limitations")
    }
    texts = {"en": (before["limitations"], after["limitations"])} | {
        lang: (before["limitations_translated"][lang], text) for lang, text in after["limitations_translated"].items()
    }
    assert set(texts) == set(LANGUAGES)  # every language the page has
    for lang, (old, new) in texts.items():
        kept = old.split(MOST_UNSURE[lang])[0]
        assert new.startswith(kept) and new.count(MOST_UNSURE[lang]) == 1, lang
        assert "10 " in new[len(kept) :] and "50 " in new[len(kept) :] and "19 " not in new[len(kept) :], lang


def test_a_retrained_starter_gets_the_replaced_cards_handwritten_limitations_in_every_language(tmp_path):
    """train_starter.py writes generic limitations in English only; a retrained starter lost the handwritten ones and
    their translations unless they were copied into its card.json by hand. --limitations-from carries them over, and
    the "most often not sure" sentence is then written from the new counts; nothing else of the new card changes."""
    from collections import Counter

    from starter_confusions import MOST_UNSURE, carry_limitations, write_card_limitation

    model = tmp_path / "new"
    model.mkdir()
    for name in ("card.json", "labels.json"):
        shutil.copy(REPO / "models" / "starter" / name, model / name)
    old = json.loads((REPO / "models" / "starter" / "card.json").read_text(encoding="utf-8"))
    fresh = dict(old, limitations="Knows only these 34 classes: ...", train_seconds=1234.5)
    fresh.pop("limitations_translated")
    (model / "card.json").write_text(json.dumps(fresh, indent=2, ensure_ascii=False), encoding="utf-8")

    carry_limitations(model, REPO / "models" / "starter")  # the folder, or its card.json
    y, x = "Tomato___Early_blight", "Tomato___Late_blight"
    write_card_limitation(model, Counter({y: 50}), Counter({(y, x): 10}))
    after = json.loads((model / "card.json").read_text(encoding="utf-8"))
    assert after["train_seconds"] == 1234.5
    assert set(after["limitations_translated"]) == set(old["limitations_translated"]) == set(LANGUAGES) - {"en"}
    for lang, text in {"en": after["limitations"], **after["limitations_translated"]}.items():
        handwritten = (old["limitations"] if lang == "en" else old["limitations_translated"][lang]).split(
            MOST_UNSURE[lang]
        )[0]
        assert text.startswith(handwritten) and "10 " in text[len(handwritten) :], lang

    (tmp_path / "no-card.json").write_text("{}", encoding="utf-8")
    with pytest.raises(SystemExit, match="no-card.json: has no limitations"):
        carry_limitations(model, tmp_path / "no-card.json")
