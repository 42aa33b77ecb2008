"""What the page blocks (ui/page.py `blocked_paths`), judged by Gradio's own check (`is_allowed_file`, which the
`file=` route runs): the example photos are served when leafdoc is installed under the system temp dir (a clone in
/tmp: every example was a 403, blocked paths win over allowed ones), and the temp dir's other files stay blocked."""

from __future__ import annotations

import tempfile
from pathlib import Path

from gradio.utils import is_allowed_file

from leafdoc.ui.page import blocked_paths


def _file(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _check(path: Path, blocked: list[str], allowed: list[Path], page: Path) -> str:
    return is_allowed_file(path, blocked_paths=blocked, allowed_paths=allowed, created_paths=[page])[1]


def test_examples_installed_under_the_temp_dir_are_served_and_its_other_files_blocked(settings, tmp_path, monkeypatch):
    temp = (tmp_path / "systemp").resolve()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    clone = temp / "x" / "leafdoc"
    examples = [_file(clone / "examples" / "corn_common_rust.jpg"), _file(clone / "examples" / "guide" / "a.jpg")]
    others = [
        _file(temp / "gradio" / "0123abcd" / "someone_elses_upload.jpg"),  # another Gradio page's upload
        _file(temp / "x" / "notes.txt"),  # beside the clone
        _file(clone / "src" / "secret.py"),  # in the clone, not an example
        _file(clone / "examples" / "README.md"),  # beside the examples, not served
    ]
    page = settings.cache_dir / "ui"
    page.mkdir(parents=True)
    assert not page.is_relative_to(temp)
    blocked = blocked_paths(settings, page, tuple(examples))
    for photo in examples:
        assert _check(photo, blocked, examples, page) == "allowed", photo
    for other in others:
        assert _check(other, blocked, examples, page) == "in_blocklist", other
    assert _check(_file(page / "upload.jpg"), blocked, examples, page) == "created"  # the page's own uploads


def test_the_whole_temp_dir_is_blocked_when_the_page_needs_nothing_in_it(settings, tmp_path, monkeypatch):
    temp = (tmp_path / "systemp").resolve()
    _file(temp / "gradio" / "upload.jpg")
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    examples = (_file(tmp_path / "install" / "examples" / "a.jpg"),)
    assert str(temp) in blocked_paths(settings, settings.cache_dir / "ui", examples)  # later files blocked too


def test_a_page_folder_in_the_temp_dir_blocks_the_temp_dirs_other_files(settings, tmp_path, monkeypatch):
    """A data home under the temp dir (the page's folder in it) no longer leaves the whole temp dir open."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path.resolve()))
    page = (settings.cache_dir / "ui").resolve()
    page.mkdir(parents=True)
    other = _file(tmp_path / "elsewhere" / "upload.jpg")
    blocked = blocked_paths(settings, page)
    assert _check(other, blocked, [], page) == "in_blocklist"
    assert _check(_file(page / "upload.jpg"), blocked, [], page) == "created"
