"""Timing several models side by side on a shared machine: each is called in turn, 10 calls at a time, so
background load hits them alike; the ratios between them are the figure to read."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed_in_turns(calls: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median milliseconds per call of each `calls[name]()`: 5 warm-up calls each, then rounds of 10 calls each
    until about `runs` calls each."""
    for call in calls.values():
        for _ in range(5):
            call()
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(max(1, runs // 10)):
        for k, call in calls.items():
            for _ in range(10):
                start = time.perf_counter()
                call()
                times[k].append((time.perf_counter() - start) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}
