"""The ``hdf5`` source: robomimic, ALOHA and plain layouts, local and on S3."""

from __future__ import annotations

import io

import h5py
import numpy as np
import pytest
from PIL import Image

from robodm_engine.sources import TIMESTAMP_KEY, HDF5Source, SourceFormatError

from .conftest import SourceRoot


def h5_bytes(build: object) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        build(f)  # type: ignore[operator]
    return buffer.getvalue()


def robomimic(f: h5py.File) -> None:
    for demo, length in (("demo_10", 3), ("demo_2", 4)):
        group = f.create_group(f"data/{demo}")
        group["obs/agentview_image"] = np.zeros((length, 16, 16, 3), np.uint8)
        group["obs/robot0_eef_pos"] = np.arange(length * 3, dtype=np.float64).reshape(length, 3)
        group["actions"] = np.ones((length, 7), np.float32)
        group["rewards"] = np.zeros(length)
        group["dones"] = np.zeros(length, np.int64)


def aloha(compress: bool) -> object:
    def build(f: h5py.File) -> None:
        f.attrs["sim"] = False
        f["observations/qpos"] = np.arange(28, dtype=np.float64).reshape(2, 14)
        f["observations/qvel"] = np.zeros((2, 14))
        frames = np.stack([np.full((24, 32, 3), v, np.uint8) for v in (10, 200)])
        if compress:
            f.attrs["compress"] = True
            encoded = []
            for frame in frames:
                buffer = io.BytesIO()
                Image.fromarray(frame).save(buffer, format="JPEG", quality=95)
                encoded.append(np.frombuffer(buffer.getvalue(), np.uint8))
            width = max(len(e) for e in encoded)
            padded = np.zeros((2, width), np.uint8)
            for i, e in enumerate(encoded):
                padded[i, : len(e)] = e
            f["observations/images/cam_high"] = padded
        else:
            f["observations/images/cam_high"] = frames
        f["action"] = np.ones((2, 14))
    return build


def test_robomimic_demos_are_episodes_in_numeric_order(source_root: SourceRoot) -> None:
    source_root.put("lift/low_dim.hdf5", h5_bytes(robomimic))
    source = HDF5Source(source_root.uri)
    items = source.get_data_items()
    assert [item.group for item in items] == ["data/demo_2", "data/demo_10"]
    steps = source.transform_item(items[0])
    assert len(steps) == 4
    assert sorted(steps[0]) == sorted([
        "observation/agentview_image", "observation/robot0_eef_pos", "action", "reward",
        "done", TIMESTAMP_KEY,
    ])
    assert [s[TIMESTAMP_KEY] for s in steps] == [0.0, 50.0, 100.0, 150.0]  # robomimic: 20 Hz
    assert source.get_item_id(items[1], 1).endswith("low_dim.hdf5#data/demo_10")


@pytest.mark.parametrize("compress", [False, True])
def test_aloha_episodes(local_root: SourceRoot, compress: bool) -> None:
    local_root.put("episode_0.hdf5", h5_bytes(aloha(compress)))
    source = HDF5Source(local_root.uri)
    steps = source.transform_item(source.get_data_items()[0])
    assert [s[TIMESTAMP_KEY] for s in steps] == [0.0, 20.0]  # ALOHA: 50 Hz
    assert steps[1]["observation/qpos"].tolist() == list(range(14, 28))
    image = steps[1]["observation/images/cam_high"]
    assert image.shape == (24, 32, 3) and abs(int(image.mean()) - 200) <= 2


def test_plain_layout_keeps_datasets_of_the_episode_length(local_root: SourceRoot) -> None:
    def build(f: h5py.File) -> None:
        f["joints/pos"] = np.zeros((5, 6))
        f["force"] = np.ones(5)
        f["calibration"] = np.eye(3)  # 3 rows: metadata, not a per-step feature

    local_root.put("run.h5", h5_bytes(build))
    source = HDF5Source(local_root.uri, fps=100)
    steps = source.transform_item(source.get_data_items()[0])
    assert sorted(steps[0]) == ["force", "joints/pos", TIMESTAMP_KEY]
    assert steps[-1][TIMESTAMP_KEY] == 40.0


def test_unreadable_and_missing_files(local_root: SourceRoot) -> None:
    with pytest.raises(SourceFormatError, match="no HDF5 files"):
        HDF5Source(local_root.uri).get_data_items()
    local_root.put("broken.hdf5", b"definitely not hdf5")
    with pytest.raises(SourceFormatError, match=r"broken\.hdf5: not a readable HDF5 file"):
        HDF5Source(local_root.uri).get_data_items()
    with pytest.raises(ValueError, match="layout"):
        HDF5Source(local_root.uri, layout="rlds")  # type: ignore[arg-type]
