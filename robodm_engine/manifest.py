"""The dataset manifest: what a published dataset contains, and the per-trajectory records.

The ingestion engine writes, for every trajectory it publishes, a :class:`TrajectoryRecord` at
``_robodm/records/<name>.json`` (right after the ``.mkv``), and at the very end a
:class:`DatasetManifest` as ``manifest.parquet`` (one row per trajectory, for query engines)
followed by ``manifest.json`` (the whole manifest, the dataset's commit marker). Readers such as
:class:`robodm_engine.dataset.VLADataset` open a dataset from ``manifest.json`` alone.

Everything here is plain data: frozen dataclasses with ``to_dict()`` / ``from_dict()``. Parsing
validates every field and raises :class:`~robodm_engine.errors.DatasetError` naming the field
(``trajectories[3].sha256``) and the file it came from, because a manifest is read far from where
it was written and "KeyError: 'steps'" helps nobody. Storage goes through a
:mod:`robodm_engine.storage` store (``put_bytes`` is atomic), so the same code serves a
local directory and ``s3://``.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

import pyarrow as pa
import pyarrow.parquet as pq

from robodm_engine.errors import DatasetError

if TYPE_CHECKING:
    from robodm_engine.storage import StorageOptions, Store

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_JSON",
    "MANIFEST_PARQUET",
    "PARQUET_SCHEMA",
    "RECORDS_PREFIX",
    "DatasetManifest",
    "FeatureSpec",
    "ItemFailure",
    "Stage",
    "TrajectoryRecord",
    "merge_features",
    "read_manifest",
    "read_record",
    "record_key",
    "split_manifest_uri",
    "write_manifest",
    "write_record",
]

FORMAT_VERSION = 1
"""The manifest format this module writes, and the newest it can read."""

MANIFEST_JSON = "manifest.json"
MANIFEST_PARQUET = "manifest.parquet"
RECORDS_PREFIX = "_robodm/records/"

Stage = Literal["transform", "validate", "write"]
_STAGES: tuple[str, ...] = get_args(Stage)

_SHA256 = re.compile(r"[0-9a-f]{64}")
# Names become object keys (``<name>.mkv``, ``_robodm/records/<name>.json``): one flat segment.
_BAD_NAME_CHARS = re.compile(r"[/\\\x00-\x1f]")

PARQUET_SCHEMA = pa.schema(
    [
        pa.field("name", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("steps", pa.int64(), nullable=False),
        pa.field("bytes", pa.int64(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("start_ms", pa.int64(), nullable=False),
        pa.field("end_ms", pa.int64(), nullable=False),
        pa.field("items", pa.int64(), nullable=True),
        # JSON text rather than a nested struct: feature sets differ between datasets, and a
        # string column keeps the schema fixed for every reader (DuckDB, Ray, pandas).
        pa.field("features", pa.string(), nullable=False),
    ]
)
"""Columns of ``manifest.parquet``; ``features`` is the record's features as a JSON object."""


# --------------------------------------------------------------------------------------------
# Validation helpers. Each takes the dotted location of the value so errors can name it.


class _Invalid(ValueError):
    """A field failed validation; turned into a DatasetError naming the source file."""


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Invalid(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _get(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise _Invalid(f"{where}.{key}: missing" if where else f"{key}: missing")
    return obj[key]


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _str(obj: Mapping[str, Any], key: str, where: str, *, allow_empty: bool = False) -> str:
    value = _get(obj, key, where)
    if not isinstance(value, str) or (not allow_empty and not value):
        raise _Invalid(f"{_join(where, key)}: expected a non-empty string, got {value!r}")
    return value


def _int(obj: Mapping[str, Any], key: str, where: str, *, minimum: int | None = 0) -> int:
    value = _get(obj, key, where)
    # bool is an int subclass; a JSON ``true`` where a count belongs is a bug upstream.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"{_join(where, key)}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise _Invalid(f"{_join(where, key)}: must be >= {minimum}, got {value}")
    return value


def _check_name(name: str, where: str) -> None:
    if name in (".", "..") or _BAD_NAME_CHARS.search(name):
        raise _Invalid(
            f"{where}: trajectory name {name!r} must be one path segment "
            "(no '/', '\\', control characters, '.' or '..')"
        )


def _check_relative_path(path: str, where: str) -> None:
    segments = path.split("/")
    if path.startswith("/") or "\\" in path or any(s in ("", ".", "..") for s in segments):
        raise _Invalid(
            f"{where}: {path!r} must be a relative posix path inside the dataset root "
            "(no leading '/', no '..', '.' or empty segments, no backslashes)"
        )


def _dataset_error(source: str | None, error: _Invalid) -> DatasetError:
    prefix = f"invalid manifest data in {source}" if source else "invalid manifest data"
    return DatasetError(f"{prefix}: {error}")


# --------------------------------------------------------------------------------------------
# Data classes.


@dataclass(frozen=True)
class FeatureSpec:
    """The type of one feature: numpy dtype name, per-step shape, and how it is stored.

    Attributes:
        dtype: numpy dtype name (``"uint8"``, ``"float32"``); strings and bytes features use the
            names the trajectory reader reports for them.
        shape: shape of one step's value (``()`` for a scalar).
        encoding: codec name (``"libx264"``, ``"ffv1"``) or ``"raw"``; ``"mixed"`` at dataset
            level when trajectories store the feature with different codecs.
    """

    dtype: str
    shape: tuple[int, ...]
    encoding: str

    def __post_init__(self) -> None:
        # Callers pass lists (from JSON) or numpy shapes; store a canonical tuple of ints so
        # equality between specs means equality of types.
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-compatible dict (``shape`` as a list)."""
        return {"dtype": self.dtype, "shape": list(self.shape), "encoding": self.encoding}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> FeatureSpec:
        """Parse and validate a dict produced by :meth:`to_dict`.

        Raises:
            DatasetError: a field is missing or has the wrong type; the message names it and
                ``source`` (the file the data came from).
        """
        try:
            return cls._parse(data, "")
        except _Invalid as e:
            raise _dataset_error(source, e) from None

    @classmethod
    def _parse(cls, data: Any, where: str) -> FeatureSpec:
        obj = _mapping(data, where or "feature")
        shape = _get(obj, "shape", where)
        if not isinstance(shape, list | tuple) or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape
        ):
            raise _Invalid(
                f"{_join(where, 'shape')}: expected a list of non-negative integers, got {shape!r}"
            )
        return cls(
            dtype=_str(obj, "dtype", where),
            shape=tuple(shape),
            encoding=_str(obj, "encoding", where),
        )


def _features_to_dict(features: Mapping[str, FeatureSpec]) -> dict[str, Any]:
    return {name: spec.to_dict() for name, spec in features.items()}


def _parse_features(data: Any, where: str) -> dict[str, FeatureSpec]:
    obj = _mapping(data, where)
    features: dict[str, FeatureSpec] = {}
    for name, spec in obj.items():
        if not isinstance(name, str) or not name:
            raise _Invalid(f"{where}: feature names must be non-empty strings, got {name!r}")
        features[name] = FeatureSpec._parse(spec, f"{where}[{name!r}]")
    return features


@dataclass(frozen=True)
class TrajectoryRecord:
    """One published trajectory, as listed in the manifest and in ``_robodm/records/``.

    Attributes:
        name: the trajectory's name, one path segment (the file is usually ``<name>.mkv``).
        path: the file's location relative to the dataset root, posix (``"<name>.mkv"``).
        steps: number of steps (the largest per-feature sample count).
        features: feature name (flattened with ``/``) to its type.
        bytes: size of the file in bytes.
        sha256: lowercase hex SHA-256 of the file.
        start_ms: timestamp of the first sample, in milliseconds.
        end_ms: timestamp of the last sample, in milliseconds (``>= start_ms``).
        items: how many source items the trajectory was made from (one per step for step
            sources, one per episode for episode sources); ``None`` when unknown. A resumed
            job keeps a trajectory only if its group still has this many items.
    """

    name: str
    path: str
    steps: int
    features: dict[str, FeatureSpec]
    bytes: int
    sha256: str
    start_ms: int
    end_ms: int
    items: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-compatible dict with the same keys as the attributes."""
        return {
            "name": self.name,
            "path": self.path,
            "steps": self.steps,
            "features": _features_to_dict(self.features),
            "bytes": self.bytes,
            "sha256": self.sha256,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "items": self.items,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> TrajectoryRecord:
        """Parse and validate a dict produced by :meth:`to_dict`.

        Raises:
            DatasetError: a field is missing, has the wrong type, or is out of range (negative
                counts, a path escaping the root, a malformed sha256, ``end_ms < start_ms``).
        """
        try:
            return cls._parse(data, "")
        except _Invalid as e:
            raise _dataset_error(source, e) from None

    @classmethod
    def _parse(cls, data: Any, where: str) -> TrajectoryRecord:
        obj = _mapping(data, where or "record")
        name = _str(obj, "name", where)
        _check_name(name, _join(where, "name"))
        path = _str(obj, "path", where)
        _check_relative_path(path, _join(where, "path"))
        sha256 = _str(obj, "sha256", where)
        if not _SHA256.fullmatch(sha256):
            raise _Invalid(
                f"{_join(where, 'sha256')}: expected 64 lowercase hex digits, got {sha256!r}"
            )
        start_ms = _int(obj, "start_ms", where, minimum=None)
        end_ms = _int(obj, "end_ms", where, minimum=None)
        if end_ms < start_ms:
            raise _Invalid(f"{_join(where, 'end_ms')}: {end_ms} is before start_ms {start_ms}")
        return cls(
            name=name,
            path=path,
            steps=_int(obj, "steps", where),
            features=_parse_features(_get(obj, "features", where), _join(where, "features")),
            bytes=_int(obj, "bytes", where),
            sha256=sha256,
            start_ms=start_ms,
            end_ms=end_ms,
            items=None if obj.get("items") is None else _int(obj, "items", where),
        )


@dataclass(frozen=True)
class ItemFailure:
    """An input item the ingestion could not turn into trajectory data.

    Attributes:
        item_id: the item's identifier as the source reports it (a path, an index).
        group_index: index of the trajectory group the item belonged to.
        stage: where it failed: ``"transform"``, ``"validate"`` or ``"write"``.
        reason: a human-readable reason (usually the exception's message).
    """

    item_id: str
    group_index: int
    stage: Stage
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-compatible dict with the same keys as the attributes."""
        return {
            "item_id": self.item_id,
            "group_index": self.group_index,
            "stage": self.stage,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> ItemFailure:
        """Parse and validate a dict produced by :meth:`to_dict`.

        Raises:
            DatasetError: a field is missing or invalid (``stage`` outside the three stages).
        """
        try:
            return cls._parse(data, "")
        except _Invalid as e:
            raise _dataset_error(source, e) from None

    @classmethod
    def _parse(cls, data: Any, where: str) -> ItemFailure:
        obj = _mapping(data, where or "failure")
        stage = _str(obj, "stage", where)
        if stage not in _STAGES:
            raise _Invalid(f"{_join(where, 'stage')}: expected one of {_STAGES}, got {stage!r}")
        return cls(
            item_id=_str(obj, "item_id", where, allow_empty=True),
            group_index=_int(obj, "group_index", where),
            stage=cast(Stage, stage),  # checked against _STAGES above
            reason=_str(obj, "reason", where, allow_empty=True),
        )


@dataclass(frozen=True)
class DatasetManifest:
    """Everything a reader needs to know about a published dataset.

    Attributes:
        trajectories: one record per published trajectory, in publication order.
        features: dataset-level feature types (:func:`merge_features` of the records).
        config: the ingestion configuration that produced the dataset (JSON-compatible).
        counts: named counters (``itemsTotal``, ``itemsFailed``, ``trajectories``, ...).
        failures: items that could not be ingested.
        created_at: RFC 3339 timestamp of when the manifest was written.
        format_version: manifest format version; readers refuse versions newer than theirs.

    Examples:
        >>> m = DatasetManifest(trajectories=[], features={}, config={}, counts={},
        ...                     failures=[], created_at="2026-01-01T00:00:00Z")
        >>> DatasetManifest.from_dict(m.to_dict()) == m
        True
    """

    trajectories: list[TrajectoryRecord]
    features: dict[str, FeatureSpec]
    config: dict[str, Any]
    counts: dict[str, int]
    failures: list[ItemFailure]
    created_at: str
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-compatible dict (the content of ``manifest.json``)."""
        return {
            "format_version": self.format_version,
            "created_at": self.created_at,
            "counts": dict(self.counts),
            "features": _features_to_dict(self.features),
            "config": self.config,
            "trajectories": [t.to_dict() for t in self.trajectories],
            "failures": [f.to_dict() for f in self.failures],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> DatasetManifest:
        """Parse and validate a dict produced by :meth:`to_dict`.

        Raises:
            DatasetError: a field is missing or invalid, two trajectories share a name, or the
                manifest was written by a newer format version. The message names the field
                and ``source``.
        """
        try:
            return cls._parse(data)
        except _Invalid as e:
            raise _dataset_error(source, e) from None

    @classmethod
    def _parse(cls, data: Any) -> DatasetManifest:
        obj = _mapping(data, "manifest")
        version = _int(obj, "format_version", "", minimum=1)
        if version > FORMAT_VERSION:
            raise _Invalid(
                f"format_version: {version} is newer than this reader supports "
                f"({FORMAT_VERSION}); upgrade robodm_engine"
            )
        created_at = _str(obj, "created_at", "")
        try:
            datetime.fromisoformat(created_at)
        except ValueError:
            raise _Invalid(
                f"created_at: expected an RFC 3339 timestamp, got {created_at!r}"
            ) from None
        counts_obj = _mapping(_get(obj, "counts", ""), "counts")
        counts = {str(k): _int(counts_obj, k, "counts") for k in counts_obj}
        config = _mapping(_get(obj, "config", ""), "config")
        raw_trajectories = _get(obj, "trajectories", "")
        if not isinstance(raw_trajectories, list):
            raise _Invalid("trajectories: expected a list")
        trajectories = [
            TrajectoryRecord._parse(t, f"trajectories[{i}]") for i, t in enumerate(raw_trajectories)
        ]
        seen: dict[str, int] = {}
        for i, record in enumerate(trajectories):
            if record.name in seen:
                raise _Invalid(
                    f"trajectories[{i}].name: {record.name!r} already used by "
                    f"trajectories[{seen[record.name]}]"
                )
            seen[record.name] = i
        raw_failures = _get(obj, "failures", "")
        if not isinstance(raw_failures, list):
            raise _Invalid("failures: expected a list")
        return cls(
            trajectories=trajectories,
            features=_parse_features(_get(obj, "features", ""), "features"),
            config=dict(config),
            counts=counts,
            failures=[ItemFailure._parse(f, f"failures[{i}]") for i, f in enumerate(raw_failures)],
            created_at=created_at,
            format_version=version,
        )


# --------------------------------------------------------------------------------------------
# Feature merging.


def record_of_file(
    local_path: str | os.PathLike[str], *, name: str, path: str, items: int | None = None
) -> TrajectoryRecord:
    """The record of a trajectory file, as ingestion publishes it.

    Steps, features and time range come from the file's tags (nothing is decoded); size and
    SHA-256 from its bytes.

    Args:
        local_path: the file on local disk.
        name: the trajectory's name in the dataset.
        path: where the file is (or will be) published, relative to the dataset root.
        items: how many source items the trajectory was made from, when known.
    """
    from robodm_engine.storage import sha256_file
    from robodm_engine.trajectory import Trajectory

    traj = Trajectory(local_path)
    try:
        summary = traj.summary()
    finally:
        traj.close()
    return TrajectoryRecord(
        name=name,
        path=path,
        steps=summary.steps,
        features={
            feature: FeatureSpec(info.dtype, info.shape, info.encoding)
            for feature, info in summary.features.items()
        },
        bytes=os.path.getsize(local_path),
        sha256=sha256_file(local_path),
        start_ms=summary.start_ms,
        end_ms=summary.end_ms,
        items=items,
    )


def merge_features(records: Iterable[TrajectoryRecord]) -> dict[str, FeatureSpec]:
    """Compute the dataset-level features of a set of trajectories.

    The result holds every feature that appears in any trajectory (a feature missing from
    some trajectories is allowed), in first-seen order. A feature's dtype and shape must be the
    same wherever it appears; its encoding may differ (a codec fallback on one file), in which
    case the dataset-level encoding is ``"mixed"``.

    Raises:
        DatasetError: two trajectories disagree on a feature's dtype or shape; the message names
            the feature and both trajectories.

    Examples:
        >>> spec = FeatureSpec("float32", (7,), "raw")
        >>> rec = TrajectoryRecord("t0", "t0.mkv", 10, {"action": spec}, 100, "0" * 64, 0, 900)
        >>> merge_features([rec])
        {'action': FeatureSpec(dtype='float32', shape=(7,), encoding='raw')}
    """
    merged: dict[str, FeatureSpec] = {}
    first_seen_in: dict[str, str] = {}
    for record in records:
        for name, spec in record.features.items():
            known = merged.get(name)
            if known is None:
                merged[name] = spec
                first_seen_in[name] = record.name
                continue
            if (known.dtype, known.shape) != (spec.dtype, spec.shape):
                raise DatasetError(
                    f"feature {name!r} has dtype={known.dtype} shape={known.shape} in trajectory "
                    f"{first_seen_in[name]!r} but dtype={spec.dtype} shape={spec.shape} in "
                    f"trajectory {record.name!r}; a dataset needs one type per feature"
                )
            if known.encoding != spec.encoding and known.encoding != "mixed":
                merged[name] = FeatureSpec(known.dtype, known.shape, "mixed")
    return merged


# --------------------------------------------------------------------------------------------
# Storage.


def record_key(name: str) -> str:
    """Return the store key of a trajectory's record: ``_robodm/records/<name>.json``.

    Raises:
        ValueError: ``name`` is not a single safe path segment.

    Examples:
        >>> record_key("trajectory_000003")
        '_robodm/records/trajectory_000003.json'
    """
    if not name:
        raise ValueError("trajectory name must not be empty")
    try:
        _check_name(name, "name")
    except _Invalid as e:
        raise ValueError(str(e)) from None
    return f"{RECORDS_PREFIX}{name}.json"


def _json_bytes(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, indent=2, sort_keys=False, allow_nan=False).encode("utf-8")


def write_record(store: Store, record: TrajectoryRecord) -> str:
    """Write ``record`` to its :func:`record_key` atomically and return the object's URI.

    Write it only after the trajectory file itself is published: the record's presence is
    what marks the trajectory as done.
    """
    key = record_key(record.name)
    store.put_bytes(key, _json_bytes(record.to_dict()))
    return store.url(key)


def read_record(store: Store, name: str) -> TrajectoryRecord | None:
    """Read the record of trajectory ``name``, or return ``None`` if none was written.

    Raises:
        DatasetError: the record exists but is not valid JSON or not a valid record, or
            names a different trajectory than ``name``.
    """
    key = record_key(name)
    if not store.exists(key):
        return None
    source = store.url(key)
    record = TrajectoryRecord.from_dict(_load_json(store.get_bytes(key), source), source=source)
    if record.name != name:
        raise DatasetError(f"invalid record {source}: name is {record.name!r}, expected {name!r}")
    return record


def _load_json(data: bytes, source: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{source} is not valid JSON: {e}") from e


def _parquet_bytes(manifest: DatasetManifest) -> bytes:
    records = manifest.trajectories
    columns: dict[str, list[Any]] = {
        "name": [r.name for r in records],
        "path": [r.path for r in records],
        "steps": [r.steps for r in records],
        "bytes": [r.bytes for r in records],
        "sha256": [r.sha256 for r in records],
        "start_ms": [r.start_ms for r in records],
        "end_ms": [r.end_ms for r in records],
        "items": [r.items for r in records],
        "features": [json.dumps(_features_to_dict(r.features)) for r in records],
    }
    table = pa.table(columns, schema=PARQUET_SCHEMA)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def write_manifest(store: Store, manifest: DatasetManifest) -> str:
    """Publish ``manifest`` to the dataset root of ``store`` and return ``manifest.json``'s URI.

    ``manifest.parquet`` is written first and ``manifest.json`` last, each atomically, so a
    reader that finds ``manifest.json`` also finds a matching Parquet index. The manifest is
    validated (by a round trip through :meth:`DatasetManifest.from_dict`) before anything is
    written, so an invalid manifest never becomes visible.

    Raises:
        DatasetError: the manifest is invalid.

    Examples:
        >>> from robodm_engine.storage import open_store  # doctest: +SKIP
        >>> write_manifest(open_store("s3://datasets/philips-v1"), manifest)  # doctest: +SKIP
        's3://datasets/philips-v1/manifest.json'
    """
    data = manifest.to_dict()
    DatasetManifest.from_dict(data, source=f"the manifest for {store.url(MANIFEST_JSON)}")
    store.put_bytes(MANIFEST_PARQUET, _parquet_bytes(manifest))
    store.put_bytes(MANIFEST_JSON, _json_bytes(data))
    return store.url(MANIFEST_JSON)


def split_manifest_uri(uri_or_root: str) -> tuple[str, str]:
    """Split a manifest location into ``(dataset root, manifest key)``.

    A location ending in ``.json`` is the manifest itself; anything else is a dataset root
    whose manifest is ``manifest.json``.

    Examples:
        >>> split_manifest_uri("s3://bucket/ds/manifest.json")
        ('s3://bucket/ds', 'manifest.json')
        >>> split_manifest_uri("/data/ds/")
        ('/data/ds', 'manifest.json')
    """
    location = uri_or_root.rstrip("/")
    if not location:
        raise ValueError("manifest location must not be empty")
    if location.endswith(".json"):
        root, _, key = location.rpartition("/")
        return root or ".", key
    return location, MANIFEST_JSON


def read_manifest(uri_or_root: str, options: StorageOptions | None = None) -> DatasetManifest:
    """Read and validate a dataset manifest.

    Args:
        uri_or_root: the URI or path of ``manifest.json`` (``s3://bucket/ds/manifest.json``,
            ``/data/ds/manifest.json``) or of the dataset root containing it.
        options: storage options (endpoint, region, retries) for ``s3://`` locations.

    Raises:
        DatasetError: there is no manifest at that location, or it is not valid; the message
            names the file and, for invalid content, the field.

    Examples:
        >>> manifest = read_manifest("s3://datasets/philips-v1")  # doctest: +SKIP
        >>> [t.path for t in manifest.trajectories][:2]  # doctest: +SKIP
        ['trajectory_000000.mkv', 'trajectory_000001.mkv']
    """
    from robodm_engine.storage import open_store

    root, key = split_manifest_uri(uri_or_root)
    store = open_store(root, options)
    source = store.url(key)
    if not store.exists(key):
        raise DatasetError(
            f"no manifest at {source}: the dataset is not published (yet), or the location is "
            "wrong; pass the dataset root or the URI of its manifest.json"
        )
    return DatasetManifest.from_dict(_load_json(store.get_bytes(key), source), source=source)
