"""One rule for the names people give things (labels, datasets), and no server path in an API answer."""

from __future__ import annotations

import pytest

from leafdoc.core.redact import redact
from leafdoc.data.names import name_problem, printable

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "name, why",
    [
        ("", "empty"),
        ("x" * 201, "characters"),
        (" leading", "space"),
        ("trailing ", "space"),
        ("ctl\x01\x1b[31mred", "control"),
        ("zero\u200bwidth", "invisible"),
        ("a/b", "slash"),
        ("a\\b", "slash"),
        (".hidden", "dot"),
        ("<script>alert(1)<", "<, >"),  # the third security audit's class folder names in an upload zip
        ('=HYPERLINK("http:', "double quote"),
        ("=1+1", "formula"),
        ("@SUM(A1)", "formula"),
        ('say "hi"', "double quote"),
    ],
)
def test_names_that_cannot_be_labels(name, why):
    assert why in name_problem(name)


@pytest.mark.parametrize(
    "name",
    [
        "Tomato___Early_blight",
        "Corn_(maize)___Cercospora_leaf_spot Gray_leaf_spot",
        "é" * 200,
        "Pepper,_bell___healthy",
        "Tomato___Tomato_Yellow_Leaf_Curl_Virus",
        "Cherry_(including_sour)___Powdery_mildew",
        "O'Henry peach",
    ],
)
def test_names_that_can(name):
    assert name_problem(name) is None


def test_printable_escapes_terminal_codes_and_cuts_long_names():
    assert printable("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert len(printable("x" * 5000)) == 300


def test_redact_keeps_a_paths_last_part_and_leaves_routes_and_urls():
    answer = {
        "source": "seed:/srv/leafdoc/models/starter",
        "message": "/tmp/abc/uploads/1f/notzip.zip: not a readable zip file",
        "hint": "See /docs or GET /v1/models/{version}; sqlite:///home/x/db.sqlite; https://example.org/a/b",
        "nested": [{"file": "/etc/passwd"}],
        "n": 3,
    }
    out = redact(answer)
    assert out["source"] == "seed:starter"
    assert out["message"] == "notzip.zip: not a readable zip file"
    assert out["hint"] == answer["hint"]
    assert out["nested"] == [{"file": "passwd"}]
    assert out["n"] == 3
