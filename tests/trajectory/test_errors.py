"""Bad input raises a specific error naming the file and feature; nothing half-written."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from robodm_engine import (
    CodecError,
    FeatureMismatchError,
    Trajectory,
    TrajectoryError,
    TrajectoryFormatError,
)

from .conftest import video_like_frames


def write_sample(path: Path, steps: int = 10) -> None:
    frames = video_like_frames(steps, 32, 32)
    Trajectory.from_list_of_dicts(
        [{"image": f, "state": np.arange(4.0) + i} for i, f in enumerate(frames)], path
    )


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TrajectoryFormatError, match=r"nope\.mkv: no such file"):
        Trajectory(tmp_path / "nope.mkv")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.mkv").touch()
    with pytest.raises(TrajectoryFormatError, match=r"empty\.mkv: file is empty"):
        Trajectory(tmp_path / "empty.mkv")


@pytest.mark.parametrize("content", [b"hello, not a video\n" * 50, bytes(range(256)) * 20])
def test_garbage_file(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "junk.mkv").write_bytes(content)
    with pytest.raises(TrajectoryFormatError, match=r"junk\.mkv: not a"):
        Trajectory(tmp_path / "junk.mkv")


def test_other_container_format(tmp_path: Path) -> None:
    import av

    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264")
        stream.width = stream.height = 32
        for frame in video_like_frames(3, 32, 32):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with pytest.raises(TrajectoryFormatError, match=r"clip\.mp4: not a Matroska file"):
        Trajectory(path)


@pytest.mark.parametrize("keep", [0.97, 0.8, 0.5, 0.2])
def test_truncated_file(tmp_path: Path, keep: float) -> None:
    whole = tmp_path / "whole.mkv"
    write_sample(whole, steps=40)
    cut = tmp_path / "cut.mkv"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(TrajectoryFormatError, match=r"cut\.mkv"):
        Trajectory(cut).load()


def test_shape_change_mid_trajectory(tmp_path: Path) -> None:
    path = tmp_path / "t.mkv"
    with pytest.raises(FeatureMismatchError) as info:
        with Trajectory(path, mode="w", fps=10) as traj:
            traj.add("observation/state", np.zeros(7, np.float32))
            traj.add("observation/state", np.zeros(8, np.float32))
    message = str(info.value)
    assert "t.mkv" in message and "'observation/state'" in message and "shape=(8,)" in message
    assert info.value.feature == "observation/state"
    assert not path.exists()


def test_dtype_change_mid_trajectory(tmp_path: Path) -> None:
    with pytest.raises(FeatureMismatchError, match=r"dtype=float64.*started as dtype=float32"):
        with Trajectory(tmp_path / "t.mkv", mode="w", fps=10) as traj:
            traj.add("a", np.float32(1))
            traj.add("a", np.float64(1))


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"video_codec": "h266"}, "unknown video_codec 'h266'"),
    ({"raw_codec": "brotli"}, "unknown raw_codec 'brotli'"),
])
def test_unknown_codec_names(tmp_path: Path, kwargs: dict[str, str], pattern: str) -> None:
    with pytest.raises(CodecError, match=pattern):
        Trajectory(tmp_path / "t.mkv", mode="w", **kwargs)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="time_unit"):
        Trajectory(tmp_path / "t.mkv", mode="w", time_unit="minutes")
    with pytest.raises(ValueError, match="mode"):
        Trajectory(tmp_path / "t.mkv", mode="a")  # type: ignore[arg-type]
    with pytest.raises(TrajectoryError, match=r"no fixed shape|ragged"):
        with Trajectory(tmp_path / "t.mkv", mode="w") as traj:
            traj.add("ragged", [[1, 2], [3]], timestamp=0)


def test_nothing_added_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(TrajectoryError, match="no samples"):
        with Trajectory(tmp_path / "t.mkv", mode="w"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_exception_inside_with_leaves_no_file_and_no_litter(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with Trajectory(tmp_path / "t.mkv", mode="w", fps=10) as traj:
            traj.add("x", 1)
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_existing_file_survives_a_failed_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "t.mkv"
    write_sample(path)
    before = path.read_bytes()
    with pytest.raises(FeatureMismatchError):
        with Trajectory(path, mode="w", fps=10) as traj:
            traj.add("x", np.zeros(2))
            traj.add("x", np.zeros(3))
    assert path.read_bytes() == before


def test_killed_writer_never_leaves_a_file_at_the_final_path(tmp_path: Path) -> None:
    path = tmp_path / "t.mkv"
    script = textwrap.dedent(f"""
        import sys, numpy as np
        from robodm_engine import Trajectory
        traj = Trajectory({str(path)!r}, mode="w", fps=10)
        for i in range(10**9):
            traj.add("x", np.zeros(1000))
            if i == 200:
                print("writing", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not path.exists()


def test_read_and_write_modes_are_separate(tmp_path: Path) -> None:
    path = tmp_path / "t.mkv"
    write_sample(path)
    with pytest.raises(TrajectoryError, match="opened for reading"):
        Trajectory(path).add("x", 1)
    writer = Trajectory(tmp_path / "w.mkv", mode="w", fps=10)
    writer.add("x", 1)
    with pytest.raises(TrajectoryError, match="open for writing"):
        writer.load()
    writer.close()
    with pytest.raises(TrajectoryError, match="closed"):
        writer.add("x", 2)


def test_file_objects_can_be_read(tmp_path: Path) -> None:
    path = tmp_path / "t.mkv"
    write_sample(path)
    with path.open("rb") as handle:
        data = Trajectory(handle).load()
    assert data["state"].shape == (10, 4)
