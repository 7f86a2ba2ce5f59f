"""Contract tests for LeRobotDataModule and the collate functions, on real datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lerobot")

import lightning
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot_testdata import ACTION_DIM, IMAGE_SIZE, STATE_DIM, TASKS, LocalDataset
from torch.utils.data import IterableDataset

from robodm_engine.lerobot import (
    DataFormat,
    LeRobotDataModule,
    Observation,
    collate_lerobot,
    collate_observations,
)

BATCH = 4
DELTAS = {"action": [0.0, 0.1, 0.2]}
INDEX_KEYS = ("episode_index", "frame_index", "index", "task_index", "timestamp")


def module_for(location: LocalDataset, **options: Any) -> LeRobotDataModule:
    return LeRobotDataModule(
        repo_id=location.repo_id, root=location.root, train_batch_size=BATCH, **options
    )


# Construction rules


@pytest.mark.parametrize(
    "sources",
    [{}, {"repo_id": "robodm-tests/x", "dataset": [{"action": torch.zeros(4)}]}],
    ids=["neither", "both"],
)
def test_exactly_one_of_repo_id_and_dataset(sources: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"exactly one of 'repo_id' .* or 'dataset'"):
        LeRobotDataModule(**sources)


def test_loading_options_are_rejected_with_a_dataset() -> None:
    with pytest.raises(ValueError, match=r"delta_timestamps, root only apply when loading by"):
        LeRobotDataModule(dataset=[{"action": torch.zeros(4)}], root="/data", delta_timestamps={})


def test_val_dataset_needs_dataset() -> None:
    with pytest.raises(ValueError, match="'val_dataset' goes with 'dataset'"):
        LeRobotDataModule(repo_id="robodm-tests/x", val_dataset=[])


def test_overlapping_train_and_val_episodes_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"episodes \[1\] are in both"):
        LeRobotDataModule(repo_id="robodm-tests/x", episodes=[0, 1], val_episodes=[1, 2])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"train_batch_size": 0}, "train_batch_size must be >= 1"),
        ({"val_batch_size": -1}, "val_batch_size must be >= 1"),
        ({"num_workers": -1}, "num_workers must be >= 0"),
        ({"data_format": "rlds"}, "unknown data format 'rlds'"),
    ],
)
def test_invalid_loader_options_are_rejected(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LeRobotDataModule(repo_id="robodm-tests/x", **options)


class _Stream(IterableDataset[dict[str, Any]]):
    def __iter__(self) -> Any:
        return iter([])


@pytest.mark.parametrize("argument", ["dataset", "val_dataset"])
def test_iterable_datasets_are_rejected(argument: str) -> None:
    sources: dict[str, Any] = {"dataset": [], argument: _Stream()}

    with pytest.raises(TypeError, match=f"{argument} must be a map-style dataset"):
        LeRobotDataModule(**sources)


def test_data_format_string_becomes_the_enum() -> None:
    module = LeRobotDataModule(repo_id="robodm-tests/x", data_format="lerobot")

    assert module.data_format is DataFormat.LEROBOT


def test_datasets_are_loaded_on_first_use_not_in_the_constructor(tmp_path: Path) -> None:
    root = tmp_path / "none"
    module = LeRobotDataModule(repo_id="robodm-tests/does-not-exist", root=root)

    assert not root.exists()  # LeRobotDataset would have created it
    with pytest.raises(ValueError, match="no validation data configured"):
        module.val_source()


def test_prepare_data_opens_the_dataset_without_keeping_it(
    tiny_dataset: LocalDataset, tmp_path: Path
) -> None:
    module = module_for(tiny_dataset, episodes=[1])
    missing = LeRobotDataModule(repo_id="robodm-tests/does-not-exist", root=tmp_path / "none")

    module.prepare_data()
    module.setup("fit")

    train = module.train_source()
    assert isinstance(train, LeRobotDataset)
    assert len(train) == tiny_dataset.frames_per_episode  # not the all-episode copy
    # Not on disk, so LeRobot asks the Hub: refused offline (HF_HUB_OFFLINE=1 in the tests).
    with pytest.raises(OSError, match="does-not-exist"):
        missing.prepare_data()


# Batches


@pytest.mark.parametrize("num_workers", [0, 1])
def test_getiaction_batches_are_observations(tiny_dataset: LocalDataset, num_workers: int) -> None:
    module = module_for(tiny_dataset, num_workers=num_workers)

    batches = list(module.train_dataloader())

    assert sum(len(batch.task) for batch in batches) == tiny_dataset.num_frames
    batch = batches[0]
    assert isinstance(batch, Observation)
    assert batch.images.keys() == {"top"}
    assert batch.images["top"].shape == (BATCH, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert batch.images["top"].dtype == torch.float32
    assert batch.state is not None and batch.state.shape == (BATCH, STATE_DIM)
    assert batch.action is not None and batch.action.shape == (BATCH, ACTION_DIM)
    assert batch.next_reward is not None and batch.next_reward.shape == (BATCH,)
    assert batch.next_success is not None and batch.next_success.dtype == torch.bool
    for key in INDEX_KEYS:
        value = getattr(batch, key)
        assert isinstance(value, torch.Tensor) and value.shape == (BATCH,), key
    assert batch.index is not None and batch.index.dtype == torch.int64
    assert isinstance(batch.task, list) and len(batch.task) == BATCH
    assert set(batch.task) <= set(TASKS)
    assert batch.is_pad == {} and batch.extra == {}


@pytest.mark.parametrize("num_workers", [0, 1])
def test_lerobot_batches_are_flat_dicts(tiny_dataset: LocalDataset, num_workers: int) -> None:
    module = module_for(tiny_dataset, num_workers=num_workers, data_format="lerobot")

    batch = next(iter(module.train_dataloader()))

    assert isinstance(batch, dict)
    assert batch.keys() == {
        "observation.images.top",
        "observation.state",
        "action",
        "next.reward",
        "next.success",
        "task",
        *INDEX_KEYS,
    }
    assert batch["observation.images.top"].shape == (BATCH, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert batch["observation.state"].shape == (BATCH, STATE_DIM)
    assert batch["action"].shape == (BATCH, ACTION_DIM)
    assert batch["action"].dtype == torch.float32
    assert isinstance(batch["task"], list) and set(batch["task"]) <= set(TASKS)


def test_windowed_batches_carry_padding_masks_in_both_formats(tiny_dataset: LocalDataset) -> None:
    options = {"delta_timestamps": DELTAS, "shuffle": False}
    getiaction = next(iter(module_for(tiny_dataset, **options).train_dataloader()))
    lerobot = next(
        iter(module_for(tiny_dataset, data_format="lerobot", **options).train_dataloader())
    )

    assert getiaction.action.shape == (BATCH, 3, ACTION_DIM)
    assert getiaction.is_pad.keys() == {"action"}
    assert getiaction.is_pad["action"].shape == (BATCH, 3)
    assert torch.equal(getiaction.is_pad["action"], lerobot["action_is_pad"])
    assert torch.equal(getiaction.action, lerobot["action"])


def test_unshuffled_batches_follow_dataset_order(tiny_dataset: LocalDataset) -> None:
    module = module_for(tiny_dataset, shuffle=False)

    indices = torch.cat([batch.index for batch in module.train_dataloader()])

    assert indices.tolist() == list(range(tiny_dataset.num_frames))


def test_drop_last_drops_the_incomplete_batch(tiny_dataset: LocalDataset) -> None:
    module = module_for(tiny_dataset, drop_last=True)

    sizes = [len(batch.task) for batch in module.train_dataloader()]

    assert sizes == [BATCH] * (tiny_dataset.num_frames // BATCH)


def test_val_episodes_are_held_out_of_training(tiny_dataset: LocalDataset) -> None:
    module = module_for(tiny_dataset, val_episodes=[1], val_batch_size=3)

    module.setup("fit")
    train = torch.cat([batch.episode_index for batch in module.train_dataloader()])
    val_loader = module.val_dataloader()
    assert not isinstance(val_loader, list)
    val_batches = list(val_loader)

    assert set(train.tolist()) == {0}
    assert len(train) == tiny_dataset.frames_per_episode
    assert [len(batch.task) for batch in val_batches] == [3, 3, 3, 1]
    assert {int(i) for batch in val_batches for i in batch.episode_index} == {1}


def test_no_validation_gives_no_val_dataloader(tiny_dataset: LocalDataset) -> None:
    assert module_for(tiny_dataset).val_dataloader() == []


def test_existing_lerobot_dataset_is_used_as_is(tiny_dataset: LocalDataset) -> None:
    dataset = LeRobotDataset(
        tiny_dataset.repo_id, root=tiny_dataset.root, episodes=[0], video_backend="pyav"
    )
    module = LeRobotDataModule(dataset=dataset, train_batch_size=BATCH)

    assert module.train_source() is dataset
    episodes = torch.cat([batch.episode_index for batch in module.train_dataloader()])
    assert set(episodes.tolist()) == {0}


def _frames(count: int, task: str) -> list[dict[str, Any]]:
    return [
        {
            "observation.images.cam": torch.rand(3, 8, 8),
            "observation.state": torch.full((STATE_DIM,), float(i)),
            "action": torch.full((ACTION_DIM,), float(i)),
            "index": torch.tensor(i),
            "task": task,
        }
        for i in range(count)
    ]


@pytest.mark.parametrize("data_format", ["getiaction", "lerobot"])
def test_any_map_style_dataset_of_lerobot_dicts_plugs_in(data_format: str) -> None:
    module = LeRobotDataModule(
        dataset=_frames(5, "train"),
        val_dataset=_frames(2, "val"),
        train_batch_size=2,
        shuffle=False,
        data_format=data_format,  # type: ignore[arg-type]
    )

    train = next(iter(module.train_dataloader()))
    val_loader = module.val_dataloader()
    assert not isinstance(val_loader, list)
    val = next(iter(val_loader))

    if data_format == "getiaction":
        assert isinstance(train, Observation)
        assert train.images["cam"].shape == (2, 3, 8, 8)
        assert train.state is not None and train.state[:, 0].tolist() == [0.0, 1.0]
        assert val.task == ["val", "val"]
    else:
        assert train.keys() == {
            "observation.images.cam",
            "observation.state",
            "action",
            "index",
            "task",
        }
        assert train["observation.state"][:, 0].tolist() == [0.0, 1.0]
        assert val["task"] == ["val", "val"]


# Collate functions


def test_collate_observations_stacks_tensors_and_lists_strings() -> None:
    samples = [
        Observation(
            state=torch.full((STATE_DIM,), float(i)),
            images={"top": torch.zeros(3, 8, 8)},
            is_pad={"action": torch.tensor([False, True])},
            task=f"task {i}",
            info={"step": i},
        )
        for i in range(3)
    ]

    batch = collate_observations(samples)

    assert batch.state is not None and batch.state[:, 0].tolist() == [0.0, 1.0, 2.0]
    assert batch.images["top"].shape == (3, 3, 8, 8)
    assert batch.is_pad["action"].shape == (3, 2)
    assert batch.task == ["task 0", "task 1", "task 2"]
    assert batch.info is not None and batch.info["step"].tolist() == [0, 1, 2]
    assert batch.action is None


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ([], "cannot collate an empty batch"),
        ([Observation(action=torch.zeros(2)), Observation()], r"action is set in 1 of 2"),
        (
            [Observation(images={"a": torch.zeros(1)}), Observation(images={"b": torch.zeros(1)})],
            r"images has different keys within one batch: \['a'\] vs \['b'\]",
        ),
    ],
    ids=["empty", "missing-field", "different-cameras"],
)
def test_collate_observations_rejects_inconsistent_batches(
    samples: list[Observation], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        collate_observations(samples)


def test_collate_lerobot_keeps_keys_and_lists_strings() -> None:
    batch = collate_lerobot(_frames(3, "pick"))

    assert batch["observation.images.cam"].shape == (3, 3, 8, 8)
    assert batch["index"].tolist() == [0, 1, 2]
    assert batch["task"] == ["pick"] * 3


def test_collate_lerobot_rejects_samples_with_different_keys() -> None:
    with pytest.raises(ValueError, match="samples of one batch have different keys"):
        collate_lerobot([{"action": torch.zeros(1)}, {"state": torch.zeros(1)}])
    with pytest.raises(ValueError, match="cannot collate an empty batch"):
        collate_lerobot([])


# Lightning integration


class _BehaviourCloning(lightning.LightningModule):
    """Linear state -> action policy that records what the Trainer hands it."""

    def __init__(self) -> None:
        super().__init__()
        self.policy = torch.nn.Linear(STATE_DIM, ACTION_DIM)
        self.seen: list[tuple[str, type, int]] = []

    def _loss(self, batch: Observation, stage: str) -> torch.Tensor:
        assert batch.state is not None and batch.action is not None
        self.seen.append((stage, type(batch), len(batch.state)))
        return torch.nn.functional.mse_loss(self.policy(batch.state), batch.action)

    def training_step(self, batch: Observation, batch_idx: int) -> torch.Tensor:
        return self._loss(batch, "train")

    def validation_step(self, batch: Observation, batch_idx: int) -> torch.Tensor:
        return self._loss(batch, "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def test_trainer_fits_on_observation_batches(tiny_dataset: LocalDataset) -> None:
    module = module_for(tiny_dataset, val_episodes=[1])
    model = _BehaviourCloning()
    trainer = lightning.Trainer(
        accelerator="cpu",
        fast_dev_run=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )

    trainer.fit(model, datamodule=module)

    assert trainer.state.finished
    assert model.seen == [("train", Observation, BATCH)] * 2 + [("val", Observation, BATCH)] * 2
