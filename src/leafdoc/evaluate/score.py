"""Score a model on labelled images: ONE prediction pass, every figure from it.

`score` runs the serving path (a Predictor: ONNX Runtime, or a .tflite) once over model-ready arrays and
keeps the probabilities (and, when asked, leafdoc's decision for each image); `Scores` then gives the
summary a card keeps, the full figures `leafdoc evaluate` reports (per class, confusion, reliability,
abstention and coverage), each test image's outcome, without predicting again. `score_files` is the same
for photo files, listing the ones that cannot be read instead of stopping.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from leafdoc.core.errors import ConfigError, LeafdocError
from leafdoc.evaluate.metrics import (
    compute_metrics,
    most_confused,
    recall_by_class,
    reliability_bins,
    selective_metrics,
)
from leafdoc.evaluate.significance import accuracy_interval
from leafdoc.imaging.photos import read_source, sha256_bytes
from leafdoc.inference.abstain import Decision
from leafdoc.inference.predictor import Predictor

Progress = Callable[[int, int], None]

# Preprocess and predict in chunks so a 50k-image folder never sits in memory at once.
CHUNK = 64


@dataclass
class Scores:
    """What one prediction pass over labelled images found: y (true class index into `labels`), the
    probabilities, leafdoc's decision per image when the pass made them, and the network's features when
    asked for (the not-a-leaf check is calibrated on the validation pass's)."""

    labels: list[str]
    y: np.ndarray
    probs: np.ndarray
    decisions: list[Decision] | None = None
    features: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.y)

    @cached_property
    def correct(self) -> np.ndarray:
        return self.probs.argmax(axis=1) == self.y if self.n else np.zeros(0, dtype=bool)

    def summary(self) -> dict:
        """n, accuracy, top-3 accuracy, macro F1, ECE (rounded): what a model card keeps per split."""
        return compute_metrics(self.y, self.probs, self.labels, summary_only=True)

    def card_test(self) -> dict:
        """The summary and each class's recall and photos (`per_class`, the classes with photos here): what a model
        card keeps of its test split, so that its words can name the classes it finds least often."""
        return self.summary() | {"per_class": recall_by_class(self.metrics["per_class"])}

    @cached_property
    def metrics(self) -> dict:
        """Everything compute_metrics gives: the summary, per class precision/recall/F1/support, confusion."""
        return compute_metrics(self.y, self.probs, self.labels)

    def figures(self) -> dict:
        """The full report: metrics, accuracy's 95% interval, the most confused pairs, the reliability bins,
        and, with decisions, coverage and accuracy of what leafdoc answered."""
        out = dict(self.metrics)
        out["accuracy_ci95"] = [round(v, 4) for v in accuracy_interval(out["accuracy"], out["n"])]
        out["most_confused"] = most_confused(np.array(out["confusion_matrix"]), self.labels)
        out["reliability"] = reliability_bins(self.probs, self.y)
        if self.decisions is not None:
            out["selective"] = selective_metrics(self.y, self.probs, [d.reason for d in self.decisions])
        return out

    def outcomes(self, shas: list[str]) -> dict:
        """Which images the model got right ('1') or wrong ('0'), ordered by the images' content hashes,
        and an id of that set of images. Two models with the same id were scored on the same images, so a
        report can pair them (McNemar's test): accuracy alone cannot say whether they differ beyond chance."""
        order = sorted(range(len(shas)), key=shas.__getitem__)
        return {
            "images": hashlib.sha256("\n".join(sorted(shas)).encode()).hexdigest()[:16],
            "correct": "".join("1" if self.correct[i] else "0" for i in order),
        }


def score(
    predictor: Predictor,
    images: np.ndarray,
    y: np.ndarray,
    labels: list[str] | None = None,
    features: bool = False,
) -> Scores:
    """One pass of the model over model-ready arrays (N, S, S, 3) with their class indices into `labels`
    (the model's labels by default); with `features`, the same pass keeps the network's features too (None
    for a model without that output)."""
    labels = list(labels if labels is not None else predictor.labels)
    if not len(images):
        return Scores(labels, np.zeros(0, dtype=np.int64), np.zeros((0, len(predictor.labels)), dtype=np.float32))
    out = predictor.predict_arrays(np.asarray(images), ["probabilities", "features"] if features else ["probabilities"])
    return Scores(labels, np.asarray(y, dtype=np.int64), out["probabilities"], features=out.get("features"))


def _error_text(exc: LeafdocError, name: str) -> str:
    return exc.message.removeprefix(f"{name}: ") + (f" {exc.hint}" if exc.hint else "")


@dataclass
class FileScores:
    """score_files' answer: the Scores of the readable files, which files they were, and the others; with `hashes`,
    each kept file's sha256 (of the bytes the pass read, in `kept`'s order)."""

    scores: Scores
    kept: list[tuple[Path, str]]
    skipped: list[dict]
    shas: list[str] | None = None


def score_files(
    predictor: Predictor,
    files: list[tuple[Path, str]],
    progress: Progress | None = None,
    decide: bool = True,
    labelled: bool = True,
    hashes: bool = False,
) -> FileScores:
    """One pass over (path, label) photo files, in chunks, with leafdoc's decision for each readable photo;
    unreadable files are listed with the reason. Every label must be one of the model's (`labelled`=False:
    photos of no class, e.g. non-leaf photos, for their decisions only). With `hashes`, the sha256 of each readable
    file, from the bytes read once for the prediction (split.json names photos by it: `leafdoc evaluate`'s
    seen_in_training), so nobody reads and hashes the files a second time."""
    index = {label: i for i, label in enumerate(predictor.labels)}
    unknown = sorted({label for _, label in files} - set(index)) if labelled else []
    if unknown:
        raise ConfigError(
            f"label(s) {', '.join(map(repr, unknown))} are not labels of the model in {predictor.model_dir}.",
            hint="Score only photos of the model's classes.",
        )
    outputs = predictor.decision_outputs if decide else ["probabilities"]
    kept: list[tuple[Path, str]] = []
    skipped: list[dict] = []
    parts: list[np.ndarray] = []
    decisions: list[Decision] = []
    shas: list[str] = []
    for start in range(0, len(files), CHUNK):
        photos = []
        for path, label in files[start : start + CHUNK]:
            try:
                data, name = read_source(path, str(path))
                photos.append(predictor.load(data, name=name))
                kept.append((path, label))
                if hashes:
                    shas.append(sha256_bytes(data))
            except LeafdocError as exc:
                skipped.append({"file": str(path), "reason": _error_text(exc, str(path))})
            except OSError as exc:
                skipped.append({"file": str(path), "reason": f"cannot read the file ({exc})"})
        if photos:
            out = predictor.predict_arrays(np.stack([ph.x for ph in photos]), outputs)
            parts.append(out["probabilities"])
            if decide:
                for i, ph in enumerate(photos):
                    decisions.append(predictor.decide({k: v[i] for k, v in out.items()}, ph))
        if progress:
            progress(min(start + CHUNK, len(files)), len(files))
    probs = np.concatenate(parts) if parts else np.zeros((0, len(predictor.labels)), dtype=np.float32)
    y = np.array([index[label] if labelled else -1 for _, label in kept], dtype=np.int64)
    scores = Scores(list(predictor.labels), y, probs, decisions if decide else None)
    return FileScores(scores, kept, skipped, shas if hashes else None)
