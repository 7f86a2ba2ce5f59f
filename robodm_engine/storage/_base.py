"""What every store shares: keys, listings, errors, hashing and the Store interface."""

from __future__ import annotations

import abc
import contextlib
import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from robodm_engine.errors import StorageError
from robodm_engine.storage._options import MiB, StorageOptions

#: What :meth:`Store.open` returns: a buffered, seekable, read-only binary file.
ReadableFile = io.BufferedIOBase

_S3_MAX_KEY_BYTES = 1024


class ObjectNotFoundError(StorageError):
    """The object does not exist (HTTP 404 / ``FileNotFoundError``).

    Attributes:
        url: the URI of the missing object.
    """

    def __init__(self, url: str) -> None:
        super().__init__(f"{url}: no such object")
        self.url = url


_TEMP_MARKER = ".robodm-tmp-"
_TEMP_NAME = re.compile(r"^\..*\.robodm-tmp-[0-9a-f]{32}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_key(key: str, *, what: str = "key") -> str:
    """Return ``key`` if it is a safe posix path relative to a store's root, else raise.

    Rejected: empty keys, absolute keys, ``.`` / ``..`` / empty segments (``a//b``, a trailing
    ``/``), backslashes, control characters, and keys longer than S3's 1024 bytes.

    >>> validate_key("trajectories/trajectory_000.mkv")
    'trajectories/trajectory_000.mkv'
    >>> validate_key("../etc/passwd")
    Traceback (most recent call last):
    ...
    robodm_engine.errors.StorageError: invalid key '../etc/passwd': '..' segments are not allowed
    """
    if not isinstance(key, str):
        raise StorageError(f"invalid {what} {key!r}: must be a str, got {type(key).__name__}")
    reason = _key_problem(key)
    if reason:
        raise StorageError(f"invalid {what} {key!r}: {reason}")
    return key


def _key_problem(key: str) -> str | None:
    if not key:
        return "must not be empty"
    if key.startswith("/"):
        return "must be relative (no leading '/')"
    if "\\" in key:
        return "backslashes are not allowed (keys are posix paths)"
    if _CONTROL.search(key):
        return "control characters are not allowed"
    if len(key.encode("utf-8")) > _S3_MAX_KEY_BYTES:
        return f"longer than {_S3_MAX_KEY_BYTES} bytes"
    for segment in key.split("/"):
        if segment == "":
            return "empty path segments ('//' or a trailing '/') are not allowed"
        if segment in (".", ".."):
            return f"{segment!r} segments are not allowed"
    return None


def _validate_prefix(prefix: str) -> str:
    """A listing prefix: '' or a key, optionally ending in '/'."""
    if not isinstance(prefix, str):
        raise StorageError(f"invalid prefix {prefix!r}: must be a str")
    if prefix:
        validate_key(prefix[:-1] if prefix.endswith("/") else prefix, what="prefix")
    return prefix


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object: its key relative to the store's root and its size in bytes."""

    key: str
    size: int


def sha256_stream(stream: IO[bytes] | io.BufferedIOBase, block_size: int = MiB) -> str:
    """Hex SHA-256 of everything left to read in a binary stream, read ``block_size`` at a time.

    >>> sha256_stream(io.BytesIO(b"abc"))[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    while block := stream.read(block_size):
        digest.update(block)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a local file, read in large blocks without loading it whole."""
    with Path(path).open("rb") as f:
        return sha256_stream(f)


class Store(abc.ABC):
    """A root (local directory or S3 prefix) holding objects addressed by relative keys.

    Use :func:`open_store` rather than the subclasses' constructors.
    """

    options: StorageOptions

    @property
    @abc.abstractmethod
    def uri(self) -> str:
        """The root, in a form :func:`open_store` accepts back."""

    @abc.abstractmethod
    def url(self, key: str) -> str:
        """The full URI (S3) or absolute path (local) of ``key``."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object exists at ``key``."""

    @abc.abstractmethod
    def size(self, key: str) -> int | None:
        """Size in bytes of the object at ``key``, or ``None`` if there is none."""

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes | bytearray | memoryview) -> None:
        """Publish ``data`` at ``key`` atomically (visible only once complete)."""

    @abc.abstractmethod
    def put_file(self, local_path: str | os.PathLike[str], key: str, *, move: bool = False) -> None:
        """Publish a local file at ``key`` atomically.

        With ``move=True`` the source file is consumed (renamed when possible, deleted after a
        successful upload otherwise), which saves a copy when the store is local.
        """

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The whole object at ``key``; :class:`ObjectNotFoundError` if missing."""

    @abc.abstractmethod
    def get_file(self, key: str, local_path: str | os.PathLike[str]) -> None:
        """Download ``key`` to ``local_path`` atomically (temp name beside it, then rename)."""

    @abc.abstractmethod
    def open(self, key: str) -> ReadableFile:
        """A seekable, buffered, read-only binary file over the object at ``key``."""

    @abc.abstractmethod
    def list(self, prefix: str = "", suffix: str | None = None) -> list[ObjectInfo]:
        """Objects whose key starts with ``prefix`` (and ends with ``suffix``), sorted by key."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete the object at ``key``; deleting a missing object is not an error (as on S3)."""

    @abc.abstractmethod
    def clean_incomplete_writes(self, older_than: float = 86400.0) -> int:
        """Remove what writers killed mid-write left behind; return how many were removed.

        Local: temporary files; S3: unfinished multipart uploads (invisible, but billed until
        aborted). Only leftovers older than ``older_than`` seconds are touched, so writes still
        in progress in other processes are safe.
        """

    def sha256(self, key: str) -> str:
        """Hex SHA-256 of the object at ``key``, streamed (never loaded whole)."""
        with self.open(key) as f:
            return sha256_stream(f)

    def cached_path(
        self,
        key: str,
        cache_dir: str | os.PathLike[str],
        *,
        expected_size: int | None = None,
    ) -> Path:
        """A local path holding the object at ``key``, downloading it into ``cache_dir`` if needed.

        A cached copy is reused when its size matches ``expected_size`` (no request at all) or,
        without one, the object's current size (one HEAD). Downloads are atomic, so processes
        sharing a cache directory never see partial files.

        >>> store.cached_path("trajectory_000.mkv", "/cache", expected_size=1234)  # doctest: +SKIP
        PosixPath('/cache/datasets/philips-v1/trajectory_000.mkv')
        """
        validate_key(key)
        target = Path(cache_dir, *self._cache_parts(), *key.split("/"))
        with contextlib.suppress(FileNotFoundError):
            have = target.stat().st_size
            want = expected_size if expected_size is not None else self.size(key)
            if want is None:
                raise ObjectNotFoundError(self.url(key))
            if have == want:
                return target
        self.get_file(key, target)
        if expected_size is not None and (got := target.stat().st_size) != expected_size:
            raise StorageError(f"{self.url(key)}: downloaded {got} bytes, expected {expected_size}")
        return target

    def _cache_parts(self) -> tuple[str, ...]:
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"
