"""Experiment recipes: a small declarative file (YAML or TOML) naming the data, the base training
settings, the runs to compare (each overriding the base), an optional Optuna search and an optional
input-pipeline benchmark. `load_recipe` turns a bad file into a `ConfigError` that names the file and
the field, before any training starts.

How one run's `TrainConfig` is assembled, each layer overriding the ones before it:

    TrainConfig defaults < base < run < scratch < run.scratch < quick < run.quick

`scratch` layers apply only when the run trains from scratch (weights `none`, or the basic CNN): a
recipe written for ImageNet weights can say what to do instead when they cannot be had. `quick`
layers apply with `--quick` and come last, because their one job is to make the run small: they may
shorten the fine-tuning phase but never lengthen it (`QUICK_NEVER_LENGTHENS`), so a run that leaves it out
(`fine_tune_epochs: 0`, "ImageNet base frozen") leaves it out in quick mode too, and a quick run is the
same kind of run as the full one. (`epochs`, the head's or from scratch, is the quick layer's as written:
a quick run of a few photos may need more head epochs than the full run, whose fine-tuning it leaves out.)
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from leafdoc.core.errors import ConfigError
from leafdoc.train.backbone_registry import FORMER_DEFAULT, scratch_only
from leafdoc.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[3]
RECIPES_DIR = REPO / "recipes"
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "datasets"
RECIPE_SUFFIXES = (".yaml", ".yml", ".toml")

# Every TrainConfig field but `weights`, which is one value for the whole experiment (see Recipe.weights).
SETTINGS = tuple(name for name in TrainConfig.model_fields if name != "weights")


def _check_settings(extra: dict[str, Any] | None, allowed: tuple[str, ...] = ()) -> None:
    for key in extra or {}:
        if key == "weights":
            raise ValueError(
                "`weights` is set once, at the top of the recipe (or with --weights); "
                "basic-CNN runs always train from scratch"
            )
        if key not in SETTINGS:
            close = difflib.get_close_matches(key, [*SETTINGS, *allowed], n=1)
            also = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown setting {key!r}{also} (training settings: {', '.join(SETTINGS)})")


# TrainConfig's defaults when the recipes were written and run: `leafdoc train`'s own defaults have since become a
# small lab's first model (EfficientNet-Lite0, 160 px, ...; issue 54). A recipe must keep training what its committed
# reports say it trained, so whatever it leaves unset means these.
RECIPE_DEFAULTS = {
    "backbone": FORMER_DEFAULT,
    "image_size": 96,
    "epochs": 10,
    "fine_tune_epochs": 5,
    "fine_tune_fraction": 0.3,
    "batch_size": 32,
    "learning_rate": None,  # 1e-3 from scratch, 1e-4 for a pretrained backbone's head
    "head_on_features": False,  # the head phase through the backbone, with augmentation in every epoch
    "restore_best": "val_loss",  # early stopping; the lowest validation loss's epoch restored
}


class _Settings(BaseModel):
    """A block of TrainConfig overrides written flat (`epochs: 5`), beside the block's own keys."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _known(self):
        _check_settings(self.model_extra, tuple(type(self).model_fields))
        return self

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ExtraSpec(BaseModel):
    """A training-only extra source (e.g. field photos), split in two by content: photos whose sha256 starts
    with 0-7 are trained on by the runs that say `with_extra: true` (never in validation or test, so the main
    folder's split is the same for every run); those starting with 8-f are held out and scored for every run,
    without and with abstention. The same halves `leafdoc calibrate --field` and benchmarks/field_photos.py use."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="a folder of class folders named like data.path's, relative to --data or absolute")
    nonleaf: list[str] = Field(
        default_factory=list,
        description="folders of non-leaf photos for the unlike-training check's calibration (calibrate --nonleaf)",
    )
    per_class: int | None = Field(None, ge=1, description="at most N photos per class in quick mode")


class DataSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="a folder of class folders, relative to the data root (--data) or absolute")
    test_path: str | None = Field(None, description="an explicit test folder (e.g. CIFAR-10's own test/)")
    classes: int | list[str] | None = Field(None, description="the first N class folders (sorted), or these names")
    per_class: int | None = Field(None, ge=3, description="at most N images per class")
    test_per_class: int | None = Field(None, ge=1, description="at most N images per class of test_path")
    name: str | None = Field(None, description="dataset name in the catalog (default: the recipe's name)")
    extra: ExtraSpec | None = Field(None, description="a training-only extra source, half held out (ExtraSpec)")

    @field_validator("classes")
    @classmethod
    def _classes(cls, v):
        if isinstance(v, int) and v < 2:
            raise ValueError("a classifier needs at least 2 classes")
        if isinstance(v, list) and len(set(v)) < 2:
            raise ValueError("list at least 2 different class folders")
        return v

    @model_validator(mode="after")
    def _one_test_folder(self):
        if self.extra is not None and self.test_path:
            raise ValueError("data.extra's held-out half is the test folder: drop data.test_path, or data.extra")
        return self


class QuickSpec(_Settings):
    """`--quick`: a small subset and small settings, so the whole recipe runs in minutes on 2 cores."""

    classes: int | list[str] | None = None
    per_class: int | None = Field(None, ge=3)
    test_per_class: int | None = Field(None, ge=1)
    trials: int | None = Field(None, ge=1, description="Optuna trial budget in quick mode")
    pipeline_epochs: int | None = Field(None, ge=1, description="epochs per pipeline and round in the speed benchmark")


class RunSpec(_Settings):
    name: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    note: str = ""
    init_from: str | None = Field(None, description="an earlier run whose model this run continues from")
    train_imbalance: float | None = Field(
        None,
        ge=1,
        description="keep class k of n with ratio^(-k/(n-1)) of its training images (val/test untouched), "
        "so the first class has `ratio` times as many as the last",
    )
    train_share: float | None = Field(
        None,
        gt=0,
        le=1,
        description="keep this share of each class's training images (val/test untouched); nested, so a "
        "smaller share's images are among a larger one's: a learning curve",
    )
    with_extra: bool = Field(False, description="also train on the training half of data.extra")
    quick: _Settings = Field(default_factory=_Settings)
    scratch: _Settings = Field(default_factory=_Settings)


class ParamRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _order(self):
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scale range needs low > 0")
        return self


TUNABLE = ("learning_rate", "dropout", "fine_tune_fraction", "label_smoothing")


class TuneSpec(BaseModel):
    """An Optuna search (TPE, seeded) over a few continuous settings, scored on the validation split."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("tuned", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    from_run: str | None = Field(None, description="the run whose settings the search starts from")
    trials: int = Field(20, ge=1)
    metric: Literal["val_accuracy", "val_macro_f1"] = "val_accuracy"
    space: dict[str, ParamRange] = Field(min_length=1)
    prune: bool = Field(
        True,
        description="stop a trial whose best validation accuracy so far is below the median of the earlier "
        "trials' at the same epoch (Optuna's MedianPruner)",
    )
    prune_startup_trials: int = Field(5, ge=0, description="trials that run to the end before any is stopped")
    prune_warmup_epochs: int = Field(
        5,
        ge=0,
        description="epochs every trial runs before it can be stopped (at the end of that epoch at the earliest)",
    )

    @field_validator("space")
    @classmethod
    def _space(cls, v: dict[str, ParamRange]) -> dict[str, ParamRange]:
        for key in v:
            if key not in TUNABLE:
                raise ValueError(f"cannot tune {key!r}; tunable settings: {', '.join(TUNABLE)}")
        return v


class PipelineSpec(BaseModel):
    """Seconds per epoch of the cached pipeline against `directory_dataset`, same model, side by side."""

    model_config = ConfigDict(extra="forbid")

    run: str = Field(description="the run whose model and settings the benchmark uses")
    epochs: int = Field(3, ge=1, description="epochs per pipeline in each of two rounds, after one warm-up epoch")


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    title: str = ""
    source: str = Field("", description="where the recipe comes from and what it reported")
    reported: dict[str, str] = Field(default_factory=dict, description="run name -> what the source reported")
    weights: str = Field("none", description="none | imagenet | PATH, for every run (basic CNN: always none)")
    data: DataSpec
    base: dict[str, Any] = Field(default_factory=dict)
    scratch: dict[str, Any] = Field(default_factory=dict)
    quick: QuickSpec = Field(default_factory=QuickSpec)
    runs: list[RunSpec] = Field(min_length=1)
    tune: TuneSpec | None = None
    pipeline: PipelineSpec | None = None
    keep_best: bool = Field(False, description="copy the best model (by validation accuracy) to OUT/best")
    reference: str | None = Field(None, description="run the others are compared with (default: the first)")
    _path: Path | None = PrivateAttr(None)  # set by the loader, never by the file itself

    @field_validator("weights", mode="before")
    @classmethod
    def _weights(cls, v):
        return "none" if v is None else str(v).strip() or "none"

    @field_validator("base", "scratch")
    @classmethod
    def _known(cls, v: dict[str, Any]) -> dict[str, Any]:
        _check_settings(v)
        return v

    @model_validator(mode="after")
    def _names(self):
        seen: list[str] = []
        for i, run in enumerate(self.runs):
            if run.name in seen:
                raise ValueError(f"runs[{i}]: the run name {run.name!r} is used twice")
            if run.init_from is not None and run.init_from not in seen:
                raise ValueError(
                    f"runs[{i}] ({run.name}): init_from {run.init_from!r} is not an earlier run "
                    f"(earlier runs: {', '.join(seen) or 'none'})"
                )
            seen.append(run.name)
        for i, run in enumerate(self.runs):
            if run.with_extra and self.data.extra is None:
                raise ValueError(f"runs[{i}] ({run.name}): with_extra needs data.extra (the extra source's folder)")
        checks = [("reference", self.reference), ("pipeline.run", self.pipeline and self.pipeline.run)]
        if self.tune:
            if self.tune.name in seen:
                raise ValueError(f"tune.name {self.tune.name!r} is also the name of a run")
            checks.append(("tune.from_run", self.tune.from_run))
        for where, name in checks:
            if name is not None and name not in seen:
                raise ValueError(f"{where}: {name!r} is not one of the runs ({', '.join(seen)})")
        for key in self.reported:
            if key not in seen and not (self.tune and key == self.tune.name):
                raise ValueError(f"reported: {key!r} is not one of the runs ({', '.join(seen)})")
        return self

    @property
    def path(self) -> Path | None:
        return self._path

    def run(self, name: str) -> RunSpec:
        return next(r for r in self.runs if r.name == name)

    @property
    def reference_run(self) -> str:
        return self.reference or self.runs[0].name

    def where(self) -> str:
        return str(self.path) if self.path else f"recipe {self.name!r}"

    def config(self, run: RunSpec | None, *, quick: bool, weights: str | None = None) -> TrainConfig:
        """The TrainConfig of one run (or of the base, run=None) in this mode; see the module docstring."""
        weights = weights or self.weights
        index = self.runs.index(run) if run is not None else None
        label = f"runs[{index}] ({run.name})" if run is not None else ""
        layers: list[tuple[str, dict]] = [("recipe defaults", RECIPE_DEFAULTS), ("base", self.base)]
        if run is not None:
            layers.append((label, run.settings))
        backbone = _merged(layers)["backbone"]
        scratch = weights == "none" or scratch_only(backbone)
        if scratch:
            layers.append(("scratch", self.scratch))
            if run is not None:
                layers.append((f"{label}.scratch", run.scratch.settings))
        full = _merged(layers)
        if quick:
            layers.append(("quick", self.quick.settings))
            if run is not None:
                layers.append((f"{label}.quick", run.quick.settings))
        merged = _merged(layers)
        if quick:
            merged.update(_shortened(full, merged))
        merged["weights"] = "none" if scratch_only(merged.get("backbone", backbone)) else weights
        try:
            return TrainConfig(**merged)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else ""
            origin = "--weights / weights" if field == "weights" else _origin(layers, field)
            raise ConfigError(
                f"{self.where()}: {origin}.{field}: {err['msg']} (got {err.get('input')!r}).",
                hint="Fix that value in the recipe.",
            ) from None


# The phases a quick layer may shorten but never lengthen, nor turn on: `fine_tune_epochs: 1` in `quick:` had the
# "transfer" run (ImageNet base frozen, fine_tune_epochs 0) fine-tune in quick mode, and MLflow recorded 1.
QUICK_NEVER_LENGTHENS = ("fine_tune_epochs",)


def _shortened(full: dict[str, Any], quick: dict[str, Any]) -> dict[str, Any]:
    """The quick config's phase lengths that exceed the full run's, set back to the full run's (TrainConfig's default
    where a layer does not say): 0, a phase the run leaves out, stays 0."""
    out = {}
    for field in QUICK_NEVER_LENGTHENS:
        default = TrainConfig.model_fields[field].default
        was, now = full.get(field, default), quick.get(field, default)
        if isinstance(was, int) and isinstance(now, int) and now > was:
            out[field] = was
    return out


def _merged(layers: list[tuple[str, dict]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _, values in layers:
        out.update(values)
    return out


def _origin(layers: list[tuple[str, dict]], field: str) -> str:
    """The last layer that set `field`: the one whose value was used."""
    for where, values in reversed(layers):
        if field in values:
            return where
    return "base"


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _parse(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            raw = tomllib.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text)
    except Exception as exc:  # yaml.YAMLError and tomllib.TOMLDecodeError both say where
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()} ({exc}).", hint="Fix the syntax.") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of keys (name, data, runs, ...), not {type(raw).__name__}.")
    return raw


def parse_recipe(raw: dict, path: Path | None = None) -> Recipe:
    where = str(path) if path else "recipe"
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors()[:5]:
            msg = err["msg"].removeprefix("Value error, ")
            loc = _loc(err["loc"])  # empty for checks across fields, whose message names them
            lines.append(f"{loc}: {msg}" if loc else msg)
        more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise ConfigError(f"{where}: " + "; ".join(lines) + more + ".", hint="Fix the recipe.") from None
    recipe._path = path
    # Resolve every run in both modes now, so a bad value fails before hours of training, not during.
    for quick in (False, True):
        recipe.config(None, quick=quick)
        for run in recipe.runs:
            recipe.config(run, quick=quick)
    return recipe


def available_recipes(folder: Path = RECIPES_DIR) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix in RECIPE_SUFFIXES)


def find_recipe(name_or_path: str | Path, folder: Path = RECIPES_DIR) -> Path:
    """A recipe file: the path itself, or the file of that name in recipes/."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.parent == Path("."):
        for suffix in ("", *RECIPE_SUFFIXES):
            candidate = folder / f"{path.name}{suffix}"
            if candidate.is_file() and candidate.suffix in RECIPE_SUFFIXES:
                return candidate
    names = available_recipes(folder)
    raise ConfigError(
        f"{name_or_path}: no such recipe file" + (f", and no recipe of that name in {folder}." if names else "."),
        hint=f"Pass a path to a .yaml/.toml recipe, or one of: {', '.join(names)}." if names else None,
    )


def load_recipe(name_or_path: str | Path, folder: Path = RECIPES_DIR) -> Recipe:
    path = find_recipe(name_or_path, folder)
    if path.suffix not in RECIPE_SUFFIXES:
        raise ConfigError(f"{path}: a recipe is a .yaml, .yml or .toml file.")
    return parse_recipe(_parse(path), path)
