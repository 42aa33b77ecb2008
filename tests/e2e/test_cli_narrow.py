"""The CLI's tables on an 80-column terminal: the rejected files of `leafdoc ingest` are told apart (two text files
named .jpg in two class folders were the same cut-off `/tmp/.../Tomato__…`), `leafdoc stats` shows class names
whole (a long one wrapped after an underscore or at a space, not mid-word), `leafdoc models list` shows where each
version came from on a line, not broken mid-word."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, synthetic_image

CLASSES = ("Tomato___Early_blight", "Tomato___Late_blight")
LONG = "Corn_(maize)___Cercospora_leaf_spot Gray_leaf_spot"


def leafdoc(*args, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LEAFDOC_HOME": str(home), "COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}
    exe = Path(sys.executable).with_name("leafdoc")
    return subprocess.run([str(exe), *map(str, args)], env=env, capture_output=True, text=True, timeout=300)


def test_ingest_stats_and_models_list_read_at_80_columns(tmp_path):
    folder = tmp_path / "a-rather-long-folder-name-for-the-photos-of-the-farm"
    for name in CLASSES:
        for i in range(2):
            synthetic_image(folder / name / f"leaf_{i}.jpg", seed=i + 10 * len(name))
        (folder / name / "notes_about_the_leaves_of_this_class.jpg").write_text("not a photo")
    synthetic_image(folder / LONG / "leaf.jpg")  # too long for its column at 80: wrapped after an underscore or space
    home = tmp_path / "home"

    run = leafdoc("ingest", folder, "--dataset", "farm", home=home)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines if line.startswith("  ")), lines
    listed = [line.strip() for line in lines if line.startswith("  ")]
    assert listed == [f"{name}/notes_about_the_leaves_of_this_class.jpg" for name in CLASSES]
    assert "…" not in run.stdout

    run = leafdoc("stats", "--dataset", "farm", "--out", tmp_path / "stats", home=home)
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.strip().startswith("Tomato")]
    assert [row.split()[0] for row in rows] == list(CLASSES), run.stdout  # whole, one row each
    lines = run.stdout.splitlines()
    header = next(line for line in lines if line.strip().startswith("class"))
    cells = [line[: header.index("images")].strip() for line in lines[lines.index(header) + 2 :] if line.strip()]
    cells = cells[: cells.index(CLASSES[0])]  # the long name's lines: broken after an underscore or at its space
    assert len(cells) > 1 and "".join(c if c.endswith("_") else c + " " for c in cells).strip() == LONG, cells
    # every line within 80 columns but the one naming the folder written, printed whole so that it can be copied (the
    # suite's temporary folders under xdist make it 82 characters)
    assert "…" not in run.stdout
    assert all(len(line) <= 80 for line in run.stdout.splitlines() if not line.startswith("wrote ")), run.stdout

    run = leafdoc("models", "add", REPO / "models" / "starter", home=home)
    assert run.returncode == 0, run.stderr
    run = leafdoc("models", "list", home=home)
    assert run.returncode == 0, run.stderr
    assert f"  1: added:{REPO / 'models' / 'starter'}" in run.stdout.splitlines(), run.stdout
    assert "…" not in run.stdout
