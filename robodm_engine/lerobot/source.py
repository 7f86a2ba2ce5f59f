"""The ``lerobot`` source format: a LeRobot v3.0 dataset, one trajectory per episode.

:class:`LeRobotSource` reads a LeRobot dataset root (a local directory, ``file://`` or
``s3://`` prefix holding ``meta/info.json``) directly from its files, without ``torch`` or
``LeRobotDataset``: the episode's rows from ``data/chunk-*/file-*.parquet`` (only the
parquet row groups that hold the episode) and its frames from the shared
``videos/<key>/chunk-*/file-*.mp4``, decoded once, in order, between the episode's
``from_timestamp`` and ``to_timestamp``. That is one sequential decode per episode and camera
instead of LeRobot's seek-and-decode per frame.

Feature names. LeRobot joins levels with dots, robodm with slashes, and LeRobot forbids
``/`` in names, so the mapping is the character swap, a bijection on names without empty
segments (:func:`to_robodm_name`, :func:`to_lerobot_name`)::

    observation.images.top  <->  observation/images/top
    observation.state       <->  observation/state
    action                  <->  action
    next.reward             <->  next/reward

What a step holds:

=========================  ===================================================================
every info.json feature    its value, with the shape info.json declares (``next.reward``:
                           ``(1,)``); videos and images as uint8 ``(H, W, 3)``
``task``                   the task string (``meta/tasks.parquet`` row ``task_index``)
``timestamp``              the frame's ``timestamp`` column converted to ``time_unit``
=========================  ===================================================================

LeRobot's bookkeeping columns are not features of the trajectory: ``timestamp`` is the step
time, ``frame_index`` the step index, ``task_index`` is replaced by the task string, and
``episode_index``/``index`` are positions in the LeRobot dataset, kept in the trajectory name
(``episode_000042``). :func:`robodm_engine.lerobot.export.export_lerobot` regenerates them.

S3. Metadata and parquet are read through ``store.open`` (ranged reads, only the footer and
the episode's row groups). Videos are streamed the same way into PyAV: the demuxer seeks to
the episode's first keyframe and reads only the packets up to its end, so an episode in a
200 MB shared mp4 costs a few ranged GETs, not a download of the file; nothing is written to
local disk.

Example job spec::

    source: {uri: s3://datasets/lerobot/aloha_sim_insertion/, format: lerobot,
             options: {episodes: [0, 1, 2]}}
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from robodm_engine.ingestion import DataIngestionInterface
from robodm_engine.sources._episode import (
    TIMESTAMP_KEY,
    SourceFormatError,
    StoreBacked,
    from_seconds,
)
from robodm_engine.storage import StorageOptions
from robodm_engine.timeline import TimeUnit, check_time_unit

__all__ = [
    "INDEX_COLUMNS",
    "TASK_KEY",
    "EpisodeInfo",
    "LeRobotMeta",
    "LeRobotSource",
    "read_lerobot_meta",
    "to_lerobot_name",
    "to_robodm_name",
]

INFO_KEY: Final = "meta/info.json"
TASKS_KEY: Final = "meta/tasks.parquet"
EPISODES_PREFIX: Final = "meta/episodes/"
TASK_KEY: Final = "task"
"""Feature holding the task string in robodm trajectories (LeRobot's ``task``)."""
INDEX_COLUMNS: Final = ("timestamp", "frame_index", "episode_index", "index", "task_index")
"""LeRobot bookkeeping columns; they describe positions, not robot data (see module docs)."""
DEFAULT_TOLERANCE_S: Final = 1e-4
"""LeRobot's default: a frame matches a row when their times differ by less than this."""
_SUPPORTED_MAJOR: Final = 3


def to_robodm_name(name: str) -> str:
    """Map a LeRobot feature name to robodm's: dots become slashes.

    Raises:
        ValueError: the name has an empty segment (``"a..b"``, ``".a"``) or a ``/``, which
            could not be mapped back.

    Examples:
        >>> to_robodm_name("observation.images.top")
        'observation/images/top'
    """
    parts = name.split(".")
    if "/" in name or not all(parts):
        raise ValueError(
            f"LeRobot feature name {name!r} has no robodm equivalent: it must "
            "be dot-separated non-empty segments without '/'"
        )
    return "/".join(parts)


def to_lerobot_name(name: str) -> str:
    """Map a robodm feature name to LeRobot's: slashes become dots (inverse of the above).

    Raises:
        ValueError: the name contains a dot or an empty segment, which could not be mapped
            back by :func:`to_robodm_name`.

    Examples:
        >>> to_lerobot_name("observation/state")
        'observation.state'
    """
    parts = name.split("/")
    if "." in name or not all(parts):
        raise ValueError(
            f"robodm feature name {name!r} has no LeRobot equivalent: it must "
            "be '/'-separated non-empty segments without '.'"
        )
    return ".".join(parts)


@dataclass(frozen=True)
class VideoSegment:
    """Where one episode's frames of one camera are: a file and a time range in it (s)."""

    chunk_index: int
    file_index: int
    from_timestamp: float
    to_timestamp: float


@dataclass(frozen=True)
class EpisodeInfo:
    """One row of ``meta/episodes``: where the episode's rows and frames are stored."""

    episode_index: int
    length: int
    data_chunk_index: int
    data_file_index: int
    dataset_from_index: int
    dataset_to_index: int
    videos: dict[str, VideoSegment]


@dataclass(frozen=True)
class LeRobotMeta:
    """What a reader needs from ``meta/``, small and picklable (shipped to workers).

    Attributes:
        fps: the dataset's frame rate.
        features: ``info.json`` features, as stored (LeRobot names).
        tasks: ``task_index`` -> task string.
        episodes: ``episode_index`` -> :class:`EpisodeInfo`.
        data_path: the ``data_path`` template of ``info.json``.
        video_path: the ``video_path`` template, ``None`` without videos.
        codebase_version: ``info.json``'s ``codebase_version`` (``v3.0``).
    """

    fps: int
    features: dict[str, dict[str, Any]]
    tasks: dict[int, str]
    episodes: dict[int, EpisodeInfo]
    data_path: str
    video_path: str | None
    codebase_version: str

    @property
    def video_keys(self) -> list[str]:
        """Features stored as mp4 videos."""
        return [k for k, f in self.features.items() if f["dtype"] == "video"]

    @property
    def data_keys(self) -> list[str]:
        """Features stored as parquet columns, bookkeeping columns excluded."""
        return [
            k for k, f in self.features.items() if f["dtype"] != "video" and k not in INDEX_COLUMNS
        ]

    def data_file(self, episode: EpisodeInfo) -> str:
        """The key of the parquet file holding ``episode``'s rows."""
        return self.data_path.format(
            chunk_index=episode.data_chunk_index, file_index=episode.data_file_index
        )

    def video_file(self, key: str, segment: VideoSegment) -> str:
        """The key of the mp4 holding ``segment`` of camera ``key``."""
        if self.video_path is None:
            raise SourceFormatError(f"info.json has a video feature {key!r} but no video_path")
        return self.video_path.format(
            video_key=key, chunk_index=segment.chunk_index, file_index=segment.file_index
        )


def read_lerobot_meta(store: Any) -> LeRobotMeta:
    """Read ``meta/info.json``, ``meta/tasks.parquet`` and ``meta/episodes/`` of a dataset.

    Args:
        store: a :class:`~robodm_engine.storage.Store` rooted at the dataset.

    Raises:
        SourceFormatError: no ``info.json``, a version other than v3.x, or inconsistent
            metadata.

    Examples:
        >>> from robodm_engine.storage import open_store
        >>> meta = read_lerobot_meta(open_store("/data/lerobot/pusht"))  # doctest: +SKIP
        >>> meta.fps, len(meta.episodes)  # doctest: +SKIP
        (10, 206)
    """
    import pyarrow.parquet as pq

    if not store.exists(INFO_KEY):
        raise SourceFormatError(f"{store.url(INFO_KEY)} not found: not a LeRobot dataset root")
    info = json.loads(store.get_bytes(INFO_KEY))
    version = str(info.get("codebase_version", ""))
    major = version.lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) != _SUPPORTED_MAJOR:
        raise SourceFormatError(
            f"{store.url(INFO_KEY)}: codebase_version {version!r} is not supported; this reader "
            "needs v3.x (convert v2.1 datasets with "
            "`python -m lerobot.scripts.convert_dataset_v21_to_v30`)"
        )
    features = {name: dict(spec) for name, spec in info["features"].items()}
    for spec in features.values():
        spec["shape"] = tuple(spec["shape"])

    with store.open(TASKS_KEY) as handle:
        tasks_table = pq.read_table(handle)
    # pandas wrote the task string as the frame's index; pyarrow surfaces it as a column.
    tasks = dict(
        zip(
            tasks_table.column("task_index").to_pylist(),
            tasks_table.column("task").to_pylist(),
            strict=True,
        )
    )

    video_keys = [k for k, f in features.items() if f["dtype"] == "video"]
    wanted = [
        "episode_index",
        "length",
        "data/chunk_index",
        "data/file_index",
        "dataset_from_index",
        "dataset_to_index",
    ]
    for key in video_keys:
        wanted += [
            f"videos/{key}/{c}"
            for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")
        ]
    episodes: dict[int, EpisodeInfo] = {}
    files = sorted(o.key for o in store.list(EPISODES_PREFIX, suffix=".parquet"))
    if not files:
        raise SourceFormatError(f"{store.url(EPISODES_PREFIX)}: no episode metadata")
    for key in files:
        with store.open(key) as handle:
            # Only the location columns: the per-episode stats are most of this file.
            rows = pq.read_table(handle, columns=wanted).to_pylist()
        for row in rows:
            videos = {
                k: VideoSegment(
                    row[f"videos/{k}/chunk_index"],
                    row[f"videos/{k}/file_index"],
                    float(row[f"videos/{k}/from_timestamp"]),
                    float(row[f"videos/{k}/to_timestamp"]),
                )
                for k in video_keys
            }
            episodes[row["episode_index"]] = EpisodeInfo(
                row["episode_index"],
                row["length"],
                row["data/chunk_index"],
                row["data/file_index"],
                row["dataset_from_index"],
                row["dataset_to_index"],
                videos,
            )
    return LeRobotMeta(
        fps=int(info["fps"]),
        features=features,
        tasks=tasks,
        episodes=dict(sorted(episodes.items())),
        data_path=info["data_path"],
        video_path=info.get("video_path"),
        codebase_version=version,
    )


class LeRobotSource(StoreBacked, DataIngestionInterface):
    """Episodes of a LeRobot v3.0 dataset, each becoming one trajectory (see the module docs).

    Items are episode indices; :meth:`transform_item` returns the episode's steps, each a
    dict of robodm-named features plus ``task`` and ``timestamp`` (in ``time_unit``).

    Args:
        uri: the dataset root (holding ``meta/info.json``): a directory, ``file://`` or
            ``s3://`` prefix.
        episodes: only these episode indices (all when ``None``).
        time_unit: unit of the ``timestamp`` of each step.
        storage_options: endpoint and retries for ``s3://`` datasets.
        video_backend: ``"pyav"``, the only decoder used (accepted for symmetry with
            ``LeRobotDataset``; PyAV ships its own FFmpeg).
        tolerance_s: a decoded frame belongs to a row when its time is within this of the
            row's ``from_timestamp + timestamp`` (LeRobot's default, ``1e-4``).

    Raises:
        ValueError: an unknown ``time_unit`` or ``video_backend``, or a negative tolerance.

    Examples:
        >>> source = LeRobotSource("s3://datasets/lerobot/pusht", episodes=[0, 1])
        >>> source.get_trajectory_filename([1], 1)
        'episode_000001'
        >>> steps = source.transform_item(0)  # doctest: +SKIP
        >>> sorted(steps[0])  # doctest: +SKIP
        ['action', 'observation/image', 'observation/state', 'task', 'timestamp']
    """

    def __init__(
        self,
        uri: str,
        *,
        episodes: Sequence[int] | None = None,
        time_unit: str = "ms",
        storage_options: StorageOptions | None = None,
        video_backend: str = "pyav",
        tolerance_s: float = DEFAULT_TOLERANCE_S,
    ) -> None:
        if video_backend != "pyav":
            raise ValueError(f"video_backend must be 'pyav', got {video_backend!r}")
        if not tolerance_s >= 0:
            raise ValueError(f"tolerance_s must be >= 0, got {tolerance_s}")
        self.uri = str(uri).rstrip("/")
        self.episodes = None if episodes is None else [int(e) for e in episodes]
        self.time_unit: TimeUnit = check_time_unit(time_unit)
        self.storage_options = storage_options
        self.video_backend = video_backend
        self.tolerance_s = float(tolerance_s)
        self._meta: LeRobotMeta | None = None

    @property
    def meta(self) -> LeRobotMeta:
        """The dataset's metadata, read on first use (then shipped to workers with ``self``)."""
        if self._meta is None:
            self._meta = read_lerobot_meta(self.store)
        return self._meta

    @property
    def fps(self) -> int:
        """The dataset's frame rate."""
        return self.meta.fps

    def get_data_items(self) -> list[int]:
        """The episode indices to ingest, in order.

        Raises:
            SourceFormatError: a requested episode is not in the dataset.
        """
        known = self.meta.episodes
        if self.episodes is None:
            return list(known)
        missing = sorted(set(self.episodes) - set(known))
        if missing:
            raise SourceFormatError(
                f"{self.uri}: no episode(s) {missing}; it has {len(known)} episodes"
            )
        return list(self.episodes)

    def count_items(self) -> int | None:
        """Number of episodes (known from the metadata)."""
        return len(self.get_data_items())

    def get_item_id(self, item: Any, index: int) -> str:
        """Failures name the episode: ``<uri>#episode=<index>``."""
        return f"{self.uri}#episode={item}"

    def get_trajectory_filename(self, trajectory_group: Sequence[Any], index: int) -> str:
        """``episode_<episode index, 6 digits>``, so trajectories keep LeRobot's numbering."""
        return f"episode_{int(trajectory_group[0]):06d}"

    def transform_item(self, item: int) -> list[dict[str, Any]]:  # type: ignore[override]
        """Read one episode into its steps (see the module docs for their content).

        Raises:
            SourceFormatError: the episode is unknown, its rows are not contiguous frames,
                or a video lacks a frame for some row.
        """
        meta = self.meta
        episode = meta.episodes.get(int(item))
        if episode is None:
            raise SourceFormatError(f"{self.uri}: no episode {item}")
        columns, seconds, task_index = self._read_rows(episode)
        for key in meta.video_keys:
            columns[key] = self._read_video(key, episode, seconds)
        unknown = sorted(set(np.unique(task_index).tolist()) - set(meta.tasks))
        if unknown:
            raise SourceFormatError(
                f"{self.uri}: episode {item} uses task_index {unknown}, "
                "absent from meta/tasks.parquet"
            )
        names = {key: to_robodm_name(key) for key in columns}
        stamps = from_seconds(seconds.astype(np.float64), self.time_unit)
        return [
            {
                **{names[key]: values[i] for key, values in columns.items()},
                TASK_KEY: meta.tasks[int(task_index[i])],
                TIMESTAMP_KEY: stamps[i],
            }
            for i in range(episode.length)
        ]

    # --- readers -------------------------------------------------------------------------------

    def _read_rows(
        self, episode: EpisodeInfo
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """The episode's parquet columns (by LeRobot name), timestamps (s) and task indices."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        meta = self.meta
        key = meta.data_file(episode)
        wanted = [*meta.data_keys, "timestamp", "frame_index", "episode_index", "task_index"]
        with self.store.open(key) as handle:
            parquet = pq.ParquetFile(handle)
            groups = _row_groups_of(parquet, episode.episode_index)
            table = parquet.read_row_groups(groups, columns=wanted)
        table = table.filter(pc.equal(table["episode_index"], episode.episode_index))
        where = f"{self.store.url(key)} (episode {episode.episode_index})"
        frames = table["frame_index"].to_numpy()
        if table.num_rows != episode.length or not np.array_equal(
            np.sort(frames), np.arange(episode.length)
        ):
            raise SourceFormatError(
                f"{where}: expected frames 0..{episode.length - 1}, found {table.num_rows} rows"
            )
        if not np.array_equal(frames, np.arange(episode.length)):
            table = table.take(pa.array(np.argsort(frames)))
        columns = {
            name: _column(table[name], meta.features[name], where, name) for name in meta.data_keys
        }
        seconds = table["timestamp"].to_numpy().astype(np.float32)
        return columns, seconds, table["task_index"].to_numpy()

    def _read_video(self, key: str, episode: EpisodeInfo, seconds: np.ndarray) -> np.ndarray:
        """Decode the frames of camera ``key`` for the rows at ``seconds`` (episode time)."""
        import av

        meta = self.meta
        spec = meta.features[key]
        if (spec.get("info") or {}).get("is_depth_map"):
            raise SourceFormatError(f"{key}: depth-map videos are not supported by this source")
        segment = episode.videos[key]
        file_key = meta.video_file(key, segment)
        where = f"{self.store.url(file_key)} (episode {episode.episode_index})"
        wanted = segment.from_timestamp + seconds.astype(np.float64)
        first, last = float(wanted.min()), float(wanted.max())
        times: list[float] = []
        frames: list[np.ndarray] = []
        with self.store.open(file_key) as handle, av.open(handle) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            # Land on the keyframe at or before the episode's first frame (the same margin
            # LeRobot uses), then decode forward, sequentially, to its last frame.
            container.seek(
                max(0, round(first / stream.time_base) - 1),
                backward=True,
                any_frame=False,
                stream=stream,
            )
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                time = float(frame.pts * stream.time_base)
                if time >= first - self.tolerance_s - 1.0 / meta.fps:
                    times.append(time)
                    frames.append(frame.to_ndarray(format="rgb24"))
                if time >= last:
                    break
        if not frames:
            raise SourceFormatError(f"{where}: no frames between {first:.4f} s and {last:.4f} s")
        decoded = np.asarray(times)
        nearest = _nearest(decoded, wanted)
        error = np.abs(decoded[nearest] - wanted)
        if np.any(error >= self.tolerance_s):
            worst = int(np.argmax(error))
            raise SourceFormatError(
                f"{where}: no frame within {self.tolerance_s} s of {wanted[worst]:.6f} s "
                f"(nearest at {decoded[nearest[worst]]:.6f} s); the video and the timestamps "
                "disagree"
            )
        return np.stack([frames[i] for i in nearest])


def _row_groups_of(parquet: Any, episode_index: int) -> list[int]:
    """Row groups whose ``episode_index`` statistics may contain ``episode_index``.

    LeRobot writes one row group per episode, so this reads one group instead of the file.
    Groups without statistics are always read.
    """
    column = parquet.schema_arrow.get_field_index("episode_index")
    groups = []
    for index in range(parquet.metadata.num_row_groups):
        stats = parquet.metadata.row_group(index).column(column).statistics
        if stats is None or not stats.has_min_max or stats.min <= episode_index <= stats.max:
            groups.append(index)
    return groups


def _nearest(times: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Index in sorted ``times`` of the value nearest to each of ``wanted``."""
    right = np.clip(np.searchsorted(times, wanted), 1, max(1, len(times) - 1))
    left = right - 1
    if len(times) == 1:
        return np.zeros(len(wanted), dtype=np.int64)
    pick_left = np.abs(wanted - times[left]) <= np.abs(times[right] - wanted)
    return np.where(pick_left, left, right)


def _column(column: Any, spec: Mapping[str, Any], where: str, name: str) -> np.ndarray:
    """A parquet column as an array of ``(rows, *shape)`` per the feature's spec."""
    dtype = spec["dtype"]
    shape = tuple(spec["shape"])
    rows = len(column)
    if dtype == "image":
        return np.stack([_decode_image(cell, where, name) for cell in column.to_pylist()])
    if dtype in ("string", "language"):
        return np.asarray(column.to_pylist(), dtype=object)
    values = _flatten(column.combine_chunks())
    expected = rows * math.prod(shape)
    if len(values) != expected:
        raise SourceFormatError(
            f"{where}: column {name!r} has {len(values)} values for {rows} rows of shape {shape}"
        )
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.dtype(dtype)).reshape(
        (rows, *shape)
    )


def _flatten(array: Any) -> Any:
    """The leaf values of a (nested) list array, row-major."""
    import pyarrow as pa

    while True:
        if isinstance(array.type, pa.ExtensionType):
            # datasets' Array2D..Array5D (registered with pyarrow once datasets is imported).
            array = array.storage
        elif (
            pa.types.is_list(array.type)
            or pa.types.is_fixed_size_list(array.type)
            or pa.types.is_large_list(array.type)
        ):
            array = array.flatten()
        else:
            return array


def _decode_image(cell: Any, where: str, name: str) -> np.ndarray:
    from PIL import Image

    data = cell.get("bytes") if isinstance(cell, Mapping) else None
    if not data:
        raise SourceFormatError(f"{where}: image feature {name!r} has no embedded bytes")
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))
