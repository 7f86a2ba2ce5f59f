"""LeRobotSource: a LeRobot v3.0 dataset read back episode by episode, checked against lerobot."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from robodm_engine.lerobot.source import (
    LeRobotSource,
    read_lerobot_meta,
    to_lerobot_name,
    to_robodm_name,
)
from robodm_engine.sources import SourceFormatError
from robodm_engine.storage import StorageOptions, open_store

from .conftest import (
    ACTION_DIM,
    EPISODES,
    FPS,
    FRAMES,
    REPO_ID,
    STATE_DIM,
    frame_pixels,
    psnr,
    task_of,
    to_uint8,
    value,
)

CAMERA = "observation/images/top"


@pytest.fixture(scope="module")
def episodes(lerobot_root: Path) -> dict[int, list[dict]]:
    source = LeRobotSource(str(lerobot_root))
    return {e: source.transform_item(e) for e in source.get_data_items()}


def test_steps_equal_what_lerobot_dataset_returns(
    lerobot_root: Path, episodes: dict[int, list[dict]]
) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    reference = LeRobotDataset(REPO_ID, root=lerobot_root, video_backend="pyav")
    assert len(reference) == EPISODES * FRAMES
    for index in range(len(reference)):
        item = reference[index]
        step = episodes[int(item["episode_index"])][int(item["frame_index"])]
        assert sorted(step) == sorted(
            [
                "action",
                CAMERA,
                "observation/state",
                "next/reward",
                "next/success",
                "task",
                "timestamp",
            ]
        )
        np.testing.assert_array_equal(step["observation/state"], item["observation.state"])
        np.testing.assert_array_equal(step["action"], item["action"])
        # info.json declares shape (1,); LeRobot hands out 0-d tensors, we keep the shape.
        assert step["next/reward"].shape == (1,) and step["next/success"].dtype == np.bool_
        assert step["next/reward"][0] == item["next.reward"].item()
        assert bool(step["next/success"][0]) == bool(item["next.success"])
        assert step["task"] == item["task"]
        assert step[CAMERA].dtype == np.uint8 and step[CAMERA].shape == (64, 64, 3)
        assert psnr(step[CAMERA], to_uint8(item["observation.images.top"])) >= 30


def test_values_tasks_and_timestamps_are_the_recorded_ones(episodes: dict[int, list[dict]]) -> None:
    for episode, steps in episodes.items():
        assert len(steps) == FRAMES
        for frame, step in enumerate(steps):
            np.testing.assert_array_equal(
                step["observation/state"], np.full(STATE_DIM, value(episode, frame), np.float32)
            )
            np.testing.assert_array_equal(
                step["action"], np.full(ACTION_DIM, -value(episode, frame), np.float32)
            )
            assert step["task"] == task_of(episode)
            assert step["timestamp"] == pytest.approx(frame * 1000 / FPS, abs=1e-3)
            # Against the frames recorded, through AV1 at crf 30.
            assert psnr(step[CAMERA], frame_pixels(episode, frame)) >= 30


def test_timestamps_follow_time_unit(lerobot_root: Path) -> None:
    steps = LeRobotSource(str(lerobot_root), time_unit="s").transform_item(1)
    stamps = np.array([s["timestamp"] for s in steps])
    np.testing.assert_allclose(stamps, np.arange(FRAMES) / FPS, atol=1e-6)
    steps = LeRobotSource(str(lerobot_root), time_unit="us").transform_item(1)
    assert steps[3]["timestamp"] == pytest.approx(300_000, abs=1)


def test_items_names_and_ids(lerobot_root: Path) -> None:
    source = LeRobotSource(str(lerobot_root), episodes=[2, 0])
    assert source.get_data_items() == [2, 0]
    assert source.count_items() == 2
    assert source.fps == FPS
    assert source.get_trajectory_filename([2], 0) == "episode_000002"
    assert source.get_item_id(2, 0).endswith("#episode=2")
    with pytest.raises(SourceFormatError, match=r"no episode\(s\) \[7\]"):
        LeRobotSource(str(lerobot_root), episodes=[7]).get_data_items()
    with pytest.raises(SourceFormatError, match="no episode 9"):
        source.transform_item(9)


def test_metadata_is_read_once_and_shipped_with_the_source(lerobot_root: Path) -> None:
    source = LeRobotSource(str(lerobot_root))
    meta = source.meta
    assert meta.video_keys == ["observation.images.top"]
    assert meta.tasks == {0: task_of(0), 1: task_of(1)}
    assert [e.length for e in meta.episodes.values()] == [FRAMES] * EPISODES
    _ = source.store
    copy = pickle.loads(pickle.dumps(source))
    assert copy._store is None and copy._meta == meta
    assert len(copy.transform_item(0)) == FRAMES


def test_image_and_2d_features_stored_in_parquet(tmp_path: Path) -> None:
    # use_videos=False: frames are PNGs inside the parquet rows; a (2, 3) feature is a
    # datasets Array2D column.
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    features = {
        "observation.image": {
            "dtype": "image",
            "shape": (16, 16, 3),
            "names": ["height", "width", "channels"],
        },
        "observation.grid": {"dtype": "float32", "shape": (2, 3), "names": None},
    }
    dataset = LeRobotDataset.create(
        "t/images", fps=5, features=features, root=tmp_path / "images", use_videos=False
    )
    rng = np.random.default_rng(0)
    images = {}
    for episode in range(2):
        for frame in range(4):
            images[episode, frame] = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            dataset.add_frame(
                {
                    "observation.image": images[episode, frame],
                    "observation.grid": np.full((2, 3), 10 * episode + frame, np.float32),
                    "task": "look",
                }
            )
        dataset.save_episode()
    dataset.finalize()
    steps = LeRobotSource(str(tmp_path / "images")).transform_item(1)
    assert len(steps) == 4
    for frame, step in enumerate(steps):
        np.testing.assert_array_equal(step["observation/image"], images[1, frame])
        np.testing.assert_array_equal(
            step["observation/grid"], np.full((2, 3), 10 + frame, np.float32)
        )
        assert step["task"] == "look"
        assert step["timestamp"] == pytest.approx(frame * 200, abs=1e-3)


def test_rejects_other_versions_and_non_datasets(lerobot_root: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceFormatError, match="not a LeRobot dataset root"):
        read_lerobot_meta(open_store(str(tmp_path)))
    old = tmp_path / "old"
    shutil.copytree(lerobot_root / "meta", old / "meta")
    info = json.loads((old / "meta/info.json").read_text())
    info["codebase_version"] = "v2.1"
    (old / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(SourceFormatError, match="convert_dataset_v21_to_v30"):
        LeRobotSource(str(old)).get_data_items()


def test_video_and_timestamps_must_agree(lerobot_root: Path, tmp_path: Path) -> None:
    # Shift one episode's video segment by half a frame: no frame matches its rows any more.
    import pyarrow as pa
    import pyarrow.parquet as pq

    broken = tmp_path / "broken"
    shutil.copytree(lerobot_root, broken)
    path = broken / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    column = "videos/observation.images.top/from_timestamp"
    shifted = pa.array([t + 0.05 for t in table[column].to_pylist()])
    pq.write_table(table.set_column(table.schema.get_field_index(column), column, shifted), path)
    with pytest.raises(SourceFormatError, match="no frame within"):
        LeRobotSource(str(broken)).transform_item(1)


def test_reads_from_s3_like_local(
    lerobot_root: Path, s3_bucket: str, episodes: dict[int, list[dict]]
) -> None:
    uri = f"s3://{s3_bucket}/lerobot/source"
    store = open_store(uri, StorageOptions.from_env())
    for path in sorted(p for p in lerobot_root.rglob("*") if p.is_file()):
        store.put_file(path, path.relative_to(lerobot_root).as_posix())
    source = LeRobotSource(uri + "/", storage_options=StorageOptions.from_env())
    assert source.get_data_items() == list(range(EPISODES))
    remote = source.transform_item(2)
    for got, want in zip(remote, episodes[2], strict=True):
        assert sorted(got) == sorted(want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


@pytest.mark.parametrize(
    ("lerobot", "robodm"),
    [
        ("observation.images.top", "observation/images/top"),
        ("observation.state", "observation/state"),
        ("action", "action"),
        ("next.reward", "next/reward"),
    ],
)
def test_name_mapping_is_a_bijection(lerobot: str, robodm: str) -> None:
    assert to_robodm_name(lerobot) == robodm
    assert to_lerobot_name(robodm) == lerobot


@pytest.mark.parametrize("name", ["a..b", ".a", "a.", "a/b"])
def test_lerobot_names_without_an_inverse_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="no robodm equivalent"):
        to_robodm_name(name)


@pytest.mark.parametrize("name", ["a//b", "/a", "v1.2/x"])
def test_robodm_names_without_an_inverse_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="no LeRobot equivalent"):
        to_lerobot_name(name)


def test_run_ingestion_writes_one_trajectory_per_episode(robodm_root: Path) -> None:
    from robodm_engine.manifest import read_manifest
    from robodm_engine.trajectory import Trajectory

    manifest = read_manifest(str(robodm_root))
    assert [t.name for t in manifest.trajectories] == [f"episode_{e:06d}" for e in range(EPISODES)]
    assert sorted(manifest.features) == sorted(
        [CAMERA, "observation/state", "action", "next/reward", "next/success", "task"]
    )
    assert manifest.features["next/reward"].shape == (1,)
    traj = Trajectory(robodm_root / "episode_000001.mkv")
    data = traj.load()
    np.testing.assert_array_equal(
        data["observation/state"][:, 0], [value(1, f) for f in range(FRAMES)]
    )
    assert list(data["task"]) == [task_of(1)] * FRAMES
    np.testing.assert_array_equal(traj.timestamps()["action"], np.arange(FRAMES) * 1000 // FPS)
    assert psnr(data[CAMERA][7], frame_pixels(1, 7)) >= 30


def test_run_ingestion_of_selected_episodes(
    lerobot_root: Path, ray_local: None, tmp_path: Path
) -> None:
    from .conftest import ingest

    ingest(LeRobotSource(str(lerobot_root), episodes=[2], time_unit="s"), tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").glob("*.mkv")) == ["episode_000002.mkv"]


def test_an_ingestion_job_with_format_lerobot(
    lerobot_root: Path, ray_local: None, tmp_path: Path
) -> None:
    from robodm_engine.job import run_job
    from robodm_engine.trajectory import Trajectory

    document = {
        "apiVersion": "robodm.io/v1alpha1",
        "kind": "IngestionJob",
        "metadata": {"name": "lerobot-import"},
        "spec": {
            "source": {
                "uri": str(lerobot_root),
                "format": "lerobot",
                "options": {"episodes": [0, 2]},
            },
            "output": {"uri": str(tmp_path / "job")},
            "numWorkers": 2,
        },
    }
    result = run_job(document)
    assert [Path(u).name for u in result.trajectory_uris] == [
        "episode_000000.mkv",
        "episode_000002.mkv",
    ]
    data = Trajectory(result.trajectory_uris[1]).load()
    assert float(data["observation/state"][4, 0]) == value(2, 4)


@pytest.mark.parametrize("module", ["source", "export", "robodm_dataset"])
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    results = doctest.testmod(importlib.import_module(f"robodm_engine.lerobot.{module}"))
    assert results.failed == 0 and results.attempted > 0
