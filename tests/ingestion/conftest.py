"""Fixtures and small synthetic sources for the ingestion tests.

Everything is tiny (32x32 images, a few floats) so a full ingestion takes well under a
second once the session's Ray is up; the point is behaviour, not throughput.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from robodm_engine.trajectory import Trajectory


class CifarLike(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """CIFAR-10 stand-in: ``(image CHW float32 tensor, label int)`` samples, seeded."""

    def __init__(self, size: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.images = torch.rand(size, 3, 32, 32, generator=generator)
        self.labels = torch.randint(0, 10, (size,), generator=generator)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


def step(i: int) -> dict[str, Any]:
    """Item ``i`` of the synthetic sources: an image, a state vector and a label."""
    rng = np.random.default_rng(i)
    return {
        "image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
        "state": np.full(4, i, dtype=np.float32),
        "label": i,
    }


def load(path: str | Path) -> dict[str, np.ndarray]:
    """All features of a written trajectory."""
    return Trajectory(str(path)).load()


def manifest_json(out: str | Path) -> dict[str, Any]:
    return json.loads((Path(out) / "manifest.json").read_text())


def mkv_names(out: str | Path) -> list[str]:
    return sorted(p.name for p in Path(out).glob("*.mkv"))


@pytest.fixture
def out_dir(ray_local: None, tmp_path: Path) -> Iterator[str]:
    """An output directory for one ingestion, with the session's Ray running."""
    yield str(tmp_path / "dataset")


@pytest.fixture(scope="session", autouse=True)
def _ship_test_classes_by_value() -> None:
    """Let Ray workers unpickle ingesters defined in these test modules.

    The workers cannot import the test package (it is not installed), exactly like a user's
    own script; registering it makes cloudpickle ship the classes by value, as it does for
    classes defined in ``__main__``.
    """
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__package__ or __name__])
