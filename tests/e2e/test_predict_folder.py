"""`leafdoc predict MODEL FOLDER`: every photo of the folder answered, each unreadable one with its error and exit
code 1 (found by the repro review of 2026-12-01: a folder was refused whole as "is a folder, not an image file.")."""

from __future__ import annotations

import json
import shutil

from tests.conftest import SHARED, make_leaf_folder
from tests.e2e.test_cli import leafdoc


def test_predict_answers_every_photo_of_a_folder_and_names_the_unreadable(tmp_path, tiny_model):
    leaves = make_leaf_folder(tmp_path / "leaves", per_class=1)
    folder = tmp_path / "photos"
    shutil.copytree(leaves, folder / "leaves")
    flower = sorted((SHARED / "flowers" / "daisy").glob("*.jpg"))[0]
    shutil.copy(flower, folder / "flower.jpg")
    (folder / "truncated.jpg").write_bytes(flower.read_bytes()[:3000])
    (folder / "notes.jpg").write_text("not a photo")
    (folder / "README.md").write_text("the photos of 1 December")  # not named as a photo: left out
    (folder / ".hidden.jpg").write_bytes(flower.read_bytes())  # a hidden file: left out

    r = leafdoc("predict", tiny_model, folder, "--json", home=tmp_path / "home")
    assert r.returncode == 1, r.stderr  # two files could not be read; every answer is still printed
    answers = {a["file"]: a for a in json.loads(r.stdout)}
    leaf_photos = sorted(str(p) for p in (folder / "leaves").rglob("*.jpg"))
    expected = sorted([*leaf_photos, *(str(folder / n) for n in ("flower.jpg", "truncated.jpg", "notes.jpg"))])
    assert sorted(answers) == expected
    assert "truncated" in answers[str(folder / "truncated.jpg")]["error"]
    assert "not a photo leafdoc can read" in answers[str(folder / "notes.jpg")]["error"]
    for name in [*leaf_photos, str(folder / "flower.jpg")]:
        assert "error" not in answers[name] and answers[name]["top_k"], name

    (tmp_path / "empty").mkdir()
    r = leafdoc("predict", tiny_model, tmp_path / "empty", home=tmp_path / "home")
    assert r.returncode == 1
    assert "a folder with no photos in it or its sub-folders" in " ".join(r.stderr.split())
