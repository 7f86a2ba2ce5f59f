"""Tests of :mod:`robodm_engine.manifest`: round trips, validation messages, storage layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from robodm_engine.errors import DatasetError
from robodm_engine.manifest import (
    MANIFEST_JSON,
    MANIFEST_PARQUET,
    DatasetManifest,
    FeatureSpec,
    ItemFailure,
    TrajectoryRecord,
    merge_features,
    read_manifest,
    read_record,
    record_key,
    split_manifest_uri,
    write_manifest,
    write_record,
)
from robodm_engine.storage import open_store

IMAGE = FeatureSpec("uint8", (224, 224, 3), "libx264")
STATE = FeatureSpec("float32", (14,), "raw")


def make_record(name: str = "trajectory_000000", **overrides: Any) -> TrajectoryRecord:
    fields: dict[str, Any] = {
        "name": name,
        "path": f"{name}.mkv",
        "steps": 100,
        "features": {"observation/image": IMAGE, "observation/state": STATE},
        "bytes": 12345,
        "sha256": "ab" * 32,
        "start_ms": 0,
        "end_ms": 4950,
    }
    fields.update(overrides)
    return TrajectoryRecord(**fields)


def make_manifest(n: int = 3) -> DatasetManifest:
    records = [make_record(f"trajectory_{i:06d}") for i in range(n)]
    return DatasetManifest(
        trajectories=records,
        features=merge_features(records),
        config={"output_directory": "s3://b/ds", "group_size": 100, "video_codec": "auto"},
        counts={"itemsTotal": 301, "itemsFailed": 1, "trajectories": n},
        failures=[ItemFailure("item-17", 0, "transform", "ValueError: bad frame")],
        created_at="2026-11-21T06:30:00Z",
    )


def test_feature_spec_shape_is_canonical_tuple() -> None:
    assert FeatureSpec("uint8", [2, 3], "raw") == FeatureSpec("uint8", (2, 3), "raw")  # type: ignore[arg-type]
    assert FeatureSpec.from_dict({"dtype": "int64", "shape": [], "encoding": "raw"}).shape == ()


def test_manifest_dict_round_trip_survives_json() -> None:
    manifest = make_manifest()
    text = json.dumps(manifest.to_dict())
    assert DatasetManifest.from_dict(json.loads(text)) == manifest


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("created_at"), "created_at: missing"),
        (lambda d: d.update(created_at="yesterday"), "created_at: expected an RFC 3339"),
        (lambda d: d.update(format_version=2), "format_version: 2 is newer"),
        (lambda d: d.update(counts={"itemsTotal": "3"}), "counts.itemsTotal: expected an integer"),
        (lambda d: d.update(trajectories={}), "trajectories: expected a list"),
        (lambda d: d["trajectories"][1].pop("steps"), r"trajectories\[1\].steps: missing"),
        (lambda d: d["trajectories"][0].update(steps=-1), r"trajectories\[0\].steps: must be >= 0"),
        (lambda d: d["trajectories"][0].update(steps=True), r"steps: expected an integer"),
        (lambda d: d["trajectories"][2].update(sha256="XYZ"), r"trajectories\[2\].sha256"),
        (lambda d: d["trajectories"][0].update(path="../x.mkv"), r"trajectories\[0\].path"),
        (lambda d: d["trajectories"][0].update(path="/abs.mkv"), r"trajectories\[0\].path"),
        (lambda d: d["trajectories"][0].update(name="a/b"), r"trajectories\[0\].name"),
        (lambda d: d["trajectories"][0].update(end_ms=-5), r"end_ms: -5 is before start_ms 0"),
        (
            lambda d: d["trajectories"][1].update(name="trajectory_000000"),
            r"trajectories\[1\].name: 'trajectory_000000' already used by trajectories\[0\]",
        ),
        (
            lambda d: d["trajectories"][0]["features"]["observation/image"].update(shape=[2, -1]),
            r"trajectories\[0\].features\['observation/image'\].shape",
        ),
        (lambda d: d["features"]["observation/state"].pop("dtype"), r"dtype: missing"),
        (lambda d: d["failures"][0].update(stage="upload"), r"failures\[0\].stage"),
    ],
)
def test_invalid_manifest_names_field_and_source(mutate: Any, message: str) -> None:
    data = make_manifest().to_dict()
    mutate(data)
    with pytest.raises(DatasetError, match=message) as info:
        DatasetManifest.from_dict(data, source="s3://b/ds/manifest.json")
    assert "s3://b/ds/manifest.json" in str(info.value)


def test_record_from_dict_rejects_non_object() -> None:
    with pytest.raises(DatasetError, match="record: expected an object, got list"):
        TrajectoryRecord.from_dict([])  # type: ignore[arg-type]


def test_merge_features_unions_and_detects_conflicts() -> None:
    a = make_record("a", features={"x": STATE})
    b = make_record("b", features={"x": FeatureSpec("float32", (14,), "zstd"), "y": IMAGE})
    assert merge_features([a, b]) == {"x": FeatureSpec("float32", (14,), "mixed"), "y": IMAGE}
    assert merge_features([]) == {}

    c = make_record("c", features={"x": FeatureSpec("float64", (14,), "raw")})
    with pytest.raises(DatasetError, match=r"feature 'x'.*trajectory 'a'.*trajectory 'c'"):
        merge_features([a, b, c])
    d = make_record("d", features={"x": FeatureSpec("float32", (7,), "raw")})
    with pytest.raises(DatasetError, match=r"shape=\(14,\).*shape=\(7,\)"):
        merge_features([a, d])


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a\\b", "x\n"])
def test_record_key_rejects_unsafe_names(bad: str) -> None:
    with pytest.raises(ValueError):
        record_key(bad)


def test_record_key_layout() -> None:
    assert record_key("trajectory_000001") == "_robodm/records/trajectory_000001.json"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("s3://bucket/ds/manifest.json", ("s3://bucket/ds", "manifest.json")),
        ("s3://bucket/ds", ("s3://bucket/ds", "manifest.json")),
        ("/data/ds/", ("/data/ds", "manifest.json")),
        ("/data/ds/v2.json", ("/data/ds", "v2.json")),
        ("manifest.json", (".", "manifest.json")),
    ],
)
def test_split_manifest_uri(location: str, expected: tuple[str, str]) -> None:
    assert split_manifest_uri(location) == expected


def test_write_and_read_manifest_local(tmp_path: Path) -> None:
    manifest = make_manifest()
    uri = write_manifest(open_store(str(tmp_path)), manifest)

    assert uri == open_store(str(tmp_path)).url(MANIFEST_JSON)
    assert read_manifest(str(tmp_path)) == manifest
    assert read_manifest(str(tmp_path / MANIFEST_JSON)) == manifest

    table = pq.read_table(tmp_path / MANIFEST_PARQUET)
    assert table.column_names == [
        "name",
        "path",
        "steps",
        "bytes",
        "sha256",
        "start_ms",
        "end_ms",
        "items",
        "features",
    ]
    rows = table.to_pylist()
    assert [r["name"] for r in rows] == [t.name for t in manifest.trajectories]
    assert rows[0]["steps"] == 100
    assert json.loads(rows[0]["features"]) == {
        "observation/image": {"dtype": "uint8", "shape": [224, 224, 3], "encoding": "libx264"},
        "observation/state": {"dtype": "float32", "shape": [14], "encoding": "raw"},
    }


def test_write_manifest_refuses_invalid_manifest_and_writes_nothing(tmp_path: Path) -> None:
    records = [make_record("same"), make_record("same")]
    manifest = DatasetManifest(records, {}, {}, {}, [], "2026-11-21T06:30:00Z")
    with pytest.raises(DatasetError, match="already used"):
        write_manifest(open_store(str(tmp_path)), manifest)
    assert list(tmp_path.iterdir()) == []


def test_read_manifest_missing_and_corrupt(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no manifest at .*manifest\.json"):
        read_manifest(str(tmp_path))
    (tmp_path / MANIFEST_JSON).write_text("{not json")
    with pytest.raises(DatasetError, match=r"manifest\.json is not valid JSON"):
        read_manifest(str(tmp_path))
    (tmp_path / MANIFEST_JSON).write_text(json.dumps({"format_version": 1}))
    with pytest.raises(DatasetError, match=r"manifest.json: created_at: missing"):
        read_manifest(str(tmp_path))


def test_records_round_trip_and_absent_record(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    record = make_record("trajectory_000007")
    uri = write_record(store, record)

    assert uri == store.url("_robodm/records/trajectory_000007.json")
    assert read_record(store, "trajectory_000007") == record
    assert read_record(store, "trajectory_000008") is None


def test_read_record_rejects_a_record_for_another_name(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    store.put_bytes(record_key("b"), json.dumps(make_record("a").to_dict()).encode())
    with pytest.raises(DatasetError, match="name is 'a', expected 'b'"):
        read_record(store, "b")
