"""Lazy transforms and small reads: filter, map, map_batches, take, peek, shuffle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robodm_engine.dataset import VLADataset

from .conftest import LENGTHS

pytestmark = pytest.mark.usefixtures("ray_local")


def test_filter_and_map_are_lazy_and_chain(dataset_dir: Path) -> None:
    ds = VLADataset(dataset_dir)
    even = ds.filter(lambda row: row["step"] % 2 == 0)
    doubled = even.map(lambda row: {**row, "action": row["action"] * 2, "tag": "x"})

    assert repr(ds) == "VLADataset(num_trajectories=6, mode='step', transforms=0)"
    assert repr(doubled).endswith("transforms=2)")
    rows = doubled.take(1000)
    assert len(rows) == sum((n + 1) // 2 for n in LENGTHS)
    assert all(r["step"] % 2 == 0 and r["tag"] == "x" for r in rows)
    # The parent is unchanged by deriving from it.
    assert ds.filter(lambda row: True).count() == sum(LENGTHS)

    originals = {(r["trajectory"], r["step"]): r["action"] for r in ds.iter_rows()}
    for row in rows:
        np.testing.assert_array_equal(row["action"], originals[row["trajectory"], row["step"]] * 2)


def test_map_batches(dataset_dir: Path) -> None:
    ds = VLADataset(dataset_dir, features=["observation/state"]).map_batches(
        lambda b: {"norm": np.linalg.norm(b["observation/state"], axis=1)}, batch_size=8
    )
    batch = next(ds.iter_batches(batch_size=5))
    assert set(batch) == {"norm"}
    assert batch["norm"].shape == (5,)


def test_take_and_peek(dataset_dir: Path) -> None:
    ds = VLADataset(dataset_dir, mode="trajectory")
    assert len(ds.take(2)) == 2
    assert len(ds.take(100)) == len(LENGTHS)
    first = ds.peek()
    assert first is not None
    assert first["trajectory"].startswith("episode_")
    empty = ds.filter(lambda row: False)
    assert empty.peek() is None


def test_shuffle_keeps_rows_and_changes_order(dataset_dir: Path) -> None:
    ds = VLADataset(dataset_dir, features=["action"])
    key = lambda row: (row["trajectory"], row["step"])  # noqa: E731
    plain = [key(r) for r in ds.iter_rows()]
    shuffled = [key(r) for r in ds.shuffle(seed=0).iter_rows()]
    assert sorted(shuffled) == sorted(plain)
    assert shuffled != sorted(plain)


def test_construction_shuffle_orders_trajectories_by_seed(dataset_dir: Path) -> None:
    ordered = VLADataset(dataset_dir).trajectory_paths
    one = VLADataset(dataset_dir, shuffle=True, seed=5).trajectory_paths
    assert one == VLADataset(dataset_dir, shuffle=True, seed=5).trajectory_paths
    assert sorted(one) == ordered
    assert one != ordered


def test_to_ray_dataset_is_the_pipeline(dataset_dir: Path) -> None:
    ray_ds = VLADataset(dataset_dir, mode="trajectory").to_ray_dataset()
    assert ray_ds.count() == len(LENGTHS)
