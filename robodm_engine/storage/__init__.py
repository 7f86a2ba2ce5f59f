"""One small API over the two places a dataset lives: a local directory or an S3 prefix.

Every engine module (ingestion, manifest, dataset) talks to storage through a store returned by
:func:`open_store`; keys are posix paths relative to the store's root, so the same code writes
``/data/out/trajectory_000.mkv`` and ``s3://bucket/out/trajectory_000.mkv``.

>>> store = open_store("s3://datasets/philips-v1")          # doctest: +SKIP
>>> store.put_bytes("_robodm/progress.json", b"{}")           # doctest: +SKIP
>>> store.url("_robodm/progress.json")                       # doctest: +SKIP
's3://datasets/philips-v1/_robodm/progress.json'

Guarantees the rest of the engine relies on:

* **Atomic publish.** An object becomes visible under its key only once complete. Local files are
  written to a temporary name in the destination directory, fsynced, then renamed over the key
  (``os.replace``); temporary names never show up in :meth:`Store.list`. S3 objects are a single
  PUT below ``multipart_threshold`` and a multipart upload above it (aborted on failure); S3 itself
  only exposes either kind once it is complete.
* **Retries.** Requests are retried by botocore (``standard`` or ``adaptive`` mode) on throttling
  (503 SlowDown), 5xx and dropped connections. Response bodies that break mid-stream are not covered
  by botocore, so reads resume here with a ranged GET from the offset already received, pinned to
  the object's ETag (``If-Match``) so a concurrent overwrite fails loudly instead of splicing two
  versions together.
* **Errors.** Every failure surfaces as :class:`~robodm_engine.errors.StorageError` (or
  :class:`ObjectNotFoundError` for a missing object) naming the URI concerned.

Credentials never come from our configuration: S3 uses boto3's standard chain (environment,
shared profile, web identity / IRSA, container and instance metadata). Endpoint and region come
from :class:`StorageOptions`, by default read from the standard ``AWS_*`` variables when a store
is opened.
"""

from __future__ import annotations

import os
import re

from robodm_engine.errors import StorageError
from robodm_engine.storage._base import (
    ObjectInfo,
    ObjectNotFoundError,
    ReadableFile,
    Store,
    sha256_file,
    sha256_stream,
    validate_key,
)
from robodm_engine.storage._local import LocalStore
from robodm_engine.storage._options import MiB, StorageOptions
from robodm_engine.storage._s3 import S3Store, s3_client
from robodm_engine.storage._s3file import S3ReadableFile

__all__ = [
    "LocalStore",
    "MiB",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ReadableFile",
    "S3ReadableFile",
    "S3Store",
    "StorageOptions",
    "Store",
    "open_store",
    "s3_client",
    "sha256_file",
    "sha256_stream",
    "validate_key",
]


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def open_store(uri: str | os.PathLike[str], options: StorageOptions | None = None) -> Store:
    """The store rooted at ``uri``: ``s3://bucket[/prefix]``, ``file:///dir`` or a plain path.

    ``options`` default to :meth:`StorageOptions.from_env`, read at this call.

    >>> open_store("s3://datasets/philips-v1/")                 # doctest: +SKIP
    S3Store('s3://datasets/philips-v1')
    >>> open_store("file:///data/out")
    LocalStore('/data/out')
    >>> open_store("gs://bucket/x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    robodm_engine.errors.StorageError: unsupported storage URI 'gs://bucket/x': ...
    """
    if isinstance(uri, os.PathLike):
        return LocalStore(uri, options)
    if not isinstance(uri, str) or not uri:
        raise StorageError(f"invalid storage URI {uri!r}: expected a non-empty string")
    match = _SCHEME.match(uri)
    if match is None:
        return LocalStore(uri, options)
    scheme = match.group(1).lower()
    rest = uri[match.end() :]
    if scheme == "s3":
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise StorageError(f"invalid storage URI {uri!r}: no bucket")
        try:
            return S3Store(bucket, prefix, options)
        except StorageError as exc:
            raise StorageError(f"invalid storage URI {uri!r}: {exc}") from None
    if scheme == "file":
        from urllib.parse import unquote

        host, slash, path = rest.partition("/")
        if host not in ("", "localhost") or not slash:
            raise StorageError(
                f"invalid storage URI {uri!r}: file URIs must be absolute, file:///path"
            )
        return LocalStore(unquote("/" + path), options)
    raise StorageError(
        f"unsupported storage URI {uri!r}: expected s3://bucket/prefix, file:///path or a "
        "local path"
    )
