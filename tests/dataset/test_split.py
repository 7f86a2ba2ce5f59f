"""split(): by trajectory, disjoint, reproducible, with validated fractions."""

from __future__ import annotations

from pathlib import Path

import pytest

from robodm_engine.dataset import VLADataset

from .conftest import LENGTHS

pytestmark = pytest.mark.usefixtures("ray_local")


def test_split_is_disjoint_covering_and_by_trajectory(dataset_dir: Path) -> None:
    ds = VLADataset(dataset_dir)
    train, val = ds.split(0.5, 0.5, seed=7)

    assert len(train.trajectory_paths) == len(val.trajectory_paths) == 3
    assert set(train.trajectory_paths).isdisjoint(val.trajectory_paths)
    assert sorted(train.trajectory_paths + val.trajectory_paths) == ds.trajectory_paths
    # Every row of a part comes from that part's files: no trajectory is cut in two.
    for part in (train, val):
        names = {row["trajectory"] for row in part.iter_rows()}
        assert names == {Path(p).stem for p in part.trajectory_paths}
    assert train.count() + val.count() == sum(LENGTHS)


def test_split_is_reproducible_and_depends_on_the_seed(dataset_dir: Path) -> None:
    ds = VLADataset(dataset_dir)
    first = [p.trajectory_paths for p in ds.split(0.5, 0.5, seed=1)]
    again = [p.trajectory_paths for p in VLADataset(dataset_dir).split(0.5, 0.5, seed=1)]
    other = [p.trajectory_paths for p in ds.split(0.5, 0.5, seed=2)]
    assert first == again
    assert first != other
    # The dataset's own seed is the default.
    seeded = VLADataset(dataset_dir, seed=1)
    assert [p.trajectory_paths for p in seeded.split(0.5, 0.5)] == first


def test_split_without_shuffle_cuts_in_order(dataset_dir: Path) -> None:
    ds = VLADataset(dataset_dir)
    parts = ds.split(0.5, 0.2, shuffle=False)
    # round(0.5 * 6) = 3, round(0.7 * 6) = 4: the last two trajectories are in no part.
    assert parts[0].trajectory_paths == ds.trajectory_paths[:3]
    assert parts[1].trajectory_paths == ds.trajectory_paths[3:4]


def test_fractions_summing_to_one_with_float_error_cover_everything(dataset_dir: Path) -> None:
    parts = VLADataset(dataset_dir).split(0.7, 0.2, 0.1, seed=0)
    assert sum(len(p.trajectory_paths) for p in parts) == len(LENGTHS)


def test_a_split_may_be_empty(dataset_dir: Path) -> None:
    big, small = VLADataset(dataset_dir / "episode_00.mkv").split(0.9, 0.1, seed=0)
    assert big.count() == LENGTHS[0]
    assert small.trajectory_paths == []
    assert small.count() == 0
    assert list(small.iter_batches(batch_size=4)) == []


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ((), "at least one fraction"),
        ((0.8, 0.3), "sum to 1.1"),
        ((0.5, 0.0), r"in \(0, 1\]"),
        ((-0.2, 0.5), r"in \(0, 1\]"),
        ((1.5,), r"in \(0, 1\]"),
    ],
)
def test_invalid_fractions(dataset_dir: Path, fractions: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VLADataset(dataset_dir).split(*fractions)
