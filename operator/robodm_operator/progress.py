"""The engine's progress file: where it is, what it holds, and how the operator reads it.

Contract with ``robodm_engine``: while it runs, the engine rewrites
``{output.uri}/_robodm/progress.json`` (atomically, as a whole) with::

    {"state": "running" | "succeeded" | "failed", "itemsTotal": int | null, "itemsDone": int,
     "itemsFailed": int, "trajectoriesWritten": int, "bytesWritten": int,
     "updatedAt": "<RFC 3339>", "manifest": "<uri>" | null, "message": "..."}

and publishes ``{output.uri}/manifest.json`` last. The operator polls the file and mirrors it into
``status.progress``; it never decides success from it (the engine Job's conditions do), so a lost
or stale progress file only delays the numbers, never the outcome.

Local paths and ``file://`` URIs are read directly (local runs, tests); ``s3://`` URIs with boto3.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path
from typing import Any, Final

from robodm_engine.jobspec import is_s3_uri
from robodm_operator.conditions import format_time, parse_time

PROGRESS_PATH: Final = "_robodm/progress.json"
MANIFEST_PATH: Final = "manifest.json"
STATES: Final = ("running", "succeeded", "failed")


class ProgressError(Exception):
    """The progress file exists but cannot be read or is not in the expected shape."""


@dataclasses.dataclass(frozen=True)
class Progress:
    """One snapshot of the engine's progress."""

    state: str
    items_done: int
    items_failed: int
    trajectories_written: int
    bytes_written: int
    items_total: int | None = None
    updated_at: datetime.datetime | None = None
    manifest: str | None = None
    message: str = ""

    def to_status(self) -> dict[str, Any]:
        """The ``status.progress`` object mirrored into the IngestionJob."""
        status: dict[str, Any] = {
            "state": self.state,
            "itemsTotal": self.items_total,
            "itemsDone": self.items_done,
            "itemsFailed": self.items_failed,
            "trajectoriesWritten": self.trajectories_written,
            "bytesWritten": self.bytes_written,
            "message": self.message,
        }
        if self.updated_at is not None:
            status["updatedAt"] = format_time(self.updated_at)
        return status

    def summary(self) -> str:
        """Short text for the Progress printer column: ``done/total`` (``?`` if unknown)."""
        total = "?" if self.items_total is None else str(self.items_total)
        return f"{self.items_done}/{total}"


@dataclasses.dataclass(frozen=True)
class S3Access:
    """How to reach S3: endpoint and region from the spec, keys from the referenced Secret."""

    endpoint: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    def __repr__(self) -> str:
        # Keys must never reach logs or events through a repr.
        return f"S3Access(endpoint={self.endpoint!r}, region={self.region!r}, keys=<hidden>)"


def join_uri(base: str, relative: str) -> str:
    """Join a relative path under a dataset root URI or path."""
    return f"{base.rstrip('/')}/{relative}"


def progress_uri(output_uri: str) -> str:
    """Where the engine writes its progress for a dataset root."""
    return join_uri(output_uri, PROGRESS_PATH)


def manifest_uri(output_uri: str) -> str:
    """Where the engine publishes the manifest for a dataset root."""
    return join_uri(output_uri, MANIFEST_PATH)


def _count(raw: dict[str, Any], key: str) -> int:
    value = raw.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProgressError(f"{key} must be a non-negative integer, got {value!r}")
    return value


def parse_progress(data: bytes) -> Progress:
    """Parse the progress file's bytes; raise :class:`ProgressError` on any shape problem."""
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProgressError(f"not JSON: {error}") from error
    if not isinstance(raw, dict):
        raise ProgressError(f"expected a JSON object, got {type(raw).__name__}")
    state = raw.get("state")
    if state not in STATES:
        raise ProgressError(f"state must be one of {', '.join(STATES)}, got {state!r}")
    total = raw.get("itemsTotal")
    if total is not None:
        total = _count(raw, "itemsTotal")
    updated_at = None
    if raw.get("updatedAt") is not None:
        try:
            updated_at = parse_time(str(raw["updatedAt"]))
        except ValueError as error:
            raise ProgressError(f"updatedAt is not RFC 3339: {raw['updatedAt']!r}") from error
    manifest = raw.get("manifest")
    return Progress(
        state=state,
        items_total=total,
        items_done=_count(raw, "itemsDone"),
        items_failed=_count(raw, "itemsFailed"),
        trajectories_written=_count(raw, "trajectoriesWritten"),
        bytes_written=_count(raw, "bytesWritten"),
        updated_at=updated_at,
        manifest=manifest if isinstance(manifest, str) and manifest else None,
        message=str(raw.get("message") or ""),
    )


def _read_s3(uri: str, access: S3Access) -> bytes | None:
    import boto3
    import botocore.config
    import botocore.exceptions

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    client = boto3.client(
        "s3",
        endpoint_url=access.endpoint,
        region_name=access.region,
        aws_access_key_id=access.access_key_id,
        aws_secret_access_key=access.secret_access_key,
        aws_session_token=access.session_token,
        # A poll must not stall the operator's worker threads: fail fast, retry next poll.
        config=botocore.config.Config(
            connect_timeout=5, read_timeout=10, retries={"max_attempts": 2}
        ),
    )
    try:
        response = client.get_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in {"NoSuchKey", "404", "NotFound"}:
            return None
        raise ProgressError(f"cannot read {uri}: {code}") from error
    except botocore.exceptions.BotoCoreError as error:
        raise ProgressError(f"cannot read {uri}: {error}") from error
    body: bytes = response["Body"].read()
    return body


def read_progress(output_uri: str, access: S3Access | None = None) -> Progress | None:
    """Read the engine's progress for a dataset root; ``None`` if not written yet.

    Raises:
        ProgressError: the file exists but is unreadable or malformed, or S3 refused access.
    """
    uri = progress_uri(output_uri)
    if is_s3_uri(uri):
        data = _read_s3(uri, access or S3Access())
    else:
        path = Path(uri.removeprefix("file://"))
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = None
        except OSError as error:
            raise ProgressError(f"cannot read {path}: {error}") from error
    return None if data is None else parse_progress(data)
