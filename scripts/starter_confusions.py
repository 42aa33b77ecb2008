"""What the starter model mixes up, written into the advice it serves: each knowledge file's `measured` notes (how
often the starter answered a look-alike, or hesitated with it and said "not sure", on its held-out test photos of
that condition), with their Spanish, French and Hindi (marked unreviewed). Run after the starter is retrained
(docs/retrain-starter.md, the commands), with the full PlantVillage set its split names:

    .venv/bin/python scripts/starter_confusions.py --full DATA/plantvillage-full [--model models/starter] \
        [--limitations-from OLD_CARD]

A look-alike the starter never mixed up on those photos gets no note (a note from an earlier starter is removed).
`--limitations-from` (the card.json of the starter it replaces, or its folder) first carries that card's handwritten
limitations and their translations over to the new card (train_starter.py writes generic ones, in English only); its
"most often not sure" sentence is then written again from the new model's counts.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

from leafdoc.advice import shipped_knowledge
from leafdoc.advice.knowledge import label_resolver
from leafdoc.cli import i18n_catalogs
from leafdoc.core.i18n import LANGUAGES, SOURCE, Label, render
from leafdoc.inference.predictor import Predictor
from leafdoc.words.percent import percent_words

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from starter_full import test_photos  # noqa: E402  (the starter's test photos, as its figures are measured on)

# How each language says the notes, in a grower's words: {x} the look-alike's title, {y} the condition's, {n} photos
# answered as {x} of the {m} held out, {k} photos refused as "not sure" with {x} the likeliest ("not sure" as the
# answers say it in that language). Before 2026-11-30 they said "abstained on" and "held-out test photos".
ANSWERED = {
    "en": "Of {m} photos of {y} that leafdoc's starter model did not see in training, it took {n} for {x}",
    "es": "De {m} fotos de {y} que el modelo inicial de leafdoc no vio al entrenarse, tomó {n} por {x}",
    "fr": "Sur {m} photos de {y} que le modèle de départ de leafdoc n'a pas vues à l'entraînement, il en a pris {n} "
    "pour {x}",
    "hi": "{y} की {m} फ़ोटो में से, जो leafdoc के शुरुआती मॉडल ने प्रशिक्षण में नहीं देखी थीं, उसने {n} को {x} समझा",
}
HESITATED_TOO = {
    "en": '; on {k} more it could not choose between the two, and said "not sure".',
    "es": "; en otras {k} no pudo decidir entre las dos, y dijo «no es seguro».",
    "fr": " ; pour {k} autres, il n'a pas su choisir entre les deux, et a répondu « pas sûr ».",
    "hi": '; {k} और फ़ोटो पर वह दोनों में से चुन नहीं पाया और "पक्का नहीं" कहा।',
}
HESITATED = {
    "en": "Of {m} photos of {y} that leafdoc's starter model did not see in training, on {k} it could not choose "
    'between this and {x}, and said "not sure".',
    "es": "De {m} fotos de {y} que el modelo inicial de leafdoc no vio al entrenarse, en {k} no pudo decidir entre "
    "esta y {x}, y dijo «no es seguro».",
    "fr": "Sur {m} photos de {y} que le modèle de départ de leafdoc n'a pas vues à l'entraînement, il n'a pas su "
    "choisir entre celle-ci et {x} pour {k}, et a répondu « pas sûr ».",
    "hi": "{y} की {m} फ़ोटो में से, जो leafdoc के शुरुआती मॉडल ने प्रशिक्षण में नहीं देखी थीं, {k} पर वह इसमें और {x} "
    'में से चुन नहीं पाया और "पक्का नहीं" कहा।',
}
END = {"en": ".", "es": ".", "fr": ".", "hi": "।"}


def note(lang: str, x: str, y: str, n: int, m: int, k: int) -> str | None:
    """The note in `lang` for titles `x` (the look-alike) and `y` (the condition), or None when there is nothing to
    say."""
    if n and k:
        return ANSWERED[lang].format(x=x, y=y, n=n, m=m) + HESITATED_TOO[lang].format(x=x, k=k)
    if n:
        return ANSWERED[lang].format(x=x, y=y, n=n, m=m) + END[lang]
    if k:
        return HESITATED[lang].format(x=x, y=y, k=k, m=m)
    return None


# The model card's limitation for the condition the starter most often could not tell from a look-alike, from the
# same counts as the notes (a lab reads the card, not each knowledge file). It is the card's limitations' last
# sentence, starting with MOST_UNSURE; a later run replaces it, or removes it when no condition reaches MIN_UNSURE.
# The same in each language the card's `limitations_translated` holds (a grower's page shows those).
MOST_UNSURE = {
    "en": 'Most often "not sure": ',
    "es": "Con más frecuencia «no es seguro»: ",
    "fr": "Le plus souvent « pas sûr » : ",
    "hi": 'सबसे अधिक बार "पक्का नहीं": ',
}
MIN_UNSURE = 0.1  # a share of a condition's held-out photos; below it, "not sure" is no limitation worth a sentence
CARD_LIMITATION = {
    "en": "{y}, on {k} of its {m} held-out test photos ({share}), hesitating with {x}: such photos are answered less "
    "often than the test accuracy suggests.",
    "es": "{y}, en {k} de sus {m} fotos de prueba apartadas ({share}), dudando con {x}: esas fotos reciben respuesta "
    "con menos frecuencia de lo que sugiere la precisión de prueba.",
    "fr": "{y}, pour {k} de ses {m} photos de test mises de côté ({share}), en hésitant avec {x} : ces photos "
    "reçoivent une réponse moins souvent que la précision de test ne le laisse penser.",
    "hi": "{y}, इसकी {m} अलग रखी गई परीक्षण फ़ोटो में से {k} पर ({share}), इसके और {x} के बीच दुविधा में: ऐसी फ़ोटो "
    "का उत्तर परीक्षण सटीकता के संकेत से कम बार मिलता है।",
}


def card_limitation(held: Counter, hesitated: Counter, title, lang: str = SOURCE) -> str | None:
    """The card's sentence in `lang` on the (condition, look-alike) pair with the largest share of the condition's
    held-out photos refused as "not sure" between the two (`hesitated`, `held`: the counts `confusions` returns;
    `title`: a label as the answers name it in `lang`), or None when no pair reaches MIN_UNSURE."""
    shares = [(k / held[y], y, x) for (y, x), k in hesitated.items() if held[y]]
    if not shares or max(shares)[0] < MIN_UNSURE:
        return None
    share, y, x = max(shares)
    percent = percent_words(share, lang)
    words = CARD_LIMITATION[lang].format(y=title(y), x=title(x), k=hesitated[y, x], m=held[y], share=percent)
    return MOST_UNSURE[lang] + words


def with_limitation(limitations: str | None, sentence: str | None, lang: str = SOURCE) -> str | None:
    """A card's limitations in `lang` with `sentence` as its MOST_UNSURE sentence (an earlier one replaced; None
    removes it)."""
    text = (limitations or "").split(MOST_UNSURE[lang])[0].strip()
    return " ".join(t for t in (text, sentence) if t) or None


def counts_from_notes(knowledge=None) -> tuple[Counter, Counter]:
    """(held, hesitated) as the shipped English notes say them: what `confusions` counted when they were written, for
    `--card-only` and for checking the card against the advice."""
    held, hesitated = Counter(), Counter()
    for y, entry in (knowledge or shipped_knowledge()).entries.items():
        for c in entry.confused_with:
            of = re.match(r"Of (\d+) photos ", c.measured or "")
            k = re.search(r"on (\d+) (?:more )?it could not choose", c.measured or "")
            if of:
                held[y] = int(of.group(1))
            if k:
                hesitated[y, c.label] = int(k.group(1))
    return held, hesitated


def edit_card(model: Path, change) -> tuple[Path, dict]:
    """The model folder's card.json with `change(card)` made to it (a dict, as the file holds it): only what it changes,
    the rest of the file byte for byte (as the starter's is written: two spaces, UTF-8 unescaped). Refused, naming the
    file, when it is not a card leafdoc can read."""
    from leafdoc.modelfolder import read_card

    read_card(model)
    path = model / "card.json"
    card = json.loads(path.read_text(encoding="utf-8"))
    change(card)
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path, card


def write_card_limitation(model: Path, held: Counter, hesitated: Counter) -> None:
    """The model folder's card.json with card_limitation's sentence in its `limitations` (English) and in each
    language its `limitations_translated` holds: only those change (`edit_card`)."""
    resolve = label_resolver(shipped_knowledge())

    def sentence(lang: str) -> str | None:
        return card_limitation(held, hesitated, lambda lab: render(Label(lab), lang, resolve), lang)

    def change(card: dict) -> None:
        card["limitations"] = with_limitation(card.get("limitations"), sentence(SOURCE))
        translated = card.get("limitations_translated") or {}
        for lang in [lang for lang in translated if lang in MOST_UNSURE]:
            translated[lang] = with_limitation(translated[lang], sentence(lang), lang)

    path, card = edit_card(model, change)
    print(f"{path}: limitations: {card['limitations']}")


def carry_limitations(model: Path, old: Path) -> None:
    """The model folder's card.json with `limitations` and `limitations_translated` as the card at `old` (a card.json
    or a model folder) has them; every other key as it was (`edit_card`)."""
    old_card = old / "card.json" if old.is_dir() else old
    try:
        given = json.loads(old_card.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SystemExit(
            f"{old_card}: not a model card leafdoc can read ({e}); pass the replaced starter's card.json"
        ) from None
    if not isinstance(given, dict) or not isinstance(given.get("limitations"), str):
        raise SystemExit(f"{old_card}: has no limitations to carry over; pass the replaced starter's card.json")

    def change(card: dict) -> None:
        card["limitations"] = given["limitations"]
        if given.get("limitations_translated"):
            card["limitations_translated"] = given["limitations_translated"]

    path, card = edit_card(model, change)
    langs = ", ".join(["en", *(card.get("limitations_translated") or {})])
    print(f"{path}: limitations carried over from {old_card} ({langs})")


def confusions(model: Path, full: Path) -> tuple[Counter, Counter, Counter]:
    """Per condition, its test photos; per (condition, other), photos answered as the other, and photos refused as
    "not sure" with the other the likeliest: the starter's answers as served."""
    predictor = Predictor(model)
    photos = test_photos(model, full)
    held, answered, hesitated = Counter(), Counter(), Counter()
    for start in range(0, len(photos), 64):
        chunk = photos[start : start + 64]
        for (_, truth), a in zip(chunk, predictor.predict_files([f for f, _ in chunk], k=2), strict=True):
            held[truth] += 1
            top = a.top_k[0].label if a.top_k else None
            if not a.abstained and top != truth:
                answered[truth, top] += 1
            elif a.abstained and a.reason == "unsure" and top is not None:
                # the likeliest other condition: the top one, or the second when the top is the right one
                other = top if top != truth else (a.top_k[1].label if len(a.top_k) > 1 else None)
                if other:
                    hesitated[truth, other] += 1
    print(f"{len(photos)} test photos, {sum(answered.values())} answered wrong, {sum(hesitated.values())} unsure")
    return held, answered, hesitated


def rewrite_notes(path: Path, notes: dict[str, str | None]) -> None:
    """Each [[confused_with]] block of a knowledge file: its `measured` line replaced by the note for its label (put
    right after the `label` line), or removed when there is none."""
    out, in_block = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            in_block = line.strip() == "[[confused_with]]"
        if in_block and line.startswith("measured = "):
            continue
        out.append(line)
        found = re.match(r'label = "(.+)"$', line) if in_block else None
        if found and notes.get(found.group(1)):
            out.append("measured = " + json.dumps(notes[found.group(1)], ensure_ascii=False))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def write_notes(held: Counter, answered: Counter, hesitated: Counter) -> None:
    """Every knowledge file's notes from the counts (`confusions`), in each language, into the files and catalogs."""
    knowledge = shipped_knowledge()
    resolve = label_resolver(knowledge)  # a label's title in a language, as answers say it
    titles = {lang: {label: render(Label(label), lang, resolve) for label in knowledge.entries} for lang in LANGUAGES}
    translations = {}  # (context, English note) -> {lang: note}
    for label, e in sorted(knowledge.entries.items()):
        notes = {}
        for c in e.confused_with:
            counts = (answered[label, c.label], held[label], hesitated[label, c.label])
            by_lang = {lang: note(lang, titles[lang][c.label], titles[lang][label], *counts) for lang in LANGUAGES}
            notes[c.label] = by_lang[SOURCE]
            if by_lang[SOURCE]:
                translations[f"{label} measured {c.label}", by_lang[SOURCE]] = by_lang
        rewrite_notes(knowledge.files[label], notes)
    shipped_knowledge.cache_clear()  # read the files again, with their new notes
    i18n_catalogs.main()  # the new notes into the template and each catalog (untranslated), the old ones out
    for lang in LANGUAGES:
        if lang == SOURCE:
            continue
        cat = i18n_catalogs.read(lang, "advice")
        for m in cat:
            if m.id and (m.context, m.id) in translations:
                m.string = translations[m.context, m.id][lang]
        i18n_catalogs.write(i18n_catalogs.po_path(lang, "advice"), cat)  # as the generator writes it
    print(f"{len(translations)} notes written, in {', '.join(LANGUAGES)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", type=Path, help="the full PlantVillage set (its build's folder)")
    ap.add_argument("--model", type=Path, default=REPO / "models" / "starter")
    ap.add_argument(
        "--card-only",
        action="store_true",
        help="only the card's limitation, from the counts the shipped notes say (no photos read; --full unused)",
    )
    ap.add_argument(
        "--limitations-from",
        type=Path,
        metavar="OLD_CARD",
        help="the replaced starter's card.json (or folder): its handwritten limitations and translations carried over",
    )
    args = ap.parse_args()
    if not args.full and not args.card_only:
        ap.error("--full DIR is needed (or --card-only)")
    if args.limitations_from:
        carry_limitations(args.model, args.limitations_from)
    if args.card_only:
        write_card_limitation(args.model, *counts_from_notes())
        return
    held, answered, hesitated = confusions(args.model, args.full)
    write_notes(held, answered, hesitated)
    write_card_limitation(args.model, held, hesitated)


if __name__ == "__main__":
    main()
