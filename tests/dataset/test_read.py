"""What VLADataset yields: step rows and trajectory rows, batches, resampling and load()."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robodm_engine.dataset import METADATA_COLUMNS, VLADataset
from robodm_engine.errors import DatasetError
from robodm_engine.trajectory import Trajectory

from .conftest import FEATURES, FPS, LENGTHS, reference

pytestmark = pytest.mark.usefixtures("ray_local")


def rows_by_trajectory(ds: VLADataset) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in ds.iter_rows():
        grouped[row["trajectory"]].append(row)
    return {name: sorted(rows, key=lambda r: r["step"]) for name, rows in grouped.items()}


def test_step_rows_match_the_files(dataset_dir: Path) -> None:
    grouped = rows_by_trajectory(VLADataset(dataset_dir))
    assert sorted(grouped) == [f"episode_{i:02d}" for i in range(len(LENGTHS))]
    for name, rows in grouped.items():
        expected = reference(dataset_dir / f"{name}.mkv")
        assert set(rows[0]) == {*FEATURES, *METADATA_COLUMNS}
        assert [r["step"] for r in rows] == list(range(len(expected["action"])))
        # 20 Hz: step k is at k * 50 ms.
        assert [r["timestamp_ms"] for r in rows] == [k * 1000 // FPS for k in range(len(rows))]
        for feature in FEATURES:
            got = np.stack([np.asarray(r[feature]) for r in rows])
            np.testing.assert_array_equal(got, expected[feature])


@pytest.mark.parametrize("batch_size", [7, 32])
def test_iter_batches_sizes_keys_and_dtypes(dataset_dir: Path, batch_size: int) -> None:
    ds = VLADataset(dataset_dir)
    total = sum(LENGTHS)
    batches = list(ds.iter_batches(batch_size=batch_size))

    assert [len(b["step"]) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
    assert sum(len(b["step"]) for b in batches) == total
    for batch in batches:
        assert set(batch) == {*FEATURES, *METADATA_COLUMNS}
        n = len(batch["step"])
        assert batch["observation/image"].shape == (n, 16, 16, 3)
        assert batch["observation/image"].dtype == np.uint8
        assert batch["observation/state"].shape == (n, 4)
        assert batch["observation/state"].dtype == np.float32
        assert batch["action"].shape == (n, 2)
        assert batch["action"].dtype == np.float64
        assert batch["step"].dtype == np.int64
        assert batch["timestamp_ms"].dtype == np.int64
        assert all(isinstance(s, str) for s in batch["instruction"])

    kept = list(ds.iter_batches(batch_size=batch_size, drop_last=True))
    assert [len(b["step"]) for b in kept] == [batch_size] * (total // batch_size)


def test_iter_batches_pandas_format(dataset_dir: Path) -> None:
    frame = next(
        VLADataset(dataset_dir, features=["action"]).iter_batches(4, batch_format="pandas")
    )
    assert list(frame.columns) == ["action", *METADATA_COLUMNS]
    assert len(frame) == 4


def test_trajectory_mode_rows(dataset_dir: Path) -> None:
    ds = VLADataset(dataset_dir, mode="trajectory")
    rows = {row["trajectory"]: row for row in ds.iter_rows()}
    assert len(rows) == len(LENGTHS)
    for index, length in enumerate(LENGTHS):
        row = rows[f"episode_{index:02d}"]
        expected = reference(dataset_dir / f"episode_{index:02d}.mkv")
        assert set(row) == {*FEATURES, "trajectory", "timestamp_ms"}
        assert row["observation/image"].shape == (length, 16, 16, 3)
        np.testing.assert_array_equal(row["observation/state"], expected["observation/state"])
        np.testing.assert_array_equal(row["timestamp_ms"], np.arange(length) * 1000 // FPS)
        assert list(row["instruction"]) == [f"task {index}"] * length

    # Trajectories of different lengths batch together as arrays of per-row arrays.
    batch = next(ds.iter_batches(batch_size=len(LENGTHS)))
    assert sorted(len(x) for x in batch["action"]) == sorted(LENGTHS)


def test_features_subset(dataset_dir: Path) -> None:
    row = VLADataset(dataset_dir, features=["action"]).take(1)[0]
    assert set(row) == {"action", *METADATA_COLUMNS}


def test_desired_frequency_halves_a_20hz_source(dataset_dir: Path) -> None:
    ds = VLADataset(dataset_dir, desired_frequency=10.0)
    grouped = rows_by_trajectory(ds)
    for name, rows in grouped.items():
        length = LENGTHS[int(name.rsplit("_", 1)[1])]
        assert len(rows) == length // 2
        assert [r["timestamp_ms"] for r in rows] == [100 * k for k in range(length // 2)]
        expected = reference(dataset_dir / f"{name}.mkv", desired_frequency=10.0)
        np.testing.assert_array_equal(
            np.stack([r["observation/state"] for r in rows]), expected["observation/state"]
        )
        # Nearest sample of a 20 Hz stream to every 100 ms tick: every other step.
        np.testing.assert_array_equal(
            expected["observation/state"][:, 0], 100 * int(name[-2:]) + np.arange(0, length, 2)
        )
    assert ds.count() == sum(LENGTHS) // 2


def test_load_returns_one_dict_per_trajectory_in_order(dataset_dir: Path) -> None:
    ds = VLADataset(dataset_dir, shuffle=True, seed=3)
    data = ds.load(desired_frequency=10.0)
    assert [d["trajectory"] for d in data] == [Path(p).stem for p in ds.trajectory_paths]
    for item, path in zip(data, ds.trajectory_paths, strict=True):
        expected = reference(path, desired_frequency=10.0)
        assert set(item) == {*FEATURES, "trajectory", "timestamp_ms"}
        assert len(item["action"]) == len(reference(path)["action"]) // 2
        np.testing.assert_array_equal(item["action"], expected["action"])


def test_load_data_slice_and_native_rate(dataset_dir: Path) -> None:
    data = VLADataset(dataset_dir / "episode_05.mkv").load(data_slice=slice(2, 6))
    np.testing.assert_array_equal(data[0]["timestamp_ms"], [100, 150, 200, 250])
    np.testing.assert_array_equal(
        data[0]["observation/state"],
        reference(dataset_dir / "episode_05.mkv")["observation/state"][2:6],
    )


def test_load_refuses_step_transforms(dataset_dir: Path) -> None:
    ds = VLADataset(dataset_dir).filter(lambda row: row["step"] > 0)
    with pytest.raises(ValueError, match="step transforms"):
        ds.load()
    traj = VLADataset(dataset_dir, mode="trajectory").filter(
        lambda row: row["trajectory"] == "episode_01"
    )
    assert [d["trajectory"] for d in traj.load()] == ["episode_01"]


def test_unaligned_features_need_resampling(tmp_path: Path) -> None:
    path = tmp_path / "unaligned.mkv"
    with Trajectory(path, mode="w") as traj:
        for k in range(10):
            traj.add("fast", np.float32(k), timestamp=k * 50)
        for k in range(5):
            traj.add("slow", np.float32(k), timestamp=k * 100)

    with pytest.raises(DatasetError, match=r"cannot read trajectory .*unaligned\.mkv.*different"):
        VLADataset(path).take(1)
    rows = VLADataset(path, desired_frequency=10.0).take(100)
    assert [r["slow"] for r in rows] == [r["fast"] / 2 for r in rows] == list(range(5))
