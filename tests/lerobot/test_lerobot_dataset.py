"""Contract tests for _LeRobotDatasetAdapter against real lerobot datasets on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("lerobot")

import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot_testdata import (
    ACTION_DIM,
    FPS,
    IMAGE_SIZE,
    STATE_DIM,
    DatasetFactory,
    LocalDataset,
    frame_value,
    task_of,
)

from robodm_engine.lerobot import FormatConverter, Observation
from robodm_engine.lerobot.dataset import _LeRobotDatasetAdapter, _ObservationDataset

DELTAS = {"action": [0.0, 0.1, 0.2], "observation.images.top": [-0.1, 0.0]}


def open_adapter(location: LocalDataset, **options: object) -> _LeRobotDatasetAdapter:
    return _LeRobotDatasetAdapter(location.repo_id, root=location.root, **options)  # type: ignore[arg-type]


def test_len_counts_every_frame(tiny_dataset: LocalDataset) -> None:
    assert len(open_adapter(tiny_dataset)) == tiny_dataset.num_frames


def test_item_is_an_observation_with_lerobot_shapes_and_values(
    tiny_dataset: LocalDataset,
) -> None:
    episode, frame = 1, 3
    obs = open_adapter(tiny_dataset)[episode * tiny_dataset.frames_per_episode + frame]

    assert isinstance(obs, Observation)
    assert obs.images.keys() == {"top"}
    image = obs.images["top"]
    assert image.shape == (3, IMAGE_SIZE, IMAGE_SIZE)
    assert image.dtype == torch.float32
    assert 0.0 <= image.min() <= image.max() <= 1.0
    assert obs.state is not None and obs.action is not None
    assert obs.state.shape == (STATE_DIM,)
    assert obs.action.shape == (ACTION_DIM,)
    assert torch.all(obs.state == frame_value(episode, frame))
    assert torch.all(obs.action == frame_value(episode, frame))
    assert obs.task == task_of(episode)
    assert obs.next_reward is not None and obs.next_reward.item() == pytest.approx(frame / 10)
    assert obs.next_success is not None and obs.next_success.dtype == torch.bool
    assert obs.episode_index is not None and obs.episode_index.item() == episode
    assert obs.frame_index is not None and obs.frame_index.item() == frame
    assert obs.timestamp is not None
    assert obs.timestamp.item() == pytest.approx(frame / FPS)
    assert obs.is_pad == {}
    assert obs.extra == {}


def test_from_lerobot_serves_the_same_frames_as_the_dataset(tiny_dataset: LocalDataset) -> None:
    dataset = LeRobotDataset(tiny_dataset.repo_id, root=tiny_dataset.root, video_backend="pyav")

    adapter = _LeRobotDatasetAdapter.from_lerobot(dataset)

    assert adapter.lerobot_dataset is dataset
    assert len(adapter) == len(dataset)
    expected = dataset[5]
    served = FormatConverter.to_lerobot_dict(adapter[5])
    assert served.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(served[key], value), key
        else:
            assert served[key] == value, key


def test_from_lerobot_rejects_other_datasets() -> None:
    with pytest.raises(TypeError, match="expects a lerobot LeRobotDataset, got list"):
        _LeRobotDatasetAdapter.from_lerobot([{"action": torch.zeros(4)}])


def test_metadata_properties(tiny_dataset: LocalDataset) -> None:
    adapter = open_adapter(tiny_dataset, tolerance_s=1e-3)

    assert adapter.fps == FPS
    assert adapter.tolerance_s == 1e-3
    assert {"observation.images.top", "observation.state", "action"} <= adapter.features.keys()
    assert adapter.features["observation.state"]["shape"] == (STATE_DIM,)
    assert adapter.action_features.keys() == {"action"}
    assert adapter.action_features["action"]["dtype"] == "float32"


def test_delta_indices_are_none_without_delta_timestamps(tiny_dataset: LocalDataset) -> None:
    assert open_adapter(tiny_dataset).delta_indices is None


def test_delta_indices_follow_delta_timestamps(tiny_dataset: LocalDataset) -> None:
    adapter = open_adapter(tiny_dataset, delta_timestamps=DELTAS)

    assert adapter.delta_indices == {"action": [0, 1, 2], "observation.images.top": [-1, 0]}


def test_delta_indices_of_a_dataset_being_recorded_are_none(tmp_path: Path) -> None:
    features = {"action": {"dtype": "float32", "shape": (ACTION_DIM,), "names": None}}
    recording = LeRobotDataset.create(
        "robodm-tests/recording", fps=FPS, features=features, root=tmp_path / "rec"
    )

    assert _LeRobotDatasetAdapter.from_lerobot(recording).delta_indices is None


def test_windows_clamp_at_episode_edges_and_report_padding(tiny_dataset: LocalDataset) -> None:
    adapter = open_adapter(tiny_dataset, delta_timestamps=DELTAS)
    last_of_first = tiny_dataset.frames_per_episode - 1

    end = adapter[last_of_first]
    start = adapter[last_of_first + 1]

    assert end.action is not None and end.action.shape == (3, ACTION_DIM)
    assert torch.all(end.action == frame_value(0, last_of_first))
    assert end.is_pad["action"].tolist() == [False, True, True]
    assert end.images["top"].shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert start.is_pad["observation.images.top"].tolist() == [True, False]
    assert start.action is not None
    assert start.action[:, 0].tolist() == [frame_value(1, f) for f in range(3)]
    assert start.images.keys() == {"top"}  # the padding mask is not a camera


def test_episodes_selects_frames(tiny_dataset: LocalDataset) -> None:
    adapter = open_adapter(tiny_dataset, episodes=[1])

    assert len(adapter) == tiny_dataset.frames_per_episode
    assert {adapter[i].episode_index.item() for i in range(len(adapter))} == {1}  # type: ignore[union-attr]


def test_image_transforms_are_applied(tiny_dataset: LocalDataset) -> None:
    half = IMAGE_SIZE // 2
    adapter = open_adapter(tiny_dataset, image_transforms=lambda image: image[:, :half, :half])

    assert adapter[0].images["top"].shape == (3, half, half)


def test_single_camera_dataset_serves_camera_image(lerobot_dataset_factory: DatasetFactory) -> None:
    location = lerobot_dataset_factory(image_keys=("observation.image",))
    obs = open_adapter(location)[0]

    assert obs.images.keys() == {"image"}
    assert "observation.image" in FormatConverter.to_lerobot_dict(obs)


def test_observation_dataset_converts_any_map_style_source() -> None:
    items = [
        {"observation.state": torch.full((STATE_DIM,), float(i)), "task": "t"} for i in range(3)
    ]

    dataset = _ObservationDataset(items)

    assert len(dataset) == 3
    assert dataset[2].state is items[2]["observation.state"]
    assert dataset.source is items


def test_observation_dataset_rejects_iterable_sources() -> None:
    with pytest.raises(TypeError, match="source must be a map-style dataset"):
        _ObservationDataset(iter([]))  # type: ignore[arg-type]
