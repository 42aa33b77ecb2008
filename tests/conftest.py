"""Shared fixtures. Every test points LEAFDOC_HOME at a tmp dir; data comes from Pillow or from a
few images of ../shared/datasets, never from the network."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

# With pytest-xdist (scripts/test.sh: LEAFDOC_TEST_PROCESSES), N test processes share the machine's cores: each
# takes its share of threads for TensorFlow, OpenMP and OpenBLAS (set before NumPy loads its BLAS; the servers and
# CLIs a test starts inherit them) and ONNX Runtime (`_onnx_runtime_share`), instead of a busy-waiting pool per core
# in every process. A process that runs alone keeps the libraries' defaults.
XDIST_SHARE = (
    max(1, len(os.sched_getaffinity(0)) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    if os.environ.get("PYTEST_XDIST_WORKER")
    else None
)
if XDIST_SHARE:
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ.setdefault(_var, str(XDIST_SHARE))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LEAFDOC_SHARED", REPO.parent / "shared")) / "datasets"
PLANTVILLAGE = SHARED / "plantvillage"
TINY_CLASSES = ("Apple___Apple_scab", "Apple___healthy", "Corn_(maize)___Common_rust_")

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def pytest_addoption(parser):
    parser.addoption(
        "--serial-tests",
        choices=("with", "without", "only"),
        default="with",
        help="with (default): every test; without: leave out the tests marked serial (scripts/test.sh runs the others "
        "in parallel first); only: just those, which measure how the machine shares work out and so run alone.",
    )


def pytest_sessionstart(session):
    """The tests run this clone's leafdoc, or none: a venv shared by two clones (a git worktree beside the clone that
    made the venv) imports the other clone's code through its editable install, and every test would pass on it."""
    import importlib.util

    spec = importlib.util.find_spec("leafdoc")
    found = Path(spec.origin).resolve().parent if spec and spec.origin else None
    if found != REPO / "src" / "leafdoc":
        raise pytest.UsageError(
            f"leafdoc is imported from {found}, not from this clone ({REPO / 'src' / 'leafdoc'}): run the tests with "
            f"this clone's venv (bash scripts/install.sh), or with PYTHONPATH={REPO / 'src'} (docs/development.md)"
        )


def pytest_collection_modifyitems(config, items):
    """Tests take their tier from their folder: tests/unit, tests/integration, tests/e2e, tests/containers (run by
    scripts/test-containers.sh, skipped elsewhere). --serial-tests picks
    the tests marked serial or the others."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in ("unit", "integration", "e2e", "containers"):
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
    which = config.getoption("--serial-tests")
    if which != "with":
        keep, drop = [], []
        for item in items:
            (keep if (item.get_closest_marker("serial") is not None) == (which == "only") else drop).append(item)
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", autouse=True)
def _onnx_runtime_share():
    """Under pytest-xdist, an ONNX Runtime session made in a test process without a thread count (ONNX Runtime's
    default: a spinning thread per core) runs on this process's share of the cores."""
    if not XDIST_SHARE:
        yield
        return
    from leafdoc.inference.predictor import Predictor

    real = Predictor._onnx_session
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Predictor, "_onnx_session", lambda self, threads: real(self, threads or XDIST_SHARE))
        yield


@pytest.fixture
def settings(tmp_path, monkeypatch):
    from leafdoc.core.settings import Settings

    home = tmp_path / "home"
    monkeypatch.setenv("LEAFDOC_HOME", str(home))
    s = Settings(home=home)
    s.ensure_home()
    return s


def make_leaf_folder(dest: Path, classes=TINY_CLASSES, per_class: int = 6, skip: int = 0) -> Path:
    """Copy a few real PlantVillage photos per class into dest/<class>/ (after the first `skip` of each)."""
    if not PLANTVILLAGE.is_dir():
        pytest.skip(f"shared datasets not found at {PLANTVILLAGE}")
    for c in classes:
        (dest / c).mkdir(parents=True, exist_ok=True)
        for f in sorted((PLANTVILLAGE / c).iterdir())[skip : skip + per_class]:
            shutil.copy2(f, dest / c / f.name)
    return dest


@pytest.fixture
def leaf_folder(tmp_path) -> Path:
    return make_leaf_folder(tmp_path / "leaves")


def synthetic_image(path: Path, size=(48, 40), color=(40, 160, 60), mode="RGB", fmt=None, seed=0) -> Path:
    """A small noisy image in any Pillow mode, saved to path."""
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(color, dtype=np.int16) + rng.integers(-30, 30, (size[1], size[0], 3)), 0, 255)
    img = Image.fromarray(arr.astype(np.uint8), "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


COLOURS = {"blue": (40, 60, 200), "green": (40, 160, 60), "red": (200, 40, 40)}


def colour_folder(dest: Path, per_class: int | dict[str, int], seed0: int = 0, size=(40, 40)) -> Path:
    """dest/<colour>/<colour><i>.png: a task a model that learns anything gets right (three colours under
    pixel noise), `per_class` photos of each colour (or a count per colour name)."""
    for c, (name, colour) in enumerate(COLOURS.items()):
        for i in range(per_class[name] if isinstance(per_class, dict) else per_class):
            synthetic_image(dest / name / f"{name}{i}.png", size=size, color=colour, seed=seed0 + 1000 * c + i)
    return dest


# Training a test can afford (~20 s) that learns: a new head on EfficientNet-Lite0's ImageNet features
# (offline, from the installed package) at 32 px, 10 head epochs at a high rate. On the tiny dataset (3 classes
# x 6 photos) it answers 73-82% of 60 fresh PlantVillage photos right by seed (chance 1/3); MobileNetV2 from
# scratch at 32 px stays at chance in any time a test has.
LEARNS = {
    "backbone": "efficientnet_lite0",
    "weights": "imagenet",
    "image_size": 32,
    "epochs": 10,
    "fine_tune_epochs": 0,
    "learning_rate": 0.01,
    "batch_size": 8,
    # The head trained through the backbone, augmented every epoch, early stopping on validation loss: what these
    # tests were written for (the defaults' head on cached features is tested on its own, test_train_learns.py).
    "head_on_features": False,
    "restore_best": "val_loss",
}


# `leafdoc train` options for a test that checks a command, not a network: the 4-block CNN from scratch, one epoch at
# 32 px. Its training step traces in ~1.5 s where EfficientNet-Lite0's takes ~10 s (docs/test-suite.md).
TINY_CNN_CLI = (
    *("--backbone", "baseline_cnn", "--weights", "none"),
    *("--image-size", "32", "--epochs", "1", "--batch-size", "8"),
)


def fresh_photos(classes=TINY_CLASSES, n: int = 20) -> list[tuple[Path, str]]:
    """n PlantVillage photos per class that `make_leaf_folder` does not copy (so no tiny model saw them)."""
    return [(f, c) for c in classes for f in sorted((PLANTVILLAGE / c).iterdir())[6 : 6 + n]]


def fresh_accuracy(model_dir: Path, classes=TINY_CLASSES, n: int = 20) -> float:
    """The share of `fresh_photos` a model folder labels right, through the serving path (ONNX Runtime)."""
    from leafdoc.inference.predictor import Predictor

    predictor = Predictor(model_dir)
    photos = fresh_photos(classes, n)
    x = np.stack([predictor.preprocess(f) for f, _ in photos])
    predicted = predictor.predict_arrays(x, ["probabilities"])["probabilities"].argmax(axis=1)
    return float(np.mean([predictor.labels[i] == c for i, (_, c) in zip(predicted, photos, strict=True)]))


@contextmanager
def once_per_run(tmp_path_factory, name: str):
    """A folder the test processes of one run share (pytest-xdist's workers, or the one process), held by one
    process at a time: the first to get it builds what is in it, the others find it built."""
    import fcntl

    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / f"shared-{name}"
    shared.mkdir(exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield shared
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """One tiny model trained once per test run (`LEARNS`: 32 px, 3 classes x 6 images), shared by the test
    processes of a run; it learns: test_train_learns checks it answers fresh photos far above chance. Tests copy
    it before changing anything in it."""
    return trained_once(tmp_path_factory, "tiny", LEARNS)


def trained_once(tmp_path_factory, name: str, options: dict) -> Path:
    """The model `options` trains on the tiny leaves, trained by the first process of the run to need it (`name`: its
    shared folder) and found there by the others."""
    with once_per_run(tmp_path_factory, name) as root:
        if not (root / "model").is_dir():  # train_model writes the folder atomically: there whole, or not at all
            train_tiny_model(root, options)
    return root / "model"


def train_tiny_model(root: Path, options: dict) -> None:
    from leafdoc.core.settings import Settings
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.ingest import ingest
    from leafdoc.data.store import open_store
    from leafdoc.lifecycle.training import train_model
    from leafdoc.train.config import TrainConfig
    from leafdoc.train.train_data import prepare_data

    data = make_leaf_folder(root / "leaves")
    s = Settings(home=root / "home")
    s.ensure_home()
    catalog, store = Catalog(s.catalog_url), open_store(s.store_location)
    ingest(data, catalog, store, "tiny")
    cfg = TrainConfig(**options)
    td = prepare_data(catalog, store, s.cache_dir, "tiny", cfg)
    train_model(cfg, td, root / "model")
    catalog.dispose()


# A served model whose retraining is cheap, for the tests of training jobs: a job warm-starts from the model serving,
# so it trains that model's network again, and the 4-block CNN's training step traces in ~1.5 s where Lite0's takes
# ~10 s (docs/test-suite.md). Trained from scratch on the tiny leaves (12 epochs at 32 px); it answers, but a test of
# what a model gets right uses `tiny_model`.
JOB_MODEL = {**LEARNS, "backbone": "baseline_cnn", "weights": "none", "epochs": 12, "patience": 12}


@pytest.fixture(scope="session")
def job_model(tmp_path_factory) -> Path:
    """`JOB_MODEL`, trained once per test run like `tiny_model`; tests copy it before changing anything in it."""
    return trained_once(tmp_path_factory, "job", JOB_MODEL)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, tiny_model):
    """One real `leafdoc serve` per test session, serving an answering copy of the tiny model, with the
    `tiny` dataset (3 classes x 6 PlantVillage photos) ingested. Tests must not promote or roll back on it
    (use `start_server` for that)."""
    from tests.live_server import answering_copy, start_server

    root = tmp_path_factory.mktemp("live")
    model = answering_copy(tiny_model, root / "model")
    server = start_server(root, model, dataset=make_leaf_folder(root / "leaves"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def page_server(tmp_path_factory, tiny_model):
    """`live_server`'s set-up with two API workers, as `leafdoc serve` runs on two CPUs: the web page in a process
    of its own, and /ui forwarded to it by each worker (ui/proxy.py). For the page's tests; the same rules."""
    from tests.live_server import answering_copy, start_server

    root = tmp_path_factory.mktemp("page")
    model = answering_copy(tiny_model, root / "model")
    server = start_server(root, model, dataset=make_leaf_folder(root / "leaves"), workers=2)
    yield server
    server.stop()


def run_until_killed(cmd: list, marker: str, **popen) -> tuple[int, str]:
    """Run `cmd`, send it SIGTERM (a stopped container or session) once a line of its output contains
    `marker`; returns its exit code and its whole output (what it said as it stopped too)."""
    import signal
    import subprocess

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            proc.send_signal(signal.SIGTERM)
            break
    seen.append(proc.stdout.read())
    return proc.wait(timeout=120), "".join(seen)


def children_of(pid: int) -> list[int]:
    """The process ids of `pid`'s children (Linux /proc)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out.extend(int(x) for x in (task / "children").read_text().split())
    return out


def consumer_and_api_workers(pid: int) -> tuple[list[int], list[int]]:
    """`leafdoc serve`'s children (`pid` is the serve process): its training consumers (`leafdoc worker`) and its
    API worker processes (uvicorn spawns them; none with one worker, which serves in the serve process itself).
    Other children (multiprocessing's resource tracker) are neither."""
    consumers, workers = [], []
    for child in children_of(pid):
        try:
            args = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"worker" in args and b"--parent-pid" in args:
            consumers.append(child)
        elif b"--multiprocessing-fork" in args:
            workers.append(child)
    return consumers, workers


def alive(pid: int) -> bool:
    """Whether the process runs; a child its parent has not reaped yet (a zombie) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def without_carried_photos(src: Path, dest: Path) -> Path:
    """A copy of a model folder with the unlike-training check but not the field photos it was calibrated with
    (a folder from before field_photos.zip): a retrain cannot refit the check from it."""
    import json

    from leafdoc.modelfolder import FIELD_PHOTOS_FILE

    shutil.copytree(src, dest)
    (dest / FIELD_PHOTOS_FILE).unlink(missing_ok=True)
    card = json.loads((dest / "card.json").read_text())
    card["field"].pop("carried_photos", None)
    (dest / "card.json").write_text(json.dumps(card))
    return dest


# The starter's training photos a calibration test keeps (`starter_on_shared(..., thin=True)`): those whose sha256
# starts with 0-5, 1,545 of the 4,031 shared ones (about 50 a class, more than the network's 1,280 features). A
# calibration's cost is its training photos' (each decoded and through the network); the validation photos stay whole.
TRAIN_SHARE = "012345"


def starter_on_shared(dest: Path, names: tuple[str, ...] | None = None, thin: bool = False) -> Path:
    """A copy of the starter model whose split.json lists only the photos of the shared 150-a-class PlantVillage copy
    (by sha256, from its manifest): the starter learnt from all of PlantVillage, which the tests do not have, and
    `leafdoc calibrate --data` wants most of a split's photos in the folder it is given. Each photo keeps the split
    it had. `names`: the files to copy (default: all). `thin`: keep only the training photos of `TRAIN_SHARE`."""
    import csv
    import json

    starter = REPO / "models" / "starter"
    dest.mkdir(parents=True, exist_ok=True)
    for f in starter.iterdir():
        if f.is_file() and (names is None or f.name in names):
            shutil.copy2(f, dest / f.name)
    with (SHARED / "plantvillage.SOURCES.tsv").open() as fh:
        here = {row["sha256"] for row in csv.DictReader(fh, delimiter="\t")}
    split = json.loads((starter / "split.json").read_text())
    for part in ("train", "val", "test"):
        split[part] = [sha for sha in split[part] if sha in here]
    if thin:
        split["train"] = [sha for sha in split["train"] if sha[0] in TRAIN_SHARE]
    (dest / "split.json").write_text(json.dumps(split))
    return dest
