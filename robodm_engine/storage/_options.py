"""Storage options: endpoint, retries, transfer and read sizes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from robodm_engine.errors import StorageError

MiB = 1024 * 1024
# S3 rejects every part but the last below 5 MiB, and allows at most 10,000 parts.
_S3_MIN_PART = 5 * MiB

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class StorageOptions:
    """How to reach object storage and how hard to try.

    Attributes:
        endpoint_url: S3 endpoint (MinIO, Ceph, moto, ...); ``None`` for AWS.
        region: S3 region; ``None`` lets boto3 resolve it (profile, ``us-east-1``).
        max_attempts: total attempts per request, the first included (botocore's
            ``total_max_attempts``), and per mid-stream read failure.
        retry_mode: botocore retry mode; ``"adaptive"`` adds client-side rate limiting, which
            helps many workers writing into one prefix that S3 throttles with 503 SlowDown.
        connect_timeout: seconds to establish a connection.
        read_timeout: seconds without a byte from the server before the attempt is abandoned.
        multipart_threshold: uploads of at least this many bytes use multipart upload.
        multipart_chunksize: part size of multipart uploads and downloads (at least 5 MiB).
        max_concurrency: parallel requests of one multipart transfer; also sizes the
            connection pool.
        read_block_size: bytes per ranged GET of :meth:`Store.open` on S3. Large blocks matter:
            small ranges are dominated by per-request latency (100x slower measured against
            moto with 250 KB ranges).
        read_cache_blocks: blocks a file returned by :meth:`Store.open` keeps, so a reader that
            seeks back (Matroska: header, then cues at the end, then clusters) does not refetch.
        read_ahead_blocks: blocks fetched in the background ahead of a sequential reader
            (0 disables read-ahead). Memory per open file is about
            ``(read_cache_blocks + read_ahead_blocks) * read_block_size``.
        list_page_size: keys per ListObjectsV2 request (S3 caps it at 1000).
        addressing_style: ``"path"`` or ``"virtual"`` S3 addressing; ``None`` picks ``"path"``
            when an ``endpoint_url`` is set (S3-compatible servers rarely have wildcard DNS) and
            botocore's default otherwise.

    >>> StorageOptions(endpoint_url="http://minio:9000", max_attempts=5).max_attempts
    5
    """

    endpoint_url: str | None = None
    region: str | None = None
    max_attempts: int = 8
    retry_mode: Literal["standard", "adaptive"] = "standard"
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    multipart_threshold: int = 64 * MiB
    multipart_chunksize: int = 16 * MiB
    max_concurrency: int = 8
    read_block_size: int = 8 * MiB
    read_cache_blocks: int = 4
    read_ahead_blocks: int = 1
    list_page_size: int = 1000
    addressing_style: Literal["auto", "path", "virtual"] | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.max_attempts < 1:
            problems.append(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.retry_mode not in ("standard", "adaptive"):
            problems.append(f"retry_mode must be 'standard' or 'adaptive', got {self.retry_mode!r}")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            problems.append("connect_timeout and read_timeout must be > 0")
        if self.multipart_threshold < 1:
            problems.append(f"multipart_threshold must be >= 1, got {self.multipart_threshold}")
        if self.multipart_chunksize < _S3_MIN_PART:
            problems.append(
                f"multipart_chunksize must be >= {_S3_MIN_PART} (S3's minimum part size), "
                f"got {self.multipart_chunksize}"
            )
        if self.max_concurrency < 1:
            problems.append(f"max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.read_block_size < 64 * 1024:
            problems.append(f"read_block_size must be >= 65536, got {self.read_block_size}")
        if self.read_cache_blocks < 1:
            problems.append(f"read_cache_blocks must be >= 1, got {self.read_cache_blocks}")
        if self.read_ahead_blocks < 0:
            problems.append(f"read_ahead_blocks must be >= 0, got {self.read_ahead_blocks}")
        if not 1 <= self.list_page_size <= 1000:
            problems.append(f"list_page_size must be in 1..1000, got {self.list_page_size}")
        if self.addressing_style not in (None, "auto", "path", "virtual"):
            problems.append(
                f"addressing_style must be auto/path/virtual, got {self.addressing_style!r}"
            )
        if problems:
            raise StorageError("invalid storage options: " + "; ".join(problems))

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, /, **overrides: Any
    ) -> StorageOptions:
        """Options from the standard AWS variables, read now (never at import).

        ``AWS_ENDPOINT_URL_S3`` wins over ``AWS_ENDPOINT_URL`` (both ignored when
        ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is true), ``AWS_REGION`` over
        ``AWS_DEFAULT_REGION``; ``AWS_MAX_ATTEMPTS`` and ``AWS_RETRY_MODE`` set the retries.
        Keyword ``overrides`` take precedence over the environment.

        >>> StorageOptions.from_env({"AWS_ENDPOINT_URL": "http://minio:9000"}).endpoint_url
        'http://minio:9000'
        >>> StorageOptions.from_env({"AWS_REGION": "eu-west-1"}, region="us-east-2").region
        'us-east-2'
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() not in _TRUE:
            endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
            if endpoint:
                values["endpoint_url"] = endpoint
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if region:
            values["region"] = region
        if attempts := env.get("AWS_MAX_ATTEMPTS"):
            try:
                values["max_attempts"] = int(attempts)
            except ValueError:
                raise StorageError(
                    f"AWS_MAX_ATTEMPTS must be an integer, got {attempts!r}"
                ) from None
        mode = env.get("AWS_RETRY_MODE")
        # "legacy" is botocore's old default; it retries fewer errors, so we keep our own.
        if mode in ("standard", "adaptive"):
            values["retry_mode"] = mode
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise StorageError(f"unknown storage option(s): {', '.join(unknown)}")
        values.update(overrides)
        return cls(**values)
