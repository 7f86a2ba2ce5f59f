"""Opening a VLADataset from each kind of source, and the errors when a source is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from robodm_engine.dataset import VLADataset
from robodm_engine.errors import DatasetError
from robodm_engine.manifest import read_manifest

from .conftest import LENGTHS

pytestmark = pytest.mark.usefixtures("ray_local")

NAMES = [f"episode_{i:02d}" for i in range(len(LENGTHS))]


def names_in(ds: VLADataset) -> list[str]:
    return sorted({row["trajectory"] for row in ds.iter_rows()})


def test_open_directory(dataset_dir: Path) -> None:
    ds = VLADataset(dataset_dir)
    assert ds.trajectory_paths == [str(dataset_dir / f"{n}.mkv") for n in NAMES]
    assert ds.manifest is None
    assert names_in(ds) == NAMES
    assert ds.count() == sum(LENGTHS)


def test_open_glob_list_and_single_file(dataset_dir: Path) -> None:
    by_glob = VLADataset(str(dataset_dir / "episode_0[12].mkv"))
    assert by_glob.trajectory_paths == [str(dataset_dir / f"{n}.mkv") for n in NAMES[1:3]]
    assert names_in(by_glob) == NAMES[1:3]

    paths = [dataset_dir / "episode_05.mkv", str(dataset_dir / "episode_00.mkv")]
    by_list = VLADataset(paths)
    assert by_list.trajectory_paths == [str(p) for p in paths]
    assert by_list.count() == LENGTHS[5] + LENGTHS[0]

    single = VLADataset(dataset_dir / "episode_03.mkv")
    assert single.count() == LENGTHS[3]


@pytest.mark.parametrize("how", ["root", "manifest.json", "file-uri"])
def test_open_manifest(published_dir: Path, how: str) -> None:
    source = {
        "root": str(published_dir),
        "manifest.json": str(published_dir / "manifest.json"),
        "file-uri": f"file://{published_dir}/manifest.json",
    }[how]
    ds = VLADataset(source)
    assert ds.manifest == read_manifest(str(published_dir))
    assert ds.trajectory_paths == [str(published_dir / f"{n}.mkv") for n in NAMES]
    assert names_in(ds) == NAMES


def test_count_uses_manifest_and_agrees_with_reading(published_dir: Path) -> None:
    ds = VLADataset(published_dir)
    assert ds.count() == len(ds) == sum(LENGTHS)
    assert ds.filter(lambda row: True).count() == sum(LENGTHS)  # forces a read
    assert VLADataset(published_dir, mode="trajectory").count() == len(LENGTHS)


def test_colliding_stems_get_path_names(dataset_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "episode_00.mkv").write_bytes((dataset_dir / "episode_01.mkv").read_bytes())
    ds = VLADataset([dataset_dir / "episode_00.mkv", other / "episode_00.mkv"])
    assert names_in(ds) == sorted([str(dataset_dir / "episode_00"), str(other / "episode_00")])


def test_missing_and_empty_sources(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file or directory"):
        VLADataset(tmp_path / "absent")
    with pytest.raises(DatasetError, match="no trajectories found in"):
        VLADataset(tmp_path)
    with pytest.raises(DatasetError, match="no trajectories found in"):
        VLADataset(str(tmp_path / "*.mkv"))
    with pytest.raises(DatasetError, match=r"trajectory file not found: .*nope\.mkv"):
        VLADataset([tmp_path / "nope.mkv"])
    with pytest.raises(DatasetError, match=r"no manifest at .*manifest\.json"):
        VLADataset(tmp_path / "manifest.json")


def test_duplicate_paths_are_rejected(dataset_dir: Path) -> None:
    path = dataset_dir / "episode_00.mkv"
    with pytest.raises(DatasetError, match="listed more than once"):
        VLADataset([path, path])


def test_unknown_feature_is_rejected_against_the_manifest(published_dir: Path) -> None:
    with pytest.raises(DatasetError, match=r"\['gripper'\] are not in the dataset"):
        VLADataset(published_dir, features=["action", "gripper"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "episode"}, "mode must be one of"),
        ({"on_error": "ignore"}, "on_error must be one of"),
        ({"desired_frequency": 0.0}, "desired_frequency must be a positive"),
        ({"desired_frequency": float("nan")}, "desired_frequency must be a positive"),
        ({"num_parallel_reads": 0}, "num_parallel_reads must be >= 1"),
        ({"ray_remote_args": {"num_cpus": 4}}, "at most 1 CPU"),
    ],
)
def test_invalid_options(dataset_dir: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VLADataset(dataset_dir, **kwargs)  # type: ignore[arg-type]


def test_features_must_be_a_list(dataset_dir: Path) -> None:
    with pytest.raises(TypeError, match="not a str"):
        VLADataset(dataset_dir, features="action")


def test_more_parallel_reads_than_cpus_still_completes(dataset_dir: Path) -> None:
    # The session's Ray has 2 CPUs; asking for 8 concurrent reads must not ask for CPUs that
    # do not exist (upstream's hang) but simply run 2 at a time.
    ds = VLADataset(dataset_dir, num_parallel_reads=8)
    assert ds.filter(lambda row: True).count() == sum(LENGTHS)
