"""Export a robodm dataset as a LeRobot v3.0 dataset that ``lerobot`` itself loads.

:func:`export_lerobot` reads the trajectories a manifest lists (local or ``s3://``), resamples
each onto a regular grid at ``fps`` and writes, under a local ``output_root``::

    meta/info.json                          codebase_version v3.0, fps, features, totals
    meta/stats.json                         aggregated stats (LeRobot's own functions)
    meta/tasks.parquet                      task string -> task_index
    meta/episodes/chunk-000/file-000.parquet  per-episode locations and stats
    data/chunk-XXX/file-YYY.parquet         rows of many episodes, one row group each
    videos/<key>/chunk-XXX/file-YYY.mp4     frames of many episodes, back to back

One trajectory becomes one episode, in manifest order. Names map ``/`` -> ``.``
(:func:`~robodm_engine.lerobot.source.to_lerobot_name`), the exact inverse of the import.
RGB images (uint8 ``(H, W, 3)``) become video features; the ``task_feature`` strings become
``task_index`` and ``meta/tasks.parquet``; other strings become ``string`` features;
numbers keep their dtype, scalars getting LeRobot's shape ``(1,)``.

Why not ``LeRobotDataset.create`` + ``add_frame``: that path writes every frame as a PNG,
reads them back to encode one mp4 per episode, then re-muxes the growing shared mp4 for
every episode (quadratic in the episodes per file). Here frames go from the decoded
trajectory straight into one encoder per shared file, so each episode's ``from_timestamp``
is simply the frames already in the file over ``fps``. The encoder settings
(``libsvtav1``, crf 30, g 2, preset 12 by default), the parquet schema (``datasets``
features), the per-episode statistics (``compute_episode_stats``, the same image sampling)
and their aggregation (``aggregate_stats``) are LeRobot's own, so what ``lerobot`` loads is
what its writer would have produced from the same frames.

Examples:
    >>> from robodm_engine.lerobot.export import export_lerobot
    >>> export_lerobot("s3://datasets/pick-v1", "/data/lerobot/pick-v1",  # doctest: +SKIP
    ...                repo_id="me/pick-v1", default_task="pick the cube")
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import numpy as np

from robodm_engine.lerobot.source import INDEX_COLUMNS, TASK_KEY, to_lerobot_name
from robodm_engine.manifest import DatasetManifest, FeatureSpec, read_manifest, split_manifest_uri
from robodm_engine.storage import StorageOptions

__all__ = [
    "ExportResult",
    "as_rows",
    "export_lerobot",
    "image_stats",
    "index_columns",
    "lerobot_features",
    "nominal_fps",
]

logger = logging.getLogger(__name__)

_STRING_DTYPES: Final = frozenset({"str"})
_INDEX_SPECS: Final = {
    "timestamp": "float32",
    "frame_index": "int64",
    "episode_index": "int64",
    "index": "int64",
    "task_index": "int64",
}


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_lerobot` wrote.

    Attributes:
        root: the LeRobot dataset root (open it with ``LeRobotDataset(repo_id, root=root)``).
        repo_id: the repository id recorded for it.
        fps: the frame rate episodes were resampled to.
        episodes: episodes written (one per trajectory).
        frames: frames written.
        tasks: task strings, by ``task_index``.
        bytes: total size of the files written.
    """

    root: Path
    repo_id: str
    fps: int
    episodes: int
    frames: int
    tasks: list[str]
    bytes: int


def nominal_fps(manifest: DatasetManifest) -> int:
    """The dataset's frame rate, from the step count and time span of every trajectory.

    The median over trajectories of ``(steps - 1) / (end - start)``, rounded to an integer
    (LeRobot's ``fps`` is one); no trajectory is decoded.

    Raises:
        ValueError: no trajectory has two steps at different times.

    Examples:
        >>> from robodm_engine.manifest import TrajectoryRecord
        >>> rec = TrajectoryRecord("t", "t.mkv", 11, {}, 1, "", 0, 1000)
        >>> nominal_fps(DatasetManifest([rec], {}, {}, {}, [], "2026-01-01T00:00:00Z"))
        10
    """
    rates = [
        (record.steps - 1) * 1000.0 / (record.end_ms - record.start_ms)
        for record in manifest.trajectories
        if record.steps > 1 and record.end_ms > record.start_ms
    ]
    if not rates:
        raise ValueError(
            "cannot infer fps: no trajectory has two steps at different times; pass fps="
        )
    return max(1, round(float(np.median(rates))))


def lerobot_features(
    features: Mapping[str, FeatureSpec], *, task_feature: str = TASK_KEY
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """LeRobot feature specs for robodm features, and the robodm name of each.

    Returns ``(features, sources)``: ``features`` maps LeRobot names to ``{"dtype", "shape",
    "names"}`` (bookkeeping columns included, as ``info.json`` lists them); ``sources`` maps
    each LeRobot data feature to the robodm feature it is read from. ``task_feature`` is
    left out (it becomes ``task_index``).

    Raises:
        ValueError: a name cannot be mapped, collides with a LeRobot reserved key (``task``
            or a bookkeeping column), or
            a feature has a dtype LeRobot cannot store (bytes).

    Examples:
        >>> specs = {"observation/image": FeatureSpec("uint8", (96, 96, 3), "libx264"),
        ...          "action": FeatureSpec("float32", (7,), "raw"),
        ...          "task": FeatureSpec("str", (), "raw")}
        >>> feats, _ = lerobot_features(specs)
        >>> feats["observation.image"]["dtype"], feats["action"]["shape"]
        ('video', (7,))
    """
    out: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    for name, spec in features.items():
        if name == task_feature:
            continue
        key = to_lerobot_name(name)
        if key in INDEX_COLUMNS or key == TASK_KEY:
            raise ValueError(
                f"feature {name!r} collides with LeRobot's reserved key {key!r}; "
                "pass features= without it (or make it the task_feature)"
            )
        if spec.dtype == "uint8" and len(spec.shape) == 3 and spec.shape[2] == 3:
            out[key] = {
                "dtype": "video",
                "shape": tuple(spec.shape),
                "names": ["height", "width", "channels"],
            }
        elif spec.dtype in _STRING_DTYPES:
            out[key] = {"dtype": "string", "shape": (1,), "names": None}
        elif spec.dtype == "bytes":
            raise ValueError(
                f"feature {name!r} holds bytes, which LeRobot cannot store; pass "
                "features= without it"
            )
        else:
            out[key] = {"dtype": spec.dtype, "shape": tuple(spec.shape) or (1,), "names": None}
        sources[key] = name
    for key, dtype in _INDEX_SPECS.items():
        out[key] = {"dtype": dtype, "shape": (1,), "names": None}
    return out, sources


def export_lerobot(
    dataset_uri_or_manifest: str | os.PathLike[str],
    output_root: str | os.PathLike[str],
    *,
    repo_id: str,
    fps: int | None = None,
    video_codec: str = "libsvtav1",
    crf: int | None = None,
    gop: int = 2,
    task_feature: str = TASK_KEY,
    default_task: str | None = None,
    features: Sequence[str] | None = None,
    robot_type: str | None = None,
    storage_options: StorageOptions | None = None,
    data_file_size_mb: float = 100,
    video_file_size_mb: float = 200,
    chunks_size: int = 1000,
    workers: int = 2,
    overwrite: bool = False,
) -> ExportResult:
    """Write a robodm dataset as a LeRobot v3.0 dataset (see the module docs).

    The dataset appears at ``output_root`` only when complete: it is written next to it
    and renamed.

    Args:
        dataset_uri_or_manifest: the robodm dataset root or its ``manifest.json``, local or
            ``s3://``.
        output_root: the local directory to create.
        repo_id: the LeRobot repository id (``"user/name"``) to load it under.
        fps: frame rate of the episodes; trajectories are resampled to it (nearest sample
            per tick). Default: :func:`nominal_fps`.
        video_codec: ``"libsvtav1"`` (LeRobot's default), ``"h264"`` or ``"hevc"``, or
            another of ``lerobot.configs.video.VALID_VIDEO_CODECS`` PyAV can encode.
        crf: encoder quality (LeRobot's default, 30, when ``None``).
        gop: keyframe interval; LeRobot's 2 keeps random access cheap for its decoder.
        task_feature: the string feature holding each step's task.
        default_task: the task of every frame of trajectories without ``task_feature``
            (otherwise such a trajectory is an error).
        features: robodm features to export (all when ``None``; ``task_feature`` is always
            read).
        robot_type: recorded in ``info.json``.
        storage_options: endpoint and retries for an ``s3://`` dataset.
        data_file_size_mb: start a new data parquet file past this size (LeRobot: 100).
        video_file_size_mb: start a new mp4 past this size (LeRobot: 200).
        chunks_size: files per ``chunk-XXX`` directory (LeRobot: 1000).
        workers: threads computing image statistics while videos are encoded.
        overwrite: replace an existing ``output_root``.

    Returns:
        An :class:`ExportResult`.

    Raises:
        FileExistsError: ``output_root`` exists and ``overwrite`` is false.
        ValueError: no task for some frame, a feature that cannot be exported, an unknown
            feature in ``features``, or an invalid option.

    Examples:
        >>> result = export_lerobot("/data/robodm/pick", "/data/lerobot/pick",  # doctest: +SKIP
        ...                         repo_id="me/pick", fps=10, default_task="pick")
        >>> from lerobot.datasets.lerobot_dataset import LeRobotDataset  # doctest: +SKIP
        >>> LeRobotDataset("me/pick", root=result.root, video_backend="pyav")[0]["task"]
        ... # doctest: +SKIP
        'pick'
    """
    from lerobot.configs import RGBEncoderConfig

    if fps is not None and (isinstance(fps, bool) or int(fps) != fps or fps <= 0):
        raise ValueError(f"fps must be a positive integer (LeRobot's fps is one), got {fps!r}")
    if min(gop, chunks_size, workers) < 1 or min(data_file_size_mb, video_file_size_mb) <= 0:
        raise ValueError("gop, chunks_size, workers and the file sizes must be positive")
    root = Path(output_root).expanduser().absolute()
    if root.exists() and not overwrite and any(root.iterdir()):
        raise FileExistsError(f"{root} exists and is not empty; pass overwrite=True")
    location = os.fspath(dataset_uri_or_manifest)
    manifest = read_manifest(location, storage_options)
    dataset_root, _ = split_manifest_uri(location)
    selected = dict(manifest.features)
    if features is not None:
        unknown = sorted(set(features) - set(selected))
        if unknown:
            raise ValueError(
                f"feature(s) {unknown} are not in the dataset; it has {sorted(selected)}"
            )
        selected = {n: s for n, s in selected.items() if n in features or n == task_feature}
    lr_features, sources = lerobot_features(selected, task_feature=task_feature)
    rate = int(fps) if fps is not None else nominal_fps(manifest)
    # LeRobot's own encoder config: its codec defaults (crf 30, preset 12 for libsvtav1) and
    # the video info it records in info.json come from the same object as for its writer.
    encoder = RGBEncoderConfig(
        vcodec=video_codec, g=gop, **({"crf": crf} if crf is not None else {})
    )

    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        writer = _Writer(
            staging,
            lr_features,
            sources,
            rate,
            encoder,
            robot_type,
            data_file_size_mb,
            video_file_size_mb,
            chunks_size,
            workers,
        )
        try:
            names = list(sources.values()) + ([task_feature] if task_feature in selected else [])
            trajectories = _trajectories(manifest, dataset_root, storage_options, names, rate)
            for index, data in enumerate(trajectories):
                missing = sorted(set(sources.values()) - set(data))
                if missing:
                    raise ValueError(
                        f"trajectory {manifest.trajectories[index].name!r} lacks {missing}; "
                        "every episode of a LeRobot dataset has every feature (pass features=)"
                    )
                writer.add_episode(
                    index,
                    data,
                    _tasks(data, task_feature, default_task, manifest.trajectories[index].name),
                )
            writer.finish()
        finally:
            writer.close()
        if root.exists():
            shutil.rmtree(root)
        os.replace(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return ExportResult(
        root, repo_id, rate, writer.episodes, writer.frames, list(writer.tasks), size
    )


def _tasks(
    data: Mapping[str, np.ndarray], feature: str, default: str | None, name: str
) -> list[str]:
    steps = len(next(iter(data.values()))) if data else 0
    if feature in data:
        return [str(t) for t in data[feature]]
    if default is None:
        raise ValueError(
            f"trajectory {name!r} has no {feature!r} feature; pass default_task= or task_feature="
        )
    return [default] * steps


def _trajectories(
    manifest: DatasetManifest,
    root: str,
    options: StorageOptions | None,
    names: list[str],
    fps: int,
) -> Iterator[dict[str, np.ndarray]]:
    """Each trajectory's features, resampled to ``fps``, in manifest order."""
    from robodm_engine.storage import open_store
    from robodm_engine.trajectory import Trajectory

    store = open_store(root, options)
    for record in manifest.trajectories:
        wanted = [n for n in names if n in record.features]
        with contextlib.ExitStack() as stack:
            # A seekable reader over the object: local files and S3 alike, no download.
            handle = stack.enter_context(store.open(record.path))
            traj = Trajectory(handle)
            stack.callback(traj.close)
            yield traj.load(desired_frequency=fps, features=wanted)


class _Writer:
    """Appends episodes to the shared data and video files and collects the metadata."""

    def __init__(
        self,
        root: Path,
        features: dict[str, dict[str, Any]],
        sources: dict[str, str],
        fps: int,
        encoder: Any,
        robot_type: str | None,
        data_file_size_mb: float,
        video_file_size_mb: float,
        chunks_size: int,
        workers: int,
    ) -> None:
        import datasets
        from lerobot.datasets.feature_utils import get_hf_features_from_features

        self.root = root
        self.features = features
        self.sources = sources
        self.fps = fps
        self.encoder = encoder
        self.robot_type = robot_type
        self.chunks_size = chunks_size
        self.video_keys = [k for k, f in features.items() if f["dtype"] == "video"]
        self.hf_features: datasets.Features = get_hf_features_from_features(features)
        self.data = _ParquetFiles(root, data_file_size_mb * 2**20, chunks_size)
        self.videos = {
            key: _VideoFiles(root, key, fps, encoder, video_file_size_mb * 2**20, chunks_size)
            for key in self.video_keys
        }
        self.tasks: dict[str, int] = {}
        self.episode_rows: list[dict[str, Any]] = []
        self.episode_stats: list[dict[str, dict[str, np.ndarray]]] = []
        self.workers = workers
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lerobot-stats")
        self.pending: deque[
            tuple[dict[str, Any], dict[str, Any], dict[str, Future[dict[str, np.ndarray]]]]
        ] = deque()
        self.episodes = 0
        self.frames = 0

    def add_episode(self, index: int, data: Mapping[str, np.ndarray], tasks: list[str]) -> None:
        import datasets
        from lerobot.datasets.compute_stats import compute_episode_stats

        length = len(tasks)
        if length == 0:
            raise ValueError(f"episode {index} has no frames")
        for task in dict.fromkeys(tasks):
            self.tasks.setdefault(task, len(self.tasks))
        columns: dict[str, np.ndarray] = {}
        for key, name in self.sources.items():
            values = np.asarray(data[name])
            if self.features[key]["dtype"] == "string":
                columns[key] = np.asarray([str(v) for v in values], dtype=object)
            elif self.features[key]["dtype"] != "video":
                columns[key] = values.reshape(length, *self.features[key]["shape"])
        columns.update(
            index_columns(length, self.fps, index, self.frames, [self.tasks[t] for t in tasks])
        )
        rows = as_rows(columns, self.features)
        table = datasets.Dataset.from_dict(
            {k: rows[k] for k in self.hf_features}, features=self.hf_features, split="train"
        ).with_format("arrow")[:]
        chunk, file = self.data.write(table)

        numeric = {k: v for k, v in rows.items() if self.features[k]["dtype"] != "string"}
        stats = compute_episode_stats(numeric, {k: self.features[k] for k in numeric})
        row: dict[str, Any] = {
            "episode_index": index,
            "tasks": list(dict.fromkeys(tasks)),
            "length": length,
            "data/chunk_index": chunk,
            "data/file_index": file,
            "dataset_from_index": self.frames,
            "dataset_to_index": self.frames + length,
        }
        image_stats_of: dict[str, Future[dict[str, np.ndarray]]] = {}
        for key in self.video_keys:
            frames = np.asarray(data[self.sources[key]])
            image_stats_of[key] = self.pool.submit(image_stats, frames)
            v_chunk, v_file, start = self.videos[key].write(frames)
            row[f"videos/{key}/chunk_index"] = v_chunk
            row[f"videos/{key}/file_index"] = v_file
            row[f"videos/{key}/from_timestamp"] = start
            row[f"videos/{key}/to_timestamp"] = start + length / self.fps
        self.pending.append((row, stats, image_stats_of))
        self.episodes += 1
        self.frames += length
        self._complete(keep=2 * self.workers)

    def _complete(self, keep: int) -> None:
        """Finish the metadata of the oldest episodes until ``keep`` wait for image stats.

        Image stats (LeRobot's histogram quantiles over every pixel) cost more than the
        AV1 encode, so they run in threads (numpy releases the GIL) while the next episodes
        are encoded; at most ``keep`` episodes' frames are held for them.
        """
        while len(self.pending) > keep:
            row, stats, futures = self.pending.popleft()
            for key, future in futures.items():
                stats[key] = future.result()
            for key, values in stats.items():
                for stat, value in values.items():
                    row[f"stats/{key}/{stat}"] = np.asarray(value).tolist()
            row["meta/episodes/chunk_index"] = 0
            row["meta/episodes/file_index"] = 0
            self.episode_rows.append(row)
            self.episode_stats.append(stats)

    def close(self) -> None:
        """Stop the stats threads (after :meth:`finish`, or on failure)."""
        self.pool.shutdown(wait=True, cancel_futures=True)

    def finish(self) -> None:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq
        from lerobot.datasets.compute_stats import aggregate_stats
        from lerobot.datasets.dataset_metadata import CODEBASE_VERSION
        from lerobot.datasets.feature_utils import create_empty_dataset_info
        from lerobot.datasets.io_utils import write_info, write_stats, write_tasks
        from lerobot.datasets.utils import DEFAULT_EPISODES_PATH
        from lerobot.datasets.video_utils import get_video_info

        if self.episodes == 0:
            raise ValueError("the dataset has no trajectories to export")
        self._complete(keep=0)
        self.data.close()
        first_videos = {key: files.close() for key, files in self.videos.items()}
        features = {k: dict(v) for k, v in self.features.items()}
        for key, path in first_videos.items():
            features[key]["info"] = get_video_info(path, self.encoder)
        info = create_empty_dataset_info(
            CODEBASE_VERSION,
            self.fps,
            features,
            use_videos=bool(self.video_keys),
            robot_type=self.robot_type,
            chunks_size=self.chunks_size,
            data_files_size_in_mb=round(self.data.limit / 2**20),
            video_files_size_in_mb=round(next(iter(self.videos.values())).limit / 2**20)
            if self.videos
            else None,
        )
        info.total_episodes = self.episodes
        info.total_frames = self.frames
        info.total_tasks = len(self.tasks)
        info.splits = {"train": f"0:{self.episodes}"}
        write_info(info, self.root)
        write_stats(aggregate_stats(self.episode_stats), self.root)
        write_tasks(
            pd.DataFrame(
                {"task_index": list(self.tasks.values())},
                index=pd.Index(list(self.tasks), name="task"),
            ),
            self.root,
        )
        path = self.root / DEFAULT_EPISODES_PATH.format(chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        columns = {key: [row[key] for row in self.episode_rows] for key in self.episode_rows[0]}
        pq.write_table(pa.Table.from_pydict(columns), path, compression="snappy")


def index_columns(
    length: int, fps: int, episode_index: int, first_index: int, task_indices: Sequence[int]
) -> dict[str, np.ndarray]:
    """LeRobot's bookkeeping columns of one episode, as its writer fills them.

    Examples:
        >>> index_columns(3, 10, 2, 40, [0, 0, 1])["index"].tolist()
        [40, 41, 42]
    """
    return {
        "timestamp": (np.arange(length) / fps).astype(np.float32),
        "frame_index": np.arange(length, dtype=np.int64),
        "episode_index": np.full(length, episode_index, dtype=np.int64),
        "index": np.arange(first_index, first_index + length, dtype=np.int64),
        "task_index": np.asarray(task_indices, dtype=np.int64),
    }


def as_rows(
    columns: Mapping[str, np.ndarray], features: Mapping[str, Mapping[str, Any]]
) -> dict[str, np.ndarray]:
    """Columns as LeRobot stores them: shape-``(1,)`` features as scalars (``datasets.Value``).

    Its writer does the same before saving and before computing stats, which makes their
    stats keep the ``(1,)`` shape.
    """
    return {
        key: (values.reshape(len(values)) if tuple(features[key]["shape"]) == (1,) else values)
        for key, values in columns.items()
    }


def image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot's per-episode image stats, from frames in memory instead of PNG files.

    ``frames`` is uint8 ``(N, H, W, 3)``; the result has LeRobot's ``(3, 1, 1)`` shapes.

    ``compute_episode_stats`` samples frames (``sample_indices``), downsamples large ones
    (``auto_downsample_height_width``) and reduces over (N, H, W) per channel, scaled to
    [0, 1]; the same functions are applied here to the same frames.
    """
    from lerobot.datasets.compute_stats import (
        auto_downsample_height_width,
        get_feature_stats,
        sample_indices,
    )

    picked = np.stack(
        [
            auto_downsample_height_width(np.ascontiguousarray(frames[i].transpose(2, 0, 1)))
            for i in sample_indices(len(frames))
        ]
    )
    stats = get_feature_stats(picked, axis=(0, 2, 3), keepdims=True)
    return {k: v if k == "count" else np.squeeze(v / 255.0, axis=0) for k, v in stats.items()}


class _ParquetFiles:
    """``data/chunk-XXX/file-YYY.parquet``: one row group per episode, rolled over by size."""

    def __init__(self, root: Path, limit: float, chunks_size: int) -> None:
        self.root = root
        self.limit = limit
        self.chunks_size = chunks_size
        self.chunk = 0
        self.file = 0
        self.writer: Any = None
        self.path: Path | None = None

    def write(self, table: Any) -> tuple[int, int]:
        import pyarrow.parquet as pq
        from lerobot.datasets.utils import DEFAULT_DATA_PATH, update_chunk_file_indices

        if (
            self.writer is not None
            and self.path is not None
            and (self.path.stat().st_size >= self.limit)
        ):
            self.writer.close()
            self.writer = None
            self.chunk, self.file = update_chunk_file_indices(
                self.chunk, self.file, self.chunks_size
            )
        if self.writer is None:
            self.path = self.root / DEFAULT_DATA_PATH.format(
                chunk_index=self.chunk, file_index=self.file
            )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(
                self.path, schema=table.schema, compression="snappy", use_dictionary=True
            )
        self.writer.write_table(table)
        return self.chunk, self.file

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class _VideoFiles:
    """``videos/<key>/chunk-XXX/file-YYY.mp4``: one encoder per file, episodes back to back.

    Frame ``n`` of a file is at ``n / fps`` seconds, so an episode starting at frame ``n``
    has ``from_timestamp = n / fps`` and LeRobot's decoder finds each frame at
    ``from_timestamp + timestamp`` exactly.
    """

    def __init__(
        self, root: Path, key: str, fps: int, encoder: Any, limit: float, chunks_size: int
    ) -> None:
        self.root = root
        self.key = key
        self.fps = fps
        self.encoder = encoder
        self.limit = limit
        self.chunks_size = chunks_size
        self.chunk = 0
        self.file = 0
        self.container: Any = None
        self.stream: Any = None
        self.path: Path | None = None
        self.first: Path | None = None
        self.frames_in_file = 0
        self.bytes_in_file = 0
        self.packets_in_file = 0

    def write(self, frames: np.ndarray) -> tuple[int, int, float]:
        import av
        from lerobot.datasets.utils import DEFAULT_VIDEO_PATH, update_chunk_file_indices

        if self.container is not None and self._estimated_size() >= self.limit:
            self._close_file()
            self.chunk, self.file = update_chunk_file_indices(
                self.chunk, self.file, self.chunks_size
            )
        if self.container is None:
            self.path = self.root / DEFAULT_VIDEO_PATH.format(
                video_key=self.key, chunk_index=self.chunk, file_index=self.file
            )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.first = self.first or self.path
            height, width = frames.shape[1:3]
            self.container = av.open(str(self.path), "w", options={"movflags": "faststart"})
            self.stream = self.container.add_stream(
                self.encoder.vcodec,
                self.fps,
                options=self.encoder.get_codec_options(None, as_strings=True),
            )
            self.stream.pix_fmt = self.encoder.pix_fmt
            self.stream.width = width
            self.stream.height = height
            self.frames_in_file = 0
            self.bytes_in_file = 0
            self.packets_in_file = 0
        start = self.frames_in_file / self.fps
        time_base = Fraction(1, self.fps)
        for pixels in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            frame.pts = self.frames_in_file
            frame.time_base = time_base
            self._mux(self.stream.encode(frame))
            self.frames_in_file += 1
        return self.chunk, self.file, start

    def _estimated_size(self) -> float:
        """Bytes of the current file, counting frames the encoder still holds back.

        Encoders delay output (SVT-AV1's lookahead holds a mini-GOP or more), so neither
        the file on disk nor the packets muxed so far tell the size; frames not out yet
        are counted at the average packet size (at least one byte each), an error bounded
        by the encoder's delay.
        """
        pending = self.frames_in_file - self.packets_in_file
        average = self.bytes_in_file / self.packets_in_file if self.packets_in_file else 1.0
        return self.bytes_in_file + pending * max(1.0, average)

    def _mux(self, packets: list[Any]) -> None:
        self.bytes_in_file += sum(packet.size for packet in packets)
        self.packets_in_file += len(packets)
        self.container.mux(packets)

    def _close_file(self) -> None:
        self._mux(self.stream.encode(None))
        self.container.close()
        self.container = None

    def close(self) -> Path:
        """Finish the last file; return the first (its stream describes them all)."""
        if self.container is not None:
            self._close_file()
        assert self.first is not None
        return self.first
