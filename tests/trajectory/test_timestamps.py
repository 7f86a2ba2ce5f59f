"""Every sample keeps the time it was given, for every codec and time unit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robodm_engine import TimestampError, Trajectory

from .conftest import video_like_frames

# Irregular gaps make any re-stamping by an encoder or the muxer visible.
IRREGULAR_MS = [0, 33, 67, 100, 150, 151, 400, 1000, 1033, 5000, 5001, 5002]


@pytest.mark.parametrize(
    ("codec", "options"),
    [
        ("libx264", {"bf": "3", "b-pyramid": "normal"}),  # B-frames: encoder delay + reorder
        ("libsvtav1", None),
        ("libx265", None),
        ("ffv1", None),
        ("lossless", None),
        ("rawvideo", None),
    ],
)
def test_video_packets_keep_exact_timestamps(
    tmp_path: Path, codec: str, options: dict[str, str] | None
) -> None:
    frames = video_like_frames(len(IRREGULAR_MS), 64, 64)
    path = tmp_path / f"{codec}.mkv"
    with Trajectory(path, mode="w", video_codec=codec, codec_options=options) as traj:
        for ts, frame in zip(IRREGULAR_MS, frames, strict=True):
            traj.add_by_dict({"image": frame, "state": np.float32(ts)}, timestamp=ts)
    reader = Trajectory(path)
    stamps = reader.timestamps()
    assert stamps["image"].tolist() == IRREGULAR_MS
    assert stamps["state"].tolist() == IRREGULAR_MS
    # Frames come back in time order, paired with the state written beside them.
    data = reader.load()
    assert data["state"].tolist() == [float(t) for t in IRREGULAR_MS]
    if codec in ("ffv1", "lossless", "rawvideo"):
        np.testing.assert_array_equal(data["image"], frames)


@pytest.mark.parametrize(
    ("unit", "given", "expected_ms"),
    [
        ("ns", [0, 1_000_000, 33_333_333, 2_000_000_000], [0, 1, 33, 2000]),
        ("us", [0, 1_000, 33_334, 2_000_000], [0, 1, 33, 2000]),
        ("ms", [0, 1, 33, 2000], [0, 1, 33, 2000]),
        ("s", [0, 0.001, 0.1, 2], [0, 1, 100, 2000]),
        ("s", [0.0, 0.7, 1.3, 1.9], [0, 700, 1300, 1900]),  # not exact in binary floating point
    ],
)
def test_time_units_convert_exactly(
    tmp_path: Path, unit: str, given: list[float], expected_ms: list[int]
) -> None:
    path = tmp_path / "t.mkv"
    with Trajectory(path, mode="w", time_unit=unit) as traj:
        for ts in given:
            traj.add("x", 1, timestamp=ts)
    assert Trajectory(path).timestamps()["x"].tolist() == expected_ms


def test_large_epoch_timestamps_in_nanoseconds(tmp_path: Path) -> None:
    base = 1_763_700_000_123_000_000  # 2025 in ns: beyond float64's integer precision
    path = tmp_path / "t.mkv"
    with Trajectory(path, mode="w", time_unit="ns") as traj:
        for i in range(3):
            traj.add("x", i, timestamp=base + i * 50_000_000)
    assert Trajectory(path).timestamps()["x"].tolist() == [
        base // 1_000_000 + 50 * i for i in range(3)
    ]


def test_features_of_one_step_share_its_timestamp(tmp_path: Path) -> None:
    """robodm's shared monotonic counter shifted features within a step; ours must not."""
    path = tmp_path / "t.mkv"
    with Trajectory(path, mode="w") as traj:  # wall clock: no fps, no timestamps
        for _ in range(5):
            traj.add_by_dict({"a": 1, "b": 2.0, "c": "x"})
    stamps = Trajectory(path).timestamps()
    assert stamps["a"].tolist() == stamps["b"].tolist() == stamps["c"].tolist()
    assert np.all(np.diff(stamps["a"]) > 0)


def test_fps_timestamps(tmp_path: Path) -> None:
    traj = Trajectory.from_list_of_dicts([{"x": i} for i in range(7)], tmp_path / "t.mkv", fps=30)
    assert traj.timestamps()["x"].tolist() == [0, 33, 67, 100, 133, 167, 200]


@pytest.mark.parametrize("second", [99, 100])
def test_timestamp_not_increasing_is_rejected(tmp_path: Path, second: int) -> None:
    path = tmp_path / "t.mkv"
    with pytest.raises(TimestampError, match=r"t\.mkv \[feature 'state'\].*not after"):
        with Trajectory(path, mode="w") as traj:
            traj.add("state", 1.0, timestamp=100)
            traj.add("state", 2.0, timestamp=second)
    assert not path.exists()


def test_non_finite_timestamp_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(TimestampError, match="not finite"):
        with Trajectory(tmp_path / "t.mkv", mode="w", time_unit="s") as traj:
            traj.add("x", 1, timestamp=float("nan"))
