"""Every kind of feature comes back with its dtype, shape and values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from robodm_engine import Trajectory

from .conftest import psnr, video_like_frames

RAW_DTYPES = [
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
    np.uint64, np.float16, np.float32, np.float64, np.complex64,
]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    dtype=st.sampled_from(RAW_DTYPES),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=5),
    steps=st.integers(1, 4),
    raw_codec=st.sampled_from([None, "zstd", "lz4", "rawvideo_pyarrow"]),
    data=st.data(),
)
def test_raw_features_round_trip_exactly(
    tmp_path: Path, dtype: type, shape: tuple[int, ...], steps: int, raw_codec: str | None,
    data: st.DataObject,
) -> None:
    samples = [data.draw(hnp.arrays(dtype, shape)) for _ in range(steps)]
    path = tmp_path / f"raw-{np.dtype(dtype).name}-{len(shape)}-{steps}.mkv"
    with Trajectory(path, mode="w", raw_codec=raw_codec) as traj:
        for i, sample in enumerate(samples):
            traj.add("x", sample, timestamp=i * 100)
    loaded = Trajectory(path).load()["x"]
    assert loaded.dtype == np.dtype(dtype)
    assert loaded.shape == (steps, *shape)
    # NaN != NaN: compare bytes, which is what "exact" means for floats.
    assert loaded.tobytes() == np.stack(samples).tobytes()


def test_scalars_strings_bytes_and_bools(tmp_path: Path) -> None:
    steps = [
        {"reward": 0.5, "done": False, "count": 3, "task": "pick up the red cube",
         "blob": b"\x00\xff\x10", "unicode": "grüße 👋"},
        {"reward": 1.0, "done": True, "count": 4, "task": "", "blob": b"", "unicode": "x"},
    ]
    traj = Trajectory.from_list_of_dicts(steps, tmp_path / "t.mkv")
    data = traj.load()
    assert data["reward"].dtype == np.float64 and data["reward"].tolist() == [0.5, 1.0]
    assert data["done"].dtype == np.bool_ and data["done"].tolist() == [False, True]
    assert data["count"].dtype == np.int64 and data["count"].tolist() == [3, 4]
    assert data["task"].tolist() == ["pick up the red cube", ""]
    assert data["blob"].tolist() == [b"\x00\xff\x10", b""]
    assert data["unicode"].tolist() == ["grüße 👋", "x"]
    assert traj.features["task"].dtype == "str" and traj.features["blob"].dtype == "bytes"


def test_nested_dicts_flatten_with_the_separator(tmp_path: Path) -> None:
    step = {"observation": {"cam": {"state": np.ones(2)}}, "action": np.zeros(3)}
    traj = Trajectory.from_list_of_dicts([step], tmp_path / "t.mkv",
                                         feature_name_separator=".")
    assert sorted(traj.load()) == ["action", "observation.cam.state"]


def test_from_dict_of_lists_matches_from_list_of_dicts(tmp_path: Path) -> None:
    columns = {"obs": {"state": np.arange(12.0).reshape(4, 3)}, "reward": [0.0, 1.0, 2.0, 3.0]}
    data = Trajectory.from_dict_of_lists(columns, tmp_path / "t.mkv", fps=20).load()
    np.testing.assert_array_equal(data["obs/state"], columns["obs"]["state"])
    assert data["reward"].tolist() == columns["reward"]
    with pytest.raises(ValueError, match="different lengths"):
        Trajectory.from_dict_of_lists({"a": [1, 2], "b": [1]}, tmp_path / "u.mkv")


@pytest.mark.parametrize("codec", ["ffv1", "lossless", "libx264rgb", "rawvideo"])
def test_lossless_rgb_codecs_are_bit_exact(tmp_path: Path, codec: str) -> None:
    frames = video_like_frames(12, 48, 64)
    path = tmp_path / f"{codec}.mkv"
    with Trajectory(path, mode="w", video_codec=codec, fps=10) as traj:
        for frame in frames:
            traj.add("image", frame)
    assert Trajectory(path).features["image"].encoding != "libx264"
    np.testing.assert_array_equal(Trajectory(path).load()["image"], frames)


@pytest.mark.parametrize(
    ("codec", "min_psnr"),
    [("auto", 35.0), ("libx264", 35.0), ("libx265", 33.0), ("libsvtav1", 33.0)],
)
def test_lossy_codecs_meet_their_quality(tmp_path: Path, codec: str, min_psnr: float) -> None:
    frames = video_like_frames(20, 96, 128)
    path = tmp_path / f"{codec}.mkv"
    with Trajectory(path, mode="w", video_codec=codec, fps=10) as traj:
        for frame in frames:
            traj.add("image", frame)
    loaded = Trajectory(path).load()["image"]
    assert loaded.shape == frames.shape and loaded.dtype == np.uint8
    assert psnr(loaded, frames) >= min_psnr
    assert path.stat().st_size < frames.nbytes / 20


def test_auto_falls_back_to_rgb_for_odd_sizes(tmp_path: Path) -> None:
    frames = video_like_frames(6, 37, 51)
    traj = Trajectory.from_list_of_dicts([{"image": f} for f in frames], tmp_path / "odd.mkv")
    assert traj.features["image"].encoding == "libx264rgb"
    assert psnr(traj.load()["image"], frames) >= 35.0


def test_explicit_yuv_codec_rejects_odd_sizes(tmp_path: Path) -> None:
    from robodm_engine import CodecError

    with pytest.raises(CodecError, match=r"even image sides.*'image'|'image'.*even image sides"):
        with Trajectory(tmp_path / "odd.mkv", mode="w", video_codec="libx264") as traj:
            traj.add("image", video_like_frames(1, 37, 51)[0], timestamp=0)
    assert not (tmp_path / "odd.mkv").exists()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_grayscale_and_depth_are_lossless(tmp_path: Path, dtype: type) -> None:
    rng = np.random.default_rng(1)
    high = np.iinfo(dtype).max
    images = rng.integers(0, high, (8, 40, 56), endpoint=True).astype(dtype)
    traj = Trajectory.from_list_of_dicts([{"depth": im} for im in images], tmp_path / "d.mkv")
    assert traj.features["depth"].encoding == "ffv1"
    loaded = traj.load()["depth"]
    assert loaded.dtype == dtype
    np.testing.assert_array_equal(loaded, images)


def test_small_two_dimensional_arrays_stay_raw(tmp_path: Path) -> None:
    matrix = np.arange(16, dtype=np.uint8).reshape(4, 4)
    traj = Trajectory.from_list_of_dicts([{"m": matrix}], tmp_path / "m.mkv")
    assert traj.features["m"].encoding == "raw"
    np.testing.assert_array_equal(traj.load()["m"][0], matrix)


def test_stream_tags_are_robodm_compatible(tmp_path: Path) -> None:
    import av

    steps = [{"image": video_like_frames(1, 32, 32)[0], "state": np.zeros(14, np.float32),
              "task": "go"}]
    Trajectory.from_list_of_dicts(steps, tmp_path / "t.mkv")
    with av.open(str(tmp_path / "t.mkv")) as container:
        tags = {s.metadata["FEATURE_NAME"]: s.metadata["FEATURE_TYPE"] for s in container.streams}
        time_bases = {s.time_base for s in container.streams}
    assert tags == {
        "image": "dtype=uint8; shape=(32, 32, 3))",
        "state": "dtype=float32; shape=(14,))",
        "task": "dtype=string; shape=())",
    }
    assert {str(tb) for tb in time_bases} == {"1/1000"}


def test_torch_tensors_are_accepted(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    traj = Trajectory.from_list_of_dicts([{"s": torch.arange(3.0)}], tmp_path / "t.mkv")
    assert traj.load()["s"].tolist() == [[0.0, 1.0, 2.0]]


def test_summary_without_decoding(tmp_path: Path) -> None:
    steps = [{"a": np.zeros(2)} for _ in range(5)]
    traj = Trajectory.from_list_of_dicts(steps, tmp_path / "t.mkv", fps=10)
    summary = traj.summary()
    assert (summary.steps, summary.start_ms, summary.end_ms) == (5, 0, 400)
    assert summary.counts == {"a": 5} and len(traj) == 5


@pytest.mark.parametrize("codec", ["ffv1", "rawvideo"])
def test_same_samples_give_the_same_bytes(tmp_path: Path, codec: str) -> None:
    """No random segment UID or version string: lossless files are reproducible to the byte.

    (libx264 in this FFmpeg build makes slightly different decisions from run to run even
    single-threaded, so lossy video is reproducible in content, not in bytes.)
    """
    steps = [{"image": f, "state": np.float32(i)} for i, f in enumerate(video_like_frames(15))]
    first = Trajectory.from_list_of_dicts(steps, tmp_path / "a.mkv", video_codec=codec)
    second = Trajectory.from_list_of_dicts(steps, tmp_path / "b.mkv", video_codec=codec)
    first.close()
    second.close()
    assert (tmp_path / "a.mkv").read_bytes() == (tmp_path / "b.mkv").read_bytes()
