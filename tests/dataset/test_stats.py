"""get_stats(): counts, lengths and feature statistics against numpy over the files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robodm_engine.dataset import VLADataset
from robodm_engine.dataset._stats import Moments

from .conftest import LENGTHS, reference

pytestmark = pytest.mark.usefixtures("ray_local")

NUMERIC = ("observation/image", "observation/state", "action")


def expected_stats(paths: list[str], **load_kwargs: object) -> dict[str, np.ndarray]:
    """Every numeric feature of every file, concatenated over steps."""
    loaded = [reference(p, **load_kwargs) for p in paths]
    return {f: np.concatenate([d[f] for d in loaded]) for f in NUMERIC}


@pytest.mark.parametrize("mode", ["step", "trajectory"])
def test_stats_match_numpy(dataset_dir: Path, mode: str) -> None:
    ds = VLADataset(dataset_dir, mode=mode)  # type: ignore[arg-type]
    stats = ds.get_stats()

    assert stats["trajectories"] == len(LENGTHS)
    assert stats["steps"] == sum(LENGTHS)
    assert stats["length"] == {
        "min": min(LENGTHS),
        "max": max(LENGTHS),
        "mean": pytest.approx(sum(LENGTHS) / len(LENGTHS)),
    }
    assert stats["skipped"] == 0
    assert set(stats["features"]) == {*NUMERIC, "instruction"}
    for feature, values in expected_stats(ds.trajectory_paths).items():
        got = stats["features"][feature]
        assert got["dtype"] == values.dtype.name
        assert got["shape"] == values.shape[1:]
        assert got["min"] == values.min()
        assert got["max"] == values.max()
        assert got["mean"] == pytest.approx(values.mean(dtype=np.float64), rel=1e-12)
        assert got["std"] == pytest.approx(values.std(dtype=np.float64), rel=1e-9)
    assert stats["features"]["instruction"] == {
        "dtype": "str",
        "shape": (),
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
    }


def test_stats_follow_resampling_and_filters(dataset_dir: Path) -> None:
    ds = VLADataset(dataset_dir, desired_frequency=10.0).filter(
        lambda row: row["trajectory"] != "episode_00"
    )
    stats = ds.get_stats()
    paths = ds.trajectory_paths[1:]
    assert stats["trajectories"] == len(LENGTHS) - 1
    assert stats["steps"] == sum(LENGTHS[1:]) // 2
    state = expected_stats(paths, desired_frequency=10.0)["observation/state"]
    assert stats["features"]["observation/state"]["mean"] == pytest.approx(state.mean())


def test_stats_without_trajectory_column(dataset_dir: Path) -> None:
    stats = (
        VLADataset(dataset_dir, features=["action"])
        .map(lambda row: {"action": row["action"]})
        .get_stats()
    )
    assert stats["trajectories"] is None
    assert stats["length"] is None
    assert stats["steps"] == sum(LENGTHS)


def test_moments_merge_is_exact_and_stable() -> None:
    # Large offset, small spread: the naive E[x^2] - E[x]^2 returns garbage here.
    rng = np.random.default_rng(0)
    values = 1e9 + rng.normal(size=3000)
    merged = Moments()
    for part in np.array_split(values, 7):
        merged = merged.merge(Moments.of(part))
    assert merged.count == values.size
    assert merged.mean == pytest.approx(values.mean(), rel=1e-15)
    assert np.sqrt(merged.m2 / merged.count) == pytest.approx(values.std(), rel=1e-6)
    assert (merged.min, merged.max) == (values.min(), values.max())


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
def test_moments_of_large_rows_are_chunked_exactly(dtype: type[np.generic]) -> None:
    # 5 rows of 300k elements: more than one chunk of at most 2**20 elements. Small integers
    # take the exact integer path, floats the float64 one.
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else np.iinfo(np.int16)
    rng = np.random.default_rng(1)
    values = rng.integers(info.min, info.max, (5, 300_000), endpoint=True).astype(dtype)
    moments = Moments.of(values)
    assert moments.count == values.size
    assert moments.mean == pytest.approx(values.mean(dtype=np.float64), rel=1e-12)
    assert np.sqrt(moments.m2 / moments.count) == pytest.approx(values.std(dtype=np.float64))
    assert (moments.min, moments.max) == (values.min(), values.max())
