"""Lightning ``DataModule`` serving LeRobot datasets as Observation or LeRobot batches.

:class:`LeRobotDataModule` loads a ``LeRobotDataset`` by repository id, or takes any
map-style dataset whose items are LeRobot-format dicts (a ``LeRobotDataset``, or another
source such as a robodm reader), and builds the training and optional validation
``DataLoader``. ``data_format`` picks the batch type:

* ``"getiaction"`` (default): items pass through
  :class:`~robodm_engine.lerobot.dataset._ObservationDataset` and are collated field-wise
  by :func:`collate_observations` into one batched
  :class:`~robodm_engine.lerobot.converters.Observation`.
* ``"lerobot"``: the source items are collated as they are (``default_collate``), which is
  what LeRobot's own policies consume.

In both formats tensors are stacked along a new batch dimension and strings (``task``)
become lists of strings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import lightning
import torch
from lerobot.datasets.dataset_metadata import LeRobotDatasetMetadata
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from torch.utils.data import DataLoader, Dataset, default_collate

from .converters import DataFormat, Observation
from .dataset import (
    DEFAULT_TOLERANCE_S,
    DEFAULT_VIDEO_BACKEND,
    _check_map_style,
    _LeRobotDatasetAdapter,
    _ObservationDataset,
)

__all__ = ["LeRobotDataModule", "collate_lerobot", "collate_observations"]

_SourceDataset = Dataset[Mapping[str, Any]] | Sequence[Mapping[str, Any]]
_MAPPING_FIELDS = ("images", "is_pad", "extra")


def collate_observations(samples: Sequence[Observation]) -> Observation:
    """Collate Observations field by field into one batched Observation.

    Tensors are stacked along a new first dimension, numbers become tensors and strings
    are kept as a list, recursively inside mappings (``torch``'s ``default_collate``
    rules). A field that is ``None`` in every sample stays ``None``.

    Args:
        samples: The Observations of one batch, all with the same fields set.

    Returns:
        The batched Observation.

    Raises:
        ValueError: ``samples`` is empty, a field is set in some samples only, or a
            mapping field (``images``, ``is_pad``, ``extra``) has different keys.

    Examples:
        >>> import torch
        >>> batch = collate_observations(
        ...     [Observation(state=torch.zeros(6), task="pick"),
        ...      Observation(state=torch.ones(6), task="place")]
        ... )
        >>> batch.state.shape, batch.task
        (torch.Size([2, 6]), ['pick', 'place'])
    """
    if not samples:
        raise ValueError("cannot collate an empty batch")
    collated: dict[str, Any] = {}
    for spec in dataclasses.fields(Observation):
        values = [getattr(sample, spec.name) for sample in samples]
        present = sum(value is not None for value in values)
        if present == 0:
            collated[spec.name] = None
            continue
        if present != len(values):
            raise ValueError(
                f"Observation.{spec.name} is set in {present} of {len(values)} samples; "
                "every sample of a batch must have the same fields"
            )
        if spec.name in _MAPPING_FIELDS or spec.name == "info":
            keys = set(values[0])
            for value in values[1:]:
                if set(value) != keys:
                    raise ValueError(
                        f"Observation.{spec.name} has different keys within one batch: "
                        f"{sorted(keys)} vs {sorted(value)}"
                    )
        collated[spec.name] = default_collate(values)
    return Observation(**collated)


def collate_lerobot(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Collate LeRobot-format dicts into one batch dict (``torch``'s ``default_collate``).

    Args:
        samples: The items of one batch, all with the same keys.

    Returns:
        A dict with the same keys: tensors stacked, strings as lists.

    Raises:
        ValueError: ``samples`` is empty or the samples have different keys.

    Examples:
        >>> import torch
        >>> batch = collate_lerobot([{"action": torch.zeros(4), "task": "pick"}] * 3)
        >>> batch["action"].shape, batch["task"]
        (torch.Size([3, 4]), ['pick', 'pick', 'pick'])
    """
    if not samples:
        raise ValueError("cannot collate an empty batch")
    keys = set(samples[0])
    for sample in samples[1:]:
        if set(sample) != keys:
            raise ValueError(
                f"samples of one batch have different keys: {sorted(keys)} vs {sorted(sample)}"
            )
    return dict(default_collate(list(samples)))


class LeRobotDataModule(lightning.LightningDataModule):
    """Training (and optional validation) data from a LeRobot dataset.

    Give exactly one of ``repo_id`` (the dataset is loaded with the loading options below)
    or ``dataset`` (used as it is; configure it yourself). Datasets are built on first use
    (:meth:`setup` or a ``*_dataloader`` call), not in the constructor.

    Args:
        repo_id: Dataset repository id, read from ``root`` when given, else from
            ``$HF_LEROBOT_HOME`` or the Hugging Face Hub.
        dataset: A ``LeRobotDataset``, or any map-style dataset whose items are
            LeRobot-format dicts.
        root: Local directory of the dataset (``repo_id`` only).
        episodes: Episodes to train on (``repo_id`` only). Default: all episodes, minus
            ``val_episodes``.
        val_episodes: Episodes to validate on (``repo_id`` only); they must not overlap
            ``episodes``. Default: no validation.
        val_dataset: Validation dataset to go with ``dataset`` (``dataset`` only).
        train_batch_size: Samples per training batch.
        val_batch_size: Samples per validation batch; defaults to ``train_batch_size``.
        num_workers: ``DataLoader`` worker processes (``0`` loads in the main process).
            Video decoding dominates loading time, so use several for real datasets.
        shuffle: Shuffle the training set every epoch.
        drop_last: Drop the last, incomplete training batch.
        delta_timestamps: Feature -> offsets in seconds of the frames to stack around
            each frame (``repo_id`` only), e.g. ``{"action": [0.0, 0.1, 0.2]}``.
        image_transforms: Callable applied to each decoded camera frame (``repo_id`` only).
        tolerance_s: Timestamp tolerance in seconds (``repo_id`` only); default ``1e-4``.
        video_backend: Video decoder (``repo_id`` only); default ``"pyav"``, which needs no
            system FFmpeg.
        data_format: ``"getiaction"`` for :class:`Observation` batches, ``"lerobot"`` for
            LeRobot's flat dicts.

    Raises:
        ValueError: Not exactly one of ``repo_id``/``dataset``, a ``repo_id``-only option
            given with ``dataset`` (or ``val_dataset`` with ``repo_id``), overlapping
            train and validation episodes, a non-positive batch size, or an unknown
            ``data_format``.
        TypeError: ``dataset`` or ``val_dataset`` is not a map-style dataset.

    Examples:
        >>> dm = LeRobotDataModule(repo_id="lerobot/pusht", train_batch_size=32)  # doctest: +SKIP
        >>> batch = next(iter(dm.train_dataloader()))  # doctest: +SKIP
        >>> batch.images["image"].shape  # doctest: +SKIP
        torch.Size([32, 3, 96, 96])
    """

    def __init__(
        self,
        *,
        repo_id: str | None = None,
        dataset: _SourceDataset | None = None,
        root: str | Path | None = None,
        episodes: list[int] | None = None,
        val_episodes: list[int] | None = None,
        val_dataset: _SourceDataset | None = None,
        train_batch_size: int = 16,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        delta_timestamps: dict[str, list[float]] | None = None,
        image_transforms: Callable[[torch.Tensor], torch.Tensor] | None = None,
        tolerance_s: float | None = None,
        video_backend: str | None = None,
        data_format: DataFormat | Literal["getiaction", "lerobot"] = DataFormat.GETIACTION,
    ) -> None:
        super().__init__()
        if (repo_id is None) == (dataset is None):
            raise ValueError(
                "give exactly one of 'repo_id' (to load a LeRobot dataset) or 'dataset' "
                "(to use an existing one)"
            )
        if dataset is not None:
            repo_only = {
                "root": root,
                "episodes": episodes,
                "val_episodes": val_episodes,
                "delta_timestamps": delta_timestamps,
                "image_transforms": image_transforms,
                "tolerance_s": tolerance_s,
                "video_backend": video_backend,
            }
            given = sorted(name for name, value in repo_only.items() if value is not None)
            if given:
                raise ValueError(
                    f"{', '.join(given)} only apply when loading by 'repo_id'; configure the "
                    "'dataset' you pass instead"
                )
            _check_map_style(dataset, "dataset")
            if val_dataset is not None:
                _check_map_style(val_dataset, "val_dataset")
        elif val_dataset is not None:
            raise ValueError("'val_dataset' goes with 'dataset'; with 'repo_id' use 'val_episodes'")
        if episodes is not None and val_episodes is not None:
            overlap = sorted(set(episodes) & set(val_episodes))
            if overlap:
                raise ValueError(f"episodes {overlap} are in both 'episodes' and 'val_episodes'")
        for name, size in (
            ("train_batch_size", train_batch_size),
            ("val_batch_size", val_batch_size),
        ):
            if size is not None and size < 1:
                raise ValueError(f"{name} must be >= 1, got {size}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")

        self.data_format = DataFormat(data_format)
        self.repo_id = repo_id
        self.root = root
        self.episodes = episodes
        self.val_episodes = val_episodes
        self.train_batch_size = train_batch_size
        self.val_batch_size = train_batch_size if val_batch_size is None else val_batch_size
        self.num_workers = num_workers
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.delta_timestamps = delta_timestamps
        self.image_transforms = image_transforms
        self.tolerance_s = DEFAULT_TOLERANCE_S if tolerance_s is None else tolerance_s
        self.video_backend = DEFAULT_VIDEO_BACKEND if video_backend is None else video_backend
        self._train_source: _SourceDataset | None = dataset
        self._val_source: _SourceDataset | None = val_dataset

    @property
    def has_validation(self) -> bool:
        """Whether validation data was configured (``val_episodes`` or ``val_dataset``)."""
        return self.val_episodes is not None or self._val_source is not None

    def prepare_data(self) -> None:
        """Fetch the dataset once, before :meth:`setup` runs on every process.

        Lightning calls this on a single process per node, so that processes do not
        download the same files concurrently. A local or cached dataset is only opened.
        """
        if self.repo_id is not None:
            self._load(None)

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets ``stage`` needs; datasets already built are kept.

        Args:
            stage: ``"fit"``, ``"validate"``, ... as passed by the Lightning ``Trainer``;
                ``None`` builds every configured dataset.
        """
        if stage in (None, "fit"):
            self.train_source()
        if stage in (None, "fit", "validate") and self.has_validation:
            self.val_source()

    def train_source(self) -> _SourceDataset:
        """Return the training dataset in LeRobot format, loading it on first call."""
        if self._train_source is None:
            self._train_source = self._load(self._train_episodes())
        return self._train_source

    def val_source(self) -> _SourceDataset:
        """Return the validation dataset in LeRobot format, loading it on first call.

        Raises:
            ValueError: No validation data was configured.
        """
        if self._val_source is None:
            if self.val_episodes is None:
                raise ValueError(
                    "no validation data configured: pass 'val_episodes' (with 'repo_id') or "
                    "'val_dataset' (with 'dataset')"
                )
            self._val_source = self._load(self.val_episodes)
        return self._val_source

    def train_dataloader(self) -> DataLoader[Any]:
        """Return the training ``DataLoader`` yielding batches in :attr:`data_format`."""
        return self._dataloader(
            self.train_source(),
            batch_size=self.train_batch_size,
            shuffle=self.shuffle,
            drop_last=self.drop_last,
        )

    def val_dataloader(self) -> DataLoader[Any] | list[DataLoader[Any]]:
        """Return the validation ``DataLoader``, or ``[]`` (Lightning then skips validation)."""
        if not self.has_validation:
            return []
        return self._dataloader(
            self.val_source(), batch_size=self.val_batch_size, shuffle=False, drop_last=False
        )

    def _train_episodes(self) -> list[int] | None:
        if self.episodes is not None or self.val_episodes is None:
            return self.episodes
        assert self.repo_id is not None  # val_episodes is rejected with 'dataset'
        total = LeRobotDatasetMetadata(self.repo_id, root=self.root).total_episodes
        held_out = set(self.val_episodes)
        return [episode for episode in range(total) if episode not in held_out]

    def _load(self, episodes: list[int] | None) -> LeRobotDataset:
        assert self.repo_id is not None  # only called when no dataset was given
        return LeRobotDataset(
            self.repo_id,
            root=self.root,
            episodes=episodes,
            image_transforms=self.image_transforms,
            delta_timestamps=self.delta_timestamps,
            tolerance_s=self.tolerance_s,
            video_backend=self.video_backend,
        )

    def _dataloader(
        self, source: _SourceDataset, *, batch_size: int, shuffle: bool, drop_last: bool
    ) -> DataLoader[Any]:
        dataset: Dataset[Any] | Sequence[Any]
        collate: Callable[[Any], Any]
        if self.data_format is DataFormat.GETIACTION:
            dataset = (
                _LeRobotDatasetAdapter.from_lerobot(source)
                if isinstance(source, LeRobotDataset)
                else _ObservationDataset(source)
            )
            collate = collate_observations
        else:
            dataset, collate = source, collate_lerobot
        return DataLoader(
            dataset,  # type: ignore[arg-type]
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.num_workers,
            collate_fn=collate,
            # Re-forking workers every epoch re-opens every video file; keep them.
            persistent_workers=self.num_workers > 0,
        )
