"""Every example of the seed API document (``ingestion_api.md``), run as written.

Sizes are shrunk (CIFAR-like random tensors instead of a torchvision download, tens of items
instead of thousands) and the pieces the seed leaves to the reader (``MyExistingDataset``,
``_scan_philips_data``, ``load_episode``, ...) are filled in with small synthetic data; the
calls into ``robodm_engine.ingestion`` are the seed's own, argument for argument.
"""

from __future__ import annotations

import glob
import itertools
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from robodm_engine.dataset import VLADataset
from robodm_engine.ingestion import (
    CallableAdapter,
    DataIngestionInterface,
    FileListAdapter,
    IngestionConfig,
    IteratorAdapter,
    PyTorchDatasetAdapter,
    create_vla_dataset_from_callable,
    create_vla_dataset_from_file_list,
    create_vla_dataset_from_iterator,
    create_vla_dataset_from_pytorch_dataset,
    create_vla_dataset_from_source,
)

from .conftest import CifarLike, load, manifest_json, mkv_names

logger = logging.getLogger(__name__)


class MyExistingDataset(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """A user's map-style dataset returning dicts of tensors."""

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {
            "observation": torch.full((3, 16, 16), float(index)),
            "action": torch.arange(4, dtype=torch.float32) + index,
        }


def test_quick_start_pytorch_dataset(out_dir: str) -> None:
    pytorch_dataset = MyExistingDataset()
    vla_dataset = create_vla_dataset_from_source(
        data_source=pytorch_dataset,
        output_directory=out_dir,
        num_workers=4,
    )
    assert isinstance(vla_dataset, VLADataset)
    rows = 0
    for batch in vla_dataset.iter_batches(batch_size=32):
        rows += len(batch["action"])
        assert batch["observation"].shape[1:] == (3, 16, 16)
    assert rows == 6
    assert mkv_names(out_dir) == [f"trajectory_{i:06d}.mkv" for i in range(6)]


@dataclass
class SensorItem:
    sensor_readings: np.ndarray
    camera_frame: np.ndarray
    timestamp: float


def transform_my_data(item: SensorItem) -> dict[str, Any]:
    """Transform your data format to robodm format."""
    return {
        "sensor_data": item.sensor_readings,
        "image": item.camera_frame,
        "metadata": {"timestamp": item.timestamp},
    }


def test_custom_data_with_transform_function(out_dir: str) -> None:
    rng = np.random.default_rng(0)
    my_data_list = [
        SensorItem(rng.normal(size=8).astype(np.float32),
                   rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), float(i))
        for i in range(8)
    ]
    vla_dataset = create_vla_dataset_from_source(
        data_source=my_data_list,  # List, iterator, etc.
        transform_fn=transform_my_data,
        output_directory=out_dir,
        num_workers=8,  # more workers than the 2 CPUs here: tasks queue, nothing hangs
    )
    assert vla_dataset.count() == 8
    first = load(Path(out_dir, "trajectory_000003.mkv"))
    np.testing.assert_array_equal(first["metadata/timestamp"], [3.0])
    np.testing.assert_array_equal(first["sensor_data"][0], my_data_list[3].sensor_readings)


class MyCustomIngester(DataIngestionInterface):
    def get_data_items(self) -> list[int]:
        # Return list of items to process
        return list(range(3))

    def transform_item(self, item: int) -> dict[str, Any]:
        # Transform item to robodm format
        return {"feature1": np.float32(item), "feature2": np.arange(3) * item}


def test_custom_ingester_full_control(
    ray_local: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no output_directory: a new folder in the working directory
    ingester = MyCustomIngester()
    vla_dataset = create_vla_dataset_from_source(ingester)
    (made,) = tmp_path.glob("robodm_dataset_*")
    assert mkv_names(made) == [f"trajectory_{i:06d}.mkv" for i in range(3)]
    assert vla_dataset.count() == 3


def test_ingestion_config_fields() -> None:
    config = IngestionConfig(
        output_directory="./large_dataset",
        num_workers=16,
        raw_codec="rawvideo_pyarrow",  # Efficient compression
        max_items_per_trajectory=10000,  # Larger trajectories
    )
    assert config.trajectory_prefix == "trajectory"
    assert config.batch_size == 1
    assert (config.time_unit, config.video_codec) == ("ms", "auto")
    assert config.shuffle_items is False


def test_pytorch_dataset_adapter(out_dir: str) -> None:
    pytorch_dataset = CifarLike(10)

    def my_transform_function(sample: tuple[torch.Tensor, int]) -> dict[str, Any]:
        image, label = sample
        return {"image": (image * 255).byte().permute(1, 2, 0).numpy(), "label": label}

    adapter = PyTorchDatasetAdapter(
        dataset=pytorch_dataset,
        transform_fn=my_transform_function,  # Optional
        group_size=4,  # Items per trajectory
    )
    paths = create_vla_dataset_from_source(adapter, output_directory=out_dir,
                                           return_vla_dataset=False, num_workers=2)
    assert [len(load(p)["label"]) for p in paths] == [4, 4, 2]
    np.testing.assert_array_equal(
        load(paths[2])["label"], [pytorch_dataset[8][1], pytorch_dataset[9][1]]
    )


def generate_data_item(i: int) -> dict[str, Any]:
    return {"value": np.float32(i), "square": np.float32(i * i)}


def transform_function(item: dict[str, Any]) -> dict[str, Any]:
    return {"value": item["value"], "root": np.sqrt(item["square"])}


def test_iterator_adapter(out_dir: str) -> None:
    def my_data_generator() -> Iterator[dict[str, Any]]:
        for i in range(10000):
            yield generate_data_item(i)

    adapter = IteratorAdapter(
        iterator_factory=my_data_generator,
        transform_fn=transform_function,
        max_items=40,  # Optional limit
        group_size=10,
    )
    paths = create_vla_dataset_from_source(adapter, output_directory=out_dir,
                                           return_vla_dataset=False, num_workers=2)
    values = np.concatenate([load(p)["root"] for p in paths])
    np.testing.assert_array_equal(values, np.arange(40, dtype=np.float32))


def test_file_list_adapter(out_dir: str, tmp_path: Path) -> None:
    file_paths = []
    for i in range(6):
        path = tmp_path / f"data{i}.json"
        path.write_text(json.dumps({"pose": [i, i + 1, i + 2], "gripper": i % 2}))
        file_paths.append(str(path))

    def load_and_transform_file(path: str) -> dict[str, Any]:
        with open(path) as f:
            record = json.load(f)
        return {"pose": np.asarray(record["pose"], np.float32), "gripper": record["gripper"]}

    adapter = FileListAdapter(
        file_paths=file_paths,
        transform_fn=load_and_transform_file,
        group_size=3,  # Files per trajectory
    )
    paths = create_vla_dataset_from_source(adapter, output_directory=out_dir,
                                           return_vla_dataset=False, num_workers=2)
    assert len(paths) == 2
    np.testing.assert_array_equal(load(paths[1])["gripper"], [1, 0, 1])


def test_callable_adapter(out_dir: str) -> None:
    def create_item(i: int) -> dict[str, Any]:
        return {"reading": np.float32(i) / 10}

    def generate_data() -> list[dict[str, Any]]:
        return [create_item(i) for i in range(20)]

    def process_item(item: dict[str, Any]) -> dict[str, Any]:
        return {"reading": item["reading"], "alarm": bool(item["reading"] > 1.5)}

    adapter = CallableAdapter(
        data_generator=generate_data,
        transform_fn=process_item,
        group_size=10,
    )
    paths = create_vla_dataset_from_source(adapter, output_directory=out_dir,
                                           return_vla_dataset=False, num_workers=2)
    assert load(paths[1])["alarm"].tolist() == [False] * 6 + [True] * 4


def test_main_factory_function_signature(out_dir: str) -> None:
    paths = create_vla_dataset_from_source(
        [{"x": np.float32(i)} for i in range(4)],  # Any supported data source
        output_directory=out_dir,  # Where to save trajectories
        transform_fn=None,  # Optional transformation
        group_size=1,  # Items per trajectory
        num_workers=4,  # Parallel workers
        return_vla_dataset=False,  # Return VLADataset vs file paths
    )
    assert [Path(p).name for p in paths] == [f"trajectory_{i:06d}.mkv" for i in range(4)]


def test_specialized_factory_functions(out_dir: str, tmp_path: Path) -> None:
    dataset = CifarLike(9)
    vla = create_vla_dataset_from_pytorch_dataset(
        dataset, trajectories_per_dataset=3, output_directory=out_dir + "-torch",
        num_workers=2,
        transform_fn=lambda s: {"image": s[0].numpy(), "label": s[1]},
    )
    assert len(vla.trajectory_paths) == 3

    file_paths = []
    for i in range(5):
        np.save(tmp_path / f"f{i}.npy", np.full(3, i, np.float32))
        file_paths.append(str(tmp_path / f"f{i}.npy"))
    vla = create_vla_dataset_from_file_list(
        file_paths, lambda p: {"v": np.load(p)}, files_per_trajectory=2,
        output_directory=out_dir + "-files", num_workers=2,
    )
    assert len(vla.trajectory_paths) == 3

    def iterator_factory() -> Iterator[dict[str, Any]]:
        for i in itertools.count():
            yield {"i": i}

    vla = create_vla_dataset_from_iterator(
        iterator_factory, max_items=25, items_per_trajectory=10,
        output_directory=out_dir + "-iter", num_workers=2,
    )
    assert vla.count() == 25 and len(vla.trajectory_paths) == 3

    vla = create_vla_dataset_from_callable(
        lambda: [{"i": i} for i in range(7)], items_per_trajectory=100,
        output_directory=out_dir + "-call", num_workers=2,
    )
    assert vla.count() == 7 and len(vla.trajectory_paths) == 1


def test_ray_configuration(out_dir: str) -> None:
    # Ray is already running in this session, so these only apply when the engine starts
    # it (see test_config_naming for how they are used); the job must still run with them.
    ray_config = {
        "num_cpus": 16,
        "object_store_memory": 4_000_000_000,  # 4GB
    }
    my_dataset = CifarLike(4)
    vla_dataset = create_vla_dataset_from_source(
        data_source=my_dataset,
        ray_init_kwargs=ray_config,
        num_workers=8,
        output_directory=out_dir,
    )
    assert vla_dataset.count() == 4
    row = vla_dataset.take(1)[0]
    assert row["data"].shape == (3, 32, 32) and 0 <= row["target"] < 10


class PhilipsIngester(DataIngestionInterface):
    def __init__(self, data_directory: str, sensor_filter: list[str]) -> None:
        self.data_directory = data_directory
        self.sensor_filter = sensor_filter

    def get_data_items(self) -> list[dict[str, Any]]:
        # Discover all data files/segments
        return self._scan_philips_data()

    def transform_item(self, segment_info: dict[str, Any]) -> dict[str, Any]:
        # Load and transform physiological signals
        return {
            "ecg_lead_ii": self._load_signal(segment_info, "II"),
            "ecg_lead_avl": self._load_signal(segment_info, "aVL"),
            "visualization": self._create_plot(segment_info),
        }

    def _scan_philips_data(self) -> list[dict[str, Any]]:
        files = sorted(Path(self.data_directory).glob("*.npz"))
        return [{"file": str(f), "segment": s} for f in files for s in range(2)]

    def _load_signal(self, segment_info: dict[str, Any], lead: str) -> np.ndarray:
        with np.load(segment_info["file"]) as data:
            signal = data[lead]
        return signal[segment_info["segment"] * 250 : (segment_info["segment"] + 1) * 250]

    def _create_plot(self, segment_info: dict[str, Any]) -> np.ndarray:
        trace = self._load_signal(segment_info, "II")
        plot = np.full((32, 64, 3), 255, np.uint8)
        rows = np.clip((16 - trace[::4][:64] * 10).astype(int), 0, 31)
        plot[rows, np.arange(len(rows))] = 0
        return plot


def test_physiological_data_use_case(
    ray_local: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_directory = tmp_path / "philips"
    data_directory.mkdir()
    for patient in range(2):
        t = np.linspace(0, 4 * np.pi, 500, dtype=np.float32)
        np.savez(data_directory / f"patient{patient}.npz", II=np.sin(t + patient),
                 aVL=np.cos(t), V=np.zeros_like(t))
    monkeypatch.chdir(tmp_path)
    ingester = PhilipsIngester(str(data_directory), ["II", "aVL", "V"])
    vla_dataset = create_vla_dataset_from_source(ingester)
    assert vla_dataset.count() == 4
    (made,) = tmp_path.glob("robodm_dataset_*")
    features = manifest_json(made)["features"]
    assert features["ecg_lead_ii"]["shape"] == [250]
    assert features["visualization"]["encoding"] != "raw"  # an RGB plot is stored as video


def apply_augmentation(image: torch.Tensor) -> np.ndarray:
    return image.flip(-1).numpy().transpose(1, 2, 0)


def test_computer_vision_use_case(out_dir: str) -> None:
    vision_dataset = CifarLike(24)  # stands in for torchvision.datasets.CIFAR10(...)

    def vision_transform(data_tuple: tuple[torch.Tensor, int]) -> dict[str, Any]:
        image, label = data_tuple
        return {
            "image": image.numpy().transpose(1, 2, 0),  # CHW -> HWC
            "label": label,
            "augmented_image": apply_augmentation(image),
        }

    vla_dataset = create_vla_dataset_from_source(
        vision_dataset,
        transform_fn=vision_transform,
        group_size=8,  # 8 images per trajectory (1000 in the seed)
        output_directory=out_dir,
        num_workers=2,
    )
    assert len(vla_dataset.trajectory_paths) == 3
    data = load(Path(out_dir, "trajectory_000001.mkv"))
    assert data["image"].shape == (8, 32, 32, 3) and data["image"].dtype == np.float32
    np.testing.assert_array_equal(data["label"], [vision_dataset[i][1] for i in range(8, 16)])
    np.testing.assert_array_equal(data["augmented_image"][0], apply_augmentation(
        vision_dataset[8][0]))


def test_time_series_use_case(
    ray_local: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("timeseries").mkdir()
    for f in range(2):
        pd.DataFrame(
            {"a": np.arange(1000, dtype=np.float64) + f, "b": np.zeros(1000)}
        ).to_csv(f"timeseries/series{f}.csv", index=False)

    def load_timeseries_files() -> Iterator[dict[str, Any]]:
        """Load time series data from files."""
        for filepath in sorted(glob.glob("timeseries/*.csv")):
            df = pd.read_csv(filepath)
            for i in range(0, len(df), 100):  # 100-sample windows
                yield {
                    "sequence": df.iloc[i : i + 100].values,
                    "metadata": {"file": filepath, "window": i // 100},
                }

    vla_dataset = create_vla_dataset_from_source(
        load_timeseries_files,
        group_size=5,  # 5 windows per trajectory (50 in the seed)
    )
    assert len(vla_dataset.trajectory_paths) == 4
    (made,) = tmp_path.glob("robodm_dataset_*")
    data = load(made / "trajectory_000002.mkv")
    assert data["sequence"].shape == (5, 100, 2)
    assert data["metadata/file"].tolist() == ["timeseries/series1.csv"] * 5
    np.testing.assert_array_equal(data["metadata/window"], range(5))


@dataclass
class Episode:
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    camera_frames: np.ndarray
    gripper_positions: np.ndarray


def load_episode(episode_path: str) -> Episode:
    with np.load(episode_path) as data:
        return Episode(**{key: data[key] for key in data.files})


class RobotDataIngester(DataIngestionInterface):
    # The seed's example elides get_data_items, which the interface requires.
    def __init__(self, episode_dir: str = "episodes") -> None:
        # Absolute: transform_item runs in Ray workers, whose working directory differs.
        self.episode_dir = os.path.abspath(episode_dir)

    def get_data_items(self) -> list[str]:
        return sorted(glob.glob(os.path.join(self.episode_dir, "*.npz")))

    def transform_item(self, episode_path: str) -> dict[str, Any]:
        episode_data = load_episode(episode_path)
        return {
            "observation": episode_data.observations,
            "action": episode_data.actions,
            "reward": episode_data.rewards,
            "camera_rgb": episode_data.camera_frames,
            "gripper_pos": episode_data.gripper_positions,
        }


def test_robotics_use_case(
    ray_local: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("episodes").mkdir()
    for e in range(3):
        np.savez(
            f"episodes/ep{e}.npz", observations=np.zeros((5, 14), np.float32),
            actions=np.ones((5, 7), np.float32), rewards=np.arange(5, dtype=np.float32),
            camera_frames=np.full((5, 32, 32, 3), 40 * e, np.uint8),
            gripper_positions=np.zeros(5, np.float32),
        )
    robot_ingester = RobotDataIngester()
    vla_dataset = create_vla_dataset_from_source(robot_ingester)
    assert vla_dataset.count() == 3
    row = vla_dataset.take(1)[0]
    assert row["camera_rgb"].shape == (5, 32, 32, 3) and row["action"].shape == (5, 7)


def test_parallel_processing_and_streaming(out_dir: str) -> None:
    optimal_workers = min(os.cpu_count() or 1, 16)  # Don't exceed CPU count
    large_dataset = CifarLike(12)
    vla_dataset = create_vla_dataset_from_source(
        data_source=large_dataset,
        num_workers=optimal_workers,
        group_size=6,  # Balance between memory and I/O
        output_directory=out_dir,
    )
    assert len(vla_dataset.trajectory_paths) == 2

    def load_data_in_chunks() -> Iterator[list[dict[str, Any]]]:
        for c in itertools.count():
            yield [{"x": np.float32(c * 10 + i)} for i in range(10)]

    def streaming_data_generator() -> Iterator[dict[str, Any]]:
        """Generator for datasets too large for memory."""
        for chunk in load_data_in_chunks():
            yield from chunk

    vla_dataset = create_vla_dataset_from_source(
        streaming_data_generator,
        max_items=30,  # Process subset (1_000_000 in the seed)
        num_workers=8,
        group_size=10,
        output_directory=out_dir + "-stream",
    )
    assert vla_dataset.count() == 30


def test_integration_with_existing_vla_api(out_dir: str) -> None:
    my_data_source = [{"state": np.full(3, i, np.float32)} for i in range(20)]
    vla_dataset = create_vla_dataset_from_source(
        my_data_source, group_size=2, output_directory=out_dir, num_workers=2
    )
    train_dataset, val_dataset = vla_dataset.split(0.8, 0.2)
    assert len(train_dataset.trajectory_paths) + len(val_dataset.trajectory_paths) == 10
    seen = 0
    for batch in train_dataset.iter_batches(batch_size=32):
        seen += len(batch["state"])
    assert seen == 2 * len(train_dataset.trajectory_paths)
    data = val_dataset.load(desired_frequency=10.0)
    assert data
    stats = vla_dataset.get_stats()
    assert stats


class MyDataLoader:
    def __init__(self) -> None:
        self.data = [np.float32(i) for i in range(5)]

    def load_data(self) -> Iterator[np.float32]:
        yield from self.data

    def process_item(self, item: np.float32) -> np.float32:
        return item * 2

    def __iter__(self) -> Iterator[np.float32]:
        for item in self.load_data():
            yield self.process_item(item)


def test_migration_guide(out_dir: str) -> None:
    dataset = MyExistingDataset()
    vla_dataset = create_vla_dataset_from_source(dataset, output_directory=out_dir,
                                                 num_workers=2)
    assert sum(len(b["action"]) for b in vla_dataset.iter_batches(batch_size=32)) == 6

    def my_data_generator() -> list[np.float32]:
        loader = MyDataLoader()
        return list(loader)

    vla_dataset = create_vla_dataset_from_source(
        my_data_generator,
        transform_fn=lambda item: {"data": item},
        output_directory=out_dir + "-loader",
        num_workers=2,
    )
    assert vla_dataset.count() == 5


class MyIngester(DataIngestionInterface):
    def get_data_items(self) -> list[dict[str, Any]]:
        return [{"s1": i, "s2": -i} for i in range(6)] + [{"s1": 9}, {"broken": True}]

    def validate_transformed_data(self, data: dict[str, Any]) -> bool:
        """Custom validation logic."""
        required_keys = ["sensor1", "sensor2"]
        return all(key in data for key in required_keys)

    def transform_item(self, item: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._transform_logic(item)
        except Exception as e:
            logger.warning(f"Failed to transform {item}: {e}")
            return {}  # Return empty dict to skip

    def _transform_logic(self, item: dict[str, Any]) -> dict[str, Any]:
        if item.get("broken"):
            raise ValueError("unreadable")
        out = {"sensor1": np.float32(item["s1"])}
        if "s2" in item:
            out["sensor2"] = np.float32(item["s2"])
        return out


def test_error_handling(out_dir: str) -> None:
    paths = create_vla_dataset_from_source(
        MyIngester(), output_directory=out_dir, group_size=4, num_workers=2,
        max_failed_items=1, return_vla_dataset=False,
    )
    manifest = manifest_json(out_dir)
    assert manifest["counts"]["itemsSkipped"] == 1  # the broken item, skipped on purpose
    assert [(f["item_id"], f["stage"]) for f in manifest["failures"]] == [("6", "validate")]
    assert [len(load(p)["sensor1"]) for p in paths] == [4, 2]


def test_performance_tuning(out_dir: str, capsys: pytest.CaptureFixture[str]) -> None:
    def my_transform(item: dict[str, Any]) -> dict[str, Any]:
        return {"x": np.float32(item["x"]) * 2}

    def timed_transform(item: dict[str, Any]) -> dict[str, Any]:
        start = time.time()
        result = my_transform(item)
        print(f"Transform took {time.time() - start:.3f}s")
        return result

    vla_dataset = create_vla_dataset_from_source(
        data_source=[{"x": i} for i in range(4)],
        transform_fn=timed_transform,
        output_directory=out_dir,
        num_workers=2,
    )
    assert vla_dataset.count() == 4
