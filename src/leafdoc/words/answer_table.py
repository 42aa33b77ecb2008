"""Answers as a table a spreadsheet opens: one row a photo, the same columns from the desktop app's "Save history as
CSV" (desktop/diagnose.py) and `leafdoc predict --csv` (cli/main.py).

A cell that begins with = + - @ (or a tab or carriage return) is what a spreadsheet runs as a formula: a photo named
`=HYPERLINK("http://…")​.jpg`, or a message from a server the desktop app was pointed at, would run when the file is
opened. Such a cell is written as text, with a leading apostrophe, as the web page's history export does
(ui/history.py); `spreadsheet_safe` says what else a spreadsheet's import runs."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from pathlib import Path

from leafdoc.words.labels import answer_name

FIELDS = [
    "time",
    "file",
    "path",
    "diagnosis",
    "name",
    "confidence",
    "abstained",
    "reason",
    "message",
    "top_k",
    "crop_given",
    "model_version",
]
FORMULA_START = ("=", "+", "-", "@")  # tabs and CRs are spaces by then (BREAKS)
UNREAD = "error"  # the reason of a photo that could not be read (its message says why)


CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # a NUL first made "\x00=7+7" a formula (LibreOffice)
BREAKS = re.compile(r"[\r\n\t]+")  # a quoted cell's line break ends the row in some spreadsheets' import; a tab
# splits the cell where the import splits on tabs too (LibreOffice's and Excel's default: "ok\t=1+1" ran; round 10)
AFTER_SEMICOLON = re.compile(r";([\s\ufeff]*)(?=[=+\-@])")  # Excel in French, Spanish, German... splits on ";"
# (the web page's history export has the same rules in JavaScript: offline/static/history.js spreadsheetSafe)


def spreadsheet_safe(value) -> str:
    """The cell's text, made text where a spreadsheet would run it as a formula: control characters dropped, line
    breaks and tabs made spaces, an apostrophe before a formula's first character at the start (after spaces, which
    an import may trim) and after every ";" (a spreadsheet that splits on ";" makes each part a cell). Checked with
    LibreOffice 7.4 reading the CSV split on commas, semicolons and tabs, spaces trimmed or not: no formula (security
    rounds 9 and 10)."""
    text = BREAKS.sub(" ", CONTROL.sub("", "" if value is None else str(value)))
    text = AFTER_SEMICOLON.sub(lambda m: ";" + m[1] + "'", text)
    return "'" + text if text.lstrip(" \u00a0").startswith(FORMULA_START) else text


def answer_row(answer: dict, path: Path | str, when: datetime | None = None) -> dict:
    """One photo's row, from the API's answer (or `leafdoc predict --json`'s: an unread photo's `{"file", "error"}`)."""
    path = Path(path)
    row = {
        "time": (when or datetime.now()).isoformat(timespec="seconds"),
        "file": path.name,
        "path": str(path),
        "model_version": answer.get("model_version") or "",
    }
    if "error" in answer:
        return {**row, "reason": UNREAD, "message": answer["error"]}
    top = answer.get("top_k") or []
    label = answer.get("label")
    return {
        **row,
        "diagnosis": label or "",
        "name": answer_name(answer, label) if label else "",  # in the answer's language (`--lang`)
        "confidence": f"{float(answer.get('confidence') or 0):.4f}",
        "abstained": "yes" if answer.get("abstained") else "no",
        "reason": answer.get("reason") or "",
        "message": answer.get("message") or "",
        "top_k": "; ".join(f"{t['label']}={float(t['probability']):.4f}" for t in top),
        "crop_given": answer.get("crop_given") or "",
    }


def table_csv(rows: list[dict]) -> str:
    """The rows as CSV (a header of FIELDS, missing cells empty), every cell spreadsheet-safe."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: spreadsheet_safe(row.get(k)) for k in FIELDS} for row in rows)
    return buf.getvalue()
