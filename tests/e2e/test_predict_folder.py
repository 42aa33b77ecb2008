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


def test_predict_writes_a_table_of_every_answer_safe_to_open_in_a_spreadsheet(tmp_path, tiny_model):
    """`leafdoc predict MODEL FOLDER --csv answers.csv`: a row a photo, as the desktop app saves its history; the rows
    say what `--json` says; a photo named like a formula is text in the sheet, not a formula it runs."""
    import csv

    folder = make_leaf_folder(tmp_path / "photos", per_class=7)  # 21 photos: more than one batch of PREDICT_CHUNK
    first = sorted(folder.rglob("*.jpg"))[0]
    shutil.copy(first, folder / '=HYPERLINK("example.invalid")+x.jpg')
    (folder / "notes.jpg").write_text("not a photo")
    table = tmp_path / "answers.csv"

    r = leafdoc("predict", tiny_model, folder, "--json", "--csv", table, home=tmp_path / "home")
    assert r.returncode == 1, r.stderr  # notes.jpg could not be read
    answers = {a["file"]: a for a in json.loads(r.stdout)}
    assert len(answers) == 23 and "23 answers written to" in r.stderr
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    assert sorted(row["path"] for row in rows) == sorted(answers)
    for row in rows:
        a = answers[row["path"]]
        if "error" in a:
            assert (row["reason"], row["message"], row["diagnosis"]) == ("error", a["error"], "")
            continue
        assert row["diagnosis"] == (a["label"] or "") and row["abstained"] == ("yes" if a["abstained"] else "no")
        assert abs(float(row["confidence"]) - a["confidence"]) < 1e-4
        assert row["top_k"].split("; ")[0].split("=")[0] == a["top_k"][0]["label"]
    formula = next(row for row in rows if "HYPERLINK" in row["file"])
    assert formula["file"].startswith("'=") and formula["path"].startswith(str(folder))  # the name made text


def test_predict_refuses_a_table_it_could_not_write_before_reading_a_photo(tmp_path, tiny_model):
    photo = sorted(make_leaf_folder(tmp_path / "photos", per_class=1).rglob("*.jpg"))[0]
    kept = photo.read_bytes()
    for target, said in [
        (tmp_path, "is a folder"),
        (photo, "is named as a photo"),  # `--csv photo.jpg other.jpg`: the photo would be written over
        (tmp_path / "no-such-folder" / "a.csv", "its folder does not exist"),
        (tmp_path / "link.csv", "is a link or not a plain file"),  # it would have become a file, the linked one kept
    ]:
        if target.name == "link.csv":
            target.symlink_to(tmp_path / "kept.csv")
        r = leafdoc("predict", tiny_model, photo, "--csv", target, home=tmp_path / "home")
        assert r.returncode == 1 and said in " ".join(r.stderr.split()), r.stderr
        assert "Traceback" not in r.stderr and not r.stdout.strip()  # refused before any answer
    assert photo.read_bytes() == kept


def test_predict_decodes_a_few_photos_at_a_time_and_prints_answers_as_they_come(tmp_path, tiny_model, monkeypatch):
    """Every photo was decoded (4 MB each from a phone) before the first answer: 120 phone photos took 640 MB, and a
    folder of 2,000 would take 8 GB; now PREDICT_CHUNK at a time, each batch printed before the next is read."""
    from typer.testing import CliRunner

    from leafdoc.cli import main as cli
    from leafdoc.inference.predictor import Predictor

    folder = make_leaf_folder(tmp_path / "photos", per_class=12)  # 36 photos
    batches, printed_before = [], []
    real = Predictor.predict_files
    said = []
    monkeypatch.setattr(cli, "print_answers", lambda answers: said.extend(a["file"] for a in answers))

    def spy(self, paths, *args, **kwargs):
        batches.append(len(paths))
        printed_before.append(len(said))
        return real(self, paths, *args, **kwargs)

    monkeypatch.setattr(Predictor, "predict_files", spy)
    monkeypatch.setenv("LEAFDOC_HOME", str(tmp_path / "home"))
    r = CliRunner().invoke(cli.app, ["predict", str(tiny_model), str(folder)])
    assert r.exit_code == 0, r.output
    assert max(batches) <= cli.PREDICT_CHUNK and sum(batches) == 36, batches
    assert printed_before == [i * cli.PREDICT_CHUNK for i in range(len(batches))]  # each batch's answers printed first
    assert said == sorted(str(p) for p in folder.rglob("*.jpg"))


def test_a_folders_answers_end_with_what_they_come_to(tmp_path, tiny_model):
    """A scout's folder of photos scrolls by a screen a photo: the last line counts the diagnoses, the "not sure" by
    reason and the unread, as the answers above say them."""
    folder = make_leaf_folder(tmp_path / "photos", per_class=3)
    (folder / "notes.jpg").write_text("not a photo")
    home = tmp_path / "home"
    answers = json.loads(leafdoc("predict", tiny_model, folder, "--json", home=home).stdout)
    r = leafdoc("predict", tiny_model, folder, home=home)
    assert r.returncode == 1
    said = " ".join(r.stdout.split("In all:")[-1].split())
    from collections import Counter

    from leafdoc.words.labels import answer_name

    named = Counter(answer_name(a, a["label"]) for a in answers if "error" not in a and not a["abstained"])
    refused = Counter(a["reason"] for a in answers if "error" not in a and a["abstained"])
    assert said.startswith(f"{len(answers)} photos: ") and said.endswith("1 could not be read."), said
    for name, n in named.items():
        assert f"{n} {name}" in said, (name, said)
    for reason, n in refused.items():
        assert f"{reason} {n}" in said, (reason, said)
    assert f"{sum(named.values())} diagnosed" in said or not named


def test_a_photos_name_cannot_send_control_codes_to_the_terminal(tmp_path, tiny_model):
    """Security round 10: a folder of photos from someone else, one named `leaf<ESC>[2J<ESC>]0;pwned<ESC>\\.jpg`:
    `leafdoc predict` printed the name as it was, and the terminal cleared its screen and took a new title (a
    fake diagnosis could be drawn over the real ones). Each control character is now shown as "?"."""
    folder = make_leaf_folder(tmp_path / "photos", per_class=1)
    first = sorted(folder.rglob("*.jpg"))[0]
    shutil.copy(first, folder / "leaf\x1b[2J\x1b]0;pwned\x1b\\.jpg")
    (folder / "bad\x1b[1A\x9b2K.jpg").write_text("not a photo")  # a C1 control too, on the unread photo's line

    r = leafdoc("predict", tiny_model, folder, home=tmp_path / "home")
    assert r.returncode == 1, r.stderr
    printed = r.stdout + r.stderr
    assert "\x1b" not in printed and "\x9b" not in printed, repr(printed)
    assert "leaf?[2J?]0;pwned?\\.jpg:" in printed and "bad?[1A?2K.jpg:" in printed, printed
