"""The one rule for names people give things: class labels (from zip or folder names, a CSV's `label`
column, a form field) and dataset names. A name is shown in tables, reports, the web page and file names,
so it must be short, printable and unambiguous."""

from __future__ import annotations

MAX_NAME_CHARS = 200
_FORBIDDEN = "/\\"
# Characters that mean markup to a page or a widget that renders rich text (the desktop app's Qt labels take a
# string that looks like HTML as HTML), and the first characters a spreadsheet takes for a formula: a name from a
# zip is shown and exported in all of those.
_MARKUP = '<>"`'
_FORMULA_START = "=+-@"


def name_problem(value: str) -> str | None:
    """Why `value` cannot be a label or dataset name, or None when it can."""
    if not value:
        return "it is empty"
    if len(value) > MAX_NAME_CHARS:
        return f"it has {len(value):,} characters (at most {MAX_NAME_CHARS})"
    if value != value.strip():
        return "it starts or ends with a space"
    if any(not c.isprintable() for c in value):
        return "it holds control or invisible characters"
    if any(c in _FORBIDDEN for c in value):
        return "it holds a slash or backslash"
    if value.startswith("."):
        return "it starts with a dot"
    if any(c in _MARKUP for c in value):
        return "it holds <, >, a double quote or a backtick"
    if value[0] in _FORMULA_START:
        return "it starts with =, +, - or @ (a spreadsheet would take it for a formula)"
    return None


def shown(value: str, limit: int = 60) -> str:
    """A name as it can be printed in a message: escaped (repr) and cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def printable(text: str, limit: int = 300) -> str:
    """`text` with control and invisible characters escaped (a file name from a zip can hold terminal escape
    codes), cut to `limit` characters: safe to print in a table, a log or a web page."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[: limit - 1] + "…"
