"""Configuration checks, safe names, Ray arguments and the default output directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from robodm_engine.errors import IngestionError
from robodm_engine.ingestion import IngestionConfig, default_output_directory
from robodm_engine.ingestion.cluster import ray_init_kwargs
from robodm_engine.ingestion.naming import NameRegistry, sanitize_name


def test_seed_fields_and_defaults() -> None:
    config = IngestionConfig(output_directory="./out")
    assert (config.trajectory_prefix, config.num_workers, config.batch_size) == (
        "trajectory", 4, 1,
    )
    assert (config.time_unit, config.video_codec, config.raw_codec) == ("ms", "auto", None)
    assert (config.shuffle_items, config.max_items_per_trajectory) == (False, None)
    assert config.max_failed_items == 0
    assert config.in_flight_limit == 4


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"output_directory": ""}, ValueError, "output_directory"),
        ({"num_workers": 0}, ValueError, "num_workers must be >= 1"),
        ({"num_workers": 2.5}, TypeError, "num_workers must be an int"),
        ({"batch_size": True}, TypeError, "batch_size"),
        ({"time_unit": "minutes"}, ValueError, "time_unit"),
        ({"trajectory_prefix": "../x"}, ValueError, "trajectory_prefix"),
        ({"trajectory_prefix": "a b"}, ValueError, "trajectory_prefix"),
        ({"max_failed_items": -1}, ValueError, "max_failed_items"),
        ({"max_items_per_trajectory": 0}, ValueError, "max_items_per_trajectory"),
        ({"fps": 0}, ValueError, "fps"),
        ({"fps": float("nan")}, ValueError, "fps"),
        ({"ray_init_kwargs": [("num_cpus", 2)]}, TypeError, "ray_init_kwargs"),
        ({"progress_interval_s": 0}, ValueError, "progress_interval_s"),
        ({"video_codec": ""}, ValueError, "video_codec"),
    ],
)
def test_invalid_values_fail_with_the_field_named(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    kwargs = {"output_directory": "./out", **kwargs}
    with pytest.raises(error, match=message):
        IngestionConfig(**kwargs)


def test_manifest_settings_leave_out_connection_details() -> None:
    config = IngestionConfig("s3://b/p", ray_init_kwargs={"address": "ray://secret:10001"})
    recorded = config.to_manifest_dict()
    assert "ray_init_kwargs" not in recorded
    assert "storage_options" not in recorded
    assert recorded["output_directory"] == "s3://b/p"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("episode_1", "episode_1"),
        ("../../etc/passwd", "passwd"),
        ("/abs/path/run.mkv", "run"),
        ("C:\\data\\run 7", "run_7"),
        ("..hidden", "hidden"),
        ("bell\x07ring\nx", "bell_ring_x"),
        ("ok/", "ok"),
    ],
)
def test_names_are_reduced_to_one_safe_segment(raw: str, expected: str) -> None:
    assert sanitize_name(raw) == expected


@pytest.mark.parametrize("raw", ["..", "../..", "", "///", "\x00\x01", 7])
def test_names_with_nothing_usable_are_refused(raw: Any) -> None:
    with pytest.raises(IngestionError):
        sanitize_name(raw)


def test_duplicate_names_are_refused_with_both_groups() -> None:
    names = NameRegistry()
    names.claim("a", 0)
    names.claim("b", 1)
    with pytest.raises(IngestionError, match="groups 0 and 2"):
        names.claim("a", 2)


def test_local_ray_is_sized_from_num_workers_within_the_machine() -> None:
    config = IngestionConfig("./out", num_workers=64)
    assert ray_init_kwargs(config, environ={}) == {
        "num_cpus": os.cpu_count(),
        "include_dashboard": False,
    }
    small = IngestionConfig("./out", num_workers=1, ray_init_kwargs={"include_dashboard": True})
    assert ray_init_kwargs(small, environ={}) == {"num_cpus": 1, "include_dashboard": True}


def test_a_cluster_address_drops_local_only_arguments() -> None:
    config = IngestionConfig(
        "./out",
        ray_init_kwargs={"num_cpus": 16, "object_store_memory": 4_000_000_000,
                         "namespace": "ingest"},
    )
    assert ray_init_kwargs(config, environ={"RAY_ADDRESS": "ray://head:10001"}) == {
        "address": "ray://head:10001",
        "namespace": "ingest",
    }
    explicit = IngestionConfig("./out", ray_init_kwargs={"address": "auto", "num_cpus": 2})
    assert ray_init_kwargs(explicit, environ={}) == {"address": "auto"}


def test_default_output_directory_is_new_every_time(tmp_path: Path) -> None:
    first = default_output_directory(tmp_path)
    second = default_output_directory(tmp_path)
    assert first != second
    for made in (first, second):
        assert Path(made).is_dir() and Path(made).parent == tmp_path
        assert Path(made).name.startswith("robodm_dataset_")
        assert not any(Path(made).iterdir())
