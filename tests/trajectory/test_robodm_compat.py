"""Files written by the real robodm 0.1.0 (tests/fixtures/robodm_0_1_0) load only by opt-in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robodm_engine import PickleNotAllowedError, Trajectory

FIXTURES = Path(__file__).parent.parent / "fixtures" / "robodm_0_1_0"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "expected.json").read_text())["files"]
FILES = sorted(EXPECTED)


@pytest.fixture(scope="module")
def arrays() -> Any:
    return np.load(FIXTURES / "expected.npz", allow_pickle=False)


@pytest.mark.parametrize("name", FILES)
def test_pickled_features_are_refused_without_opt_in(name: str) -> None:
    traj = Trajectory(FIXTURES / name)
    with pytest.raises(PickleNotAllowedError, match=r"allow_pickle=True") as info:
        traj.load()
    assert name in str(info.value) and info.value.feature is not None


@pytest.mark.parametrize("name", FILES)
def test_features_are_listed_from_robodm_tags_without_unpickling(name: str) -> None:
    features = Trajectory(FIXTURES / name).features
    for feature, meta in EXPECTED[name]["robodm_load"].items():
        assert feature in features
        assert tuple(meta["shape"][1:]) == features[feature].shape


@pytest.mark.parametrize("name", FILES)
def test_values_match_what_robodm_itself_loaded(name: str, arrays: Any) -> None:
    data = Trajectory(FIXTURES / name, allow_pickle=True).load()
    for feature, meta in EXPECTED[name]["robodm_load"].items():
        expected = arrays[meta["npz_key"]]
        got = data[feature]
        assert got.shape == tuple(meta["shape"]), feature
        if got.dtype == object:
            assert [str(v) for v in got] == [str(v) for v in expected], feature
        else:
            assert got.dtype == np.dtype(meta["dtype"]), feature
            np.testing.assert_array_equal(got, expected.astype(got.dtype), err_msg=feature)


def test_video_streams_load_without_pickle_when_only_they_are_asked_for() -> None:
    data = Trajectory(FIXTURES / "video_libx264.mkv").load(features=["observation/image"])
    assert data["observation/image"].shape == (10, 32, 32, 3)
