"""Backbones from keras.applications (and a basic CNN), each with its own preprocessing as a
layer inside the model, so the model takes raw RGB (0-255) and no client can get it wrong."""

from __future__ import annotations

import warnings
from pathlib import Path

import keras
from keras import layers, ops

from leafdoc.errors import ConfigError

IMAGENET_SIZES = {"mobilenet_v2": (96, 128, 160, 192, 224)}


@keras.saving.register_keras_serializable(package="leafdoc")
class CaffePreprocess(layers.Layer):
    """ResNet50's preprocess_input as a layer: RGB->BGR and ImageNet mean subtraction."""

    def call(self, x):
        mean = ops.convert_to_tensor([103.939, 116.779, 123.68], dtype=x.dtype)
        return ops.flip(x, axis=-1) - mean


def preprocessing_layer(name: str) -> layers.Layer | None:
    if name == "mobilenet_v2":
        return layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")  # mobilenet_v2.preprocess_input
    if name == "resnet50":
        return CaffePreprocess(name="preprocess")
    if name == "baseline_cnn":
        return layers.Rescaling(1 / 255.0, name="preprocess")
    return None  # EfficientNetV2 carries its own Rescaling (include_preprocessing=True)


def baseline_cnn(size: int) -> keras.Model:
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


def _imagenet_error(name: str, exc: Exception) -> ConfigError:
    return ConfigError(
        f"ImageNet weights for {name} could not be downloaded ({type(exc).__name__}: {exc}).",
        hint="This machine may be offline: pass `--weights none` to train from scratch, "
        "or `--weights PATH` to a backbone weights file (.weights.h5 or .h5) you have.",
    )


def build_backbone(name: str, weights: str, size: int, alpha: float = 1.0) -> keras.Model:
    shape = (size, size, 3)
    use_imagenet = weights == "imagenet"
    if name == "mobilenet_v2" and use_imagenet and size not in IMAGENET_SIZES[name]:
        raise ConfigError(
            f"MobileNetV2 ImageNet weights exist only for image sizes {IMAGENET_SIZES[name]}, not {size}.",
            hint="Pick one of those with --image-size, or pass --weights none.",
        )
    kw = {
        "include_top": False,
        "input_shape": shape,
        "weights": "imagenet" if use_imagenet else None,
    }
    try:
        if name == "mobilenet_v2":
            model = keras.applications.MobileNetV2(alpha=alpha, **kw)
        elif name == "resnet50":
            model = keras.applications.ResNet50(**kw)
        elif name == "efficientnet_v2_b0":
            model = keras.applications.EfficientNetV2B0(include_preprocessing=True, **kw)
        elif name == "baseline_cnn":
            if use_imagenet:
                raise ConfigError("baseline_cnn has no ImageNet weights.", hint="Pass --weights none.")
            model = baseline_cnn(size)
        else:
            raise ConfigError(
                f"unknown backbone {name!r}.",
                hint="Use mobilenet_v2, resnet50, efficientnet_v2_b0 or baseline_cnn.",
            )
    except ConfigError:
        raise
    except Exception as exc:  # urllib errors, SSL errors, "Exception: URL fetch failure" ...
        if use_imagenet:
            raise _imagenet_error(name, exc) from None
        raise
    model.name = "backbone"  # one name whatever the architecture, so export can find it
    if weights not in ("imagenet", "none"):
        load_weights_file(model, Path(weights))
    return model


def load_weights_file(model: keras.Model, path: Path) -> None:
    if not path.is_file():
        raise ConfigError(
            f"weights file {path} does not exist.",
            hint="Pass --weights none, imagenet, or the path of a .weights.h5/.h5 file.",
        )
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
