"""The promotion rule: should a freshly trained candidate replace the serving model?

Both are scored on the same labelled images (the candidate's test split) with the serving path, on
`settings.promote_metric` with `settings.promote_margin`; the decision, with both figures and the rule in
words, is kept in the candidate's registry row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from leafdoc.evaluate.score import Scores, score
from leafdoc.inference.predictor import Predictor
from leafdoc.registry import LOWER_IS_BETTER, check_promote_metric


def _probs_in(labels: list[str], probs: np.ndarray, union: list[str]) -> np.ndarray:
    out = np.zeros((len(probs), len(union)), dtype=np.float64)
    index = {lab: i for i, lab in enumerate(union)}
    for j, lab in enumerate(labels):
        out[:, index[lab]] = probs[:, j]
    return out


def score_models(
    model_dirs: list[Path], images: list[bytes], labels: list[str], max_pixels: int
) -> tuple[list[dict], int]:
    """Evaluate each model folder on the same labelled images with the serving path (ONNX Runtime), one
    pass each; labels a model does not know count as wrong for it. Returns (summary per model, n used)."""
    predictors = [Predictor(d, max_pixels=max_pixels) for d in model_dirs]
    union = sorted(set(labels).union(*(p.labels for p in predictors)))
    index = {lab: i for i, lab in enumerate(union)}
    y = np.array([index[lab] for lab in labels], dtype=np.int64)
    out = []
    for p in predictors:
        x = np.stack([p.preprocess(b, f"test image {i}") for i, b in enumerate(images)])
        own = score(p, x, np.zeros(len(x), dtype=np.int64))  # the pass; its labels mapped into the union below
        out.append(Scores(union, y, _probs_in(p.labels, own.probs, union)).summary())
    return out, len(labels)


def promotion_decision(
    candidate_dir: Path,
    serving_dir: Path | None,
    serving_version: int | None,
    images: list[bytes],
    labels: list[str],
    *,
    metric: str,
    margin: float,
    max_pixels: int,
    candidate: dict | None = None,
) -> dict:
    """Should the candidate replace the serving model? Both are scored on the same images. `candidate`: its
    summary figures on those images from the pass that scored it after training (then only the serving
    model predicts them here; the candidate's figures are the same either way: a label only the serving
    model knows is one the candidate never predicts)."""
    check_promote_metric(metric)
    lower = metric in LOWER_IS_BETTER
    rule = f"candidate {metric} {'<=' if lower else '>='} serving {metric} {'+' if lower else '-'} {margin}"
    base = {
        "metric": metric,
        "margin": margin,
        "rule": rule,
        "n_images": len(labels),
        "serving_version": serving_version,
    }
    if serving_dir is None:
        cand = candidate or (score_models([candidate_dir], images, labels, max_pixels)[0][0] if labels else {})
        return {
            **base,
            "candidate": cand.get(metric),
            "serving": None,
            "promote": True,
            "reason": "no model was serving",
        }
    if not labels:
        return {**base, "candidate": None, "serving": None, "promote": False, "reason": "no evaluation images"}
    if candidate is not None:
        cand, serv = candidate, score_models([serving_dir], images, labels, max_pixels)[0][0]
    else:
        (cand, serv), _ = score_models([candidate_dir, serving_dir], images, labels, max_pixels)
    c, sv = float(cand[metric]), float(serv[metric])
    ok = c <= sv + margin if lower else c >= sv - margin
    verdict = "at least as good as" if ok else "worse than"
    return {
        **base,
        "candidate": c,
        "serving": sv,
        "promote": ok,
        "reason": (
            f"candidate {metric} {c:.4f} is {verdict} serving v{serving_version} {sv:.4f} "
            f"(margin {margin}) on {len(labels)} test images"
        ),
    }
