"""Reading trajectories inside Ray Data tasks, and turning their failures back into errors.

Private component of :mod:`robodm_engine.dataset`. :func:`read_trajectories` is the
``map_batches`` function of a dataset's read stage: each input row names one trajectory file,
and each output batch holds that trajectory as rows of steps (step mode) or as one row
(trajectory mode).

A trajectory that cannot be read is never replaced by empty data (upstream robodm's silent
failure): it raises :class:`~robodm_engine.errors.DatasetError` naming the file or, with
``on_error="skip"``, is left out and reported to a :class:`SkipLog` actor so the driver can tell
the user what was skipped. Ray Data does not carry the original exception object back to the
driver (only its traceback text inside a ``RayTaskError``), so :func:`read_error_from` recovers
our message from that text.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, cast

import numpy as np
import ray
from numpy.typing import NDArray

from robodm_engine import timeline
from robodm_engine.dataset._sources import TrajectorySource
from robodm_engine.errors import DatasetError
from robodm_engine.trajectory import Trajectory

if TYPE_CHECKING:
    from robodm_engine.storage import StorageOptions

log = logging.getLogger(__name__)

Mode = Literal["step", "trajectory"]
OnError = Literal["raise", "skip"]

TRAJECTORY_COLUMN = "trajectory"
STEP_COLUMN = "step"
TIMESTAMP_COLUMN = "timestamp_ms"
METADATA_COLUMNS = (TRAJECTORY_COLUMN, STEP_COLUMN, TIMESTAMP_COLUMN)
"""Columns the reader adds beside the features; features may not use these names."""

_FAILURE_PREFIX = "cannot read trajectory"
# Matches our worker-side message inside the traceback text of a RayTaskError.
_FAILURE_IN_TRACEBACK = re.compile(
    r"(?:robodm_engine\.errors\.)?DatasetError: (" + _FAILURE_PREFIX + r" [^\n]*)"
)


@dataclass(frozen=True)
class ReadOptions:
    """How a read task decodes a trajectory; shipped to every task, so small and picklable."""

    mode: Mode
    desired_frequency: float | None
    data_slice: slice | None
    features: tuple[str, ...] | None
    allow_pickle: bool
    on_error: OnError
    cache_dir: str | None
    storage_options: StorageOptions | None


@ray.remote(num_cpus=0)
class SkipLog:
    """Collects the trajectories that read tasks skipped (``on_error="skip"``).

    Keyed by URI so re-executing a dataset (every ``iter_batches`` runs the reads again) does
    not count a file twice.
    """

    def __init__(self) -> None:
        self._skipped: dict[str, str] = {}

    def record(self, uri: str, reason: str) -> None:
        self._skipped.setdefault(uri, reason)

    def entries(self) -> dict[str, str]:
        return dict(self._skipped)


def read_trajectories(
    batch: dict[str, NDArray[Any]], *, options: ReadOptions, skip_log: Any | None
) -> Iterator[dict[str, NDArray[Any]]]:
    """Ray Data ``map_batches`` function: read every trajectory named in ``batch``.

    Yields one batch per trajectory (steps as rows in step mode, one row in trajectory mode).
    """
    for i in range(len(batch["uri"])):
        source = TrajectorySource(
            name=str(batch["name"][i]),
            uri=str(batch["uri"][i]),
            root=str(batch["root"][i]),
            key=str(batch["key"][i]),
            size=int(batch["size"][i]),
        )
        uri = source.uri
        try:
            columns = _read_one(source, options)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
            if options.on_error == "raise":
                raise DatasetError(f"{_FAILURE_PREFIX} {uri}: {reason}") from exc
            log.warning("skipping trajectory %s: %s", uri, reason)
            if skip_log is not None:
                # Waited for, so the record is in before the task (and thus the read) ends.
                ray.get(skip_log.record.remote(uri, reason))
            continue
        yield columns


def read_error_from(error: BaseException) -> DatasetError | None:
    """The read failure described by a Ray task error's text, or None if it is another error."""
    matches = _FAILURE_IN_TRACEBACK.findall(str(error))
    if not matches:
        return None
    # Every mention is the same message (Ray may repeat the traceback); take the last.
    message = re.sub(r"\x1b\[[0-9;]*m", "", matches[-1]).rstrip()
    return DatasetError(message)


def _read_one(source: TrajectorySource, options: ReadOptions) -> dict[str, NDArray[Any]]:
    with contextlib.ExitStack() as stack:
        traj = _open(source, options, stack)
        stack.callback(traj.close)
        features = list(options.features) if options.features is not None else None
        data = traj.load(
            desired_frequency=options.desired_frequency,
            data_slice=options.data_slice,
            features=features,
        )
        stamps = traj.timestamps()
    clash = sorted(set(data) & set(METADATA_COLUMNS))
    if clash:
        raise DatasetError(f"feature name(s) {clash} clash with the columns the reader adds")
    steps, step_ms = _step_times(data, stamps, options)
    if options.mode == "step":
        columns = dict(data)
        columns[TRAJECTORY_COLUMN] = np.full(len(steps), source.name, dtype=object)
        columns[STEP_COLUMN] = steps
        columns[TIMESTAMP_COLUMN] = step_ms
        return columns
    # One row: add a leading axis of length 1 to every column.
    row = {feature: values[np.newaxis] for feature, values in data.items()}
    row[TRAJECTORY_COLUMN] = np.array([source.name], dtype=object)
    row[TIMESTAMP_COLUMN] = step_ms[np.newaxis]
    return row


def _open(
    source: TrajectorySource, options: ReadOptions, stack: contextlib.ExitStack
) -> Trajectory:
    if not source.root:
        return Trajectory(source.uri, allow_pickle=options.allow_pickle)
    from robodm_engine.storage import open_store

    store = open_store(source.root, options.storage_options)
    if options.cache_dir is not None:
        size = source.size if source.size >= 0 else None
        local = store.cached_path(source.key, options.cache_dir, expected_size=size)
        return Trajectory(local, allow_pickle=options.allow_pickle)
    # A seekable reader over the object: the demuxer reads the index and the packets it
    # needs with ranged GETs instead of downloading the file first.
    handle = store.open(source.key)
    stack.callback(handle.close)
    # A seekable binary file; storage types it as io.BufferedIOBase, Trajectory as BinaryIO.
    return Trajectory(cast(BinaryIO, handle), allow_pickle=options.allow_pickle)


def _step_times(
    data: dict[str, NDArray[Any]], stamps: dict[str, NDArray[Any]], options: ReadOptions
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Per-step indices and timestamps (ms, int64) of the rows in ``data``.

    Rows are steps, so every feature must have as many samples as the others. Resampled data
    is aligned by construction; index ``k`` is tick ``k`` of the grid the reader used. Without
    resampling, a step's time is the earliest of its features' sample times.
    """
    lengths = {feature: len(values) for feature, values in data.items()}
    if len(set(lengths.values())) > 1:
        raise DatasetError(
            f"features have different numbers of samples {lengths}; pass desired_frequency= "
            "to resample them onto one time grid, or features= to select aligned ones"
        )
    wanted = options.data_slice or slice(None)
    if options.desired_frequency is not None:
        sampled = [stamps[f] for f in data if len(stamps[f])]
        if not sampled:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        # The same grid Trajectory.load resampled onto (see timeline.resample_grid).
        grid = timeline.resample_grid(
            min(int(s[0]) for s in sampled),
            max(int(s[-1]) for s in sampled),
            options.desired_frequency,
        )
        steps = np.arange(len(grid), dtype=np.int64)[wanted]
        return steps, np.rint(grid[steps]).astype(np.int64)
    total = max((len(stamps[f]) for f in data), default=0)
    steps = np.arange(total, dtype=np.int64)[wanted]
    if not data:
        return steps, np.zeros(len(steps), np.int64)
    step_ms = np.min(np.stack([stamps[f][steps] for f in data]), axis=0)
    return steps, step_ms.astype(np.int64)
