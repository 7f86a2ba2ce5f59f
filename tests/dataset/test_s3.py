"""Datasets in S3 (a moto server over HTTP): manifest, listing, glob, streaming and cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from s3server import S3Server

from robodm_engine.dataset import VLADataset
from robodm_engine.storage import StorageOptions, open_store

from .conftest import LENGTHS, publish_manifest, record_for, reference

pytestmark = pytest.mark.usefixtures("ray_local")


@pytest.fixture
def s3_dataset(s3_server: S3Server, s3_bucket: str, dataset_dir: Path) -> dict[str, Any]:
    """The test trajectories under ``ds/`` (with a manifest) and ``raw/`` (without one)."""
    options = StorageOptions(endpoint_url=s3_server.endpoint_url)
    files = sorted(dataset_dir.glob("*.mkv"))[:3]
    published = open_store(f"s3://{s3_bucket}/ds", options)
    raw = open_store(f"s3://{s3_bucket}/raw", options)
    for path in files:
        published.put_file(path, path.name)
        raw.put_file(path, path.name)
    publish_manifest(published, [record_for(p) for p in files])
    return {
        "bucket": s3_bucket,
        "files": files,
        "options": options,
        # Ray's workers were started before the test pointed AWS_* at moto; hand them the
        # variables (credentials, endpoint) the way a job would: through the runtime env.
        "ray_remote_args": {"runtime_env": {"env_vars": s3_server.env}},
    }


def check_contents(ds: VLADataset, files: list[Path]) -> None:
    rows = {row["trajectory"]: row for row in ds.iter_rows()}
    assert sorted(rows) == [f.stem for f in files]
    for path in files:
        expected = reference(path)
        np.testing.assert_array_equal(rows[path.stem]["action"], expected["action"])
        np.testing.assert_array_equal(
            rows[path.stem]["observation/image"], expected["observation/image"]
        )


def test_open_s3_manifest_streams_objects(s3_dataset: dict[str, Any]) -> None:
    ds = VLADataset(
        f"s3://{s3_dataset['bucket']}/ds/manifest.json",
        mode="trajectory",
        storage_options=s3_dataset["options"],
        ray_remote_args=s3_dataset["ray_remote_args"],
    )
    assert ds.manifest is not None
    assert ds.trajectory_paths == [
        f"s3://{s3_dataset['bucket']}/ds/{f.name}" for f in s3_dataset["files"]
    ]
    check_contents(ds, s3_dataset["files"])


def test_open_s3_prefix_and_glob_with_cache(s3_dataset: dict[str, Any], tmp_path: Path) -> None:
    bucket = s3_dataset["bucket"]
    common = {
        "mode": "trajectory",
        "storage_options": s3_dataset["options"],
        "ray_remote_args": s3_dataset["ray_remote_args"],
    }
    by_prefix = VLADataset(f"s3://{bucket}/raw", cache_dir=tmp_path / "cache", **common)
    assert by_prefix.manifest is None
    check_contents(by_prefix, s3_dataset["files"])
    cached = sorted(p.name for p in (tmp_path / "cache").rglob("*.mkv"))
    assert cached == [f.name for f in s3_dataset["files"]]

    by_glob = VLADataset(f"s3://{bucket}/raw/episode_0[01].mkv", **common)
    assert [Path(p).name for p in by_glob.trajectory_paths] == ["episode_00.mkv", "episode_01.mkv"]
    assert by_glob.count() == 2
    assert VLADataset(f"s3://{bucket}/ds", **common).manifest is not None
    steps = VLADataset(f"s3://{bucket}/ds", storage_options=s3_dataset["options"]).count()
    assert steps == sum(LENGTHS[:3])
