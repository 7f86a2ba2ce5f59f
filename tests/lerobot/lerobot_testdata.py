"""Layout of the small LeRobot datasets the ``lerobot_dataset_factory`` fixture writes.

Frame values are chosen so tests can check what they read back: in episode ``e`` at frame
``f`` every element of ``observation.state`` and ``action`` equals ``100 * e + f``,
``next.reward`` is ``f / 10``, ``next.success`` is true on the episode's last frame only,
and the task is ``TASKS[e % len(TASKS)]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FPS = 10
STATE_DIM = 6
ACTION_DIM = 4
IMAGE_SIZE = 32
TASKS = ("pick the cube", "place the cube")


@dataclass(frozen=True)
class LocalDataset:
    """Where a test dataset lives; open it with ``LeRobotDataset(repo_id, root=root)``."""

    repo_id: str
    root: Path
    num_episodes: int
    frames_per_episode: int
    image_keys: tuple[str, ...]

    @property
    def num_frames(self) -> int:
        """Frames over all episodes."""
        return self.num_episodes * self.frames_per_episode


DatasetFactory = Callable[..., LocalDataset]
"""``lerobot_dataset_factory(*, episodes=2, frames=10, image_keys=(...))``."""


def frame_value(episode: int, frame: int) -> float:
    """The value of every element of ``observation.state`` and ``action`` at a frame."""
    return 100.0 * episode + frame


def task_of(episode: int) -> str:
    """The task string of an episode."""
    return TASKS[episode % len(TASKS)]
