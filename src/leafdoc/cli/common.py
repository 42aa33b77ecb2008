"""What the CLI's command modules share: settings, JSON output, a progress bar."""

from __future__ import annotations

import json
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

from leafdoc.cli.printing import console
from leafdoc.core.settings import Settings


def load_settings() -> Settings:
    s = Settings.load()
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
    shown: list = []  # [the bar, its task] once drawn

    def update(done: int, total: int) -> None:
        if not shown:
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
            shown.extend([bar, bar.add_task(description, total=None)])
        shown[0].update(shown[1], completed=done, total=total)

    try:
        yield update
    finally:
        if shown:
            shown[0].stop()
