"""What the CLI's command modules share: settings, JSON output, a progress bar."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from leafdoc.cli.printing import console, print_wrapped
from leafdoc.core.settings import Settings, unknown_variables

_warned = False


def load_settings() -> Settings:
    global _warned
    s = Settings.load()
    if not _warned:  # once a command, however often it loads them
        _warned = True
        for line in unknown_variables(os.environ):
            print_wrapped(console, "warning:", line, "yellow")
    s.ensure_home()
    return s


def emit_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


@contextmanager
def progress_bar(description: str, enabled: bool = True):
    """A Rich progress bar; yields update(done, total). It is drawn from the first update on, so a run refused before
    any work (a path that is not there, a folder one level too deep) prints its error alone, not an empty bar."""
    if not enabled:
        yield lambda done, total: None
        return
    bar: Progress | None = None  # drawn at the first update
    task = None

    def update(done: int, total: int) -> None:
        nonlocal bar, task
        if bar is None:
            bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            bar.start()
            task = bar.add_task(description, total=None)
        bar.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if bar is not None:
            bar.stop()
