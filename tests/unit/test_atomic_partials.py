"""What a write killed outright (kill -9) leaves beside its destination, `.NAME.XXXXXXXX.PID@HOST.partial` (a
killed `leafdoc train` left 14 MB of it, never removed), is deleted by the next write to that destination; a folder
another live process is writing is kept, and so is anything that is not atomic_dir's for that name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from leafdoc.core import atomic
from leafdoc.core.atomic import atomic_dir, remove_stale_partials

WRITER = (
    "import os, sys, time; from pathlib import Path; from leafdoc.core.atomic import atomic_dir\n"
    "with atomic_dir(Path(sys.argv[1])) as tmp:\n"
    "    (tmp / 'model.onnx').write_bytes(b'x' * 100_000)\n"
    "    print(tmp, flush=True)\n"
    "    if sys.argv[2] == 'kill':\n"
    "        os.kill(os.getpid(), 9)\n"
    "    time.sleep(60)\n"
)


def writer(final, how: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(final), how], stdout=subprocess.PIPE, text=True, env=env)
    return proc, proc.stdout.readline().strip()


def partials(final) -> list[str]:
    return sorted(p.name for p in final.parent.glob(f".{final.name}.*.partial"))


def test_a_killed_writers_half_written_folder_goes_with_the_next_write_to_that_destination(tmp_path):
    final = tmp_path / "model"
    proc, left = writer(final, "kill")
    assert proc.wait() == -signal.SIGKILL
    assert partials(final) == [os.path.basename(left)] and f".{proc.pid}@" in left  # its writer, in its name
    with atomic_dir(final) as tmp:
        (tmp / "card.json").write_text("{}")
    assert partials(final) == [] and (final / "card.json").is_file()


def test_a_folder_a_live_process_is_writing_is_kept(tmp_path):
    final = tmp_path / "model"
    proc, being_written = writer(final, "sleep")  # a second run to the same --out, still writing
    try:
        with atomic_dir(final) as tmp:
            (tmp / "card.json").write_text("{}")
        assert os.path.isdir(being_written) and (final / "card.json").is_file()
        assert remove_stale_partials(final) == []
    finally:
        proc.kill()
        proc.wait()
    assert [p.name for p in remove_stale_partials(final)] == [os.path.basename(being_written)]


def test_folders_whose_writer_cannot_be_checked_go_only_once_untouched_for_a_day(tmp_path):
    final = tmp_path / "model"
    old_style = tmp_path / ".model.ab_cd123.partial"  # from before writers were named
    away = tmp_path / ".model.zz9x8y7w.4242@another-host.partial"  # another machine's, on a shared disk
    others = [tmp_path / ".model.v2.abcdefgh.partial", tmp_path / ".model.checkpoint", tmp_path / "model.partial"]
    for folder in [old_style, away, *others]:
        folder.mkdir()
    assert remove_stale_partials(final) == []  # written to a moment ago: maybe being written
    later = time.time() + atomic.STALE_SECONDS + 60
    assert sorted(remove_stale_partials(final, now=later)) == sorted([old_style, away])
    assert all(folder.is_dir() for folder in others)  # another destination's, or not atomic_dir's
