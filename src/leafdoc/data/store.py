"""Content-addressed blob store: a blob's name is the sha256 of its bytes, so it is immutable and
deduplicated for free. A local folder by default; an S3-compatible bucket with `s3://bucket/prefix`.

Beside the blobs, a few named objects that change (a training job's checkpoint, replaced every epoch
and deleted when the job ends), under `named/`. Writing one replaces it whole at once (a rename on
disk, one PUT on S3): a reader, or a process killed while writing, finds the old one or the new one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from leafdoc.core.atomic import atomic_write_bytes
from leafdoc.core.errors import ConfigError, NotFound, ServerFault
from leafdoc.imaging.photos import sha256_bytes


class BlobStore(Protocol):
    def put(self, data: bytes) -> str: ...
    def get(self, sha: str) -> bytes: ...
    def exists(self, sha: str) -> bool: ...
    def delete(self, sha: str) -> None: ...
    def write_named(self, name: str, data: bytes) -> None: ...
    def read_named(self, name: str) -> bytes | None: ...
    def delete_named(self, name: str) -> None: ...


NAMED = "named"
MISSING = ("404", "NoSuchKey", "NotFound")  # an S3 error code that says: no such object
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a name for the store (letters, digits, '.', '_', '-').")
    return name


def _check_sha(sha: str) -> str:
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise NotFound(f"{sha!r} is not a blob id (64 hex characters).")
    return sha


class LocalStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, sha: str) -> Path:
        _check_sha(sha)
        return self.root / sha[:2] / sha[2:4] / sha

    def put(self, data: bytes) -> str:
        sha = sha256_bytes(data)
        path = self._path(sha)
        if not path.exists():
            atomic_write_bytes(path, data)
        return sha

    def get(self, sha: str) -> bytes:
        try:
            return self._path(sha).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {sha} is not in the store at {self.root}.") from None

    def exists(self, sha: str) -> bool:
        return self._path(sha).exists()

    def delete(self, sha: str) -> None:
        """Only for blobs nothing references (data/predictions.py, forget_old_photos, checks): a blob may be
        shared by content."""
        self._path(sha).unlink(missing_ok=True)

    def _named(self, name: str) -> Path:
        return self.root / NAMED / _check_name(name)

    def write_named(self, name: str, data: bytes) -> None:
        atomic_write_bytes(self._named(name), data)

    def read_named(self, name: str) -> bytes | None:
        try:
            return self._named(name).read_bytes()
        except FileNotFoundError:
            return None

    def delete_named(self, name: str) -> None:
        self._named(name).unlink(missing_ok=True)


class S3Store:
    """Blobs in an S3-compatible bucket (AWS S3, MinIO, moto). Needs `leafdoc[serve]` (boto3).

    What the bucket's server refuses or cannot answer (no such bucket, access denied, wrong keys, the endpoint
    down) is a ServerFault naming the bucket and the settings to check, not boto's exception: the CLI prints it,
    the API answers 503, and a replica that cannot fetch its model says why in /readyz."""

    def __init__(self, url: str, endpoint_url: str | None = None):
        import boto3  # only needed at scale

        rest = url.removeprefix("s3://")
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise ConfigError(f"store URL {url!r} has no bucket name.", hint="Use s3://bucket/prefix.")
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        try:
            self.client = boto3.client("s3", endpoint_url=endpoint_url)
        except ValueError as exc:  # botocore: "Invalid endpoint: minio:9000"
            raise ConfigError(
                f"LEAFDOC_S3_ENDPOINT_URL={endpoint_url!r} is not an endpoint URL ({exc}).",
                hint="Give its scheme, host and port, e.g. http://minio:9000; unset it for AWS S3.",
            ) from None

    @contextmanager
    def _faults(self, doing: str) -> Iterator[None]:
        """Turn the server's refusals into a ServerFault; a missing object (NoSuchKey, 404) is left to the caller."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") in MISSING:
                raise
            why = f"{error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
            raise self._fault(doing, why, exc) from None
        except BotoCoreError as exc:  # no connection, no credentials, a timeout
            raise self._fault(doing, type(exc).__name__, exc) from None

    def _fault(self, doing: str, why: str, exc: Exception) -> ServerFault:
        where = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        endpoint = self.endpoint_url or "unset: AWS S3"
        return ServerFault(
            f"the store's bucket {self.bucket!r} cannot be {doing} ({why}).",
            hint=f"Check LEAFDOC_STORE_URL ({where}: the bucket must exist, leafdoc does not create it), "
            f"LEAFDOC_S3_ENDPOINT_URL ({endpoint}) and the S3 keys (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). "
            f"The server said: {exc}",
        )

    def _key(self, sha: str) -> str:
        _check_sha(sha)
        return f"{self.prefix}/{sha[:2]}/{sha}" if self.prefix else f"{sha[:2]}/{sha}"

    def put(self, data: bytes) -> str:
        sha = sha256_bytes(data)
        if not self.exists(sha):
            with self._faults("written"):
                self.client.put_object(Bucket=self.bucket, Key=self._key(sha), Body=data)
        return sha

    def get(self, sha: str) -> bytes:
        try:
            with self._faults("read"):
                return self.client.get_object(Bucket=self.bucket, Key=self._key(sha))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise NotFound(f"blob {sha} is not in bucket {self.bucket}.") from None

    def exists(self, sha: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            with self._faults("read"):
                self.client.head_object(Bucket=self.bucket, Key=self._key(sha))
            return True
        except ClientError as exc:  # only a missing object comes through _faults
            if exc.response.get("Error", {}).get("Code") in MISSING:
                return False
            raise

    def delete(self, sha: str) -> None:
        with self._faults("written"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(sha))  # no error if absent

    def _named_key(self, name: str) -> str:
        _check_name(name)
        return f"{self.prefix}/{NAMED}/{name}" if self.prefix else f"{NAMED}/{name}"

    def write_named(self, name: str, data: bytes) -> None:
        with self._faults("written"):
            self.client.put_object(Bucket=self.bucket, Key=self._named_key(name), Body=data)

    def read_named(self, name: str) -> bytes | None:
        try:
            with self._faults("read"):
                return self.client.get_object(Bucket=self.bucket, Key=self._named_key(name))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def delete_named(self, name: str) -> None:
        with self._faults("written"):
            self.client.delete_object(Bucket=self.bucket, Key=self._named_key(name))  # no error if absent


def open_store(location: str, endpoint_url: str | None = None) -> BlobStore:
    if location.startswith("s3://"):
        return S3Store(location, endpoint_url)
    if re.match(r"(?i)(s3|file):(?!//)", location):  # `s3:/bucket`: a folder named `s3:` in whatever the current one is
        raise ConfigError(
            f"store URL {location!r} is missing a slash: an S3 store is s3://bucket/prefix, a folder file:///path.",
            hint="Correct LEAFDOC_STORE_URL.",
        )
    if "://" in location and not location.startswith("file://"):
        raise ConfigError(
            f"store URL {location!r} is not supported.",
            hint="Use a folder path or s3://bucket/prefix.",
        )
    return LocalStore(Path(location.removeprefix("file://")))
