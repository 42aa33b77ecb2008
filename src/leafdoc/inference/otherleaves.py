"""Is this leaf one of the model's own classes, or some other leaf? A lab's check, taught by leaves it must refuse.

A lab's model (`leafdoc train` on a few classes of its own, with its defaults) knows those classes and nothing else,
and its other checks refuse what is not a leaf or not a lab photo: a leaf of another crop, or of its own crop with a
condition it was not taught, mostly gets an answer (a tomato lab's model answered 62% of other crops' leaves). This
check learns from leaves it must refuse. leafdoc ships a bank of other leaves for each network a lab's model is
made from (`leaf_bank.npz`: the frozen ImageNet EfficientNet-Lite0's features, as a lab model's ONNX `features` output
gives them at 224 px, of 30 PlantVillage photos of each of 30 classes, float16; `leaf_bank_starter.npz`: the same
photos through the starter's backbone, for a model made with `--init-from models/starter`; scripts/build_leaf_bank.py
makes them). Training fits a class-balanced logistic
regression on standardised features: the lab's photos (training and validation) against the bank, less the bank's
classes that are the lab's own. A photo whose P(other leaf) is above the threshold is refused, `unknown_leaf`
(inference/abstain.py). The threshold refuses at most `REFUSE_OWN` of the lab's own photos, as scored out of fold.
Measured before it was built (benchmarks/lab_negatives.py, docs/training.md): with whole crops and conditions held out
of the bank, other crops' leaves answered fell from 62% to 23-30% (tomato) and 50% to 6% (apple).

Which of the bank's classes are the lab's own: by name (`own_by_name`: crop and condition words, so a lab folder
`tomato_early_blight` leaves out `Tomato___Early_blight`), then by look (a bank class the fitted check would mostly
answer, out of fold, is left out too, and named). The check is fitted only where the bank's features are the model's:
the same input preparation, and the model's features of a fixed probe image the same as the bank's (another backbone,
another size, or a fine-tuned backbone differ, and get no check, with the reason in the card).

Which word a leaf the not-a-leaf check also refuses gets: from the starter's backbone that check finds most other
crops' leaves unlike the lab's and refused them first, as "no leaf in this photo" (71% of other crops' photos for the
guide's tomato model, session 59). The banks hold the photos' colour histograms too (the not-a-leaf score reads them),
so training scores the bank's other leaves with the model's own not-a-leaf check: `no_leaf_from` is the score that
NO_LEAF_SHARE of them reach. A photo both checks refuse, its not-a-leaf score below that, is `unknown_leaf`; above it,
`not_a_leaf` (inference/abstain.py, and the offline page's checks.js).

The card's `other_leaves` section holds it: score = sigmoid(features . weights + bias), refused when above
`threshold`; `no_leaf_from` where the model has a not-a-leaf check and the bank has colours. Only NumPy.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BANK_FILE = Path(__file__).with_name("leaf_bank.npz")  # the frozen ImageNet EfficientNet-Lite0's
STARTER_BANK_FILE = BANK_FILE.with_name("leaf_bank_starter.npz")  # the starter's backbone (--init-from models/starter)
BANK_FILES = (BANK_FILE, STARTER_BANK_FILE)
FORMAT = 1
REFUSE_OWN = 0.05  # the share of the lab's own photos (out of fold) the threshold may refuse
C = 0.1  # inverse regularisation strength, as measured (benchmarks/lab_negatives.py: not tuned)
FOLDS = 5
PROBE_AGREEMENT = 0.999  # cosine similarity of the probe image's features to the bank's: the same network
LOOKS_OWN = 0.75  # a bank class the check answers this share of (out of fold) is taken as one of the lab's own
# (the lab's own photos are answered 95% by design; a look-alike of them, in the bank, about half: benchmarks)
MIN_BANK_CLASSES = 5  # fewer left after the lab's own are out: no check
NO_LEAF_SHARE = 0.05  # the share of the bank's other leaves whose not-a-leaf score no_leaf_from leaves above it
PREP_FIELDS = ("size", "framing", "white_balance", "morphology", "morph_kernel")

# Words a crop goes by, beyond the first word of PlantVillage's crop names.
CROP_ALIASES = {"corn": {"maize"}, "pepper": {"capsicum"}, "orange": {"citrus"}}
SPELLINGS = {"grey": "gray", "mould": "mold", "maize": "corn", "capsicum": "pepper", "citrus": "orange"}


def probe_image(size: int) -> np.ndarray:
    """A fixed image (colour bands and rings), the same on every machine: the bank's features of it tell whether a
    model's network is the bank's."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    r = np.hypot(yy - 0.5, xx - 0.45)
    img = np.stack(
        [
            0.5 + 0.5 * np.sin(12 * r),
            0.6 + 0.3 * np.cos(7 * xx + 3 * yy),
            0.4 + 0.4 * np.sin(5 * yy) * np.cos(9 * xx),
        ],
        axis=-1,
    )
    return np.clip(img * 255, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Bank:
    features: np.ndarray  # (N, D) float16
    y: np.ndarray  # (N,) index into classes
    classes: tuple[str, ...]
    probe: np.ndarray  # (D,) the network's features of probe_image(prep["size"])
    prep: dict  # the input preparation the photos went through (the model card's `input` fields)
    name: str
    source: str
    colours: np.ndarray | None = None  # (N, 80) float16: inference/ood.py's colour_features of the prepared photos

    @classmethod
    def load(cls, path: Path = BANK_FILE) -> Bank:
        with np.load(path, allow_pickle=False) as z:
            prep = {k: z[f"prep_{k}"].item() for k in PREP_FIELDS}
            return cls(
                z["features"],
                z["y"].astype(int),
                tuple(str(c) for c in z["classes"]),
                z["probe"].astype(np.float32),
                {k: (v if isinstance(v, str) else int(v)) for k, v in prep.items()},
                str(z["name"]),
                str(z["source"]),
                z["colours"] if "colours" in z.files else None,  # banks made before session 59 have none
            )

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            features=self.features.astype(np.float16),
            y=self.y.astype(np.int16),
            classes=np.array(self.classes),
            probe=self.probe.astype(np.float32),
            name=np.array(self.name),
            source=np.array(self.source),
            **{f"prep_{k}": np.array(v) for k, v in self.prep.items()},
            **({"colours": self.colours.astype(np.float16)} if self.colours is not None else {}),
        )


def words(name: str) -> list[str]:
    out = []
    for w in re.split(r"[^a-z0-9]+", name.lower()):
        if w:
            out.append(SPELLINGS.get(w, w))
    return out


def _crop_and_condition(bank_class: str) -> tuple[set[str], set[str]]:
    crop, _, condition = bank_class.partition("___")
    first = words(crop)[:1]
    crops = set(first) | (CROP_ALIASES.get(first[0], set()) if first else set())
    crops = {SPELLINGS.get(c, c) for c in crops}
    return crops, set(words(condition)) - crops


def own_by_name(lab_labels: list[str], bank_classes: tuple[str, ...]) -> dict[str, str]:
    """The bank's classes a lab's class names say are its own: {bank class: lab label}. A lab name matches when it
    names the crop (or no crop the bank knows) and its condition words are all the bank class's, or the bank class's
    are all its own: `tomato_early_blight`, `Early blight` (every crop's early blight), `corn_gray_leaf_spot`,
    `healthy` (every crop's healthy). A name with a crop and no condition words (`tomato`) takes all of that crop."""
    parsed = {b: _crop_and_condition(b) for b in bank_classes}
    all_crops = set().union(*(c for c, _ in parsed.values())) if parsed else set()
    own: dict[str, str] = {}
    for label in lab_labels:
        lw = set(words(label))
        lab_crops = lw & all_crops
        lab_condition = lw - all_crops
        for b, (crops, condition) in parsed.items():
            if lab_crops and not lab_crops & crops:
                continue
            if not lab_condition:
                same = bool(lab_crops)  # a crop's name alone: all of that crop
            else:
                same = bool(condition) and (condition <= lab_condition or lab_condition <= condition)
            if same:
                own.setdefault(b, label)
    return own


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(0)
    scale = x.std(0)
    return mean, np.where(scale > 1e-6, scale, 1.0)


def fit_logistic(x: np.ndarray, t: np.ndarray, c: float = C, iters: int = 30) -> tuple[np.ndarray, float]:
    """A class-balanced, L2-regularised logistic regression (the objective of scikit-learn's LogisticRegression with
    C and class_weight="balanced") on standardised x; weights and intercept on x as given.

    By Newton's method in the photos' space, since a lab has fewer photos than features: the weights are
    c * Z^T a (the optimum lies there), so each step solves an n x n system, not a 1,281 x 1,281 one (0.4 CPU-s for
    900 photos against 2.9). The intercept carries a negligible penalty (1e-4) so that it is in the same form."""
    mean, scale = _standardise(x)
    z = (x - mean) / scale
    n = len(t)
    sw = np.where(t == 1, n / (2 * max(int(t.sum()), 1)), n / (2 * max(int((1 - t).sum()), 1)))
    eps = 1e-4
    kernel = c * (z @ z.T) + 1 / eps
    a = np.zeros(n)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(kernel @ a, -30, 30)))
        step = np.linalg.solve((sw * p * (1 - p))[:, None] * kernel + np.eye(n), sw * (p - t) + a)
        a -= step
        if np.abs(kernel @ step).max() < 1e-6:
            break
    weights = c * (z.T @ a) / scale
    return weights, float(a.sum() / eps - mean @ weights)


def scores(features: np.ndarray, weights: np.ndarray, bias: float) -> np.ndarray:
    """P(some other leaf) of each row of features."""
    logit = np.asarray(features, dtype=np.float64) @ np.asarray(weights, dtype=np.float64) + bias
    return 1 / (1 + np.exp(-np.clip(logit, -50, 50)))


def _out_of_fold(x: np.ndarray, t: np.ndarray, groups: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each photo scored by a check fitted without its fold (folds stratified by `groups`)."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(t), dtype=int)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        fold[idx] = rng.permutation(len(idx)) % FOLDS
    out = np.empty(len(t))
    for k in range(FOLDS):
        held = fold == k
        if not held.any():
            continue
        w, b = fit_logistic(x[~held], t[~held])
        out[held] = scores(x[held], w, b)
    return out


def prep_differs(bank: Bank, prep: dict) -> list[str]:
    """The input preparation fields in which `prep` (a model card's) is not the bank's photos'."""
    return [k for k in PREP_FIELDS if str(prep.get(k)) != str(bank.prep.get(k))]


def same_network(bank: Bank, probe_features: np.ndarray) -> bool:
    a = np.asarray(probe_features, dtype=np.float64).ravel()
    b = bank.probe.astype(np.float64).ravel()
    if a.shape != b.shape:
        return False
    cos = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
    return cos >= PROBE_AGREEMENT


def not_fitted(reason: str) -> dict:
    """The card's section for a model without the check: why not (so `leafdoc card` can say it)."""
    return {"format": FORMAT, "fitted": False, "why_not": reason}


def gate(
    labels: list[str], prep: dict, probe_features: np.ndarray, bank: Bank | None = None
) -> tuple[Bank | None, dict | None]:
    """The bank, and None when the check can be fitted for this model; else (None, the card's section saying why not):
    the bank missing, photos prepared otherwise, another network, or too few of its classes not the lab's by name."""
    if bank is None:
        banks = [Bank.load(path) for path in BANK_FILES if path.exists()]
        if not banks:
            return None, not_fitted("leafdoc's bank of other leaves is not installed")
        # The bank of this model's network, else the first (whose mismatch the card then names).
        bank = next((b for b in banks if not prep_differs(b, prep) and same_network(b, probe_features)), banks[0])
    if differs := prep_differs(bank, prep):
        why = ", ".join(f"{k} {bank.prep.get(k)}, not {prep.get(k)}" for k in differs)
        return None, not_fitted(f"the bank's photos were prepared otherwise ({why})")
    if not same_network(bank, probe_features):
        return None, not_fitted(
            "the model's features are not the bank's (leafdoc's banks are of the frozen ImageNet EfficientNet-Lite0 "
            f"and of the starter's backbone, at {bank.prep['size']} px; a fine-tuned or other backbone differs)"
        )
    return bank, too_few(bank, left_out_by_name(labels, bank))


def model_bank(predictor) -> tuple[Bank | None, dict | None, dict, np.ndarray]:
    """gate for a model (a Predictor, its card's preparation and its features of the probe image): (the bank, None or
    the card's section saying why not, the preparation, the probe's features)."""
    size = int(predictor.card.input.size)
    probe = predictor.predict_arrays(probe_image(size)[None], ["features"])["features"][0]
    prep = {k: getattr(predictor.card.input, k) for k in PREP_FIELDS}
    bank, refused = gate(predictor.labels, prep, probe)
    return bank, refused, prep, probe


def with_no_leaf_from(section: dict, bank: Bank | None, ood_scores_of) -> dict:
    """A fitted section with `no_leaf_from` measured again under a not-a-leaf check fitted anew (`leafdoc calibrate`),
    or without it when there is no bank with colours to measure it on."""
    kept = {k: v for k, v in section.items() if k not in ("no_leaf_from", "no_leaf_rule", "weights")}
    extra = no_leaf_section(section.get("left_out") or {}, bank, ood_scores_of) if bank is not None else {}
    return {**kept, **extra, "weights": section["weights"]}  # the weights stay last


def left_out_by_name(labels: list[str], bank: Bank) -> dict[str, str]:
    """The bank's classes the lab's names say are its own (own_by_name), each with why, as the card lists them."""
    return {b: f"named like your class {lab!r}" for b, lab in own_by_name(labels, bank.classes).items()}


def too_few(bank: Bank, left_out: dict[str, str]) -> dict | None:
    """The card's section when too few of the bank's classes are left once `left_out` is out; else None."""
    if len(bank.classes) - len(left_out) >= MIN_BANK_CLASSES:
        return None
    why = f"{len(left_out)} of the bank's {len(bank.classes)} classes are this model's own"
    return {**not_fitted(why + ": too few other leaves are left to learn from"), "left_out": left_out}


def fit(
    features: np.ndarray,
    y: np.ndarray,
    labels: list[str],
    prep: dict,
    probe_features: np.ndarray,
    bank: Bank | None = None,
    ood_scores_of: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> dict:
    """The card's `other_leaves` section: the check fitted on the lab's photos' features (training and validation),
    or `fitted: false` and why not (gate). With `ood_scores_of` (the model's not-a-leaf check, OodCheck.scores_of),
    also `no_leaf_from` (no_leaf_from)."""
    bank, refused = gate(labels, prep, probe_features, bank)
    if refused is not None:
        return refused
    left_out = left_out_by_name(labels, bank)
    x_lab = np.asarray(features, dtype=np.float64)
    groups_lab = np.asarray(y, dtype=int)
    for attempt in range(3):  # by name, then by look (again once those are out, at most twice)
        if (section := too_few(bank, left_out)) is not None:
            return section
        keep = np.array([bank.classes[i] not in left_out for i in bank.y])
        x_bank = bank.features[keep].astype(np.float64)
        x = np.r_[x_lab, x_bank]
        t = np.r_[np.zeros(len(x_lab)), np.ones(len(x_bank))]
        groups = np.r_[groups_lab, 1000 + bank.y[keep]]
        oof = _out_of_fold(x, t, groups)
        threshold = float(np.quantile(oof[: len(x_lab)], 1 - REFUSE_OWN))
        answered = oof[len(x_lab) :] <= threshold
        bank_y = bank.y[keep]
        looks_own = {
            bank.classes[c]: float(answered[bank_y == c].mean())
            for c in np.unique(bank_y)
            if answered[bank_y == c].mean() >= LOOKS_OWN
        }
        if not looks_own or attempt == 2:
            break
        for b, share in looks_own.items():
            left_out[b] = f"looks like your classes (the check would answer {share:.0%} of its photos)"
    weights, bias = fit_logistic(x, t)
    return {
        "format": FORMAT,
        "fitted": True,
        "bank": bank.name,
        "bank_source": bank.source,
        "bank_classes": len(bank.classes),
        "bank_photos": int(len(x_bank)),
        "left_out": left_out,
        "rule": f"refuse a photo whose P(other leaf) is above the threshold: at most {REFUSE_OWN:.0%} of this "
        f"model's own {len(x_lab)} training and validation photos, scored out of fold ({FOLDS} folds)",
        "threshold": round(threshold, 6),
        "own_answered_out_of_fold": round(float((oof[: len(x_lab)] <= threshold).mean()), 4),
        "bank_refused_out_of_fold": round(float((~answered).mean()), 4),
        "bias": bias,
        **no_leaf_section(left_out, bank, ood_scores_of),
        "weights": [float(v) for v in weights.astype(np.float32)],  # the 1,280 weights stay last
    }


def no_leaf_section(
    left_out: dict, bank: Bank, ood_scores_of: Callable[[np.ndarray, np.ndarray], np.ndarray] | None
) -> dict:
    """`no_leaf_from` and its rule, for the card's section: the not-a-leaf score (`ood_scores_of`, the model's check)
    that NO_LEAF_SHARE of the bank's other leaves (its classes not the lab's own) reach. A photo the not-a-leaf check
    refuses below it, and this check takes for another leaf, is `unknown_leaf` (a leaf the model was not taught), not
    `not_a_leaf` (inference/abstain.py). Empty without a not-a-leaf check or a bank with colours."""
    if ood_scores_of is None or bank.colours is None:
        return {}
    keep = np.array([bank.classes[i] not in left_out for i in bank.y])
    scores = ood_scores_of(bank.features[keep].astype(np.float32), bank.colours[keep].astype(np.float32))
    return {
        "no_leaf_from": round(float(np.quantile(scores, 1 - NO_LEAF_SHARE)), 6),
        "no_leaf_rule": f"a photo the not-a-leaf check refuses is a leaf of another kind (unknown_leaf), not no leaf, "
        f"when this check refuses it too and its not-a-leaf score is below no_leaf_from: the score "
        f"{1 - NO_LEAF_SHARE:.0%} of the bank's {int(keep.sum())} other leaves stay under",
    }


class OtherLeavesCheck:
    """The fitted check, read from the card's `other_leaves` section (None when the card has no fitted one)."""

    def __init__(self, section: dict):
        self.weights = np.asarray(section["weights"], dtype=np.float64)
        self.bias = float(section["bias"])
        self.threshold = float(section["threshold"])
        self.no_leaf_from = float(section["no_leaf_from"]) if section.get("no_leaf_from") is not None else None

    @classmethod
    def from_card(cls, card) -> OtherLeavesCheck | None:
        """None for a card without the section, one that says why there is no check (`fitted: false`), or one in a
        format this leafdoc does not know (the server and the offline page, offline/checks.py, alike)."""
        section = getattr(card, "other_leaves", None)
        if not section or not section.get("fitted") or section.get("format") != FORMAT:
            return None
        return cls(section)

    def score(self, features: np.ndarray) -> np.ndarray:
        return scores(np.atleast_2d(features), self.weights, self.bias)
