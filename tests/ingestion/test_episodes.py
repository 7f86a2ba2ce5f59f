"""Items that are whole episodes: transform_item returns a list of step dicts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from robodm_engine.errors import IngestionError
from robodm_engine.ingestion import DataIngestionInterface, IngestionConfig, run_ingestion

from .conftest import load


class EpisodeIngester(DataIngestionInterface):
    """Episode ``i`` has ``3 + i`` steps stamped every 50 ms; episode ``bad`` is malformed."""

    def __init__(self, episodes: list[Any]) -> None:
        self.episodes = episodes

    def get_data_items(self) -> list[Any]:
        return self.episodes

    def transform_item(self, item: Any) -> Any:
        if item == "bad":
            return [{"x": 1.0, "timestamp": 0}, "not a step"]
        return [{"x": np.float32(item * 10 + k), "timestamp": 50 * k} for k in range(3 + item)]


def test_each_episode_becomes_one_trajectory(out_dir: str) -> None:
    config = IngestionConfig(out_dir, num_workers=2, timestamp_key="timestamp")
    result = run_ingestion(EpisodeIngester([0, 1, 2]), config)
    assert [r.steps for r in result.records] == [3, 4, 5]
    assert [r.items for r in result.records] == [1, 1, 1]
    assert result.counts["itemsWritten"] == 3
    data = load(f"{out_dir}/trajectory_000001.mkv")
    assert data["x"].tolist() == [10.0, 11.0, 12.0, 13.0]

    again = run_ingestion(EpisodeIngester([0, 1, 2]), config)
    assert again.counts["trajectoriesResumed"] == 3


def test_a_malformed_episode_is_a_failed_item(out_dir: str) -> None:
    config = IngestionConfig(out_dir, num_workers=2, timestamp_key="timestamp")
    with pytest.raises(IngestionError, match=r"transform_item returned list; expected a dict"):
        run_ingestion(EpisodeIngester([0, "bad"]), config)
