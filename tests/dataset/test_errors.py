"""A trajectory that cannot be read fails loudly with its path, or is skipped and reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from robodm_engine.dataset import VLADataset
from robodm_engine.errors import DatasetError

from .conftest import LENGTHS

pytestmark = pytest.mark.usefixtures("ray_local")


@pytest.fixture
def damaged(writable_copy: Callable[[], Path]) -> tuple[Path, Path]:
    """A copy of the dataset whose episode_02.mkv is cut in half (a torn upload)."""
    root = writable_copy()
    victim = root / "episode_02.mkv"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    return root, victim


@pytest.mark.parametrize(
    "consume",
    [
        lambda ds: list(ds.iter_batches(batch_size=8)),
        lambda ds: list(ds.iter_rows()),
        lambda ds: ds.filter(lambda row: True).count(),
        lambda ds: ds.get_stats(),
        lambda ds: ds.load(),
        lambda ds: ds.take(1000),
    ],
    ids=["iter_batches", "iter_rows", "count", "get_stats", "load", "take"],
)
def test_unreadable_trajectory_raises_with_its_path(
    damaged: tuple[Path, Path], consume: Callable[[VLADataset], object]
) -> None:
    root, victim = damaged
    with pytest.raises(DatasetError, match=f"cannot read trajectory {victim}: "):
        consume(VLADataset(root))


def test_garbage_file_raises_in_trajectory_mode(writable_copy: Callable[[], Path]) -> None:
    root = writable_copy()
    (root / "zz_garbage.mkv").write_bytes(b"not a matroska file" * 50)
    with pytest.raises(DatasetError, match=r"zz_garbage\.mkv: .*TrajectoryFormatError"):
        list(VLADataset(root, mode="trajectory").iter_rows())


def test_skip_mode_leaves_out_and_reports_the_file(damaged: tuple[Path, Path]) -> None:
    root, victim = damaged
    ds = VLADataset(root, on_error="skip")
    names = {row["trajectory"] for row in ds.iter_rows()}
    assert names == {f"episode_{i:02d}" for i in range(len(LENGTHS)) if i != 2}
    skipped = ds.skipped_trajectories
    assert list(skipped) == [str(victim)]
    assert "TrajectoryFormatError" in skipped[str(victim)]
    assert "truncated" in skipped[str(victim)]

    # Counting reads the files in skip mode (the listing cannot know), and a derived
    # dataset reports into the same log without counting the file twice.
    train = ds.split(1.0, shuffle=False)[0]
    assert train.count() == sum(LENGTHS) - LENGTHS[2]
    stats = train.get_stats()
    assert stats["skipped"] == 1
    assert stats["trajectories"] == len(LENGTHS) - 1
