"""VLADataset.to_torch(): a DataLoader sees every step once per epoch across ranks and workers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from robodm_engine import VLADataset

from .conftest import LENGTHS


def steps_seen(dataset: VLADataset, *, world_size: int, workers: int, epoch: int = 0,
               shuffle: bool = False) -> list[Counter[tuple[str, int]]]:
    """(trajectory, step) pairs each rank reads in one epoch through a real DataLoader."""
    seen = []
    for rank in range(world_size):
        view = dataset.to_torch(shuffle=shuffle, seed=7, rank=rank, world_size=world_size)
        view.set_epoch(epoch)
        loader = DataLoader(view, batch_size=5, num_workers=workers)
        counter: Counter[tuple[str, int]] = Counter()
        for batch in loader:
            counter.update(zip(batch["trajectory"], batch["step"].tolist(), strict=True))
        seen.append(counter)
    return seen


@pytest.mark.parametrize(("world_size", "workers"), [(1, 0), (2, 0), (2, 2), (3, 1)])
def test_every_step_once_per_epoch(published_dir: Path, world_size: int, workers: int) -> None:
    dataset = VLADataset(published_dir)
    per_rank = steps_seen(dataset, world_size=world_size, workers=workers)
    total = sum(per_rank, Counter())
    assert sum(total.values()) == sum(LENGTHS)
    assert set(total.values()) == {1}
    for first in range(world_size):  # ranks read disjoint trajectories
        for second in range(first + 1, world_size):
            names = ({t for t, _ in per_rank[first]}, {t for t, _ in per_rank[second]})
            assert not names[0] & names[1]


def test_shuffle_changes_with_the_epoch_and_is_reproducible(published_dir: Path) -> None:
    dataset = VLADataset(published_dir)

    def order(epoch: int) -> list[tuple[str, int]]:
        view = dataset.to_torch(shuffle=True, seed=3)
        view.set_epoch(epoch)
        return [(row["trajectory"], int(row["step"])) for row in view]

    assert order(0) == order(0)
    assert order(0) != order(1)
    assert sorted(order(0)) == sorted(order(1))


def test_batches_are_tensors_with_the_features(published_dir: Path) -> None:
    loader = DataLoader(VLADataset(published_dir).to_torch(), batch_size=4)
    batch = next(iter(loader))
    assert batch["observation/image"].shape == (4, 16, 16, 3)
    assert batch["observation/image"].dtype == torch.uint8
    assert batch["observation/state"].dtype == torch.float32
    assert batch["instruction"] == ["task 0"] * 4


def test_transformed_or_trajectory_datasets_are_refused(published_dir: Path) -> None:
    with pytest.raises(ValueError, match="map/filter"):
        VLADataset(published_dir).filter(lambda row: True).to_torch()
    with pytest.raises(ValueError, match="mode='step'"):
        VLADataset(published_dir, mode="trajectory").to_torch()
    with pytest.raises(ValueError, match=r"rank 2 is not in \[0, world_size=2\)"):
        next(iter(VLADataset(published_dir).to_torch(rank=2, world_size=2)))
