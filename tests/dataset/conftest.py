"""Small trajectory datasets for the VLADataset tests, written once per session.

Trajectories are 20 Hz with even lengths (so a 10 Hz read keeps exactly half the steps) and
hold one feature of each kind the reader handles: a video image, float vectors and a string.
Expected values in the tests always come from ``Trajectory(path).load()`` directly, so lossy
video coding never makes an assertion approximate.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robodm_engine.manifest import (
    DatasetManifest,
    TrajectoryRecord,
    merge_features,
    record_of_file,
    write_manifest,
)
from robodm_engine.storage import Store, open_store
from robodm_engine.trajectory import Trajectory

FPS = 20
LENGTHS = (10, 12, 14, 16, 18, 20)
FEATURES = ("observation/image", "observation/state", "action", "instruction")


def make_steps(index: int, length: int) -> list[dict[str, Any]]:
    """Steps of trajectory ``index``: values depend on both index and step, so mixing shows."""
    rng = np.random.default_rng(index)
    return [
        {
            "observation": {
                "image": rng.integers(0, 256, (16, 16, 3), dtype=np.uint8),
                "state": np.arange(4, dtype=np.float32) + 100 * index + step,
            },
            "action": rng.normal(size=2),
            "instruction": f"task {index}",
        }
        for step in range(length)
    ]


def write_trajectory(path: Path, index: int, length: int, fps: float = FPS) -> Path:
    Trajectory.from_list_of_dicts(make_steps(index, length), path, fps=fps).close()
    return path


def reference(path: str | Path, **load_kwargs: Any) -> dict[str, np.ndarray]:
    """What the trajectory file itself says, read without VLADataset."""
    traj = Trajectory(str(path))
    try:
        return traj.load(**load_kwargs)
    finally:
        traj.close()


def record_for(path: Path) -> TrajectoryRecord:
    """The manifest record of a trajectory file at the dataset root, as ingestion writes it."""
    return record_of_file(path, name=path.stem, path=path.name)


def publish_manifest(store: Store, records: list[TrajectoryRecord]) -> str:
    manifest = DatasetManifest(
        trajectories=records,
        features=merge_features(records),
        config={"source": "tests"},
        counts={"trajectories": len(records)},
        failures=[],
        created_at=datetime.now(UTC).isoformat(),
    )
    return write_manifest(store, manifest)


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of six ``.mkv`` trajectories (no manifest). Do not modify it."""
    root = tmp_path_factory.mktemp("trajectories")
    for index, length in enumerate(LENGTHS):
        write_trajectory(root / f"episode_{index:02d}.mkv", index, length)
    return root


@pytest.fixture(scope="session")
def published_dir(dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same trajectories published with a ``manifest.json``. Do not modify it."""
    root = tmp_path_factory.mktemp("published")
    for path in sorted(dataset_dir.glob("*.mkv")):
        shutil.copy(path, root / path.name)
    records = [record_for(p) for p in sorted(root.glob("*.mkv"))]
    publish_manifest(open_store(str(root)), records)
    return root


@pytest.fixture
def writable_copy(dataset_dir: Path, tmp_path: Path) -> Callable[[], Path]:
    """A function returning a private copy of ``dataset_dir`` that a test may damage."""

    def copy() -> Path:
        target = tmp_path / "copy"
        shutil.copytree(dataset_dir, target)
        return target

    return copy
