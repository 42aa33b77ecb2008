"""Giving freed memory back to the system: glibc keeps the heap pages a process freed, so an API worker stayed
hundreds of MB larger after big request bodies or big decoded photos were freed; `malloc_trim` returns them."""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

# After a request body or a decoded photo this big, the worker trims (service/middleware.py, service/serving.py).
TRIM_AFTER_BYTES = 16 * 1024**2


@functools.cache
def malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim (None elsewhere). Three 192 MiB batches, then four at once: a worker at 243 -> 388 MB
    without it, 243 -> 229 MB with it. It lets go of the GIL (ctypes): trimming 300 MB of freed 64 KiB blocks took
    40 ms, so call it in a thread, not on the event loop."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def give_back_after(freed: int) -> None:
    """Trim once `freed` bytes (a decoded photo's, a request body's) of TRIM_AFTER_BYTES or more are let go, as the API
    workers do after a big decode (service/serving.py): for code outside them, the web page's thumbnails."""
    if freed >= TRIM_AFTER_BYTES and (trim := malloc_trim()) is not None:
        trim(0)
