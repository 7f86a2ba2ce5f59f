"""load(desired_frequency=..., data_slice=...) for any source rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robodm_engine import Trajectory
from robodm_engine.timeline import nearest_indices, resample_grid, step_ms


def write(tmp_path: Path, hz: float, seconds: float = 2.0) -> Trajectory:
    count = round(hz * seconds)
    steps = [{"i": np.int64(i), "state": np.full(2, i, np.float32)} for i in range(count)]
    return Trajectory.from_list_of_dicts(steps, tmp_path / f"{hz}hz.mkv", fps=hz)


def expected_rows(hz: float, count: int, target: float) -> list[int]:
    """Index of the sample nearest to each tick of the target grid, computed independently."""
    times = [step_ms(i, hz) for i in range(count)]
    rows: list[int] = []
    k = 0
    while (tick := k * 1000 / target) <= times[-1] + 0.5:
        rows.append(min(range(count), key=lambda i: (abs(times[i] - tick), i)))
        k += 1
    return rows


@pytest.mark.parametrize("source_hz", [10, 20, 30])
@pytest.mark.parametrize("target_hz", [5, 10, 15, 30, 60])
def test_resampling_picks_the_nearest_sample(tmp_path: Path, source_hz: int,
                                             target_hz: int) -> None:
    traj = write(tmp_path, source_hz)
    data = traj.load(desired_frequency=target_hz)
    count = round(source_hz * 2.0)
    assert data["i"].tolist() == expected_rows(source_hz, count, target_hz)
    assert len(data["state"]) == len(data["i"])


def test_downsampling_20hz_to_10hz_keeps_every_other_step(tmp_path: Path) -> None:
    data = write(tmp_path, 20).load(desired_frequency=10)
    assert data["i"].tolist() == list(range(0, 40, 2))


def test_30hz_to_10hz(tmp_path: Path) -> None:
    data = write(tmp_path, 30).load(desired_frequency=10)
    assert data["i"].tolist() == list(range(0, 60, 3))


def test_upsampling_10hz_to_20hz_repeats_samples(tmp_path: Path) -> None:
    data = write(tmp_path, 10, seconds=0.5).load(desired_frequency=20)
    assert data["i"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4]


@pytest.mark.parametrize("source_hz", [10, 20, 30])
def test_slice_without_resampling_is_by_sample_index(tmp_path: Path, source_hz: int) -> None:
    data = write(tmp_path, source_hz).load(data_slice=slice(3, 11, 2))
    assert data["i"].tolist() == [3, 5, 7, 9]


@pytest.mark.parametrize("source_hz", [10, 20, 30])
def test_slice_with_resampling_is_by_tick(tmp_path: Path, source_hz: int) -> None:
    traj = write(tmp_path, source_hz)
    whole = traj.load(desired_frequency=10)["i"]
    assert traj.load(desired_frequency=10, data_slice=slice(2, 8))["i"].tolist() == (
        whole[2:8].tolist()
    )


def test_video_resampling_decodes_the_right_frames(tmp_path: Path) -> None:
    from .conftest import video_like_frames

    frames = video_like_frames(30, 32, 32)
    path = tmp_path / "v.mkv"
    with Trajectory(path, mode="w", video_codec="lossless", fps=30) as traj:
        for frame in frames:
            traj.add("image", frame)
    data = Trajectory(path).load(desired_frequency=10, data_slice=slice(1, 3))
    np.testing.assert_array_equal(data["image"], frames[[3, 6]])


def test_features_at_different_rates_share_the_grid(tmp_path: Path) -> None:
    path = tmp_path / "mixed.mkv"
    with Trajectory(path, mode="w") as traj:
        for i in range(20):  # 20 Hz
            traj.add("fast", i, timestamp=i * 50)
        for i in range(10):  # 10 Hz
            traj.add("slow", i, timestamp=i * 100)
    data = Trajectory(path).load(desired_frequency=10)
    assert data["fast"].tolist() == list(range(0, 20, 2))
    assert data["slow"].tolist() == list(range(10))
    plain = Trajectory(path).load()
    assert len(plain["fast"]) == 20 and len(plain["slow"]) == 10


def test_load_selected_features(tmp_path: Path) -> None:
    traj = write(tmp_path, 10)
    assert list(traj.load(features=["state"])) == ["state"]
    with pytest.raises(Exception, match="no feature"):
        traj.load(features=["nope"])


def test_grid_helpers() -> None:
    assert resample_grid(0, 967, 30.0).size == 30
    assert resample_grid(0, 0, 10.0).tolist() == [0.0]
    with pytest.raises(ValueError, match="> 0"):
        resample_grid(0, 100, 0)
    assert nearest_indices(np.array([0, 100]), np.array([50.0])).tolist() == [0]


@pytest.mark.parametrize("codec", ["ffv1", "libx264"])
def test_single_steps_and_slices_of_images_are_the_samples_asked_for(
    tmp_path: Path, codec: str
) -> None:
    """Decoding starts at a keyframe near the first wanted sample (every ffv1 frame is one)."""
    rng = np.random.default_rng(0)
    depth = rng.integers(0, 5000, (24, 16, 16), dtype=np.uint16)  # lossless ffv1 always
    rgb = np.repeat(np.linspace(0, 250, 24, dtype=np.uint8)[:, None, None, None], 16 * 16 * 3)
    rgb = rgb.reshape(24, 16, 16, 3)
    path = tmp_path / "t.mkv"
    with Trajectory(path, mode="w", video_codec=codec, fps=10) as traj:
        for i in range(24):
            traj.add_by_dict({"depth": depth[i], "rgb": rgb[i], "i": np.int64(i)})
    reader = Trajectory(path)
    for k in (0, 1, 7, 23):
        data = reader.load(data_slice=slice(k, k + 1))
        np.testing.assert_array_equal(data["depth"], depth[k : k + 1])
        # Flat frames of distinct grey levels: the nearest level identifies the sample.
        assert np.abs(data["rgb"].astype(int) - int(rgb[k, 0, 0, 0])).max() <= 3
        assert data["i"].tolist() == [k]
    np.testing.assert_array_equal(reader.load(data_slice=slice(5, 19, 3))["depth"],
                                  depth[5:19:3])


@pytest.mark.parametrize("x264_params", [None, "open-gop=1"])
def test_single_steps_with_short_gops_equal_the_whole_decode(
    tmp_path: Path, x264_params: str | None
) -> None:
    """A step decoded from its keyframe (B-frames, closed or open GOP) is the same frame."""
    from robodm_engine.synthetic import make_episode

    options = {"g": "5", "bf": "3", **({"x264-params": x264_params} if x264_params else {})}
    episode = make_episode(steps=23, height=32, width=32)
    path = tmp_path / "gop.mkv"
    with Trajectory(path, mode="w", fps=10, codec_options={"libx264": options}) as traj:
        for step in episode:
            traj.add_by_dict(step)
    whole = Trajectory(path).load()["observation/image"]
    reader = Trajectory(path)
    for k in range(23):
        np.testing.assert_array_equal(
            reader.load(data_slice=slice(k, k + 1))["observation/image"][0], whole[k])
    np.testing.assert_array_equal(
        reader.load(data_slice=slice(12, 20, 3))["observation/image"], whole[12:20:3])
