"""What a newcomer sees at the command line (issue 54): a missing argument gets a short usage line, not a traceback;
an unknown choice lists every valid one; --help fits 80 columns; training prints no TensorFlow/CUDA start-up noise
and no source tags on its progress lines. Each runs the installed `leafdoc` as a user does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

LEAFDOC = Path(sys.executable).with_name("leafdoc")


def run(*args, home: Path, columns: int = 200, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell has it
    full = {**base, "LEAFDOC_HOME": str(home), "COLUMNS": str(columns), "NO_COLOR": "1", **(env or {})}
    return subprocess.run([str(LEAFDOC), *map(str, args)], env=full, capture_output=True, text=True)


@pytest.mark.parametrize(
    ("args", "missing"),
    [
        (("predict",), "Missing argument 'model_dir'"),
        (("train",), "Missing option '--out'"),
        (("models", "add"), "Missing argument 'folder'"),
        (("evaluate", "somewhere"), "Missing option '--data'"),
    ],
)
def test_a_missing_argument_prints_a_short_usage_and_exits_2(tmp_path, args, missing):
    r = run(*args, home=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "MissingParameter" not in r.stderr
    assert r.stderr.startswith(f"Usage: leafdoc {' '.join(args[:2] if args[0] == 'models' else args[:1])} ")
    assert missing in r.stderr and "--help" in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 5, r.stderr


def test_an_unknown_export_format_lists_every_format(tmp_path):
    r = run("export", tmp_path / "no-such-model", "--format", "coreml", home=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    said = r.stdout + r.stderr
    assert "'coreml'" in said
    for fmt in ("onnx", "tflite", "onnx-int8", "onnx-fp16"):
        assert fmt in said.split("what to do:")[1], said


@pytest.mark.parametrize(
    "command", [("train",), ("predict",), ("evaluate",), ("export",), ("serve",), ("calibrate",), ("models", "add")]
)
def test_help_reads_at_80_columns(tmp_path, command):
    """Every line fits, and every option's name is whole on one line (a cramped table cut `--fine-tune-fraction`
    into pieces)."""
    r = run(*command, "--help", home=tmp_path, columns=80)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    flags = {word for line in lines for word in line.split() if word.startswith("--")}
    import typer.main

    from leafdoc.cli.main import app

    cmd = typer.main.get_command(app)
    for part in command:
        cmd = cmd.commands[part]
    for param in cmd.params:
        for opt in param.opts:
            if opt.startswith("--") and not param.hidden:
                assert opt in flags, (opt, r.stdout)
    assert not any("│" in line for line in lines), "a boxed table squeezes the help into a narrow column"


def test_training_prints_no_tensorflow_noise_and_no_source_tags(tmp_path, leaf_folder):
    """On a machine without a GPU: none of TensorFlow's C++ start-up lines (CUDA drivers, cuInit, CPU instructions,
    absl), and the epoch lines carry no `printing.py:NNN` tag."""
    from leafdoc.train.tfimport import gpu_driver_present

    if gpu_driver_present():
        pytest.skip("a GPU driver is loaded here: leafdoc leaves TensorFlow's start-up lines alone")
    r = run(
        "train",
        "--data",
        leaf_folder,
        "--out",
        tmp_path / "model",
        *("--backbone", "baseline_cnn", "--weights", "none", "--image-size", "16", "--epochs", "2"),
        home=tmp_path / "home",
        columns=100,
    )
    assert r.returncode == 0, r.stderr
    said = r.stdout + r.stderr
    assert "scratch epoch 2:" in said, said
    for noise in ("cuInit", "cuda", "CUDA", "absl", "cpu_feature_guard", "rebuild TensorFlow", ".py:", ".cc:"):
        assert noise not in said, (noise, said)


def test_default_training_reads_at_80_columns_without_tensorflow_warnings(tmp_path, leaf_folder):
    """The defaults (a head on the pretrained backbone's features, with augmented views) as the guide runs them,
    at a tiny size: no "tf.function retracing" paragraphs from computing the features, every line within 80
    columns (the epoch lines wrapped onto two), a long run's epochs thinned to about 20 lines (first, every n-th,
    last), and the evaluation counts the test photos (its bar showed the last epoch's 21 batches for 12 photos)."""
    import json
    import re

    r = run(
        "train",
        *("--data", leaf_folder, "--out", tmp_path / "model", "--image-size", "32", "--epochs", "60"),
        home=tmp_path / "home",
        columns=80,
    )
    assert r.returncode == 0, r.stderr
    said = r.stdout + r.stderr
    assert "retracing" not in said and "WARNING" not in said, said
    long = [line for line in said.splitlines() if len(line) > 80]
    assert not long, long
    epochs = re.findall(r"^head epoch (\d+): loss [\d.]+ acc [\d.]+, val loss [\d.]+ acc [\d.]+ \(\d+s\)$", said, re.M)
    assert epochs == ["1", *map(str, range(3, 61, 3))], said  # 60 epochs: a line every 3, and the last
    assert "60 head epochs: a line every 3" in said
    card = json.loads((tmp_path / "model" / "card.json").read_text())
    n = card["metrics"]["test"]["n"]
    assert re.search(rf"^scored the {n} test photos in \d+\.\ds$", said, re.M), said  # photos, not batches
    assert f"on {n} held-out images" in " ".join(said.split())


def test_a_run_with_field_photos_says_its_unlike_training_check_within_80_columns(tmp_path, leaf_folder):
    """`leafdoc train --field DIR` ends with what the unlike-training check refuses: wrapped at 80 columns like the
    lines before it (it ran on as one line of 134 characters)."""
    import shutil

    from tests.conftest import SHARED

    field = tmp_path / "field"
    field.mkdir()
    for f in sorted((SHARED / "field-corn").rglob("*.jpg"))[:40]:  # about half calibrate the check (by sha256)
        shutil.copy2(f, field / f.name)
    r = run(
        "train",
        *("--data", leaf_folder, "--out", tmp_path / "model", "--field", field),
        *("--backbone", "baseline_cnn", "--weights", "none", "--image-size", "16", "--epochs", "1"),
        home=tmp_path / "home",
        columns=80,
    )
    assert r.returncode == 0, r.stderr
    assert "unlike-training check: refuses" in r.stdout, r.stdout
    long = [line for line in r.stdout.splitlines() if len(line) > 80]
    assert not long, long


def test_an_unknown_training_choice_lists_every_choice_once_per_option(tmp_path):
    (tmp_path / "mydata").mkdir()
    r = run("train", "--data", tmp_path / "mydata", "--out", tmp_path / "m", "--backbone", "vgg", home=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    from leafdoc.train.backbone_registry import NAMES

    assert "--backbone 'vgg'" in r.stderr and all(f"'{name}'" in r.stderr for name in NAMES), r.stderr
    assert "pydantic.dev" not in r.stderr  # a link to a library's page is not what to do


def test_training_on_photos_outside_class_folders_says_why_nothing_was_ingested(tmp_path, leaf_folder):
    """Photos straight in the folder: training said "dataset 'flat' is not in the catalog ... Run `leafdoc ingest`
    first". Now, as `leafdoc ingest` says (session 74; before, it rejected each photo as "not inside a class folder"):
    it looks like one class folder, and the folder to pass is its parent."""
    flat = tmp_path / "flat"
    flat.mkdir()
    for photo in sorted(leaf_folder.rglob("*.jpg"))[:4]:
        (flat / photo.name).write_bytes(photo.read_bytes())
    r = run("train", "--data", flat, "--out", tmp_path / "m", "--image-size", "48", "--epochs", "1", home=tmp_path)
    said = " ".join((r.stdout + r.stderr).split())
    assert r.returncode == 1 and "Traceback" not in said, said
    assert f"{flat}: 4 of its photos are in it directly, in no class folder: it looks like one class folder" in said
    assert f"leafdoc ingest {tmp_path} --dataset NAME" in said and "folder named after their class" in said, said
    assert "not in the catalog" not in said and not (tmp_path / "m").exists()


@pytest.mark.parametrize("source", ["folder", "zip with a long name"])
def test_an_error_wraps_at_80_columns_whole_and_with_its_paths_unbroken(tmp_path, source):
    """`leafdoc ingest` of a folder (or a zip of one) of train/ and test/ splits is refused with a message and what to
    do of about 400 characters: each came out as one line, run on past the terminal's edge. Now wrapped at 80
    columns at spaces only: the words are all there, in order, and a path longer than a line is on a line of its
    own, whole (Rich's own wrapping cut it mid-name)."""
    import zipfile

    from tests.conftest import synthetic_image

    from leafdoc.core.errors import DatasetError
    from leafdoc.data.sources import iter_source

    folder = tmp_path / "photos"
    for split in ("train", "test"):
        for cls in ("Tomato___healthy", "Tomato___Late_blight"):
            synthetic_image(folder / split / cls / "leaf.jpg")
    path, whole = folder, folder / "train"  # the hint names the folder to pass
    if source != "folder":
        path = whole = tmp_path / ("photos-of-the-lab-sorted-by-a-student-into-train-and-test-" * 2 + ".zip")
        with zipfile.ZipFile(path, "w") as zf:
            for f in sorted(folder.rglob("*.jpg")):
                zf.write(f, f.relative_to(folder).as_posix())
    with pytest.raises(DatasetError) as refused:  # the words the library says
        list(iter_source(path))
    r = run("ingest", path, home=tmp_path / "home", columns=80)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0].startswith("error:"), r.stderr  # refused before any photo was read: no empty progress bar
    said = lines[next(i for i, line in enumerate(lines) if line.startswith("error:")) :]
    expected = f"error: {refused.value.message} what to do: {refused.value.hint}"
    assert " ".join(" ".join(said).split()) == " ".join(expected.split()), r.stderr  # every word, in order
    assert len(said) >= 5, r.stderr  # wrapped
    assert any(line.startswith("what to do: ") for line in said), r.stderr
    too_long = [line for line in said if len(line) > 80 and " " in line.strip()]
    assert not too_long, too_long  # only a word longer than a line may pass 80 columns, alone on its line
    assert any(str(whole) in line for line in said), r.stderr  # the path, unbroken


def test_a_diagnosis_reads_at_80_columns(tmp_path):
    """`leafdoc predict`'s advice and a refusal's words ran on as lines of 200-400 characters, which a terminal folds
    mid-word: at 80 columns each line fits, indented under its photo, and says every word, in order."""
    from leafdoc.advice import shipped_knowledge

    repo = Path(__file__).resolve().parents[2]
    starter = repo / "models" / "starter"
    if not (starter / "model.onnx").is_file():
        pytest.skip("no starter model committed yet")
    leaf, flower = repo / "examples" / "tomato_early_blight.jpg", repo / "examples" / "guide" / "not_a_leaf.jpg"
    notes = tmp_path / "field-notes-of-the-second-visit-to-the-tomato-greenhouse.jpg"
    notes.write_text("not a photo")
    r = run("predict", starter, leaf, flower, notes, home=tmp_path, columns=80)
    assert "Traceback" not in r.stderr, r.stderr  # one photo could not be read; the others are answered
    assert r.returncode == 1  # and the exit code says one went unanswered ("not sure" is an answer)
    lines = r.stdout.splitlines()
    too_long = [line for line in lines if len(line) > 80 and " " in line.strip()]
    assert not too_long, too_long  # only a path longer than a line may pass 80 columns, alone on its line
    said = " ".join(r.stdout.split())
    summary = " ".join(shipped_knowledge().get("Tomato___Early_blight").summary.split())
    assert f"What to do: {summary}" in said
    refused = lines.index(next(line for line in lines if line.startswith(f"{flower}: not sure")))
    words = lines[refused + 1 : refused + 4]
    assert all(line.startswith("  ") for line in words) and "Photograph" in " ".join(words), lines
    assert "Not sure this is a leaf photo" in said and "on a plain background." in said
    assert (
        f"{notes}: not a photo leafdoc can read" in said
        and "Use a photo file: JPEG, PNG, HEIC, WebP, TIFF, BMP or GIF." in said
    )
