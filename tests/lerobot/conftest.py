"""Real, small LeRobot v3.0 datasets, written once per session with ``LeRobotDataset.create``.

Their content is described in ``lerobot_testdata.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
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


@pytest.fixture(scope="session")
def lerobot_dataset_factory(tmp_path_factory: pytest.TempPathFactory) -> DatasetFactory:
    """Return ``make(*, episodes=2, frames=10, image_keys=(...))`` -> :class:`LocalDataset`.

    Datasets are cached per argument set: AV1-encoding the videos is the slow part.
    """
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    built: dict[tuple[int, int, tuple[str, ...]], LocalDataset] = {}

    def make(
        *,
        episodes: int = 2,
        frames: int = 10,
        image_keys: tuple[str, ...] = ("observation.images.top",),
    ) -> LocalDataset:
        cache_key = (episodes, frames, image_keys)
        if cache_key in built:
            return built[cache_key]
        name = f"tiny-{len(built)}"
        root = tmp_path_factory.mktemp("lerobot") / name
        image_spec = {
            "dtype": "video",
            "shape": (IMAGE_SIZE, IMAGE_SIZE, 3),
            "names": ["height", "width", "channels"],
        }
        features = {
            **{key: image_spec for key in image_keys},
            "observation.state": {"dtype": "float32", "shape": (STATE_DIM,), "names": None},
            "action": {"dtype": "float32", "shape": (ACTION_DIM,), "names": None},
            "next.reward": {"dtype": "float32", "shape": (1,), "names": None},
            "next.success": {"dtype": "bool", "shape": (1,), "names": None},
        }
        dataset = LeRobotDataset.create(
            f"robodm-tests/{name}", fps=FPS, features=features, root=root, use_videos=True
        )
        rng = np.random.default_rng(0)
        for episode in range(episodes):
            for frame in range(frames):
                value = frame_value(episode, frame)
                images = {
                    key: rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
                    for key in image_keys
                }
                dataset.add_frame(
                    {
                        **images,
                        "observation.state": np.full(STATE_DIM, value, np.float32),
                        "action": np.full(ACTION_DIM, value, np.float32),
                        "next.reward": np.array([frame / 10], np.float32),
                        "next.success": np.array([frame == frames - 1]),
                        "task": task_of(episode),
                    }
                )
            dataset.save_episode()
        dataset.finalize()
        built[cache_key] = LocalDataset(f"robodm-tests/{name}", root, episodes, frames, image_keys)
        return built[cache_key]

    return make


@pytest.fixture(scope="session")
def tiny_dataset(lerobot_dataset_factory: DatasetFactory) -> LocalDataset:
    """Two episodes of ten frames, one 32x32 camera ``observation.images.top``."""
    return lerobot_dataset_factory()
