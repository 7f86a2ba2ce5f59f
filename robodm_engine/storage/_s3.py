"""Stores under an S3 prefix: shared clients, retries, resumable reads."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import re
import threading
import time
from pathlib import Path
from typing import Any

from robodm_engine.errors import StorageError
from robodm_engine.storage._base import (
    ObjectInfo,
    ObjectNotFoundError,
    ReadableFile,
    Store,
    _key_problem,
    _validate_prefix,
    validate_key,
)
from robodm_engine.storage._options import MiB, StorageOptions
from robodm_engine.storage._s3file import S3ReadableFile

# boto3 clients are generated at runtime; without the optional mypy-boto3 stubs they are Any.
S3Client = Any

log = logging.getLogger(__name__)

_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$")


# boto3 is imported on first S3 use only: it costs ~0.3 s, which local-only users (tests, the
# CLI on a laptop, readers of local datasets) should not pay.


def _s3_errors() -> tuple[type[BaseException], ...]:
    import boto3.exceptions
    import botocore.exceptions
    import s3transfer.exceptions

    return (
        botocore.exceptions.BotoCoreError,
        botocore.exceptions.ClientError,
        boto3.exceptions.Boto3Error,
        s3transfer.exceptions.RetriesExceededError,
        s3transfer.exceptions.S3UploadFailedError,
        s3transfer.exceptions.S3DownloadFailedError,
    )


def _stream_errors() -> tuple[type[BaseException], ...]:
    """Failures while reading a response body, which botocore does not retry."""
    import botocore.exceptions
    import urllib3.exceptions

    return (
        botocore.exceptions.ResponseStreamingError,
        botocore.exceptions.IncompleteReadError,
        botocore.exceptions.ReadTimeoutError,
        urllib3.exceptions.ProtocolError,
        urllib3.exceptions.ReadTimeoutError,
        ConnectionError,
        TimeoutError,
    )


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def _is_not_found(exc: BaseException) -> bool:
    return _error_code(exc) in ("404", "NoSuchKey", "NotFound")


def _describe(exc: BaseException) -> str:
    import botocore.exceptions

    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        meta = response.get("ResponseMetadata", {})
        attempts = meta.get("RetryAttempts")
        text = f"{err.get('Code', '?')}: {err.get('Message') or 'no message'}"
        if status := meta.get("HTTPStatusCode"):
            text += f" (HTTP {status}"
            text += f", {attempts + 1} attempt(s))" if attempts is not None else ")"
        if err.get("Code") in ("403", "AccessDenied"):
            text += (
                "; check the credentials boto3 found (AWS_ACCESS_KEY_ID/AWS_PROFILE/web "
                "identity) and their permissions; without s3:ListBucket, missing objects "
                "also answer 403"
            )
        return text
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return (
            f"{exc}: S3 credentials come from boto3's standard chain (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity / IRSA, instance metadata)"
        )
    return f"{type(exc).__name__}: {exc}"


_clients: dict[StorageOptions, S3Client] = {}
_clients_pid = os.getpid()
_clients_lock = threading.Lock()


def s3_client(options: StorageOptions) -> S3Client:
    """The process-wide boto3 S3 client for ``options``, created on first use.

    boto3 clients are thread-safe and expensive to create (100-300 ms: service model, endpoint
    rules), so stores with equal options share one, with its connection pool. After a fork the
    child builds its own: connection pools must not be shared across processes. Credentials are
    resolved by boto3's chain when the client is created; refreshable ones (web identity, SSO,
    instance roles) renew themselves.
    """
    global _clients_pid
    with _clients_lock:
        if _clients_pid != os.getpid():
            _clients.clear()
            _clients_pid = os.getpid()
        client = _clients.get(options)
        if client is None:
            client = _clients[options] = _make_client(options)
        return client


def _make_client(opts: StorageOptions) -> S3Client:
    import boto3.session
    from botocore.config import Config

    style = opts.addressing_style or ("path" if opts.endpoint_url else None)
    config = Config(
        region_name=opts.region,
        connect_timeout=opts.connect_timeout,
        read_timeout=opts.read_timeout,
        # total_max_attempts counts the first attempt; retries["max_attempts"] would not.
        retries={"mode": opts.retry_mode, "total_max_attempts": opts.max_attempts},
        # Multipart transfers run max_concurrency requests at once; leave room for other
        # threads sharing the client.
        max_pool_connections=max(10, opts.max_concurrency * 2),
        tcp_keepalive=True,
        user_agent_appid="robodm-engine",
        s3={"addressing_style": style} if style else None,
    )
    # A fresh session: boto3's default session is global mutable state.
    session = boto3.session.Session(region_name=opts.region)
    return session.client("s3", endpoint_url=opts.endpoint_url, config=config)


class S3Store(Store):
    """A prefix in an S3 (or S3-compatible) bucket.

    Stores hold no connection: they pickle into Ray tasks and survive forks. The boto3 client
    behind them is shared by every store with equal options in a process (see
    :func:`s3_client`), so a task that unpickles a store does not pay for a new client and its
    connection pool.

    >>> store = S3Store("datasets", "philips-v1")
    >>> store.url("trajectory_000.mkv")
    's3://datasets/philips-v1/trajectory_000.mkv'
    """

    def __init__(
        self, bucket: str, prefix: str = "", options: StorageOptions | None = None
    ) -> None:
        if not _BUCKET.match(bucket):
            raise StorageError(f"s3://{bucket}: invalid bucket name {bucket!r}")
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix, what=f"prefix of s3://{bucket}/")
        self.bucket = bucket
        self.prefix = prefix
        self.options = options if options is not None else StorageOptions.from_env()

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def client(self) -> S3Client:
        """This process's boto3 S3 client for :attr:`options`."""
        return s3_client(self.options)

    def _transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        opts = self.options
        return TransferConfig(
            multipart_threshold=opts.multipart_threshold,
            multipart_chunksize=opts.multipart_chunksize,
            max_concurrency=opts.max_concurrency,
            num_download_attempts=opts.max_attempts,
            use_threads=opts.max_concurrency > 1,
            # The CRT client (if awscrt is installed) ignores several of these settings.
            preferred_transfer_client="classic",
        )

    def _s3_key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, op: str, key: str, exc: BaseException) -> StorageError:
        if _is_not_found(exc):
            return ObjectNotFoundError(self.url(key))
        return StorageError(f"{self.url(key)}: {op} failed: {_describe(exc)}")

    def _backoff(self, attempt: int) -> None:
        # Full jitter, as botocore does for non-throttling errors.
        time.sleep(random.random() * min(0.05 * 2**attempt, 5.0))

    # -- the contract --------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """``s3://bucket`` or ``s3://bucket/prefix`` (no trailing slash)."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def url(self, key: str) -> str:
        """``s3://bucket/prefix/key``."""
        return f"s3://{self.bucket}/{self._s3_key(key)}"

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._s3_key(key))
        except _s3_errors() as exc:
            if _is_not_found(exc):
                return None
            raise self._fail("HEAD", key, exc) from exc

    def exists(self, key: str) -> bool:
        """One HEAD request; 404 is ``False``, other errors raise."""
        return self._head(key) is not None

    def size(self, key: str) -> int | None:
        """One HEAD request; 404 is ``None``, other errors raise."""
        head = self._head(key)
        return None if head is None else int(head["ContentLength"])

    def put_bytes(self, key: str, data: bytes | bytearray | memoryview) -> None:
        """One PUT below ``multipart_threshold``, a multipart upload above it."""
        s3_key = self._s3_key(key)
        view = memoryview(data).cast("B")
        try:
            if view.nbytes < self.options.multipart_threshold:
                # bytes as is; other buffers are copied once so botocore can rewind on retry
                body = data if isinstance(data, bytes) else view.tobytes()
                self.client.put_object(Bucket=self.bucket, Key=s3_key, Body=body)
            else:
                self.client.upload_fileobj(
                    io.BytesIO(view), self.bucket, s3_key, Config=self._transfer_config()
                )
        except _s3_errors() as exc:
            raise self._fail("PUT", key, exc) from exc

    def put_file(self, local_path: str | os.PathLike[str], key: str, *, move: bool = False) -> None:
        """Upload a file (multipart above the threshold, aborted on failure)."""
        src = Path(local_path)
        s3_key = self._s3_key(key)
        if not src.is_file():
            raise StorageError(f"{src}: source file does not exist")
        try:
            self.client.upload_file(str(src), self.bucket, s3_key, Config=self._transfer_config())
        except _s3_errors() as exc:
            raise self._fail(f"upload of {src}", key, exc) from exc
        if move:
            src.unlink(missing_ok=True)

    def get_bytes(self, key: str) -> bytes:
        """The whole object, resuming with ranged GETs if the body breaks mid-way."""
        return self._read(key, 0, None)

    def _read(self, key: str, start: int, end: int | None, etag: str | None = None) -> bytes:
        """Bytes ``[start, end)`` of ``key`` (to the end if ``end`` is None).

        botocore retries failed requests; a body that dies after the response started is
        re-requested from the offset reached, with ``If-Match`` so all pieces come from one
        version of the object.
        """
        if end is not None and end <= start:
            return b""
        s3_key = self._s3_key(key)
        chunks: list[bytes] = []
        pos = start
        stop = end  # exclusive end; learnt from the first response when reading to the end
        failures = 0
        while stop is None or pos < stop:
            params: dict[str, Any] = {"Bucket": self.bucket, "Key": s3_key}
            if pos > 0 or end is not None:
                params["Range"] = f"bytes={pos}-{'' if end is None else end - 1}"
            if etag is not None:
                params["IfMatch"] = etag
            try:
                response = self.client.get_object(**params)
            except _s3_errors() as exc:
                if _error_code(exc) in ("PreconditionFailed", "412"):
                    raise StorageError(
                        f"{self.url(key)}: object changed while being read (ETag no longer {etag})"
                    ) from exc
                raise self._fail("GET", key, exc) from exc
            etag = etag or response.get("ETag")
            if stop is None:
                stop = pos + int(response["ContentLength"])
            body = response["Body"]
            problem: BaseException | None = None
            try:
                for chunk in body.iter_chunks(MiB):
                    chunks.append(chunk)
                    pos += len(chunk)
            except _stream_errors() as exc:
                problem = exc
            finally:
                body.close()
            if problem is None and pos >= stop:
                break
            failures += 1
            reason = _describe(problem) if problem else "body ended early"
            if failures >= self.options.max_attempts:
                raise StorageError(
                    f"{self.url(key)}: GET failed mid-stream {failures} time(s), last at "
                    f"byte {pos} of {stop}: {reason}"
                ) from problem
            log.debug("%s: body broke at byte %d (%s); resuming", self.url(key), pos, reason)
            self._backoff(failures)
        return b"".join(chunks)

    def get_file(self, key: str, local_path: str | os.PathLike[str]) -> None:
        """Download with boto3's transfer manager, atomically.

        Parallel ranged GETs pinned to one ETag, retried when a body breaks, written to a temp
        file beside ``local_path`` and renamed once complete.
        """
        dest = Path(local_path)
        s3_key = self._s3_key(key)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.client.download_file(
                self.bucket, s3_key, str(dest), Config=self._transfer_config()
            )
        except _s3_errors() as exc:
            raise self._fail("download", key, exc) from exc
        except OSError as exc:
            raise StorageError(f"{dest}: cannot download {self.url(key)}: {exc}") from exc

    def open(self, key: str) -> ReadableFile:
        """A seekable read-only file over the object: one HEAD, then block-sized ranged GETs."""
        head = self._head(key)
        if head is None:
            raise ObjectNotFoundError(self.url(key))
        return S3ReadableFile(self, key, int(head["ContentLength"]), head.get("ETag"))

    def list(self, prefix: str = "", suffix: str | None = None) -> list[ObjectInfo]:
        """Paginated ListObjectsV2 (``list_page_size`` keys per request), sorted by key.

        Keys that are not valid store keys (``a//b``, console "folder" markers ending in ``/``)
        were not written through this API and are skipped.
        """
        _validate_prefix(prefix)
        root = f"{self.prefix}/" if self.prefix else ""
        found: list[ObjectInfo] = []
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=root + prefix,
            PaginationConfig={"PageSize": self.options.list_page_size},
        )
        try:
            for page in pages:
                for obj in page.get("Contents", ()):
                    key = obj["Key"][len(root) :]
                    if suffix is not None and not key.endswith(suffix):
                        continue
                    if _key_problem(key):
                        log.debug("%s: skipping non-store key %r", self.uri, obj["Key"])
                        continue
                    found.append(ObjectInfo(key, int(obj["Size"])))
        except _s3_errors() as exc:
            raise StorageError(f"{self.uri}/{prefix}: LIST failed: {_describe(exc)}") from exc
        # S3 already returns UTF-8 binary order; sort so both stores agree for any key.
        found.sort(key=lambda info: info.key)
        return found

    def delete(self, key: str) -> None:
        """DELETE the object; S3 answers 204 for missing objects too."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._s3_key(key))
        except _s3_errors() as exc:
            if _is_not_found(exc):
                return
            raise self._fail("DELETE", key, exc) from exc

    def clean_incomplete_writes(self, older_than: float = 86400.0) -> int:
        """Abort multipart uploads under the prefix initiated over ``older_than`` seconds ago.

        A bucket lifecycle rule (``AbortIncompleteMultipartUpload``) does the same server-side
        and is the better tool where you manage the bucket.
        """
        import datetime

        cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=older_than)
        root = f"{self.prefix}/" if self.prefix else ""
        removed = 0
        try:
            paginator = self.client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=root):
                for upload in page.get("Uploads", ()):
                    if upload["Initiated"] >= cutoff:
                        continue
                    with contextlib.suppress(self.client.exceptions.NoSuchUpload):
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        removed += 1
        except _s3_errors() as exc:
            raise StorageError(
                f"{self.uri}: cleaning unfinished uploads failed: {_describe(exc)}"
            ) from exc
        return removed

    def _cache_parts(self) -> tuple[str, ...]:
        return (self.bucket, *(self.prefix.split("/") if self.prefix else ()))
