"""docs/guide-train-your-own.md, run as a reader runs it: every ```bash block, in order, in one shell, on the shared
photos the guide itself copies; what each block prints is checked against what the guide says it prints.

To stay cheap, three things differ from the page, each said here: `leafdoc train` gets tiny sizes appended
(`--image-size 32 --epochs 2`; the guide gives the real command, whose time and accuracy
benchmarks/lab_defaults.py measures), the server listens on a free port instead of 8000, the shared photos are found
through LEAFDOC_SHARED and the virtualenv by its absolute path (the guide runs from the clone; this runs in a
temporary folder)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import PLANTVILLAGE, REPO, SHARED

GUIDE = REPO / "docs" / "guide-train-your-own.md"
TRAIN = "leafdoc train --dataset mydata --out mymodel"
TINY = " --image-size 32 --epochs 2"


def blocks() -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", GUIDE.read_text(encoding="utf-8"), flags=re.M | re.S)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def script(port: int) -> str:
    parts = []
    for i, block in enumerate(blocks()):
        block = block.replace("source .venv/bin/activate", f"export PATH={Path(sys.executable).parent}:$PATH")
        block = block.replace("8000", str(port))
        block = block.replace(TRAIN, TRAIN + TINY)
        parts.append(f"echo '=== block {i}'\n{block}")
    return "set -euo pipefail\n" + "\n".join(parts)


def test_the_guide_has_the_steps_it_promises():
    text = "".join(blocks())
    steps = ("leafdoc stats", "leafdoc ingest", TRAIN, "leafdoc evaluate", "leafdoc predict", "leafdoc models add")
    for command in steps:
        assert command in text, command
    assert "leafdoc serve" in text and "/v1/predict" in text


def guide_env(shared: Path) -> dict:
    """A reader's shell: no LEAFDOC_ setting but the shared photos' folder (the README's LEAFDOC_SHARED)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAFDOC_")}
    env.update(COLUMNS="120", NO_COLOR="1", LEAFDOC_WORKER_POLL_SECONDS="0.5", LEAFDOC_SHARED=str(shared))
    return env


def test_step_1_copies_30_photos_a_class_from_a_folder_whose_names_have_spaces(tmp_path):
    """Its copy was `cp $(ls -d "$photos/$c"/* | head -30) mydata/$c/`: the shell split the listed names at spaces."""
    step1 = next(block for block in blocks() if "mydata/$c" in block)
    shared = tmp_path / "shared photos"
    classes = ("Tomato___Early_blight", "Tomato___Late_blight", "Tomato___healthy")
    for c in classes:
        folder = shared / "datasets" / "plantvillage" / c
        folder.mkdir(parents=True)
        for i in range(32):
            (folder / f"leaf {i:02d}.jpg").write_bytes(b"photo %d" % i)
    done = run_step(step1, tmp_path, guide_env(shared))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    for c in classes:
        copied = sorted(p.name for p in (tmp_path / "mydata" / c).iterdir())
        assert copied == [f"leaf {i:02d}.jpg" for i in range(30)], copied


def run_step(block: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """One of the guide's code blocks, as a user's shell runs it (stopping at the first error)."""
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + block], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_without_the_shared_photos_step_1_says_so_in_one_line_and_creates_nothing(tmp_path):
    """It printed three `ls: cannot access`, a `cp: missing destination file operand`, left three empty class
    folders and went on."""
    step1 = next(block for block in blocks() if "mydata/$c" in block)
    nowhere = tmp_path / "nowhere"
    done = run_step(step1, tmp_path, guide_env(nowhere))
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"no shared photos in {nowhere}/datasets/plantvillage: set LEAFDOC_SHARED to the folder that holds datasets/"
    ]
    assert not (tmp_path / "mydata").exists()


def test_every_command_of_the_guide_runs_in_order_and_prints_what_it_says(tmp_path):
    if not PLANTVILLAGE.is_dir():
        pytest.skip(f"shared datasets not found at {PLANTVILLAGE}")
    env = guide_env(SHARED.parent)
    done = subprocess.run(
        ["bash", "-c", script(free_port())],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=2400,  # minutes on a quiet 2-core machine; a shared one can take many times that
    )
    said = dict(re.findall(r"^=== block (\d+)\n(.*?)(?=^=== block |\Z)", done.stdout, flags=re.M | re.S))
    assert done.returncode == 0, done.stdout[-4000:]
    assert len(said) == len(blocks())
    out = [said[str(i)] for i in range(len(blocks()))]
    assert (tmp_path / "lab-home" / "catalog.sqlite").is_file()  # the guide's own data home was used
    assert sorted(p.name for p in (tmp_path / "mydata").iterdir()) == [
        "Tomato___Early_blight",
        "Tomato___Late_blight",
        "Tomato___healthy",
    ]
    stats, ingest, train, evaluate, predict, add, serve = out[2:]
    assert "90 images in 3 classes" in stats and (tmp_path / "mydata-stats" / "samples.png").is_file()
    assert "mydata v1: 90 images in 3 classes" in ingest and "added 90, duplicates 0" in ingest
    assert re.search(r"mydata v1: 3 classes; train \d+, val \d+, test \d+", train), train
    assert "warning: few photos: every class has" in train and "learning curve" in train
    assert "Starting from the backbone of leafdoc's starter model" in train  # the guide's first line of step 3
    assert "mymodel: test accuracy" in train and (tmp_path / "mymodel" / "model.onnx").is_file()
    assert "note: the model also learnt from the" in train and "retracing" not in train
    assert "Other leaves: " in train  # the run says what its other-leaves check is (none at the tiny 32 px here)
    n_test = re.search(r"test (\d+)", train).group(1)
    assert re.search(rf"scored the {n_test} test photos in \d+\.\ds", train), train
    assert "report" in evaluate and (tmp_path / "mymodel-report" / "index.html").is_file()
    labels = json.loads((tmp_path / "mymodel" / "labels.json").read_text())
    assert labels == ["Tomato___Early_blight", "Tomato___Late_blight", "Tomato___healthy"]
    assert any(label in predict for label in labels)
    # a photo the model never learnt from: its test split's
    split = json.loads((tmp_path / "mymodel" / "split.json").read_text())
    photo = tmp_path / re.search(r"^(mydata/\S+): ", predict, flags=re.M).group(1)
    assert hashlib.sha256(photo.read_bytes()).hexdigest() in split["test"], predict
    assert "added as model version 1" in add and "version 1 serves" in add
    # curl ends the JSON with no newline, so the server's shutdown log can follow it on the same line
    answer, _ = json.JSONDecoder().raw_decode(next(line for line in serve.splitlines() if line.startswith("{")))
    assert answer["model_version"] == 1 and answer["top_k"][0]["label"] in labels  # the lab's model, not the starter
