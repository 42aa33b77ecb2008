"""The held-out half of a recipe's extra source (data.extra, e.g. field photos), scored for every run three ways:
- no abstention: the top answer for every photo (accuracy, macro F1: the report's "test folder" columns);
- as trained: leafdoc's decisions with the model folder's own checks (confidence, not-a-leaf);
- with the unlike-training check: a copy of the model folder calibrated as `leafdoc calibrate --field` does,
  on the extra source's calibration half (sha256 0-7, the half `with_extra` runs train on) and data.extra.nonleaf.

For a run trained on the calibration half, the last is what happens when a check fitted to refuse "photos
unlike lab photos" is kept on a model that has learnt them: it is reported, not recommended (README)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from leafdoc.evaluate.score import Scores, score_files
from leafdoc.inference.calibrate import calibrate_model_dir
from leafdoc.inference.predictor import Predictor


def _answered(scored: Scores) -> tuple[float, float | None]:
    """(share of photos answered, accuracy on the answered ones) from a pass with leafdoc's decisions."""
    answered = np.array([not d.abstained for d in scored.decisions], dtype=bool)
    share = float(answered.mean()) if scored.n else 0.0
    accuracy = float(scored.correct[answered].mean()) if answered.any() else None
    return share, accuracy


def held_out_figures(
    model_dir: Path,
    files: list[tuple[Path, str]],
    *,
    lab_root: Path,
    extra_root: Path,
    nonleaf: list[Path],
) -> dict:
    """Every figure of the held-out half for one model folder (floats only: they go to MLflow too)."""
    scored = score_files(Predictor(model_dir), files, decide=True).scores  # one pass: top answers and decisions
    out = scored.summary()
    share, acc = _answered(scored)
    out.update(answered=share, answered_accuracy=acc)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "model"
        shutil.copytree(model_dir, copy)
        calibrate_model_dir(copy, lab_root, list(nonleaf), field=[extra_root])
        share, acc = _answered(score_files(Predictor(copy), files, decide=True).scores)
    out.update(field_check_answered=share, field_check_answered_accuracy=acc)
    return {k: v for k, v in out.items() if v is not None}


def held_out_rows(runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The report's table of the held-out extra photos: one row per run."""

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.1%}"

    header = [
        "run",
        "trained on extra",
        "no abstention: accuracy",
        "as trained: answered",
        "accuracy on answered",
        "+ unlike-training check: answered",
        "accuracy on answered",
    ]
    rows = []
    for r in runs:
        ext = r.get("external_test") or {}
        if "answered" not in ext:
            continue
        rows.append(
            [
                r["name"],
                "yes" if r.get("with_extra") else "no",
                pct(ext.get("accuracy")),
                pct(ext.get("answered")),
                pct(ext.get("answered_accuracy")),
                pct(ext.get("field_check_answered")),
                pct(ext.get("field_check_answered_accuracy")),
            ]
        )
    return header, rows
