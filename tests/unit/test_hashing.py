"""core/hashing: a file's sha256, and the cache that must never answer for a file that changed."""

import hashlib
import os

from leafdoc.core import hashing


def test_sha256_file_matches_hashlib_across_chunks(tmp_path):
    data = os.urandom((1 << 20) * 2 + 123)  # three chunks, the last a partial one
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    assert hashing.sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_cached_sha256_follows_a_rewrite_of_the_same_size_and_time(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"a" * 1000)
    first = hashing.cached_sha256(path)
    st = os.stat(path)
    path.write_bytes(b"b" * 1000)  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same modification time: only ctime differs
    assert hashing.cached_sha256(path) == hashlib.sha256(b"b" * 1000).hexdigest() != first
    replaced = tmp_path / "other"
    replaced.write_bytes(b"c" * 1000)
    os.replace(replaced, path)  # another inode under the same name
    assert hashing.cached_sha256(path) == hashlib.sha256(b"c" * 1000).hexdigest()


def test_cached_sha256_is_none_for_what_is_not_a_file(tmp_path):
    assert hashing.cached_sha256(tmp_path / "missing") is None
    assert hashing.cached_sha256(tmp_path) is None


def test_the_cache_keeps_only_the_newest_files(tmp_path, monkeypatch):
    monkeypatch.setattr(hashing, "CACHE_SIZE", 3)
    monkeypatch.setattr(hashing, "_cache", type(hashing._cache)())
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"f{i}")
        paths[-1].write_bytes(bytes([i]) * 10)
        assert hashing.cached_sha256(paths[-1]) == hashlib.sha256(bytes([i]) * 10).hexdigest()
    assert len(hashing._cache) == 3
    assert [key[0] for key in hashing._cache] == [str(p) for p in paths[2:]]
    hashing.cached_sha256(paths[2])  # looked at again: now the newest
    assert [key[0] for key in hashing._cache][-1] == str(paths[2])
