"""Shared pieces of the built-in sources: episodes as lists of step dicts, with time.

Every built-in source turns one source object (a file, an HDF5 group, a folder of images)
into one *episode*: a list of step dicts ready for ``Trajectory.add_by_dict``, each holding
its timestamp under :data:`TIMESTAMP_KEY` in the job's time unit, taken from the data when
it has one and computed from ``fps`` otherwise.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from robodm_engine.storage import StorageOptions, Store, open_store
from robodm_engine.timeline import MS_PER_UNIT, TimeUnit

#: Key of the step timestamp in the episodes built-in sources produce.
TIMESTAMP_KEY: Final = "timestamp"


class SourceFormatError(ValueError):
    """A source object does not have the layout its format expects."""


def columns_to_steps(
    columns: Mapping[str, np.ndarray],
    *,
    where: str,
    fps: float,
    time_unit: TimeUnit,
    timestamp_column: str | None = None,
) -> list[dict[str, Any]]:
    """Slice ``{feature: array with a leading time axis}`` into per-step dicts.

    Raises:
        SourceFormatError: when the columns do not share one length, naming each length.

    Examples:
        >>> steps = columns_to_steps({"a": np.arange(3)}, where="x.npz", fps=10, time_unit="ms")
        >>> [s["timestamp"] for s in steps]
        [0.0, 100.0, 200.0]
    """
    if not columns:
        raise SourceFormatError(f"{where}: no features found")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) != 1:
        raise SourceFormatError(
            f"{where}: features have different lengths {lengths}; every feature needs one "
            "value per step"
        )
    count = next(iter(lengths.values()))
    if timestamp_column is not None and timestamp_column in columns:
        stamps = np.asarray(columns[timestamp_column])
        features = {k: v for k, v in columns.items() if k != timestamp_column}
    else:
        stamps = fps_timestamps(count, fps, time_unit)
        features = dict(columns)
    return [
        {**{name: values[i] for name, values in features.items()}, TIMESTAMP_KEY: stamps[i]}
        for i in range(count)
    ]


def fps_timestamps(count: int, fps: float, time_unit: TimeUnit) -> np.ndarray:
    """Timestamps of ``count`` steps at ``fps``, in ``time_unit``."""
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    return from_seconds(np.arange(count, dtype=np.float64) / fps, time_unit)


def from_seconds(seconds: Any, time_unit: TimeUnit) -> Any:
    """Convert seconds (a float or an array) to ``time_unit``."""
    return seconds * float(1000 / MS_PER_UNIT[time_unit])


def matches(key: str, patterns: Sequence[str]) -> bool:
    """Whether a key, or its file name, matches any glob (all keys when there are none)."""
    name = posixpath.basename(key)
    return not patterns or any(
        fnmatch.fnmatchcase(key, p) or fnmatch.fnmatchcase(name, p) for p in patterns
    )


class StoreBacked:
    """A source reading from the store at ``self.uri``, opened lazily in each process.

    A store holds network clients, which do not pickle; the engine ships sources to Ray
    workers by pickling, so each worker opens its own.
    """

    uri: str
    storage_options: StorageOptions | None
    _store: Store | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_store": None}

    @property
    def store(self) -> Store:
        """The store rooted at :attr:`uri`."""
        if self._store is None:
            self._store = open_store(self.uri, self.storage_options)
        return self._store
