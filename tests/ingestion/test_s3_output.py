"""Ingestion into S3 (a moto server over HTTP): publish, resume, repair, manifest."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from robodm_engine.ingestion import IngestionConfig, PyTorchDatasetAdapter, run_ingestion
from robodm_engine.manifest import read_manifest
from robodm_engine.storage import StorageOptions

from .conftest import step


@pytest.fixture
def s3_config(ray_local: None, s3_bucket: str, s3_env: dict[str, str], s3_server: Any) -> Any:
    def make(**overrides: Any) -> IngestionConfig:
        return IngestionConfig(
            f"s3://{s3_bucket}/datasets/v1",
            num_workers=2,
            storage_options=StorageOptions(endpoint_url=s3_server.endpoint_url),
            # The session's Ray started before these variables existed; workers get the
            # credentials the way a cluster would: through the task's environment.
            ray_remote_args={"runtime_env": {"env_vars": dict(s3_env)}},
            **overrides,
        )

    return make


def _keys(s3_server: Any, bucket: str) -> dict[str, int]:
    listing = s3_server.client.list_objects_v2(Bucket=bucket, Prefix="datasets/v1/")
    return {o["Key"].removeprefix("datasets/v1/"): o["Size"] for o in listing["Contents"]}


def test_publish_resume_and_repair_on_s3(
    s3_config: Any, s3_server: Any, s3_bucket: str
) -> None:
    items = [step(i) for i in range(8)]
    first = run_ingestion(PyTorchDatasetAdapter(items, group_size=2), s3_config())
    keys = _keys(s3_server, s3_bucket)
    names = [f"trajectory_{i:06d}" for i in range(4)]
    assert {f"{n}.mkv" for n in names} | {f"_robodm/records/{n}.json" for n in names} | {
        "manifest.json", "manifest.parquet", "_robodm/progress.json",
    } == set(keys)
    assert first.manifest_uri == f"s3://{s3_bucket}/datasets/v1/manifest.json"
    assert first.trajectory_uris[0] == f"s3://{s3_bucket}/datasets/v1/trajectory_000000.mkv"

    second = run_ingestion(PyTorchDatasetAdapter(items, group_size=2), s3_config())
    assert (second.counts["trajectoriesWritten"], second.counts["trajectoriesResumed"]) == (0, 4)

    # Same size, different bytes: only the checksum catches it.
    key = "datasets/v1/trajectory_000002.mkv"
    body = bytearray(s3_server.client.get_object(Bucket=s3_bucket, Key=key)["Body"].read())
    body[100] ^= 0xFF
    s3_server.client.put_object(Bucket=s3_bucket, Key=key, Body=bytes(body))
    third = run_ingestion(PyTorchDatasetAdapter(items, group_size=2), s3_config())
    assert (third.counts["trajectoriesWritten"], third.counts["trajectoriesResumed"]) == (1, 3)
    manifest = read_manifest(
        f"s3://{s3_bucket}/datasets/v1",
        StorageOptions(endpoint_url=s3_server.endpoint_url),
    )
    assert [r.name for r in manifest.trajectories] == names
    repaired = s3_server.client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    assert bytes(body) != repaired
    assert hashlib.sha256(repaired).hexdigest() == manifest.trajectories[2].sha256
