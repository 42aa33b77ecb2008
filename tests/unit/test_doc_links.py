"""Every relative link in README.md and docs/*.md leads somewhere: the file exists, and a #anchor names a heading of
the page it points to (GitHub's rule for heading ids). The README was cut down to a page for people and its content
moved into docs/; a link left pointing at a section that moved is what this catches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """The page without fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "``", text)


def slug(heading: str) -> str:
    """GitHub's id for a heading: markup dropped, lower case, punctuation but - and _ removed, spaces to -."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    out.update(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", page.read_text(encoding="utf-8")))
    return out


def links(page: Path) -> list[str]:
    return [a or b for a, b in LINK.findall(prose(page.read_text(encoding="utf-8")))]


def test_the_slug_rule_matches_githubs_on_headings_the_pages_use():
    assert slug("The service: `leafdoc serve [--host] [--port] [--workers N]`") == (
        "the-service-leafdoc-serve---host---port---workers-n"
    )
    assert slug('When leafdoc says "not sure"') == "when-leafdoc-says-not-sure"
    assert slug("Where leafdoc departs from DESIGN.md") == "where-leafdoc-departs-from-designmd"


def test_a_broken_link_is_found(tmp_path):
    """The checker itself: a page linking to a missing file and to a missing heading is caught."""
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## A part\n")
    page.write_text("[ok](other.md#a-part) [gone](missing.md) [no such part](other.md#nowhere) `[code](x.md)`\n")
    assert broken(page) == ["missing.md", "other.md#nowhere"]


def broken(page: Path) -> list[str]:
    bad = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:: not checked here (no network)
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if dest.is_relative_to(REPO.parent / "shared") and not (REPO.parent / "shared").is_dir():
            continue  # ../shared (DESIGN.md, the datasets) sits beside the clone in the workplace, not in every clone
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in anchors(dest)):
            bad.append(target)
    return bad


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_works(page):
    assert links(page) or page.name != "README.md", "no links found: the pattern is broken"
    assert broken(page) == []


# ---- files a page names in `code` (not links): a module that moved leaves a name a contributor cannot find ----------

PACKAGE = REPO / "src" / "leafdoc"
ROOTS = ("src", "tests", "scripts", "docs", "examples", "models", "deploy", "benchmarks", "loadtest", "recipes", "web")
NAMED = re.compile(r"`([\w.\-]+(?:/[\w.\-]+)*\.(?:py|md|sh|js|json|toml|ya?ml|ipynb))`")
# Pages that keep dated history verbatim (they name files as they were then), and names that are not files on purpose.
HISTORY = {"history.md", "load-tests.md"}
NOT_FILES = {"service/X.py", "service/routes/X.py", "lifecycle/events.py"}  # placeholders; "there is no ..."
GENERATED = ("benchmarks/out/", "loadtest/out/")  # what a benchmark writes when run (git-ignored)


def named_files(text: str) -> list[str]:
    """Paths a page names in inline code that are rooted where a reader would look: a folder of the repository
    (`tests/unit/x.py`), `leafdoc/...` (in src/), or a package of leafdoc (`inference/abstain.py`)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    packages = {"leafdoc"} | {p.name for p in PACKAGE.iterdir() if p.is_dir()}
    rooted = [p for p in NAMED.findall(text) if "/" in p and (p.split("/")[0] in ROOTS or p.split("/")[0] in packages)]
    return [p for p in rooted if p not in NOT_FILES and not p.startswith(GENERATED)]


def missing_files(text: str) -> list[str]:
    return [
        path for path in named_files(text) if not any((base / path).exists() for base in (REPO, REPO / "src", PACKAGE))
    ]


def test_a_moved_module_named_in_a_page_is_found():
    text = "`leafdoc/images.py` (gone), `imaging/photos.py`, `src/leafdoc/ui/common.py`, `tests/unit/nope.py`, `x.py`"
    text += "\n```\nleafdoc/in_a_fence.py\n```\n"
    assert missing_files(text) == ["leafdoc/images.py", "tests/unit/nope.py"]


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if p.name not in HISTORY] + [PACKAGE / "advice" / "knowledge" / "README.md"],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_every_file_a_page_names_exists(page):
    assert missing_files(page.read_text(encoding="utf-8")) == []


def linted(command: str, ruff: str = "ruff check") -> set[str]:
    """The folders a `ruff check ...` (or `ruff format --check ...`) command names."""
    m = re.search(re.escape(ruff) + r" ((?:[\w./-]+ ?)+)", command)
    return set(m.group(1).split()) if m else set()


def test_the_lint_commands_cover_every_folder_of_python():
    """README's lint command and scripts/test.sh's name the same folders, and every top-level folder of committed
    Python (but notebooks/, excluded in pyproject.toml) among them: scripts/ was left out, so nothing checked it."""
    import subprocess

    readme = linted((REPO / "README.md").read_text(encoding="utf-8"))
    script = (REPO / "scripts" / "test.sh").read_text(encoding="utf-8")
    assert readme and readme == linted(script) == linted(script, "ruff format --check")
    listed = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: no list of committed files")
    folders = {line.split("/")[0] for line in listed.stdout.splitlines() if "/" in line}
    assert folders - {"notebooks"} - readme == set()
