"""A robodm dataset served as LeRobot samples: a map-style torch ``Dataset``.

:class:`RoboDMLeRobotDataset` reads the trajectories a manifest lists (local or ``s3://``)
and yields, per frame, the flat dict ``LeRobotDataset`` yields for the same data exported with
:func:`~robodm_engine.lerobot.export.export_lerobot`: same keys (robodm ``/`` names as
LeRobot ``.`` names), shapes and dtypes:

==============================  =============================================================
``observation.images.<cam>``    float32 ``(C, H, W)`` in ``[0, 1]`` (any uint8 RGB feature)
``observation.state``, ...      tensors of the stored dtype, floats as float32; shape
                                ``(1,)`` and scalar features as 0-d tensors, like LeRobot
``timestamp``                   float32, ``frame_index / fps``
``frame_index``, ``index``      int64: position in the episode / in the dataset
``episode_index``               int64: the trajectory's position in the manifest
``task_index``, ``task``        int64 index into :attr:`RoboDMLeRobotDataset.tasks`, and str
==============================  =============================================================

Episodes are trajectories resampled to ``fps`` (by default the dataset's nominal rate), so
``delta_timestamps`` work as in LeRobot: offsets in seconds, multiples of ``1 / fps``, become
frame offsets clamped to the episode, with a ``<key>_is_pad`` mask.

Decoding. A trajectory is decoded whole, once, and kept in a small per-process LRU cache
(``cache_size`` trajectories, uint8 frames), so reading an episode in order costs one
sequential decode instead of one seek per frame. Each ``DataLoader`` worker holds its own
cache. Fully random access over many trajectories defeats any such cache (each frame would cost a
trajectory decode); :class:`EpisodeBlockSampler` shuffles for training while visiting only
``cache_size`` trajectories at a time.

Examples:
    >>> from torch.utils.data import DataLoader
    >>> ds = RoboDMLeRobotDataset("s3://datasets/pick-v1",  # doctest: +SKIP
    ...                           delta_timestamps={"action": [0.0, 0.1, 0.2]})
    >>> batch = next(iter(DataLoader(ds, batch_size=32)))  # doctest: +SKIP
    >>> batch["action"].shape, batch["action_is_pad"].shape  # doctest: +SKIP
    (torch.Size([32, 3, 7]), torch.Size([32, 3]))
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from robodm_engine import timeline
from robodm_engine.errors import DatasetError
from robodm_engine.lerobot.export import (
    as_rows,
    image_stats,
    index_columns,
    lerobot_features,
    nominal_fps,
)
from robodm_engine.lerobot.source import DEFAULT_TOLERANCE_S, TASK_KEY
from robodm_engine.manifest import DatasetManifest, TrajectoryRecord, read_manifest
from robodm_engine.manifest import split_manifest_uri as _split_manifest_uri
from robodm_engine.storage import StorageOptions

__all__ = ["EpisodeBlockSampler", "RoboDMLeRobotDataset", "RoboDMLeRobotMeta"]


@dataclass
class RoboDMLeRobotMeta:
    """The subset of ``LeRobotDatasetMetadata`` that training code reads.

    Attributes:
        fps: frames per second of the (resampled) episodes.
        features: LeRobot feature specs (``dtype``, ``shape``, ``names``), videos included.
        tasks: task strings by ``task_index``.
        episode_lengths: frames per episode.
        stats: LeRobot-style normalization stats, computed on first access by
            :meth:`RoboDMLeRobotDataset.compute_stats` (decodes every trajectory once).
    """

    fps: int
    features: dict[str, dict[str, Any]]
    tasks: list[str]
    episode_lengths: list[int]
    stats: dict[str, dict[str, np.ndarray]] | None = field(default=None, repr=False)

    @property
    def total_episodes(self) -> int:
        """Number of episodes (trajectories)."""
        return len(self.episode_lengths)

    @property
    def total_frames(self) -> int:
        """Number of frames over all episodes."""
        return int(sum(self.episode_lengths))

    @property
    def camera_keys(self) -> list[str]:
        """Image features, in LeRobot names."""
        return [k for k, f in self.features.items() if f["dtype"] in ("video", "image")]


class RoboDMLeRobotDataset(Dataset[dict[str, Any]]):
    """Frames of a robodm dataset as LeRobot-format dicts (see the module docs).

    Args:
        source: the dataset root or its ``manifest.json``, local or ``s3://``.
        episodes: manifest positions of the trajectories to serve (all when ``None``);
            ``episode_index`` keeps the manifest position.
        fps: rate to resample to; default the dataset's nominal rate
            (:func:`~robodm_engine.lerobot.export.nominal_fps`).
        delta_timestamps: LeRobot feature name -> offsets in seconds (multiples of
            ``1 / fps`` within ``tolerance_s``).
        tolerance_s: tolerance of that check (LeRobot's default ``1e-4``).
        image_transforms: applied to every camera frame, float32 ``(C, H, W)``.
        task_feature: the string feature holding tasks.
        default_task: the task of trajectories without ``task_feature`` (else an error).
        cache_size: decoded trajectories kept per process.
        storage_options: endpoint and retries for ``s3://`` datasets.

    Raises:
        DatasetError: no manifest at ``source``.
        ValueError: bad ``delta_timestamps`` (unknown feature, off the frame grid), unknown
            episodes, a trajectory without a task and no ``default_task``, or
            ``cache_size < 1``.

    Examples:
        >>> ds = RoboDMLeRobotDataset("/data/robodm/pick", default_task="pick")  # doctest: +SKIP
        >>> ds[0]["observation.image"].shape, ds.fps  # doctest: +SKIP
        (torch.Size([3, 224, 224]), 10)
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        episodes: Sequence[int] | None = None,
        fps: int | None = None,
        delta_timestamps: Mapping[str, Sequence[float]] | None = None,
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        image_transforms: Callable[[torch.Tensor], torch.Tensor] | None = None,
        task_feature: str = TASK_KEY,
        default_task: str | None = None,
        cache_size: int = 4,
        storage_options: StorageOptions | None = None,
    ) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be >= 1, got {cache_size}")
        location = os.fspath(source)
        self._manifest: DatasetManifest = read_manifest(location, storage_options)
        self._root, _ = _split_manifest_uri(location)
        self._storage_options = storage_options
        records = self._manifest.trajectories
        positions = list(range(len(records))) if episodes is None else [int(e) for e in episodes]
        bad = sorted(set(positions) - set(range(len(records))))
        if bad:
            raise ValueError(
                f"episode(s) {bad} are not in the dataset ({len(records)} trajectories)"
            )
        self._records: list[TrajectoryRecord] = [records[i] for i in positions]
        self._episode_indices = positions
        self.fps = int(fps) if fps is not None else nominal_fps(self._manifest)
        features, self._sources = lerobot_features(
            self._manifest.features, task_feature=task_feature
        )
        self.task_feature = task_feature
        self.default_task = default_task
        self.tolerance_s = tolerance_s
        self.image_transforms = image_transforms
        self.cache_size = cache_size
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()

        lengths = [
            len(timeline.resample_grid(r.start_ms, r.end_ms, self.fps)) for r in self._records
        ]
        self._starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        # Global frame index of an episode's first frame over the *whole* dataset, so that
        # ``index`` matches an export of every trajectory even when serving a subset.
        every = [len(timeline.resample_grid(r.start_ms, r.end_ms, self.fps)) for r in records]
        offsets = np.concatenate([[0], np.cumsum(every)]).astype(np.int64)
        self._first_index = [int(offsets[i]) for i in positions]
        self.meta = RoboDMLeRobotMeta(self.fps, features, self._read_tasks(records), lengths)
        self._task_index = {task: i for i, task in enumerate(self.meta.tasks)}

        self.delta_indices: dict[str, list[int]] | None = None
        if delta_timestamps is not None:
            from lerobot.datasets.feature_utils import check_delta_timestamps, get_delta_indices

            unknown = sorted(set(delta_timestamps) - set(features))
            if unknown:
                raise ValueError(f"delta_timestamps names unknown feature(s) {unknown}")
            deltas = {k: list(v) for k, v in delta_timestamps.items()}
            check_delta_timestamps(deltas, self.fps, tolerance_s)
            self.delta_indices = get_delta_indices(deltas, self.fps)

    # --- LeRobotDataset-like surface --------------------------------------------------------

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        """LeRobot feature specs (``info.json`` style), bookkeeping columns included."""
        return self.meta.features

    @property
    def tasks(self) -> list[str]:
        """Task strings, by ``task_index`` (first-seen order over the manifest)."""
        return self.meta.tasks

    @property
    def num_episodes(self) -> int:
        """Episodes served."""
        return len(self._records)

    @property
    def num_frames(self) -> int:
        """Frames served."""
        return int(self._starts[-1])

    @property
    def camera_keys(self) -> list[str]:
        """Camera features, in LeRobot names."""
        return self.meta.camera_keys

    def __len__(self) -> int:
        """Number of frames."""
        return self.num_frames

    def __getitem__(self, idx: int) -> dict[str, Any]:
        """Frame ``idx`` (over the episodes served) as a LeRobot-format dict.

        Raises:
            IndexError: ``idx`` is out of range.
        """
        if not -len(self) <= idx < len(self):
            raise IndexError(f"index {idx} out of range for {len(self)} frames")
        idx = int(idx) % len(self)
        local = int(np.searchsorted(self._starts, idx, side="right")) - 1
        frame = idx - int(self._starts[local])
        data = self._episode(local)
        length = self.meta.episode_lengths[local]
        item: dict[str, Any] = {}
        for key in self._sources:
            item[key] = self._value(key, data[key], frame)
        if self.delta_indices is not None:
            for key, deltas in self.delta_indices.items():
                wanted = np.asarray([frame + d for d in deltas])
                rows = np.clip(wanted, 0, length - 1)
                item[key] = torch.stack([self._value(key, data[key], int(r)) for r in rows])
                item[f"{key}_is_pad"] = torch.from_numpy((wanted < 0) | (wanted >= length))
        task = data[TASK_KEY][frame]
        item["timestamp"] = torch.tensor(np.float32(frame / self.fps))
        item["frame_index"] = torch.tensor(frame, dtype=torch.int64)
        item["episode_index"] = torch.tensor(self._episode_indices[local], dtype=torch.int64)
        item["index"] = torch.tensor(self._first_index[local] + frame, dtype=torch.int64)
        item["task_index"] = torch.tensor(self._task_index[task], dtype=torch.int64)
        item["task"] = task
        return item

    def compute_stats(self) -> dict[str, dict[str, np.ndarray]]:
        """LeRobot normalization stats of the served episodes (cached in ``meta.stats``).

        The same per-episode functions and aggregation as LeRobot's writer (see
        :mod:`robodm_engine.lerobot.export`); decodes every trajectory once.
        """
        from lerobot.datasets.compute_stats import aggregate_stats, compute_episode_stats

        if self.meta.stats is None:
            per_episode = []
            for local in range(self.num_episodes):
                data = self._episode(local)
                columns = {
                    k: data[k]
                    for k in self._sources
                    if self.features[k]["dtype"] not in ("video", "string")
                }
                length = self.meta.episode_lengths[local]
                columns.update(
                    index_columns(
                        length,
                        self.fps,
                        self._episode_indices[local],
                        self._first_index[local],
                        [self._task_index[t] for t in data[TASK_KEY]],
                    )
                )
                numeric = as_rows(columns, self.features)
                stats = compute_episode_stats(numeric, {k: self.features[k] for k in numeric})
                for key in self.camera_keys:
                    stats[key] = image_stats(data[key])
                per_episode.append(stats)
            self.meta.stats = aggregate_stats(per_episode)
        return self.meta.stats

    # --- decoding ---------------------------------------------------------------------------

    def _value(self, key: str, values: np.ndarray, row: int) -> Any:
        kind = self.features[key]["dtype"]
        if kind == "video":
            image = torch.from_numpy(values[row]).permute(2, 0, 1).to(torch.float32) / 255.0
            return self.image_transforms(image) if self.image_transforms is not None else image
        if kind == "string":
            return str(values[row])
        value = np.array(values[row])
        if tuple(self.features[key]["shape"]) == (1,):
            # LeRobot stores shape-(1,) features as scalars and returns 0-d tensors.
            value = value.reshape(())
        if value.dtype.kind == "f":
            # LeRobot builds tensors from Python floats: every float feature comes out as
            # float32 (torch's default dtype), float64 included.
            value = value.astype(np.float32)
        return torch.from_numpy(value)

    def _episode(self, local: int) -> dict[str, np.ndarray]:
        """The decoded, resampled trajectory ``local`` (LeRobot names, plus ``task``)."""
        cached = self._cache.get(local)
        if cached is not None:
            self._cache.move_to_end(local)
            return cached
        record = self._records[local]
        names = list(self._sources.values())
        if self.task_feature in record.features:
            names.append(self.task_feature)
        raw = self._load(record, names)
        length = self.meta.episode_lengths[local]
        data = {key: raw[name] for key, name in self._sources.items()}
        data[TASK_KEY] = self._tasks_of(record, raw, length)
        for key, values in data.items():
            if len(values) != length:
                raise DatasetError(
                    f"{record.path}: {key} has {len(values)} frames at "
                    f"{self.fps} fps, expected {length}"
                )
        self._cache[local] = data
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return data

    def _load(self, record: TrajectoryRecord, names: list[str]) -> dict[str, np.ndarray]:
        from robodm_engine.storage import open_store
        from robodm_engine.trajectory import Trajectory

        store = open_store(self._root, self._storage_options)
        with contextlib.ExitStack() as stack:
            handle = stack.enter_context(store.open(record.path))
            traj = Trajectory(handle)
            stack.callback(traj.close)
            return traj.load(desired_frequency=self.fps, features=names)

    def _tasks_of(
        self, record: TrajectoryRecord, raw: Mapping[str, np.ndarray], length: int
    ) -> np.ndarray:
        if self.task_feature in raw:
            return np.asarray([str(t) for t in raw[self.task_feature]], dtype=object)
        if self.default_task is None:
            raise ValueError(
                f"trajectory {record.name!r} has no {self.task_feature!r} feature; "
                "pass default_task= or task_feature="
            )
        return np.full(length, self.default_task, dtype=object)

    def _read_tasks(self, records: Sequence[TrajectoryRecord]) -> list[str]:
        """Every task string, in first-seen order over the whole manifest.

        Only the task stream is decoded; task indices are then the same in every process
        and in an export of the whole dataset.
        """
        tasks: dict[str, None] = {}
        for record in records:
            if self.task_feature in record.features:
                values = self._load(record, [self.task_feature])[self.task_feature]
                tasks.update(dict.fromkeys(str(t) for t in values))
            elif self.default_task is not None:
                tasks[self.default_task] = None
            else:
                raise ValueError(
                    f"trajectory {record.name!r} has no {self.task_feature!r} "
                    "feature; pass default_task= or task_feature="
                )
        return list(tasks)

    def episode_ranges(self) -> list[range]:
        """The frame indices of each served episode, in order."""
        return [
            range(int(a), int(b)) for a, b in zip(self._starts[:-1], self._starts[1:], strict=True)
        ]

    def __getstate__(self) -> dict[str, Any]:
        # Workers start with an empty cache: decoded frames are never pickled to them.
        return {**self.__dict__, "_cache": OrderedDict()}

    def __repr__(self) -> str:
        return (
            f"RoboDMLeRobotDataset({self._root!r}, episodes={self.num_episodes}, "
            f"frames={self.num_frames}, fps={self.fps})"
        )


class EpisodeBlockSampler(Sampler[int]):
    """Random frame order that decodes each trajectory about once per epoch.

    Episodes are shuffled and cut into blocks of ``episodes_per_block``; the frames of a
    block are shuffled together and blocks follow each other. With ``episodes_per_block``
    at most the dataset's ``cache_size``, every frame of a block is served from the cache,
    where ``DataLoader(shuffle=True)`` would decode a whole trajectory for most frames.
    Every ``DataLoader`` worker decodes the episodes of the block it serves batches from.

    Args:
        dataset: the dataset to sample.
        episodes_per_block: episodes mixed at a time (default: the dataset's ``cache_size``).
        seed: base seed; the order changes with :meth:`set_epoch`.

    Examples:
        >>> ds = RoboDMLeRobotDataset("/data/robodm/pick", cache_size=8)  # doctest: +SKIP
        >>> loader = DataLoader(ds, batch_size=32,  # doctest: +SKIP
        ...                     sampler=EpisodeBlockSampler(ds, seed=0))
    """

    def __init__(
        self, dataset: RoboDMLeRobotDataset, *, episodes_per_block: int | None = None, seed: int = 0
    ) -> None:
        self.ranges = dataset.episode_ranges()
        self.episodes_per_block = episodes_per_block or dataset.cache_size
        if self.episodes_per_block < 1:
            raise ValueError(f"episodes_per_block must be >= 1, got {self.episodes_per_block}")
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use a different order for ``epoch`` (as ``DistributedSampler`` does)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(len(r) for r in self.ranges)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(len(self.ranges))
        for start in range(0, len(order), self.episodes_per_block):
            block = np.concatenate(
                [np.asarray(self.ranges[i]) for i in order[start : start + self.episodes_per_block]]
            )
            yield from rng.permutation(block).tolist()
