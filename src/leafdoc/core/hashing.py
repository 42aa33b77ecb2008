"""A file's sha256, read in 1 MB chunks (a model is tens of MB; a photo is hashed from its bytes in
imaging/photos.sha256_bytes). `cached_sha256` remembers the answer while the file stays the same."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

CACHE_SIZE = 256  # file versions remembered; a model version has up to a dozen files
_cache: OrderedDict[tuple, str] = OrderedDict()
_lock = threading.Lock()


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cached_sha256(path: Path | str) -> str | None:
    """The file's sha256, or None if it is not a file; remembered while its path, device, inode, size, change and
    modification times stay the same (the newest CACHE_SIZE files). A model version's files are checked each time
    the version is looked up: ~30 MB hashed once, not at every look."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    digest = sha256_file(path)
    with _lock:
        _cache[key] = digest
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return digest
