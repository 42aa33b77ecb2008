"""The photo guide: how to take a photo leafdoc can read, with good and bad example photos and what leafdoc
answers for each. One list of words, shown by the web page (ui/page.py) and the desktop app
(desktop/guide.py), so both say the same; nothing here imports Gradio or Qt.

The captions say what the starter model answers for these exact files
(`leafdoc predict models/starter examples/guide/*.jpg`), and the answers name it as the starter's: a lab's own model
serving answers for its own crops. The pictures are made by scripts/guide_photos.py, and their sources and licences
are in examples/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from leafdoc.core.i18n import AND, N_, gettext
from leafdoc.words.labels import names_crop

GUIDE_DIR = Path(__file__).resolve().parents[3] / "examples" / "guide"  # the repository's examples/guide (src layout)

TITLE = N_("How to take a photo leafdoc can read")

TIPS = (
    N_("**One leaf**, filling most of the picture."),
    N_("**On a plain background**: pick the leaf and lay it on a sheet of paper."),
    N_("**From above, in daylight**: no flash, no deep shade."),
    N_("**In focus**: hold still and let the camera focus on the leaf."),
    N_(
        "**Of a plant it knows**: the model knows only the plants and diseases it was trained on (which, and from "
        "what kind of photo, is said under the photo)."
    ),
)

KNOWS = N_("**This model knows {kinds} kinds of leaf of {n} crops.**")
KNOWS_ONE_CROP = N_("**This model knows {kinds} kinds of leaf of 1 crop.**")
# A lab's model whose labels name no crop (`late blight`, `healthy`: no `Crop___`, words/labels.names_crop), or
# not all of them: the crops it knows are not all its kinds of leaf.
KNOWS_NO_CROP = N_("**This model knows {kinds} kinds of leaf.**")
KNOWS_FIELD = N_("Learnt from photos taken on the plant too: {crops}.")
KNOWS_LAB_ONLY = N_("Learnt only from one leaf on a plain background (photograph them that way): {crops}.")
# Measured on a lab's model of 3 tomato conditions (docs/training.md, "The other-leaves check";
# benchmarks/lab_other_crops.py): with the other-leaves check `leafdoc train` fits by default, it answered 14.3% of
# 300 leaves of other crops and 52.4% of tomato leaves with other conditions (86.0% of its own); without it, 60.3%
# and 78.1%. So "may" still holds for a lab's model, and for the starter (it knows its crops' common conditions).
KNOWS_NOTHING_ELSE = N_("A leaf of another crop, or with another condition, may get one of these answers.")


def knows_sentences(labels: list[str], crops: dict, lang: str = "en") -> list[str]:
    """What a model of `labels` knows, in `lang`: how many conditions of which crops, and which crops it learnt from
    photos taken on the plant as well as from lab photos (`crops`: fieldcrops.crops_known's). The first sentence is
    Markdown bold (`**...**`). Labels that name no crop (a lab's `late blight`, `healthy`) are kinds of leaf of no
    crop: the first sentence then counts no crops."""
    field, lab_only = list(crops.get("field") or []), list(crops.get("lab_only") or [])
    n = len(field) + len(lab_only)
    of_crops = n and all(map(names_crop, labels))
    first = (KNOWS_ONE_CROP if n == 1 else KNOWS) if of_crops else KNOWS_NO_CROP
    said = [gettext(lang, first).format(kinds=len(labels), n=n)]
    if field:
        said.append(gettext(lang, KNOWS_FIELD).format(crops=listed(field, lang)))
    if lab_only:
        said.append(gettext(lang, KNOWS_LAB_ONLY).format(crops=listed(lab_only, lang)))
    said.append(gettext(lang, KNOWS_NOTHING_ELSE))
    return said


def knows_note(models: dict, lang: str = "en") -> str | None:
    """What the serving model knows, from `GET /v1/models` (`knows_sentences`), in `lang`, as Markdown. None when no
    version serves."""
    serving = models.get("serving_version")
    row = next((m for m in models.get("models", []) if m.get("version") == serving), None)
    if row is None:
        return None
    return " ".join(knows_sentences(list(row.get("labels") or []), row.get("crops") or {}, lang))


def serving_crops(models: dict) -> list[str]:
    """The crops the serving model knows, from `GET /v1/models`, as its `crops` name them (`tomato`, `bell
    pepper`): what the API's `crop` takes. Empty when no version serves."""
    serving = models.get("serving_version")
    row = next((m for m in models.get("models", []) if m.get("version") == serving), None)
    crops = (row or {}).get("crops") or {}
    return sorted({*(crops.get("field") or []), *(crops.get("lab_only") or [])})


def listed(names, lang: str = "en") -> str:
    """Names as a sentence says them: `corn`, `corn and tomato`, `corn, potato and tomato` (fieldcrops.py too), in
    `lang` (the crops' names are in the answers catalog)."""
    names = [gettext(lang, n) for n in names]
    if len(names) == 1:
        return names[0]
    return gettext(lang, AND).format(names=", ".join(names[:-1]), last=names[-1])


# Said with an answer whose light was corrected (the API's `light_corrected`: warm or cool).
LIGHT_CORRECTED = N_(
    "The light in this photo was {light} than in nearly all the photos the model learnt from, so its colours were "
    "corrected first. Colour tells many of these diseases apart: a photo in daylight gives a surer answer."
)

# Said with an answer whose photo the model framed (the API's `framed_box`): the leaf was small in the photo. Not
# with a refusal that found no leaf (not_a_leaf: what was framed is no leaf, a daisy) or a photo to take again
# (poor_photo: its problems are the answer); with "not sure" and a field photo it is, as filling the frame helps.
NOT_FRAMED_WITH = ("not_a_leaf", "poor_photo")
FRAMED = N_(
    "The leaf was small in this photo, so the model looked only at the square around it (the heat map shows that "
    "square). It reads best a photo in which the leaf fills most of the frame."
)


# Said with an answer for a crop the grower gave (the API's `crop_given`).
CROP_GIVEN = N_("You said this is {crop}: leafdoc chose only among the conditions of {crop} it knows.")
# ... and when the model, unaided, gave most of its probability to other crops (`crop_share` under a half).
CROP_DOUBT = N_(
    "Unaided, the model took this leaf for another crop than {crop}: check that the crop is right, since the answer "
    "can only be a condition of {crop}."
)


WARMER = N_("warmer")
COOLER = N_("cooler")


def said_framed(answer: dict) -> bool:
    """Whether the framing note (FRAMED) goes with `answer` (the API's): it was framed, and no NOT_FRAMED_WITH refusal.
    The offline page's words.js `framedNote` follows the same rule."""
    return bool(answer.get("framed_box")) and not (answer.get("abstained") and answer.get("reason") in NOT_FRAMED_WITH)


def answer_notes(answer: dict, lang: str = "en") -> list[str]:
    """What the web page and the desktop app say under an answer about how the photo was read: framed around a
    small leaf (FRAMED), its light corrected (LIGHT_CORRECTED), the crop the grower gave (CROP_GIVEN, CROP_DOUBT),
    in `lang`."""
    notes = [gettext(lang, FRAMED)] if said_framed(answer) else []
    if answer.get("light_corrected") in ("warm", "cool"):
        light = gettext(lang, WARMER if answer["light_corrected"] == "warm" else COOLER)
        notes.append(gettext(lang, LIGHT_CORRECTED).format(light=light))
    if crop := answer.get("crop_given"):
        crop = gettext(lang, crop)  # the crops' names are in the catalogs (i18n_catalogs.answers_template)
        notes.append(gettext(lang, CROP_GIVEN).format(crop=crop))
        # under an answer, or a refusal between conditions of that crop (the doubt says why they are all of it);
        # not under a refusal that says what is wrong instead (the crop all but ruled out says it in other words)
        share = answer.get("crop_share")
        doubted = share is not None and share < 0.5
        if doubted and (not answer.get("abstained") or answer.get("candidates")):
            notes.append(gettext(lang, CROP_DOUBT).format(crop=crop))
    return notes


@dataclass(frozen=True)
class GuideEntry:
    caption: str  # short, under the picture: "✓ diagnosed" / "✗ field photo: not sure"
    photo: str  # what the photo shows
    answer: str  # what leafdoc answers for it, in words
    reason: str | None  # the reason code leafdoc answers with; None for a diagnosis
    file: str | None = None  # in GUIDE_DIR; None for an entry without a picture
    credit: str = ""  # who made the picture, and its licence (shown once per distinct credit)

    @property
    def good(self) -> bool:
        return self.reason is None

    @property
    def path(self) -> Path | None:
        return GUIDE_DIR / self.file if self.file else None


PLANTVILLAGE = N_("the leaf: PlantVillage, Hughes & Salathé 2015 (CC BY-SA 3.0)")

ENTRIES: tuple[GuideEntry, ...] = (
    GuideEntry(
        caption=N_("✓ diagnosed"),
        photo=N_("One leaf filling the frame, on a plain background, in daylight, in focus."),
        answer=N_("leafdoc's starter model answers: Potato — Early blight, over 99% sure (right)."),
        reason=None,
        file="good_leaf.jpg",
        credit=PLANTVILLAGE,
    ),
    GuideEntry(
        caption=N_("✗ field photo: answered only when sure; here not sure"),
        photo=N_("Corn leaves on the plant, with other leaves and stems around them."),
        answer=N_(
            "Not sure: it could be northern leaf blight or common rust (it is common rust), with how to tell them "
            "apart. leafdoc's starter model learnt corn, tomato and potato from photos taken on the plant too, and "
            "answers those only when it is very sure. A field photo of any other crop gets 'not sure': "
            "pick one leaf, lay it on paper, photograph it from above."
        ),
        reason="unsure",
        file="field_photo.jpg",
        credit=N_("the field photo: PlantDoc, Singh et al. 2020 (CC BY 4.0)"),
    ),
    GuideEntry(
        caption=N_("✗ field photo of another crop: not sure"),
        photo=N_("A leaf on the plant, of a crop the model knows only from lab photos (listed under the photo)."),
        answer=N_(
            "Not sure: leafdoc knows that crop only from one leaf on a plain background, so any diagnosis would be a "
            "guess. Pick one leaf, lay it on paper, photograph it from above."
        ),
        reason="unlike_training",
    ),
    GuideEntry(
        caption=N_("✗ blurred: not a usable photo"),
        photo=N_("The same leaf, out of focus (blurred here on purpose)."),
        answer=N_(
            "Not a usable photo: blurred; hold the camera still and focus on the leaf. Too dark, too bright or "
            "too small photos get this answer too, saying what to fix."
        ),
        reason="poor_photo",
        file="blurred_leaf.jpg",
        credit=PLANTVILLAGE,
    ),
    GuideEntry(
        caption=N_("✗ not a leaf: not sure"),
        photo=N_("A daisy: not a leaf."),
        answer=N_("Not sure this is a leaf photo like the ones the model knows: no diagnosis."),
        reason="not_a_leaf",
        file="not_a_leaf.jpg",
        credit=N_("the daisy: Mitchell Haindfield (CC BY 2.0)"),
    ),
    GuideEntry(
        caption=N_("? a plant or disease it does not know: not sure, or a wrong answer"),
        photo=N_("A leaf of a plant, or with a disease, that the model was not trained on."),
        answer=N_(
            "It may hesitate between diseases it knows (not sure, naming the two or three), or name one of them "
            "wrongly: see the list of plants it knows above."
        ),
        reason="unsure",
    ),
    GuideEntry(
        caption=N_("✗ a leaf a lab's own model was not taught: not sure"),
        photo=N_(
            "A leaf of another crop, or with another disease or pest, shown to a lab's own model of a few conditions "
            "(trained with leafdoc on the lab's photos)."
        ),
        answer=N_(
            "Not sure: the leaf looks more like other crops and conditions than like the ones the model was taught, "
            "so any diagnosis would be a guess. Another photo will not change that: check which crops and conditions "
            "the model knows (listed above)."
        ),
        reason="unknown_leaf",
    ),
)


def pictured() -> tuple[GuideEntry, ...]:
    """The entries with a picture that is there (a package installed without the repository's examples/
    has none: the guide then shows its words only)."""
    return tuple(e for e in ENTRIES if e.path is not None and e.path.is_file())


CREDITS = N_("Example photos: {credits}.")


def credits(lang: str = "en") -> str:
    shown = dict.fromkeys(gettext(lang, e.credit) for e in ENTRIES if e.file and e.credit)  # in order, once each
    return gettext(lang, CREDITS).format(credits="; ".join(shown))
