"""RoboDMLeRobotDataset: a robodm dataset served exactly as LeRobotDataset serves its export."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from robodm_engine.lerobot.robodm_dataset import EpisodeBlockSampler, RoboDMLeRobotDataset

from .conftest import EPISODES, FPS, FRAMES, frame_pixels, psnr, task_of, to_uint8, value

EXPORTED_ID = "robodm-tests/io-exported"
CAMERA = "observation.images.top"
DELTAS = {"action": [-0.2, -0.1, 0.0, 0.1, 0.2], CAMERA: [-0.1, 0.0]}


def _lerobot(root: Path, **kwargs: object):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset(EXPORTED_ID, root=root, video_backend="pyav", **kwargs)


def _assert_same_item(got: dict, want: dict, where: object) -> None:
    assert sorted(got) == sorted(want), where
    for key, expected in want.items():
        if key == "task":
            assert got[key] == expected, where
            continue
        assert got[key].dtype == expected.dtype, (where, key)
        assert got[key].shape == expected.shape, (where, key)
        if key.startswith(CAMERA) and not key.endswith("_is_pad"):
            # Ours decodes the robodm file, LeRobot its AV1 re-encode of it.
            frames = got[key].reshape(-1, *got[key].shape[-3:])
            others = expected.reshape(-1, *expected.shape[-3:])
            for a, b in zip(frames, others, strict=True):
                assert psnr(to_uint8(a), to_uint8(b)) >= 30, (where, key)
        else:
            assert torch.equal(got[key], expected), (where, key)


@pytest.mark.parametrize("deltas", [None, DELTAS], ids=["plain", "delta_timestamps"])
def test_items_equal_lerobot_on_the_exported_data(
    robodm_root: Path, exported_root: Path, deltas: dict | None
) -> None:
    ours = RoboDMLeRobotDataset(robodm_root, delta_timestamps=deltas)
    theirs = _lerobot(exported_root, delta_timestamps=deltas)
    assert len(ours) == len(theirs) == EPISODES * FRAMES
    assert ours.fps == theirs.fps == FPS
    assert ours.num_episodes == theirs.num_episodes
    for key, spec in theirs.meta.features.items():
        assert (ours.features[key]["dtype"], tuple(ours.features[key]["shape"])) == (
            spec["dtype"],
            tuple(spec["shape"]),
        ), key
    for index in range(len(theirs)):
        _assert_same_item(ours[index], theirs[index], index)


def test_delta_timestamps_pad_at_episode_edges(robodm_root: Path) -> None:
    dataset = RoboDMLeRobotDataset(robodm_root, delta_timestamps=DELTAS)
    first = dataset[FRAMES]  # episode 1, frame 0
    assert first["action_is_pad"].tolist() == [True, True, False, False, False]
    np.testing.assert_array_equal(
        first["action"][:, 0].numpy(), [-value(1, f) for f in (0, 0, 0, 1, 2)]
    )
    assert first[CAMERA].shape == (2, 3, 64, 64)
    assert first[f"{CAMERA}_is_pad"].tolist() == [True, False]
    last = dataset[2 * FRAMES - 1]  # episode 1, last frame
    assert last["action_is_pad"].tolist() == [False, False, False, True, True]
    np.testing.assert_array_equal(
        last["action"][:, 0].numpy(), [-value(1, f) for f in (9, 10, 11, 11, 11)]
    )


def test_values_tasks_and_indices(robodm_root: Path) -> None:
    dataset = RoboDMLeRobotDataset(robodm_root, episodes=[2])
    assert len(dataset) == FRAMES and dataset.tasks == [task_of(0), task_of(1)]
    item = dataset[5]
    assert int(item["episode_index"]) == 2 and int(item["frame_index"]) == 5
    assert int(item["index"]) == 2 * FRAMES + 5  # position in the whole dataset
    assert item["task"] == task_of(2) and int(item["task_index"]) == 0
    assert float(item["timestamp"]) == pytest.approx(0.5)
    assert float(item["observation.state"][0]) == value(2, 5)
    assert item[CAMERA].dtype == torch.float32 and 0 <= item[CAMERA].min() <= 1
    assert psnr(to_uint8(item[CAMERA]), frame_pixels(2, 5)) >= 30
    assert dataset[-1]["frame_index"] == FRAMES - 1
    with pytest.raises(IndexError):
        dataset[FRAMES]


def test_batches_through_a_dataloader_with_workers(robodm_root: Path) -> None:
    dataset = RoboDMLeRobotDataset(robodm_root, delta_timestamps={"action": [0.0, 0.1]})
    _ = dataset[0]  # fill the cache: it must not be pickled to the workers
    assert len(pickle.loads(pickle.dumps(dataset))._cache) == 0
    loader = DataLoader(
        dataset,
        batch_size=8,
        num_workers=2,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    seen = []
    for batch in loader:
        assert batch[CAMERA].shape[1:] == (3, 64, 64)
        assert batch["action"].shape[1:] == (2, 4)
        assert len(batch["task"]) == len(batch["index"])
        seen.extend(batch["index"].tolist())
    assert sorted(seen) == list(range(EPISODES * FRAMES))


def test_block_sampler_shuffles_within_blocks_of_episodes(robodm_root: Path) -> None:
    dataset = RoboDMLeRobotDataset(robodm_root, cache_size=2)
    sampler = EpisodeBlockSampler(dataset, seed=3)
    order = list(sampler)
    assert sorted(order) == list(range(EPISODES * FRAMES)) and len(sampler) == len(order)
    episodes = [i // FRAMES for i in order]
    # Two episodes mixed in the first block, the third alone after it.
    assert len(set(episodes[: 2 * FRAMES])) == 2 and len(set(episodes[2 * FRAMES :])) == 1
    assert order[: 2 * FRAMES] != sorted(order[: 2 * FRAMES])
    assert list(sampler) == order
    sampler.set_epoch(1)
    assert list(sampler) != order


def test_fits_the_lerobot_datamodule(robodm_root: Path) -> None:
    from robodm_engine.lerobot import LeRobotDataModule

    dataset = RoboDMLeRobotDataset(robodm_root)
    module = LeRobotDataModule(dataset=dataset, train_batch_size=4, shuffle=False)
    batch = next(iter(module.train_dataloader()))
    assert batch.images["top"].shape == (4, 3, 64, 64)
    assert batch.state.shape == (4, 6) and batch.task == [task_of(0)] * 4
    flat = LeRobotDataModule(
        dataset=dataset, train_batch_size=4, shuffle=False, data_format="lerobot"
    )
    assert next(iter(flat.train_dataloader()))["observation.state"].shape == (4, 6)


def test_stats_match_the_export(robodm_root: Path, exported_root: Path) -> None:
    import json

    exported = json.loads((exported_root / "meta/stats.json").read_text())
    stats = RoboDMLeRobotDataset(robodm_root).compute_stats()
    assert sorted(stats) == sorted(exported)
    for key, expected in exported.items():
        assert sorted(stats[key]) == sorted(expected), key
        for name in expected:
            np.testing.assert_allclose(
                stats[key][name], expected[name], rtol=1e-6, atol=1e-9, err_msg=f"{key}/{name}"
            )


def test_rejects_bad_arguments(robodm_root: Path) -> None:
    with pytest.raises(ValueError, match="unknown feature"):
        RoboDMLeRobotDataset(robodm_root, delta_timestamps={"nope": [0.0]})
    with pytest.raises(ValueError, match="tolerance"):
        RoboDMLeRobotDataset(robodm_root, delta_timestamps={"action": [0.05]})
    with pytest.raises(ValueError, match="not in the dataset"):
        RoboDMLeRobotDataset(robodm_root, episodes=[EPISODES])
    with pytest.raises(ValueError, match="cache_size"):
        RoboDMLeRobotDataset(robodm_root, cache_size=0)


def test_reads_and_exports_a_dataset_in_s3(
    robodm_root: Path, s3_bucket: str, tmp_path: Path
) -> None:
    from robodm_engine.lerobot.export import export_lerobot
    from robodm_engine.storage import StorageOptions, open_store

    uri = f"s3://{s3_bucket}/robodm"
    options = StorageOptions.from_env()
    store = open_store(uri, options)
    for path in sorted(p for p in robodm_root.rglob("*") if p.is_file()):
        store.put_file(path, path.relative_to(robodm_root).as_posix())
    local = RoboDMLeRobotDataset(robodm_root, delta_timestamps={"action": [0.0, 0.1]})
    remote = RoboDMLeRobotDataset(
        f"{uri}/manifest.json", storage_options=options, delta_timestamps={"action": [0.0, 0.1]}
    )
    assert len(remote) == len(local)
    for index in (0, FRAMES + 4, len(local) - 1):
        got, want = remote[index], local[index]
        assert sorted(got) == sorted(want)
        for key, expected in want.items():
            assert got[key] == expected if key == "task" else torch.equal(got[key], expected)
    result = export_lerobot(uri, tmp_path / "from_s3", repo_id="t/s3", storage_options=options)
    assert (result.episodes, result.frames) == (EPISODES, EPISODES * FRAMES)
    assert float(_lerobot(result.root)[FRAMES + 4]["observation.state"][0]) == value(1, 4)
