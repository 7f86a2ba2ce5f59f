"""The ``files`` source: every supported file kind becomes the right episode."""

from __future__ import annotations

import io
import json
import pickle

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from robodm_engine.sources import TIMESTAMP_KEY, FileSource, SourceFormatError

from .conftest import SourceRoot


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_npz_episodes_with_and_without_timestamps(source_root: SourceRoot) -> None:
    state = np.arange(30, dtype=np.float32).reshape(10, 3)
    source_root.put("a/ep0.npz", npz_bytes(**{"observation/state": state,
                                             "timestamp": np.arange(10) * 50}))
    source_root.put("b/ep1.npz", npz_bytes(action=np.ones((4, 2))))
    source = FileSource(source_root.uri, include=["*.npz"], fps=20)
    items = source.get_data_items()
    assert [item.keys for item in items] == [("a/ep0.npz",), ("b/ep1.npz",)]
    first, second = (source.transform_item(item) for item in items)
    assert len(first) == 10
    np.testing.assert_array_equal(np.stack([s["observation/state"] for s in first]), state)
    assert [s[TIMESTAMP_KEY] for s in first] == list(range(0, 500, 50))
    assert [s[TIMESTAMP_KEY] for s in second] == [0.0, 50.0, 100.0, 150.0]
    assert source.get_item_id(items[0], 0).endswith("a/ep0.npz")


def test_npz_with_mismatched_lengths_names_the_file(local_root: SourceRoot) -> None:
    local_root.put("bad.npz", npz_bytes(a=np.zeros(5), b=np.zeros(6)))
    source = FileSource(local_root.uri)
    with pytest.raises(SourceFormatError, match=r"bad\.npz.*different lengths.*'a': 5"):
        source.transform_item(source.get_data_items()[0])


def test_npz_with_objects_is_refused_without_unpickling(local_root: SourceRoot) -> None:
    local_root.put("obj.npz", npz_bytes(a=np.array([{"x": 1}], dtype=object)))
    source = FileSource(local_root.uri)
    with pytest.raises(SourceFormatError, match=r"obj\.npz: cannot read without pickle"):
        source.transform_item(source.get_data_items()[0])


def test_json_layouts(local_root: SourceRoot) -> None:
    steps = [{"state": [1.0, 2.0], "task": "go", "timestamp": 5},
             {"state": [3.0, 4.0], "task": "go", "timestamp": 9}]
    local_root.put("list.json", json.dumps(steps).encode())
    local_root.put("wrapped.json", json.dumps({"steps": steps}).encode())
    local_root.put("columns.json", json.dumps({"state": [[1, 2], [3, 4]]}).encode())
    local_root.put("lines.jsonl", "\n".join(json.dumps(s) for s in steps).encode())
    source = FileSource(local_root.uri, fps=10)
    episodes = {item.keys[0]: source.transform_item(item) for item in source.get_data_items()}
    for key in ("list.json", "wrapped.json", "lines.jsonl"):
        assert [s[TIMESTAMP_KEY] for s in episodes[key]] == [5, 9]
        assert episodes[key][1]["state"].tolist() == [3.0, 4.0]
        assert episodes[key][0]["task"] == "go"
    assert [s["state"].tolist() for s in episodes["columns.json"]] == [[1, 2], [3, 4]]
    local_root.put("broken.json", b"{not json")
    broken = next(i for i in source.get_data_items() if i.keys[0] == "broken.json")
    with pytest.raises(SourceFormatError, match=r"broken\.json: invalid JSON"):
        source.transform_item(broken)


def test_csv_with_assembled_columns(source_root: SourceRoot) -> None:
    csv = "timestamp,q0,q1,gripper\n0,0.1,0.2,1\n100,0.3,0.4,0\n200,0.5,0.6,1\n"
    source_root.put("run.csv", csv.encode())
    source = FileSource(source_root.uri, columns={"observation/state": ["q0", "q1"]})
    steps = source.transform_item(source.get_data_items()[0])
    assert [s[TIMESTAMP_KEY] for s in steps] == [0, 100, 200]
    assert steps[2]["observation/state"].tolist() == [0.5, 0.6]
    assert [s["gripper"] for s in steps] == [1, 0, 1]
    assert "q0" not in steps[0]
    missing = FileSource(source_root.uri, columns={"x": ["nope"]})
    with pytest.raises(SourceFormatError, match=r"no column\(s\) \['nope'\]"):
        missing.transform_item(missing.get_data_items()[0])


def test_parquet_with_list_columns(local_root: SourceRoot) -> None:
    table = pa.table({"action": [[1.0, 2.0], [3.0, 4.0]], "reward": [0.0, 1.0],
                      "task": ["a", "b"]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    local_root.put("ep.parquet", buffer.getvalue())
    source = FileSource(local_root.uri, fps=5)
    steps = source.transform_item(source.get_data_items()[0])
    assert steps[1]["action"].tolist() == [3.0, 4.0]
    assert [s["task"] for s in steps] == ["a", "b"]
    assert [s[TIMESTAMP_KEY] for s in steps] == [0.0, 200.0]


def test_video_frames_keep_the_video_timestamps(source_root: SourceRoot) -> None:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 40, np.uint8),
                                               format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    source_root.put("clips/cam.mp4", buffer.getvalue())
    source = FileSource(source_root.uri, image_key="observation/images/top")
    steps = source.transform_item(source.get_data_items()[0])
    assert len(steps) == 6
    assert [s[TIMESTAMP_KEY] for s in steps] == pytest.approx([0, 40, 80, 120, 160, 200])
    assert steps[3]["observation/images/top"].shape == (32, 32, 3)
    assert abs(int(steps[3]["observation/images/top"].mean()) - 120) <= 3


def test_image_folders_are_episodes_in_name_order(local_root: SourceRoot) -> None:
    for folder in ("ep_b", "ep_a"):
        for i in (2, 0, 1):
            buffer = io.BytesIO()
            Image.fromarray(np.full((8, 10, 3), i * 50, np.uint8)).save(buffer, format="PNG")
            local_root.put(f"{folder}/frame_{i:03d}.png", buffer.getvalue())
    source = FileSource(local_root.uri, include=["*.png"], fps=2)
    items = source.get_data_items()
    assert [item.name for item in items] == ["ep_a/", "ep_b/"]
    steps = source.transform_item(items[0])
    assert [int(s["observation/image"][0, 0, 0]) for s in steps] == [0, 50, 100]
    assert [s[TIMESTAMP_KEY] for s in steps] == [0.0, 500.0, 1000.0]


def test_include_globs_and_empty_sources(local_root: SourceRoot) -> None:
    local_root.put("keep/x.npz", npz_bytes(a=np.zeros(2)))
    local_root.put("skip/y.npz", npz_bytes(a=np.zeros(2)))
    local_root.put("notes.txt", b"unrelated")
    assert [i.keys for i in FileSource(local_root.uri, include=["keep/*"]).get_data_items()] == [
        ("keep/x.npz",)
    ]
    with pytest.raises(SourceFormatError, match=r"no files under .* match \['\*\.csv'\]"):
        FileSource(local_root.uri, include=["*.csv"]).get_data_items()


def test_sources_pickle_without_their_store(source_root: SourceRoot) -> None:
    source_root.put("ep.npz", npz_bytes(a=np.arange(3)))
    source = FileSource(source_root.uri)
    items = source.get_data_items()  # opens the store (and, for S3, a client)
    clone = pickle.loads(pickle.dumps(source))
    assert clone._store is None
    assert [s["a"] for s in clone.transform_item(items[0])] == [0, 1, 2]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="fps must be > 0"):
        FileSource("/tmp", fps=0)
    with pytest.raises(ValueError, match="time_unit"):
        FileSource("/tmp", time_unit="h")
