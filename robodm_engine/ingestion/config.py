"""The configuration of one ingestion job: :class:`IngestionConfig`.

Every field of the seed API's ``IngestionConfig`` is here with the same name and default;
the fields after them cover what a production job needs (failure policy, resume,
checksum verification, Ray sizing, storage and codec options). Values are checked in
``__post_init__`` so a typo fails before Ray starts rather than inside a worker.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from robodm_engine.storage import StorageOptions

__all__ = ["IngestionConfig"]

_TIME_UNITS = ("ns", "us", "ms", "s")
_PREFIX = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,150}")
# Fields that never reach the manifest: connection details are not a property of the data.
_NOT_IN_MANIFEST = frozenset({"storage_options", "ray_init_kwargs", "ray_remote_args"})


def _check_int(name: str, value: Any, minimum: int, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "an int or None" if optional else "an int"
        raise TypeError(f"IngestionConfig.{name} must be {kind}, got {value!r}")
    if value < minimum:
        raise ValueError(f"IngestionConfig.{name} must be >= {minimum}, got {value}")


@dataclass
class IngestionConfig:
    """Configuration of an ingestion job.

    Args:
        output_directory: where the dataset is written: a local directory, ``file://`` URI or
            ``s3://bucket/prefix``. Re-running a job into the same place resumes it.
        trajectory_prefix: names are ``f"{trajectory_prefix}_{index:06d}"`` unless the
            ingester overrides ``get_trajectory_filename``. Letters, digits, ``.``, ``_``, ``-``.
        num_workers: trajectories written in parallel (one Ray task of 1 CPU each). More than
            the CPUs Ray has is allowed: the extra tasks queue.
        batch_size: trajectory groups handed to one Ray task. Raise it when trajectories are
            tiny (a few items each) to amortize the per-task overhead (~1 ms).
        time_unit: unit of explicit timestamps (see ``timestamp_key``): ``ns``, ``us``,
            ``ms`` or ``s``.
        video_codec: codec for RGB image features (``"auto"``: H.264 where the shape allows).
        raw_codec: compression of non-image features (``None``: uncompressed).
        shuffle_items: shuffle items before grouping, with ``seed``. Materializes the source
            in the driver's memory.
        max_items_per_trajectory: split groups larger than this into several trajectories.
        max_items: read at most this many items from the source.
        max_failed_items: failed items tolerated before the job stops with an
            :class:`~robodm_engine.errors.IngestionError`; ``0`` (default) fails on the first
            failure, ``None`` never fails (failures are only reported in the manifest).
        group_size: items per trajectory, overriding the ingester's own ``group_size``
            (``None``: keep the ingester's).
        fps: nominal rate used to stamp steps (step ``k`` at ``k * 1000 / fps`` ms) when items
            carry no timestamp; ``None`` stamps them with the wall clock (not reproducible).
        timestamp_key: a key of the transformed dict holding the step's timestamp in
            ``time_unit``; it is removed from the features. ``None``: use ``fps``.
        codec_options: per-codec encoder options passed to the trajectory writer.
        storage_options: endpoint, region and retries for ``s3://`` outputs.
        ray_init_kwargs: passed to ``ray.init`` when the engine starts Ray itself.
        ray_remote_args: Ray options of the write tasks, over ``{"num_cpus": 1}``
            (``memory``, ``resources``, ``runtime_env``, ``scheduling_strategy``, ...).
        seed: seed of the shuffle (``shuffle_items``); ``None`` is not reproducible.
        resume: skip groups whose trajectory is already published and verified.
        verify_checksums: on resume, also compare the SHA-256 of published files with their
            records (reads every file once); ``False`` compares sizes only.
        progress_interval_s: how often ``_robodm/progress.json`` and the log are updated.
        max_in_flight: Ray tasks submitted and not yet finished, at most (``None``:
            ``num_workers``). This is what keeps the parallelism at ``num_workers`` when Ray
            has more CPUs, and bounds memory: at most ``max_in_flight + 1`` batches of items
            exist at once, however large the source.

    Examples:
        >>> from robodm_engine.ingestion import IngestionConfig
        >>> config = IngestionConfig(
        ...     output_directory="./large_dataset",
        ...     num_workers=16,
        ...     raw_codec="rawvideo_pyarrow",
        ...     max_items_per_trajectory=10000,
        ... )
        >>> config.trajectory_prefix
        'trajectory'
    """

    # Output configuration
    output_directory: str
    trajectory_prefix: str = "trajectory"

    # Parallel processing
    num_workers: int = 4
    batch_size: int = 1

    # Trajectory configuration
    time_unit: str = "ms"
    video_codec: str = "auto"
    raw_codec: str | None = None

    # Data processing
    shuffle_items: bool = False
    max_items_per_trajectory: int | None = None

    # Beyond the seed API.
    max_items: int | None = None
    max_failed_items: int | None = 0
    group_size: int | None = None
    fps: float | None = 10.0
    timestamp_key: str | None = None
    codec_options: dict[str, Any] | None = None
    storage_options: StorageOptions | None = None
    ray_init_kwargs: dict[str, Any] = field(default_factory=dict)
    ray_remote_args: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    resume: bool = True
    verify_checksums: bool = True
    progress_interval_s: float = 2.0
    max_in_flight: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.output_directory, os.PathLike):
            self.output_directory = os.fspath(self.output_directory)
        if not isinstance(self.output_directory, str) or not self.output_directory.strip():
            raise ValueError(
                "IngestionConfig.output_directory must be a non-empty path or URI, "
                f"got {self.output_directory!r}"
            )
        if not isinstance(self.trajectory_prefix, str) or not _PREFIX.fullmatch(
            self.trajectory_prefix
        ):
            raise ValueError(
                "IngestionConfig.trajectory_prefix must be 1-151 characters from "
                f"[A-Za-z0-9._-], not starting with '.', got {self.trajectory_prefix!r}"
            )
        _check_int("num_workers", self.num_workers, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("max_items_per_trajectory", self.max_items_per_trajectory, 1, optional=True)
        _check_int("max_items", self.max_items, 0, optional=True)
        _check_int("max_failed_items", self.max_failed_items, 0, optional=True)
        _check_int("group_size", self.group_size, 1, optional=True)
        _check_int("seed", self.seed, 0, optional=True)
        _check_int("max_in_flight", self.max_in_flight, 1, optional=True)
        if self.time_unit not in _TIME_UNITS:
            raise ValueError(
                f"IngestionConfig.time_unit must be one of {_TIME_UNITS}, got {self.time_unit!r}"
            )
        if not isinstance(self.video_codec, str) or not self.video_codec:
            raise ValueError(
                f"IngestionConfig.video_codec must be a codec name, got {self.video_codec!r}"
            )
        if self.raw_codec is not None and not isinstance(self.raw_codec, str):
            raise TypeError(
                f"IngestionConfig.raw_codec must be a str or None, got {self.raw_codec!r}"
            )
        if self.fps is not None and (
            isinstance(self.fps, bool)
            or not isinstance(self.fps, int | float)
            or not math.isfinite(self.fps)
            or self.fps <= 0
        ):
            raise ValueError(f"IngestionConfig.fps must be a number > 0 or None, got {self.fps!r}")
        if self.timestamp_key is not None and (
            not isinstance(self.timestamp_key, str) or not self.timestamp_key
        ):
            raise ValueError(
                "IngestionConfig.timestamp_key must be a non-empty str or None, "
                f"got {self.timestamp_key!r}"
            )
        for name in ("codec_options", "ray_init_kwargs", "ray_remote_args"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(f"IngestionConfig.{name} must be a dict, got {value!r}")
        if self.ray_init_kwargs is None:
            self.ray_init_kwargs = {}
        if self.ray_remote_args is None:
            self.ray_remote_args = {}
        if not isinstance(self.progress_interval_s, int | float) or not (
            self.progress_interval_s > 0
        ):
            raise ValueError(
                "IngestionConfig.progress_interval_s must be > 0, "
                f"got {self.progress_interval_s!r}"
            )

    @property
    def in_flight_limit(self) -> int:
        """Ray tasks outstanding at most (``max_in_flight`` or ``num_workers``)."""
        return self.max_in_flight if self.max_in_flight is not None else self.num_workers

    def to_manifest_dict(self) -> dict[str, Any]:
        """Return the JSON-compatible settings recorded in the dataset manifest.

        Connection settings (storage options, Ray arguments) are left out: they describe
        where the job ran, not the data, and may name private endpoints or carry secrets
        (``runtime_env`` variables).
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in _NOT_IN_MANIFEST:
                continue
            value = getattr(self, f.name)
            out[f.name] = dict(value) if isinstance(value, Mapping) else value
        return out
