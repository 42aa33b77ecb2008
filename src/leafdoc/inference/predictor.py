"""Predictions on ONNX Runtime from a model folder, through the same preprocessing as training.
No TensorFlow here: a serving install does not have it."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from leafdoc.advice import Knowledge, shipped_knowledge
from leafdoc.core.errors import ImageError, LeafdocError, ModelError
from leafdoc.imaging.photos import (
    DEFAULT_MAX_PIXELS,
    FRAMINGS,
    WHITE_BALANCES,
    Frame,
    Preparation,
    min_side_for,
    model_region,
    open_photo,
    read_source,
    region_in_photo,
    resize_square,
)
from leafdoc.imaging.quality import PhotoProblem, check_photo
from leafdoc.inference.abstain import Decision, decide
from leafdoc.inference.answer import Answer, Unread
from leafdoc.inference.cropfirst import crop_indices, crop_share, parse_crop, within_crop
from leafdoc.inference.field import FieldCheck, photo_features
from leafdoc.inference.fieldcrops import crop_name
from leafdoc.inference.ood import OodCheck
from leafdoc.inference.otherleaves import OtherLeavesCheck
from leafdoc.modelfolder import (
    CARD_FILE,
    LABELS_FILE,
    ModelCard,
    check_model_dir,
    read_card,
    read_labels,
    variant_file,
)


@dataclass(frozen=True)
class Photo:
    """A photo ready for the model (uint8 S x S x 3) and what the quality checks found on the original."""

    x: np.ndarray
    problems: tuple[PhotoProblem, ...] = ()
    image: Image.Image | None = None  # the upright RGB photo as decoded (no larger than the model needs)
    frame: Frame | None = None  # where `image` sits in the photo as sent (its own size, the reduction)
    region: tuple[float, float, float, float] | None = None  # the square of `image` the model saw, if framed
    light_corrected: str | None = None  # `warm` or `cool`: a light beyond the training photos', corrected

    @property
    def framed_box(self) -> list[int] | None:
        """The square the model saw when it framed the photo, in pixels of the upright photo as sent; else None."""
        if self.region is None:
            return None
        return region_in_photo(self.region, self.frame or Frame(self.image.size))


class _Output:
    def __init__(self, name: str, shape: list):
        self.name, self.shape = name, shape


class TFLiteSession:
    """A .tflite file behind the few methods of an ONNX Runtime session the Predictor uses, so `leafdoc
    predict` can run the very file that goes on a phone. The interpreter (LiteRT's `ai_edge_litert`, or
    the one TensorFlow ships) is imported here only: the ONNX serving path never loads TensorFlow."""

    def __init__(self, path: Path, threads: int | None = None):
        import warnings

        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            try:
                from tensorflow.lite.python.interpreter import Interpreter
            except ImportError:
                raise ModelError(
                    f"{path}: running a .tflite needs a TFLite interpreter.",
                    hint="Install ai-edge-litert (or tensorflow), or predict with the folder's model.onnx.",
                ) from None
        try:
            with warnings.catch_warnings():  # TensorFlow's copy warns that it is deprecated for LiteRT's
                warnings.simplefilter("ignore")
                self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.runner = self.interpreter.get_signature_runner("serving_default")
        except Exception as exc:
            raise ModelError(
                f"{path}: the TFLite interpreter cannot load it ({exc}).",
                hint="Re-run `leafdoc export MODEL_DIR --format tflite`.",
            ) from None
        details = self.runner.get_output_details()
        order = ["probabilities", "logits", "features", "cam"]
        names = sorted(details, key=lambda n: order.index(n) if n in order else len(order))
        self._outputs = [_Output(n, [int(d) for d in details[n]["shape"]]) for n in names]
        self._inputs = [_Output(n, []) for n in self.runner.get_input_details()]

    def get_inputs(self) -> list[_Output]:
        return self._inputs

    def get_outputs(self) -> list[_Output]:
        return self._outputs

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        out = self.runner(**feeds)  # resizes the batch dimension to the input's
        return [np.asarray(out[n]) for n in names]


def card_preparation(card: ModelCard, model_dir: Path) -> Preparation:
    """What a model card's `input` says is done to a photo (images.Preparation), or ModelError naming the card."""
    fields = ("size", "framing", "white_balance", "morphology", "morph_kernel")
    prep = Preparation(**{f: getattr(card.input, f) for f in fields})
    for key, known in (("framing", FRAMINGS), ("white_balance", WHITE_BALANCES)):
        if (value := getattr(prep, key)) not in known:
            raise ModelError(
                f"{model_dir}/{CARD_FILE}: input.{key} {value!r} is not one of {', '.join(known)}.",
                hint="A newer leafdoc wrote this model: upgrade leafdoc.",
            )
    if prep.white_balance == "light-range":
        from leafdoc.imaging.leafcut import LIGHT_QUANTILES

        lights = card.input.light_range
        n = len(LIGHT_QUANTILES)
        if not (
            isinstance(lights, list) and len(lights) == n and all(np.isfinite(lights)) and lights == sorted(lights)
        ):
            raise ModelError(
                f"{model_dir}/{CARD_FILE}: input.white_balance is 'light-range' but input.light_range is "
                f"{lights!r}, not the {n} quantiles of the lights it was trained under.",
                hint="Re-run `leafdoc calibrate MODEL_DIR --data DIR --light-range` to measure them again.",
            )
        prep = replace(prep, light_range=tuple(float(v) for v in lights))
    return prep


class Predictor:
    """Loads model.onnx (or its int8/fp16 copy when `variant` says so, or a .tflite file inside the folder),
    labels.json and card.json; answers for arrays, files or bytes."""

    def __init__(
        self,
        model_dir: Path,
        threads: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        variant: str = "fp32",
        any_cpu: bool = False,
    ):
        model_dir = Path(model_dir)
        if model_dir.suffix == ".tflite":
            self.model_file = model_dir
            self.model_dir = check_model_dir(model_dir.parent, (model_dir.name, LABELS_FILE, CARD_FILE))
        else:
            self.model_file = None
            self.model_dir = check_model_dir(model_dir)
        self.labels: list[str] = read_labels(self.model_dir)
        self.card: ModelCard = read_card(self.model_dir)
        if self.card.input is None:
            raise ModelError(f"{self.model_dir}/{CARD_FILE}: it says nothing of the model's input (no `input`).")
        self.prep = card_preparation(self.card, self.model_dir)  # what it does to a photo
        self.max_pixels = max_pixels
        if self.model_file is not None:
            self.session = TFLiteSession(self.model_file, threads)
        else:  # model.onnx, or the int8/fp16 copy beside it that card.json lists (inference/quantize.py)
            self.model_file = variant_file(self.model_dir, self.card, variant, any_cpu)
            self.session = self._onnx_session(threads)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._lock = threading.Lock()
        n_out = self.session.get_outputs()[0].shape[-1]
        if isinstance(n_out, int) and n_out != len(self.labels) and "probabilities" in self.output_names:
            raise ModelError(
                f"{self.model_dir}: labels.json has {len(self.labels)} labels but the model has {n_out} outputs."
            )
        self._checks_from_card()

    def _checks_from_card(self) -> None:
        try:  # model folders from before the OOD check have none: softmax threshold only
            self.ood = OodCheck.from_model_dir(self.model_dir, self.card) if "features" in self.output_names else None
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(
                f"{self.model_dir}/ood.npz: cannot be read ({exc}).",
                hint="Re-run `leafdoc calibrate MODEL_DIR --data DIR`, or delete `ood` from card.json.",
            ) from None
        self.field = FieldCheck.from_card(self.card) if self.ood is not None else None
        has_features = "features" in self.output_names
        self.other_leaves = OtherLeavesCheck.from_card(self.card) if has_features else None
        # What one decision needs from the network: the softmax, and the features when a check reads them.
        with_features = self.ood is not None or self.other_leaves is not None
        self.decision_outputs = ["probabilities", "features"] if with_features else ["probabilities"]

    def with_card(self, card: ModelCard) -> Predictor:
        """This predictor's network (the same ONNX Runtime session, not loaded again) under another card of its
        folder: its input, abstention threshold and checks (ood.npz read from the folder). A training run adds the
        checks to the card one by one and scores with each (lifecycle/training.py)."""
        other = copy.copy(self)
        other.card = card
        other.prep = card_preparation(card, self.model_dir)
        other._checks_from_card()
        return other

    def _onnx_session(self, threads: int | None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            return ort.InferenceSession(str(self.model_file), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(
                f"{self.model_file}: ONNX Runtime cannot load it ({exc}).",
                hint="Re-run `leafdoc export MODEL_DIR --format onnx`.",
            ) from None

    @property
    def size(self) -> int:
        """The side of the square the model takes (its card's `input.size`)."""
        return self.prep.size

    @property
    def framing(self) -> str:
        return self.prep.framing

    def load(self, source: bytes | str | Path, name: str | None = None) -> Photo:
        """Decode once: quality checks on the photo as sent, then the model's own preprocessing."""
        data, name = read_source(source, name)
        img, frame = open_photo(data, name, self.max_pixels, min_side=min_side_for(self.size))
        region = model_region(img, self.framing)
        x, light = self.prep.finish_noting(resize_square(img, self.size, frame, region))
        return Photo(x, tuple(check_photo(img, self.size, frame.size)), img, frame, region, light)

    def decide(self, outputs: dict[str, np.ndarray], photo: Photo, crop: str | None = None) -> Decision:
        """The answer or abstention for one photo, from its row of `decision_outputs` (`crop`: a label prefix the
        grower gave, inference/cropfirst.py)."""
        score, field_score, field_like = self.field_reading(outputs, photo)
        probs = outputs["probabilities"]
        other = None
        if self.other_leaves is not None and "features" in outputs:
            other = float(self.other_leaves.score(outputs["features"])[0])
        return decide(probs, self.labels, self.card, photo.problems, score, field_score, field_like, crop, other)

    def crop(self, text: str | None) -> str | None:
        """The crop `text` names (`tomato`, `Corn_(maize)`) as a label prefix; None for none; UnknownCrop else."""
        return parse_crop(text, self.labels)

    def field_reading(self, outputs: dict[str, np.ndarray], photo: Photo) -> tuple[float | None, float | None, bool]:
        """The not-a-leaf score, the unlike-training score and whether a refused photo is a field photo (None, None,
        False for the checks the card does not have)."""
        score = field_score = None
        field_like = False
        if self.ood is not None and "features" in outputs:
            components = self.ood.scorer.components(outputs["features"][None], photo.x[None])
            score = float((components @ self.ood.weights)[0])
            if self.field is not None:
                measured = photo_features(photo.x[None])
                prob_row, feature_row = outputs["probabilities"][None], outputs["features"][None]
                field_score = float(self.field.scores(components, measured, prob_row, feature_row)[0])
                field_like = bool(self.field.field_like(components, measured)[0])
        return score, field_score, field_like

    def ood_scores(self, features: np.ndarray, images: np.ndarray) -> np.ndarray | None:
        return None if self.ood is None else self.ood.scores(features, images)

    def preprocess(self, source: bytes | str | Path, name: str | None = None) -> np.ndarray:
        return self.prep(source, name, self.max_pixels)

    def predict_arrays(self, x: np.ndarray, outputs: list[str] | None = None, batch: int = 64) -> dict[str, np.ndarray]:
        """uint8/float (N, S, S, 3), raw RGB 0-255 (`preprocess`'s arrays, stacked) -> {output name: array}; batches
        internally. Anything else (no batch axis, another size, NCHW, values scaled to 0-1) is an ImageError that
        says what the model takes, not ONNX Runtime's INVALID_ARGUMENT or a quietly different answer."""
        x = np.asarray(x)
        self.check_arrays(x)
        names = [n for n in (outputs or self.output_names) if n in self.output_names]
        parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for start in range(0, len(x), batch):
            chunk = np.asarray(x[start : start + batch], dtype=np.float32)
            for n, arr in zip(names, self.session.run(names, {self.input_name: chunk}), strict=True):
                parts[n].append(arr)
        return {n: (np.concatenate(v) if v else np.zeros((0,))) for n, v in parts.items()}

    def check_arrays(self, x: np.ndarray) -> None:
        """ImageError unless `x` is what the model takes: (N, S, S, 3), uint8 or float, raw RGB 0-255."""
        if x.ndim >= 1 and len(x) == 0:
            return  # no photos: no answers
        s = self.size
        takes = (
            f"The model takes a batch of RGB photos of shape (N, {s}, {s}, 3) (channels last), uint8 or float32 with "
            "values 0-255: the raw pixels, normalisation is inside the model."
        )
        how = (
            "Make one with `Predictor.preprocess(path)` (or bytes), which returns a "
            f"({s}, {s}, 3) array prepared as the model was trained, and stack them: "
            "`np.stack([predictor.preprocess(p) for p in paths])`."
        )
        if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise ImageError(f"predict_arrays: an array of {x.dtype}, not numbers. {takes}", hint=how)
        if x.shape[1:] != (s, s, 3):
            got = f"an array of shape {x.shape}"
            if x.shape == (s, s, 3):
                why = "one photo without the batch axis: pass x[None]"
            elif x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[2:] == (s, s):
                why = "channels first (NCHW): pass x.transpose(0, 2, 3, 1)"
            elif x.ndim == 4 and x.shape[3] == 3:
                why = f"photos of {x.shape[1]} x {x.shape[2]} pixels, not the {s} x {s} this model was trained at"
            elif x.ndim == 4:
                why = f"{x.shape[3]} channels, not RGB's 3"
            else:
                why = f"{x.ndim} axes, not 4"
            raise ImageError(f"predict_arrays: {got}: {why}. {takes}", hint=how)
        if np.issubdtype(x.dtype, np.floating):
            if not np.isfinite(x).all():
                raise ImageError(f"predict_arrays: the array holds NaN or infinite values. {takes}", hint=how)
            low, high = float(x.min()), float(x.max())
            if low < 0 or high > 255:
                raise ImageError(
                    f"predict_arrays: values from {low:g} to {high:g}, outside 0-255 (normalised already?). {takes}",
                    hint=how,
                )
            if 0 < high <= 1:  # a photo's raw pixels always reach above 1; all-zero is the same answer either way
                raise ImageError(
                    f"predict_arrays: every value is within 0-1 (the largest is {high:g}): photos scaled to 0-1 "
                    f"(x / 255), which the model would read as almost black and answer wrongly. {takes}",
                    hint=f"Pass the 0-255 values (x * 255), or {how[0].lower()}{how[1:]}",
                )

    def top_k(self, probs: np.ndarray, k: int, among: np.ndarray | None = None) -> list[dict]:
        """The k most likely labels (only those of `among`, indices, when given)."""
        if among is None:
            order = np.argsort(-probs)[: max(1, min(k, len(self.labels)))]
        else:
            order = among[np.argsort(-probs[among], kind="stable")][: max(1, min(k, len(among)))]
        return [{"label": self.labels[i], "probability": round(float(probs[i]), 6)} for i in order]

    def crop_view(self, probs: np.ndarray, crop: str | None) -> tuple[np.ndarray, np.ndarray | None, float | None]:
        """(the probabilities an answer shows, the label indices it may name, the crop's share): all of them without
        a crop; with one, its labels renormalised (a crop of one label: its own probability, never made 100%)."""
        if crop is None:
            return probs, None, None
        among = crop_indices(self.labels, crop)
        shown = probs if len(among) == 1 else within_crop(probs, among)
        return shown, among, crop_share(probs, among)

    def answer(
        self,
        photos: Sequence[Photo],
        names: Sequence[str | None],
        k: int,
        knowledge: Knowledge,
        model_version: int | None = None,
        outputs: dict[str, np.ndarray] | None = None,
        crop: str | None = None,
        lang: str = "en",
    ) -> list[Answer]:
        """The one loop from photos to answers (the API's and `leafdoc predict`'s): one ONNX call for them all (unless
        their `outputs` were computed already, as an explanation does), then each photo's top-k and decision, with
        the advice `knowledge` gives for its label. `crop` (a label prefix: `Predictor.crop`) limits the answers to
        that crop's labels (inference/cropfirst.py). `lang`: the language of the answers' words (core/i18n.py)."""
        if not photos:
            return []
        out = outputs or self.predict_arrays(np.stack([ph.x for ph in photos]), self.decision_outputs)
        answers = []
        for i, (photo, name) in enumerate(zip(photos, names, strict=True)):
            row = {n: v[i] for n, v in out.items()}
            shown, among, share = self.crop_view(row["probabilities"], crop)
            answers.append(
                Answer.build(
                    file=name,
                    model_version=model_version,
                    top_k=self.top_k(shown, k, among),
                    decision=self.decide(row, photo, crop),
                    knowledge=knowledge,
                    framed_box=photo.framed_box,
                    light_corrected=photo.light_corrected,
                    crop_given=None if crop is None else crop_name(crop),
                    crop_share=share,
                    lang=lang,
                )
            )
        return answers

    def predict_files(
        self,
        paths: list[str | Path],
        k: int = 3,
        knowledge: Knowledge | None = None,
        crop: str | None = None,
        lang: str = "en",
    ) -> list[Answer | Unread]:
        """Each file's answer (advice from `knowledge`, default: the shipped entries; a model folder has no registry
        version, so `model_version` is null), or `Unread` if it cannot be read: one bad file never stops the rest.
        `crop`: the crop the photos are of, in words (`tomato`) or as the labels' prefix; UnknownCrop if the model
        has no such crop. `lang`: the language of the answers' words (core/i18n.py)."""
        crop = self.crop(crop)
        results: list[Answer | Unread | None] = []
        photos, names, slots = [], [], []
        for p in paths:
            try:
                photos.append(self.load(p))
            except LeafdocError as exc:
                # The record names the file (`file`), so its error says only what is wrong: the message (which names
                # the file, as every leafdoc error does) loses its "<file>: " ("x.jpg: x.jpg: no such file").
                said = exc.message.removeprefix(f"{p}: ") + (f" {exc.hint}" if exc.hint else "")
                results.append(Unread(file=str(p), error=said))
                continue
            names.append(str(p))
            slots.append(len(results))
            results.append(None)
        given = self.answer(photos, names, k, knowledge or shipped_knowledge(), crop=crop, lang=lang)
        for i, a in zip(slots, given, strict=True):
            results[i] = a
        return results
