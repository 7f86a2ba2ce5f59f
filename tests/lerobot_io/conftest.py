"""Session datasets: a LeRobot dataset, its robodm ingestion, and the export of that.

``lerobot_root``: written by ``LeRobotDataset.create`` (3 episodes x 12 frames at 10 fps, a
64x64 camera, state(6), action(4), next.reward, next.success, two tasks). Values are chosen
so tests can predict them: every element of ``observation.state`` at frame ``f`` of episode
``e`` is ``100 * e + f``, ``action`` is ``-(100 * e + f)``, ``next.reward`` is ``f / 10``,
``next.success`` is true on the last frame, the task is ``TASKS[e % 2]``. Frames are smooth
(waves and a moving blob) so that lossy re-encoding keeps a meaningful PSNR.

``robodm_root``: that dataset ingested by the real engine (``run_ingestion`` of a
``LeRobotSource``, Ray, 2 workers), one trajectory per episode. ``exported_root``:
``robodm_root`` exported back to LeRobot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("lerobot")

from robodm_engine.ingestion import IngestionConfig, run_ingestion
from robodm_engine.lerobot.source import LeRobotSource

FPS = 10
EPISODES = 3
FRAMES = 12
SIZE = 64
STATE_DIM = 6
ACTION_DIM = 4
TASKS = ("pick the cube", "place the cube")
REPO_ID = "robodm-tests/io-source"


def value(episode: int, frame: int) -> float:
    """Every element of ``observation.state`` at a frame (``action`` is its negation)."""
    return 100.0 * episode + frame


def task_of(episode: int) -> str:
    return TASKS[episode % len(TASKS)]


def frame_pixels(episode: int, frame: int) -> np.ndarray:
    """A smooth 64x64 RGB frame: drifting waves and a soft-edged moving blob."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    shift = 2.0 * frame + 9.0 * episode
    blob = np.exp(-((x - 16 - 3 * frame) ** 2 + (y - 32) ** 2) / 60.0)
    image = np.stack(
        [
            128 + 80 * np.sin((x + shift) / 9.0) + 40 * blob,
            128 + 80 * np.cos((y - shift) / 11.0) - 40 * blob,
            np.full_like(x, 70.0 + 40 * episode) + 60 * blob,
        ],
        axis=-1,
    )
    return np.clip(image, 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def to_uint8(chw: Any) -> np.ndarray:
    """A LeRobot float32 (C, H, W) frame in [0, 1] as uint8 (H, W, C)."""
    return (chw.numpy().transpose(1, 2, 0) * 255.0).round().astype(np.uint8)


@pytest.fixture(scope="session")
def lerobot_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = tmp_path_factory.mktemp("lerobot_io") / "source"
    features = {
        "observation.images.top": {
            "dtype": "video",
            "shape": (SIZE, SIZE, 3),
            "names": ["height", "width", "channels"],
        },
        "observation.state": {"dtype": "float32", "shape": (STATE_DIM,), "names": None},
        "action": {"dtype": "float32", "shape": (ACTION_DIM,), "names": None},
        "next.reward": {"dtype": "float32", "shape": (1,), "names": None},
        "next.success": {"dtype": "bool", "shape": (1,), "names": None},
    }
    dataset = LeRobotDataset.create(REPO_ID, fps=FPS, features=features, root=root, use_videos=True)
    for episode in range(EPISODES):
        for frame in range(FRAMES):
            dataset.add_frame(
                {
                    "observation.images.top": frame_pixels(episode, frame),
                    "observation.state": np.full(STATE_DIM, value(episode, frame), np.float32),
                    "action": np.full(ACTION_DIM, -value(episode, frame), np.float32),
                    "next.reward": np.array([frame / 10], np.float32),
                    "next.success": np.array([frame == FRAMES - 1]),
                    "task": task_of(episode),
                }
            )
        dataset.save_episode()
    dataset.finalize()
    return root


def ingest(source: LeRobotSource, output: Path) -> Path:
    """Ingest ``source`` into a robodm dataset at ``output``, as the job runner configures it."""
    config = IngestionConfig(
        output_directory=str(output),
        num_workers=2,
        timestamp_key="timestamp",
        time_unit=source.time_unit,
    )
    run_ingestion(source, config)
    return output


@pytest.fixture(scope="session")
def robodm_root(
    lerobot_root: Path, ray_local: None, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return ingest(
        LeRobotSource(str(lerobot_root)), tmp_path_factory.mktemp("lerobot_io") / "robodm"
    )


@pytest.fixture(scope="session")
def exported_root(robodm_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from robodm_engine.lerobot.export import export_lerobot

    root = tmp_path_factory.mktemp("lerobot_io") / "exported"
    export_lerobot(robodm_root, root, repo_id="robodm-tests/io-exported")
    return root
