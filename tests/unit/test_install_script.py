"""scripts/install.sh installs uv, when it needs one, within the version range it names (it used to take whatever
`pip install uv` gave), uses a uv on PATH only within that range, replaces an out-of-range uv of its own cache, and
says why it stops. Run against fakes (a `python3` whose pip "installs" a fake uv, a fake uv on PATH, no npm), in a
copy of the script in a folder of its own: nothing is downloaded and this clone's .venv is not touched."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "install.sh"
TEXT = SCRIPT.read_text()

FAKE_PYTHON = """#!/bin/bash
# `-m venv DIR`: DIR/bin/python is this fake; `-m pip install ...`: logged, and a fake uv of $FAKE_PIP_UV_VERSION
# appears beside it (or pip fails, with FAKE_PIP_FAILS); anything else (compileall): nothing.
echo "python: $*" >> "$FAKE_LOG"
if [ "$1" = -c ]; then echo "${FAKE_PY_VERSION:-3.11}"; fi  # the version asked (install.sh's py_minor)
if [ "$1" = -m ] && [ "$2" = venv ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; fi
if [ "$1" = -m ] && [ "$2" = pip ]; then
  [ -z "${FAKE_PIP_FAILS:-}" ] || { echo "ERROR: no network (fake)" >&2; exit 1; }
  d=$(dirname "$0"); cp "$FAKE_UV" "$d/uv"; echo "$FAKE_PIP_UV_VERSION" > "$d/uv.version"
fi
exit 0
"""

FAKE_UV = """#!/bin/bash
# A uv of the version in uv.version beside it: says it, logs every call, and `venv DIR` makes DIR/bin/python.
v=$(cat "$(dirname "$0")/uv.version")
echo "uv $v: $*" >> "$FAKE_LOG"
[ "$1" = --version ] && echo "uv $v (x86_64-unknown-linux-gnu)"
if [ "$1" = venv ]; then
  [ -z "${FAKE_UV_VENV_FAILS:-}" ] || { echo "error: no interpreter found for Python 3.11 (fake)" >&2; exit 2; }
  for last; do :; done; mkdir -p "$last/bin" && cp "$FAKE_PYTHON" "$last/bin/python"
fi
exit 0
"""

# What the script and the fakes call; nothing else of the system is on PATH (no real uv, no npm).
COMMANDS = ["bash", "sh", "awk", "sort", "head", "dirname", "cat", "cp", "mkdir", "env", "rm", "readlink"]


def the_range() -> tuple[str, str]:
    lo = re.search(r"^UV_MIN=([0-9.]+)$", TEXT, re.M)
    hi = re.search(r"^UV_BELOW=([0-9.]+)$", TEXT, re.M)
    assert lo and hi, "scripts/install.sh names its uv range as UV_MIN=... and UV_BELOW=..."
    return lo.group(1), hi.group(1)


def spec() -> SpecifierSet:
    lo, hi = the_range()
    return SpecifierSet(f">={lo},<{hi}")


def machine_uv() -> str | None:
    """The version of the uv this machine's clone was installed with (on PATH, or the one install.sh put in the
    cache), if there is one."""
    for exe in (shutil.which("uv"), Path.home() / ".cache" / "leafdoc" / "uv-venv" / "bin" / "uv"):
        if exe and Path(exe).is_file():
            out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout.split()
            if len(out) >= 2:
                return out[1]
    return None


def make_uv(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    uv = folder / "uv"
    uv.write_text(FAKE_UV)
    uv.chmod(0o755)
    (folder / "uv.version").write_text(version + "\n")
    return uv


def env_of(tmp_path: Path, **extra: str) -> dict:
    python = tmp_path / "fakes" / "python3"
    return {
        "PATH": f"{tmp_path / 'fakes'}:{tmp_path / 'system'}",
        "HOME": str(tmp_path / "home"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PYTHON": str(python),
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "FAKE_UV": str(tmp_path / "uv-template" / "uv"),
        "FAKE_PYTHON": str(python),
        "FAKE_PIP_UV_VERSION": "0.13.9",
        **extra,
    }


def setup(tmp_path: Path, path_uv: str | None) -> None:
    """A copy of install.sh in a folder of its own; the fakes; a uv of `path_uv` on PATH (None: no uv)."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "scripts" / "install.sh")
    (repo / "requirements.lock").write_text("")
    (repo / "src" / "leafdoc").mkdir(parents=True)
    fakes, system = tmp_path / "fakes", tmp_path / "system"
    fakes.mkdir()
    system.mkdir()
    for name in COMMANDS:
        found = shutil.which(name)
        assert found, f"{name} is needed to run scripts/install.sh"
        (system / name).symlink_to(found)
    python = fakes / "python3"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    make_uv(tmp_path / "uv-template", "0")
    if path_uv is not None:
        make_uv(fakes, path_uv)


def run(tmp_path: Path, path_uv: str | None = None, again: bool = False, **extra: str):
    """install.sh with the fakes (set up first unless `again`): its exit code and what it said, every call the fakes
    saw in this run, the uv-venv folder."""
    if not again:
        setup(tmp_path, path_uv)
    log = tmp_path / "calls.log"
    log.unlink(missing_ok=True)
    r = subprocess.run(
        ["bash", str(tmp_path / "repo" / "scripts" / "install.sh")],
        env=env_of(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return r, calls, tmp_path / "cache" / "leafdoc" / "uv-venv"


def test_the_range_is_a_version_range_that_holds_the_uv_this_machine_was_installed_with():
    lo, hi = the_range()
    assert Version(lo) < Version(hi)
    assert re.search(r'^UV_SPEC="uv>=\$UV_MIN,<\$UV_BELOW"$', TEXT, re.M), "UV_SPEC is made from the range"
    # every `pip install` of the script installs the range, never a bare `uv`
    installs = [line for line in TEXT.splitlines() if "-m pip install" in line]
    assert installs and all('"$UV_SPEC"' in line for line in installs), installs
    found = machine_uv()
    if found is None:
        pytest.skip("no uv on this machine to compare the range with")
    assert Version(found) in spec(), f"this machine runs uv {found}, outside install.sh's range {spec()}"


def test_without_uv_it_installs_one_within_the_range_and_uses_it(tmp_path):
    r, calls, tools = run(tmp_path, path_uv=None)
    assert r.returncode == 0, r.stderr
    lo, hi = the_range()
    pip = [c for c in calls if c.startswith("python: -m pip install")]
    assert pip == [f"python: -m pip install --quiet --disable-pip-version-check uv>={lo},<{hi}"], calls
    assert f"installing uv>={lo},<{hi} into {tools}" in r.stderr
    # the venv, the sync and leafdoc's install go through that uv
    assert any(c.startswith("uv 0.13.9: pip sync") and "requirements.lock" in c for c in calls), calls
    assert any(c.startswith("uv 0.13.9: pip install") and "-e ." in c for c in calls), calls
    assert "leafdoc installed in" in r.stderr

    # run again: the uv it installed is within the range, so nothing is installed a second time
    r, calls, _ = run(tmp_path, again=True)
    assert r.returncode == 0, r.stderr
    assert calls and not [c for c in calls if "-m pip install" in c], calls


@pytest.mark.parametrize(
    "version", ["0.13.9", "0.13.10", "0.13.99", "0.13.8", "0.13.0", "0.14.0", "0.14", "0.9.30", "0.130.1", "1.0.0"]
)
def test_a_uv_on_path_is_used_only_within_the_range(tmp_path, version):
    r, calls, tools = run(tmp_path, path_uv=version)
    assert r.returncode == 0, r.stderr
    installed = [c for c in calls if c.startswith("python: -m pip install")]
    syncs = [c.split(":")[0] for c in calls if ": pip sync" in c]
    if Version(version) in spec():  # the bash check agrees with PEP 440's
        assert not installed and syncs == [f"uv {version}"], calls
        assert "is not one leafdoc was tested with" not in r.stderr
    else:
        assert installed and syncs == ["uv 0.13.9"], calls
        said = " ".join(r.stderr.split())
        assert f"version {version}) is not one leafdoc was tested with (uv>=" in said, said


def test_an_out_of_range_uv_left_in_the_cache_by_an_earlier_install_is_replaced(tmp_path):
    make_uv(tmp_path / "cache" / "leafdoc" / "uv-venv" / "bin", "0.15.2")  # what an unpinned `pip install uv` gave
    python = tmp_path / "cache" / "leafdoc" / "uv-venv" / "bin" / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    r, calls, tools = run(tmp_path, path_uv=None)
    assert r.returncode == 0, r.stderr
    assert [c for c in calls if c.startswith("python: -m pip install")], calls
    assert not [c for c in calls if c.startswith("python: -m venv")], "the cache's venv is reused"
    assert (tools / "bin" / "uv.version").read_text().strip() == "0.13.9"


def test_when_pip_cannot_install_the_range_it_says_what_to_do_and_stops(tmp_path):
    r, calls, tools = run(tmp_path, path_uv=None, FAKE_PIP_FAILS="1")
    assert r.returncode == 1
    said = " ".join(r.stderr.split())
    lo, hi = the_range()
    assert f"could not install uv>={lo},<{hi} into {tools}" in said and "pipx install" in said, said
    assert not [c for c in calls if ": pip sync" in c], "nothing is synced without a uv"


def venv_made(calls: list[str]) -> list[str]:
    """The Python each `uv venv` of the run was asked for."""
    return [c.split("--python ")[1].split()[0] for c in calls if ": venv " in c]


def test_a_python_other_than_3_11_is_not_the_venvs(tmp_path):
    """Ubuntu 24.04's python3 is 3.12 (macOS Homebrew's 3.13): the venv was made with it and the lock, compiled for
    3.11, failed to install. A python3.11 on PATH is taken instead, else uv is asked for 3.11 (it finds one or
    fetches its own)."""
    r, calls, _ = run(tmp_path, path_uv="0.13.9", FAKE_PY_VERSION="3.12")
    assert r.returncode == 0, r.stderr
    assert venv_made(calls) == ["3.11"], calls
    said = " ".join(r.stderr.split())
    assert "is Python 3.12; leafdoc needs 3.11: using 3.11 (uv finds it on this machine or fetches its own)" in said

    elsewhere = tmp_path / "other"
    setup(elsewhere, "0.13.9")
    (elsewhere / "fakes" / "python3.11").symlink_to(elsewhere / "fakes" / "python3")
    r, calls, _ = run(elsewhere, again=True, FAKE_PY_VERSION="3.12")
    assert r.returncode == 0, r.stderr
    assert venv_made(calls) == [str(elsewhere / "fakes" / "python3.11")], calls


def test_a_venv_of_another_python_is_made_again_and_one_of_3_11_is_kept(tmp_path):
    r, calls, _ = run(tmp_path, path_uv="0.13.9")  # a first install, with 3.11
    assert r.returncode == 0 and venv_made(calls) == [str(tmp_path / "fakes" / "python3")], calls
    r, calls, _ = run(tmp_path, again=True)  # again: the venv is kept
    assert r.returncode == 0 and venv_made(calls) == [], calls
    # a venv left by an install with 3.12 (before this check): made again, with 3.11
    r, calls, _ = run(tmp_path, again=True, FAKE_PY_VERSION="3.12")
    assert r.returncode == 0, r.stderr
    assert ".venv has Python 3.12; leafdoc needs 3.11: making it again" in " ".join(r.stderr.split())
    assert venv_made(calls) == ["3.11"], calls


def test_without_a_python_3_11_it_says_how_to_get_one_and_stops(tmp_path):
    r, calls, _ = run(tmp_path, path_uv="0.13.9", FAKE_PY_VERSION="3.12", FAKE_UV_VENV_FAILS="1")
    assert r.returncode == 1
    said = " ".join(r.stderr.split())
    assert "could not make .venv with Python 3.11" in said and "python install 3.11" in said, said
    assert "PYTHON=/path/to/python3.11" in said
    assert not [c for c in calls if ": pip sync" in c], "nothing is synced without a venv"


def test_run_through_a_link_it_installs_into_its_checkout_and_never_removes_another_venv(tmp_path):
    """Run through a link (`~/bin/leafdoc-install` -> the checkout's scripts/install.sh), it went to `~/bin/..`, took
    the user's own ~/.venv of Python 3.12 for one of another Python and deleted it (security round 9)."""
    setup(tmp_path, "0.13.9")
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "leafdoc-install").symlink_to(tmp_path / "repo" / "scripts" / "install.sh")
    theirs = home / ".venv" / "bin"
    theirs.mkdir(parents=True)
    (theirs / "python").write_text("#!/bin/sh\necho 3.12\n")
    (theirs / "python").chmod(0o755)
    r = subprocess.run(["bash", str(home / "bin" / "leafdoc-install")], env=env_of(tmp_path, FAKE_PY_VERSION="3.12"),
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (theirs / "python").is_file(), "the user's own venv was removed"
    assert (tmp_path / "repo" / ".venv" / "bin" / "python").is_file()  # the checkout's venv

    (tmp_path / "repo" / "requirements.lock").unlink()  # a copy of the script outside a checkout
    r, calls, _ = run(tmp_path, again=True)
    assert r.returncode == 1 and "is not a leafdoc checkout" in r.stderr and not calls
