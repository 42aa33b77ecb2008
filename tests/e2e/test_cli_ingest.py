"""`leafdoc ingest` as a user runs it: a real process, its own data home, its exit code and its words."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import synthetic_image


def leafdoc(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("leafdoc")
    command = [str(exe)] if exe.exists() else [shutil.which("leafdoc") or "leafdoc"]
    # A wide terminal, so the summary table does not fold file names; no colour codes to read past.
    env = {**os.environ, "LEAFDOC_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def photos(tmp_path) -> Path:
    root = tmp_path / "photos"
    synthetic_image(root / "healthy" / "leaf.jpg")
    (root / "rust").mkdir()
    (root / "rust" / "notes.jpg").write_text("picked on Monday, spots on two leaves")
    (root / "rust" / "empty.jpg").write_bytes(b"")
    return root


def test_ingest_reports_each_rejected_file_and_succeeds(tmp_path, photos):
    home = tmp_path / "home"
    run = leafdoc("ingest", "photos", home=home, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "photos v1: 1 image in 1 class" in run.stdout
    assert "added 1, duplicates 0, near-duplicates 0, rejected 2" in run.stdout
    # each rejected file under its reason, named from the folder ingested
    lines = run.stdout.splitlines()
    rejected = lines[lines.index("Rejected (in photos)") + 1 :]
    assert rejected[0].startswith("the file is empty (0 bytes)") and rejected[1] == "  rust/empty.jpg"
    assert rejected[2].startswith("not a photo leafdoc can read") and rejected[3] == "  rust/notes.jpg"
    assert (home / "catalog.sqlite").is_file()  # the data home came from LEAFDOC_HOME

    again = leafdoc("ingest", "photos", "--json", home=home, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert {"dataset", "version", "added", "duplicates", "rejected"} <= summary.keys()
    assert summary["dataset"] == "photos" and summary["version"] == 1 and summary["added"] == 0
    assert [d["file"] for d in summary["duplicates"]] == ["photos/healthy/leaf.jpg"]
    assert summary["rejected"] == [
        {"file": "photos/rust/empty.jpg", "reason": "the file is empty (0 bytes). Re-export or re-copy the photo."},
        {
            "file": "photos/rust/notes.jpg",
            "reason": "not a photo leafdoc can read (is it really a photo, or text/another format?). "
            "Use a photo file: JPEG, PNG, HEIC, WebP, TIFF, BMP or GIF.",
        },
    ]


def test_ingest_of_a_missing_path_is_one_plain_error(tmp_path):
    run = leafdoc("ingest", "no-such-folder", home=tmp_path / "home", cwd=tmp_path)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr + run.stdout
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: no-such-folder: no such file or folder."]
