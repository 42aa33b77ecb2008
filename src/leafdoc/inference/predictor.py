"""Predictions on ONNX Runtime from a model folder, through the same preprocessing as training.
No TensorFlow here: a serving install does not have it."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from leafdoc.errors import LeafdocError, ModelError
from leafdoc.images import DEFAULT_MAX_PIXELS, preprocess

SERVING_FILES = ("model.onnx", "labels.json", "card.json")


def check_model_dir(model_dir: Path, files: tuple[str, ...] = SERVING_FILES) -> Path:
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir}: no such model folder.", hint="Pass a folder written by `leafdoc train`.")
    missing = [f for f in files if not (model_dir / f).is_file()]
    if missing:
        hint = (
            "Re-run `leafdoc export MODEL_DIR --format onnx`."
            if missing == ["model.onnx"]
            else ("Copy the whole model folder again, or re-train it.")
        )
        raise ModelError(f"{model_dir}: the model folder is missing {', '.join(missing)}.", hint=hint)
    return model_dir


@dataclass
class Prediction:
    file: str
    top_k: list[dict] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        d = {"file": self.file}
        if self.error is not None:
            d["error"] = self.error
        else:
            d["top_k"] = self.top_k
        return d


class Predictor:
    """Loads model.onnx, labels.json and card.json; answers for arrays, files or bytes."""

    def __init__(self, model_dir: Path, threads: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS):
        import onnxruntime as ort

        self.model_dir = check_model_dir(model_dir)
        try:
            self.labels: list[str] = json.loads((self.model_dir / "labels.json").read_text())
            self.card: dict = json.loads((self.model_dir / "card.json").read_text())
            self.size = int(self.card["input"]["size"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{self.model_dir}: labels.json or card.json is not valid ({exc}).") from None
        self.morphology = self.card["input"].get("morphology", "none")
        self.morph_kernel = int(self.card["input"].get("morph_kernel", 3))
        self.max_pixels = max_pixels
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(
                str(self.model_dir / "model.onnx"), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelError(
                f"{self.model_dir}/model.onnx: ONNX Runtime cannot load it ({exc}).",
                hint="Re-run `leafdoc export MODEL_DIR --format onnx`.",
            ) from None
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._lock = threading.Lock()
        n_out = self.session.get_outputs()[0].shape[-1]
        if isinstance(n_out, int) and n_out != len(self.labels) and "probabilities" in self.output_names:
            raise ModelError(
                f"{self.model_dir}: labels.json has {len(self.labels)} labels but the model has {n_out} outputs."
            )

    def preprocess(self, source: bytes | str | Path, name: str | None = None) -> np.ndarray:
        return preprocess(
            source,
            self.size,
            morphology=self.morphology,
            morph_kernel=self.morph_kernel,
            name=name,
            max_pixels=self.max_pixels,
        )

    def predict_arrays(self, x: np.ndarray, outputs: list[str] | None = None, batch: int = 64) -> dict[str, np.ndarray]:
        """uint8/float (N, S, S, 3) -> {output name: array}; batches internally."""
        names = [n for n in (outputs or self.output_names) if n in self.output_names]
        parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for start in range(0, len(x), batch):
            chunk = np.asarray(x[start : start + batch], dtype=np.float32)
            for n, arr in zip(names, self.session.run(names, {self.input_name: chunk}), strict=True):
                parts[n].append(arr)
        return {n: (np.concatenate(v) if v else np.zeros((0,))) for n, v in parts.items()}

    def top_k(self, probs: np.ndarray, k: int) -> list[dict]:
        k = max(1, min(k, len(self.labels)))
        order = np.argsort(-probs)[:k]
        return [{"label": self.labels[i], "probability": round(float(probs[i]), 6)} for i in order]

    def predict_files(self, paths: list[str | Path], k: int = 3) -> list[Prediction]:
        """Each file gets its top-k, or an `error` if it cannot be read; one bad file never stops the rest."""
        results: list[Prediction] = []
        arrays, slots = [], []
        for p in paths:
            pred = Prediction(file=str(p))
            try:
                arrays.append(self.preprocess(p))
                slots.append(pred)
            except LeafdocError as exc:
                pred.error = exc.message + (f" {exc.hint}" if exc.hint else "")
            results.append(pred)
        if arrays:
            probs = self.predict_arrays(np.stack(arrays), ["probabilities"])["probabilities"]
            for pred, p in zip(slots, probs, strict=True):
                pred.top_k = self.top_k(p, k)
        return results
