"""Every field of `Settings` has a row in docs/cli.md's Settings tables, the tables name no variable that is gone, and
a row's stated default is the code's.

The README promises that docs/cli.md#settings lists every `LEAFDOC_...` variable; about half of them were missing
before this test. The tables are read from the "### Settings" heading to the next heading of level 3 or above
(the "####" group headings between are part of it). In a row, the first cell names the variables and the second
gives their defaults, " / " between the defaults of a row naming several.

Defaults are checked this way: a field whose default is None or "" must say `unset…` or `none…`; one whose default is
a bool, a number or a string must state exactly that value (`true`, `1.0`, `40,000,000`, `25 MiB`, `accuracy`;
backticks and a trailing parenthesis are ignored). A field with a computed default (`home`) is not checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic_core import PydanticUndefined

from leafdoc.core.settings import Settings

CLI_DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
UNITS = {"": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
NUMBER = re.compile(r"(-?[\d,]*\.?\d+)(?:\s+(KiB|MiB|GiB))?")
UNSET = ("unset", "none")


def env_names() -> dict[str, str]:
    """Field name -> its environment variable, as pydantic-settings maps it (prefix + name; an alias if given)."""
    prefix = Settings.model_config.get("env_prefix", "")
    out = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        out[name] = (alias or f"{prefix}{name}").upper()
    return out


def settings_section(text: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index("### Settings")
    end = next(
        (i for i in range(start + 1, len(lines)) if re.match(r"#{1,3}\s", lines[i])),
        len(lines),
    )
    return lines[start + 1 : end]


def split_row(line: str) -> list[str]:
    """A table row's cells; a `|` inside backticks or escaped as `\\|` is not a separator."""
    cells, cell, code = [], "", False
    body = line.strip().removeprefix("|").removesuffix("|")
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and body[i + 1 : i + 2] == "|":
            cell += "|"
            i += 2
            continue
        if ch == "`":
            code = not code
        if ch == "|" and not code:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += ch
        i += 1
    cells.append(cell.strip())
    return cells


def documented() -> list[tuple[str, str]]:
    """(variable, stated default) for every variable the Settings tables name, in order, duplicates kept."""
    rows = []
    for line in settings_section(CLI_DOC.read_text(encoding="utf-8")):
        if not line.startswith("|"):
            continue
        cells = split_row(line)
        if cells[0] == "variable" or set(cells[0]) <= {"-", ":"}:
            continue  # the header and the separator
        names = re.findall(r"`(LEAFDOC_[A-Z0-9_]+)`", cells[0])
        assert names, f"a row of the Settings table names no LEAFDOC_ variable: {line[:80]}"
        defaults = [cells[1]] if len(names) == 1 else [d.strip() for d in cells[1].split(" / ")]
        assert len(defaults) == len(names), f"{', '.join(names)}: give one default each, separated by ' / '"
        rows.extend(zip(names, defaults, strict=True))
    return rows


def stated_value(text: str, default: object) -> object:
    """The value `text` states, read as the type of `default`; ValueError when it is not one."""
    text = re.sub(r"\s*\([^()]*\)$", "", text.replace("`", "")).strip()
    if isinstance(default, bool):
        if text not in ("true", "false"):
            raise ValueError(text)
        return text == "true"
    if isinstance(default, int | float):
        m = NUMBER.fullmatch(text)
        if not m:
            raise ValueError(text)
        number = float(m.group(1).replace(",", "")) * UNITS[m.group(2) or ""]
        return int(number) if number.is_integer() and isinstance(default, int) else number
    return text


def test_the_settings_section_is_found_and_has_rows():
    rows = documented()
    assert len(rows) >= 10, "the Settings tables in docs/cli.md were not found where this test reads them"


def test_every_settings_field_has_a_row():
    names = set(env_names().values())
    seen = [n for n, _ in documented()]
    missing = sorted(names - set(seen))
    assert not missing, f"Settings fields with no row in docs/cli.md's Settings tables: {', '.join(missing)}"
    twice = sorted({n for n in seen if seen.count(n) > 1})
    assert not twice, f"variables with more than one row in docs/cli.md's Settings tables: {', '.join(twice)}"


def test_the_table_names_no_variable_that_is_gone():
    names = set(env_names().values())
    gone = sorted({n for n, _ in documented()} - names)
    assert not gone, f"docs/cli.md's Settings tables name variables Settings no longer has: {', '.join(gone)}"


def default_cases() -> list[tuple[str, object, str]]:
    stated = dict(documented())
    cases = []
    for name, env in env_names().items():
        field = Settings.model_fields[name]
        if field.default is PydanticUndefined or env not in stated:
            continue  # a computed default (default_factory); a missing row fails the test above
        cases.append((env, field.default, stated[env]))
    return cases


@pytest.mark.parametrize(("env", "default", "stated"), default_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_each_stated_default_is_the_codes(env, default, stated):
    unset = stated.lower().startswith(UNSET)
    if default is None or default == "":
        assert unset, f"{env}: the code's default is unset, the table says {stated!r}: start it with 'unset'"
        return
    assert not unset, f"{env}: the table says {stated!r}, the code's default is {default!r}"
    try:
        value = stated_value(stated, default)
    except ValueError:
        pytest.fail(f"{env}: the table's default {stated!r} cannot be read as a {type(default).__name__}")
    assert value == default, f"{env}: the table says {stated!r}, the code's default is {default!r}"


@pytest.mark.parametrize(
    ("text", "default", "value"),
    [
        ("40,000,000", 1, 40_000_000),
        ("25 MiB", 1, 25 * 1024**2),
        ("4 GiB", 1, 4 * 1024**3),
        ("0.5", 1.0, 0.5),
        ("60", 1.0, 60.0),
        ("3,600 (one hour)", 1.0, 3600.0),
        ("`false`", True, False),
        ("`accuracy`", "x", "accuracy"),
    ],
)
def test_stated_defaults_are_read_as_written(text, default, value):
    assert stated_value(text, default) == value


@pytest.mark.parametrize(("text", "default"), [("25 MB", 1), ("yes", True), ("about 1", 1.0)])
def test_an_unreadable_default_is_refused(text, default):
    with pytest.raises(ValueError):
        stated_value(text, default)
