"""Map-style datasets that serve :class:`~robodm_engine.lerobot.converters.Observation` items.

:class:`_ObservationDataset` wraps *any* map-style dataset whose items are LeRobot-format
dicts and converts each item on access (zero-copy, see
:class:`~robodm_engine.lerobot.converters.FormatConverter`). It is the seam through which
other sources (robodm trajectories, for instance) reach
:class:`~robodm_engine.lerobot.datamodule.LeRobotDataModule`.

:class:`_LeRobotDatasetAdapter` specialises it for ``lerobot.datasets.LeRobotDataset`` and
surfaces the metadata policies need (features, fps, delta indices). Both are internal:
users should go through ``LeRobotDataModule``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from torch.utils.data import Dataset, IterableDataset

from .converters import FormatConverter, Observation

__all__ = ["_LeRobotDatasetAdapter", "_ObservationDataset"]

DEFAULT_VIDEO_BACKEND = "pyav"
"""PyAV ships its own FFmpeg; LeRobot's default, torchcodec, needs system FFmpeg libraries."""
DEFAULT_TOLERANCE_S = 1e-4
"""LeRobot's default timestamp tolerance."""


def _check_map_style(dataset: object, argument: str) -> None:
    """Reject what a shuffling ``DataLoader`` cannot index.

    Raises:
        TypeError: ``dataset`` is iterable-style or lacks ``__getitem__``/``__len__``.
    """
    if isinstance(dataset, IterableDataset) or not (
        hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")
    ):
        raise TypeError(
            f"{argument} must be a map-style dataset (with __getitem__ and __len__) "
            f"yielding LeRobot-format dicts, got {type(dataset).__name__}"
        )


class _ObservationDataset(Dataset[Observation]):
    """Present a dataset of LeRobot-format dicts as a dataset of Observations.

    Args:
        source: Any map-style dataset whose items are flat (or nested) LeRobot dicts.

    Raises:
        TypeError: ``source`` is not map-style.

    Examples:
        >>> import torch
        >>> items = [{"observation.state": torch.zeros(6), "action": torch.ones(4)}]
        >>> _ObservationDataset(items)[0].action
        tensor([1., 1., 1., 1.])
    """

    def __init__(self, source: Dataset[Mapping[str, Any]] | Sequence[Mapping[str, Any]]) -> None:
        _check_map_style(source, "source")
        self._source = source

    @property
    def source(self) -> Dataset[Mapping[str, Any]] | Sequence[Mapping[str, Any]]:
        """The wrapped dataset, yielding LeRobot-format dicts."""
        return self._source

    def __len__(self) -> int:
        """Return the number of items (frames) of the source."""
        return len(self._source)  # type: ignore[arg-type]

    def __getitem__(self, idx: int) -> Observation:
        """Return item ``idx`` of the source as an Observation.

        Raises:
            TypeError: The source item is not a LeRobot dict.
        """
        return FormatConverter.to_observation(self._source[idx])


class _LeRobotDatasetAdapter(_ObservationDataset):
    """A ``LeRobotDataset`` whose items are Observations.

    Build it from a repository id (read from ``root`` when given, otherwise from
    ``$HF_LEROBOT_HOME`` or the Hub), or wrap an existing dataset with
    :meth:`from_lerobot`.

    Args:
        repo_id: Dataset repository id, e.g. ``"lerobot/pusht"``.
        root: Local directory holding the dataset (``meta/info.json`` at its top).
        episodes: Episode indices to load; ``None`` loads all.
        image_transforms: Callable applied to every decoded camera frame ``(C, H, W)``.
        delta_timestamps: Feature -> offsets in seconds (multiples of ``1 / fps``) of the
            frames to stack around each frame, e.g. ``{"action": [0.0, 0.1]}``. Windowed
            features gain a leading time dimension and a padding mask in
            ``Observation.is_pad``.
        tolerance_s: Allowed deviation, in seconds, of stored and requested timestamps.
        video_backend: Video decoder: ``"pyav"`` (default) or ``"torchcodec"``
            (needs system FFmpeg); ``None`` lets LeRobot pick.

    Examples:
        >>> adapter = _LeRobotDatasetAdapter("lerobot/pusht")  # doctest: +SKIP
        >>> adapter[0].images["image"].shape  # doctest: +SKIP
        torch.Size([3, 96, 96])
    """

    _source: LeRobotDataset

    def __init__(
        self,
        repo_id: str,
        *,
        root: str | Path | None = None,
        episodes: list[int] | None = None,
        image_transforms: Callable[[torch.Tensor], torch.Tensor] | None = None,
        delta_timestamps: dict[str, list[float]] | None = None,
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        video_backend: str | None = DEFAULT_VIDEO_BACKEND,
    ) -> None:
        dataset = LeRobotDataset(
            repo_id,
            root=root,
            episodes=episodes,
            image_transforms=image_transforms,
            delta_timestamps=delta_timestamps,
            tolerance_s=tolerance_s,
            video_backend=video_backend,
        )
        super().__init__(dataset)

    @classmethod
    def from_lerobot(cls, dataset: LeRobotDataset) -> _LeRobotDatasetAdapter:
        """Wrap an already constructed ``LeRobotDataset`` without reloading it.

        Args:
            dataset: The dataset to serve; it keeps its own options (episodes,
                delta_timestamps, transforms, video backend).

        Returns:
            An adapter sharing ``dataset``.

        Raises:
            TypeError: ``dataset`` is not a ``LeRobotDataset``.
        """
        if not isinstance(dataset, LeRobotDataset):
            raise TypeError(
                f"from_lerobot() expects a lerobot LeRobotDataset, got {type(dataset).__name__}"
            )
        # Bypass __init__, which loads a dataset by repo id; the base initialiser is all
        # an adapter around an existing dataset needs.
        adapter = cls.__new__(cls)
        _ObservationDataset.__init__(adapter, dataset)
        return adapter

    @property
    def lerobot_dataset(self) -> LeRobotDataset:
        """The wrapped ``LeRobotDataset``."""
        return self._source

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        """Feature name -> ``{"dtype", "shape", "names", ...}`` from ``meta/info.json``."""
        features: dict[str, dict[str, Any]] = self._source.features
        return features

    @property
    def action_features(self) -> dict[str, dict[str, Any]]:
        """The subset of :attr:`features` that are actions (``action`` and ``action.*``)."""
        return {
            name: spec
            for name, spec in self._source.features.items()
            if name == "action" or name.startswith("action.")
        }

    @property
    def fps(self) -> int:
        """Frames per second the dataset was recorded at."""
        return int(self._source.fps)

    @property
    def tolerance_s(self) -> float:
        """Timestamp tolerance in seconds the dataset was opened with."""
        return float(self._source.tolerance_s)

    @property
    def delta_indices(self) -> dict[str, list[int]] | None:
        """Feature -> frame offsets derived from ``delta_timestamps``, or ``None``.

        ``{"action": [0.0, 0.1]}`` at 10 fps gives ``{"action": [0, 1]}``. Returns a copy.
        """
        # lerobot 0.6 moved delta_indices from LeRobotDataset onto its DatasetReader. The
        # reader is None on a dataset opened for writing (create()/resume()), which also
        # has no delta_timestamps, hence no delta indices.
        reader = self._source.reader
        if reader is None or reader.delta_indices is None:
            return None
        return {name: list(offsets) for name, offsets in reader.delta_indices.items()}
