"""The demo data home that scripts/ui_screenshots.py and scripts/desktop_screenshots.py show.

A throw-away LEAFDOC_HOME with a few PlantVillage classes (from ../shared/datasets, or LEAFDOC_SHARED)
ingested as `plantvillage-sample`, set in this process's environment. The server over it is the desktop
app's built-in one (leafdoc.desktop.local_server.LocalServer): `leafdoc serve` on a free loopback port
with an admin token of its own, which registers the starter model (models/starter) as version 1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLANTVILLAGE = Path(os.environ.get("LEAFDOC_SHARED", REPO.parent / "shared")) / "datasets" / "plantvillage"
DATASET = "plantvillage-sample"
CLASSES = (
    "Apple___Apple_scab",
    "Apple___Cedar_apple_rust",
    "Apple___healthy",
    "Corn_(maize)___Common_rust_",
    "Potato___Early_blight",
    "Potato___healthy",
    "Tomato___Early_blight",
    "Tomato___Late_blight",
)


def need_plantvillage() -> None:
    """Stop with what is missing and how to supply it, before a script gets far without its photos."""
    if not PLANTVILLAGE.is_dir():
        raise SystemExit(
            f"{PLANTVILLAGE}: no such folder. This script shows PlantVillage photos from the shared datasets "
            "(../shared/datasets beside the clone); set LEAFDOC_SHARED=/path/to/shared if they are elsewhere."
        )


def copy_photos(dest: Path, first: int, count: int, taper: int = 0) -> Path:
    """Photos of each class from index `first` on: `count` of the first class, `taper` fewer for each next one."""
    need_plantvillage()
    for k, cls in enumerate(CLASSES):
        (dest / cls).mkdir(parents=True, exist_ok=True)
        for f in sorted((PLANTVILLAGE / cls).iterdir())[first : first + count - taper * k]:
            shutil.copy2(f, dest / cls / f.name)
    return dest


def use_home(home: Path, folder: Path, dataset: str) -> Path:
    """LEAFDOC_* now point at the data home `home`, whose dataset `dataset` (the default for uploads and
    retraining) is `folder` (class folders), ingested with `leafdoc ingest`. The served model stays the one
    LEAFDOC_MODEL_DIR names, the starter if unset."""
    os.environ["LEAFDOC_HOME"] = str(home)
    os.environ["LEAFDOC_DEFAULT_DATASET"] = dataset  # uploads and retraining go to it
    os.environ.setdefault("LEAFDOC_WORKER_POLL_SECONDS", "0.5")
    exe = Path(sys.executable).with_name("leafdoc")
    done = subprocess.run([str(exe), "ingest", str(folder), "--dataset", dataset], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"leafdoc ingest failed:\n{done.stdout}{done.stderr}")
    return home


def make_demo_home(root: Path, count: int, taper: int = 0) -> Path:
    """A data home under root holding the sample dataset (see copy_photos); LEAFDOC_* now point at it."""
    os.environ.pop("LEAFDOC_MODEL_DIR", None)  # the starter model
    return use_home(root / "home", copy_photos(root / DATASET, 0, count, taper), DATASET)
