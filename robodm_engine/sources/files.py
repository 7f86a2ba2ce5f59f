"""The ``files`` source format: one episode per file (or per folder of images).

Supported objects under ``source.uri`` (a local directory, ``file://`` or ``s3://`` prefix),
filtered by the ``include`` globs:

============================  ===================================================================
``*.npz``                     arrays with a leading time axis; keys become features (``a/b``
                              nests); an optional ``timestamp`` array gives the times
``*.json`` / ``*.jsonl``      a list of step objects, ``{"steps": [...]}``, or a dict of lists
``*.csv`` / ``*.parquet``     a time series: one row per step, columns are features;
                              ``columns`` assembles vectors from several columns
``*.mp4 *.mkv *.avi *.mov``   a video: every frame a step, at the video's own timestamps
``*.png *.jpg *.jpeg``        a folder of images is one episode, frames in name order
============================  ===================================================================

Steps without a timestamp in the data are stamped at ``fps``. Files are read through
:mod:`robodm_engine.storage`, so S3 objects are streamed, never downloaded whole first.

Example job spec::

    source:
      uri: s3://raw/teleop/
      format: files
      include: ["*.npz"]
      options: {fps: 15}
"""

from __future__ import annotations

import io
import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from robodm_engine.ingestion import DataIngestionInterface
from robodm_engine.sources._episode import (
    TIMESTAMP_KEY,
    SourceFormatError,
    StoreBacked,
    columns_to_steps,
    fps_timestamps,
    from_seconds,
    matches,
)
from robodm_engine.storage import StorageOptions
from robodm_engine.timeline import TimeUnit, check_time_unit

_TABLE = (".csv", ".parquet")
_JSON = (".json", ".jsonl")
_VIDEO = (".mp4", ".mkv", ".avi", ".mov", ".webm")
_IMAGE = (".png", ".jpg", ".jpeg")
SUPPORTED_SUFFIXES = (".npz", *_JSON, *_TABLE, *_VIDEO, *_IMAGE)


@dataclass(frozen=True)
class Episode:
    """One item of a file source: the keys (relative to the source root) of one episode."""

    keys: tuple[str, ...]

    @property
    def name(self) -> str:
        """The file, or the folder of images, the episode comes from."""
        return self.keys[0] if len(self.keys) == 1 else posixpath.dirname(self.keys[0]) + "/"


class FileSource(StoreBacked, DataIngestionInterface):
    """Episodes from files under a local or ``s3://`` prefix (see the module docs).

    Args:
        uri: the directory or prefix to read.
        include: glob patterns matched against keys relative to ``uri`` (all supported files
            when empty); ``*`` matches across ``/``.
        fps: the rate of steps whose data carries no timestamp.
        time_unit: the unit of timestamps found in the data, and of the ones produced.
        timestamp_key: the array, column or JSON key holding timestamps, when present.
        image_key: the feature name of frames from videos and image folders.
        columns: for tables, features assembled from several columns, e.g.
            ``{"observation/state": ["q0", "q1", "q2"]}``.
        storage_options: endpoint and retries for ``s3://`` sources.

    Examples:
        >>> from robodm_engine.ingestion import create_vla_dataset_from_source
        >>> source = FileSource("/data/raw", include=["*.npz"], fps=15)  # doctest: +SKIP
        >>> create_vla_dataset_from_source(source, output_directory="/data/ds")  # doctest: +SKIP
    """

    def __init__(
        self,
        uri: str,
        include: Sequence[str] | None = None,
        *,
        fps: float = 10.0,
        time_unit: str = "ms",
        timestamp_key: str = TIMESTAMP_KEY,
        image_key: str = "observation/image",
        columns: Mapping[str, Sequence[str]] | None = None,
        storage_options: StorageOptions | None = None,
    ) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.uri = str(uri)
        self.include = list(include or [])
        self.fps = float(fps)
        self.time_unit: TimeUnit = check_time_unit(time_unit)
        self.timestamp_key = timestamp_key
        self.image_key = image_key
        self.columns = {name: list(cols) for name, cols in (columns or {}).items()}
        self.storage_options = storage_options

    def get_data_items(self) -> list[Episode]:
        """List the episodes: one per file, one per folder of images, in key order.

        Raises:
            SourceFormatError: when nothing under ``uri`` matches.
        """
        keys = sorted(
            info.key for info in self.store.list()
            if info.key.lower().endswith(SUPPORTED_SUFFIXES) and matches(info.key, self.include)
        )
        episodes: list[Episode] = []
        folders: dict[str, list[str]] = {}
        for key in keys:
            if key.lower().endswith(_IMAGE):
                folders.setdefault(posixpath.dirname(key), []).append(key)
            else:
                episodes.append(Episode((key,)))
        episodes.extend(Episode(tuple(images)) for images in folders.values())
        episodes.sort(key=lambda episode: episode.keys[0])
        if not episodes:
            patterns = self.include or [f"*{s}" for s in SUPPORTED_SUFFIXES]
            raise SourceFormatError(f"no files under {self.uri} match {patterns}")
        return episodes

    def count_items(self) -> int | None:
        """Unknown until listed; the engine counts while listing."""
        return None

    def get_item_id(self, item: Any, index: int) -> str:
        """Failures name the file (or folder) instead of an index."""
        return self.store.url(item.keys[0]) if len(item.keys) == 1 else item.name

    def transform_item(self, item: Episode) -> list[dict[str, Any]]:  # type: ignore[override]
        """Read one episode into its steps."""
        first = item.keys[0]
        suffix = posixpath.splitext(first)[1].lower()
        where = self.store.url(first)
        if suffix in _IMAGE:
            return self._read_images(item.keys)
        with self.store.open(first) as handle:
            if suffix == ".npz":
                return self._read_npz(handle, where)
            if suffix in _JSON:
                return self._read_json(handle, where, lines=suffix == ".jsonl")
            if suffix in _TABLE:
                return self._read_table(handle, where, parquet=suffix == ".parquet")
            return self._read_video(handle, where)

    # --- readers -------------------------------------------------------------------------------

    def _steps(self, columns: Mapping[str, np.ndarray], where: str) -> list[dict[str, Any]]:
        return columns_to_steps(columns, where=where, fps=self.fps, time_unit=self.time_unit,
                                timestamp_column=self.timestamp_key)

    def _read_npz(self, handle: Any, where: str) -> list[dict[str, Any]]:
        # Arrays load lazily: the refusal to unpickle object arrays comes on access.
        try:
            with np.load(io.BytesIO(handle.read()), allow_pickle=False) as archive:
                columns = {key: archive[key] for key in archive.files}
        except ValueError as exc:
            raise SourceFormatError(f"{where}: cannot read without pickle ({exc})") from exc
        return self._steps(columns, where)

    def _read_json(self, handle: Any, where: str, *, lines: bool) -> list[dict[str, Any]]:
        text = handle.read().decode("utf-8")
        try:
            data: Any = ([json.loads(line) for line in text.splitlines() if line.strip()]
                         if lines else json.loads(text))
        except json.JSONDecodeError as exc:
            raise SourceFormatError(f"{where}: invalid JSON ({exc})") from exc
        if isinstance(data, dict) and isinstance(data.get("steps"), list):
            data = data["steps"]
        if isinstance(data, dict):
            return self._steps({k: np.asarray(v) for k, v in data.items()}, where)
        if not isinstance(data, list) or not all(isinstance(s, dict) for s in data):
            raise SourceFormatError(f"{where}: expected a list of step objects, "
                                    "{'steps': [...]} or an object of lists")
        stamps = fps_timestamps(len(data), self.fps, self.time_unit)
        steps = []
        for index, step in enumerate(data):
            values = {k: _json_value(v) for k, v in step.items() if k != self.timestamp_key}
            values[TIMESTAMP_KEY] = step.get(self.timestamp_key, stamps[index])
            steps.append(values)
        return steps

    def _read_table(self, handle: Any, where: str, *, parquet: bool) -> list[dict[str, Any]]:
        import pyarrow.csv as pa_csv
        import pyarrow.parquet as pq

        table = pq.read_table(handle) if parquet else pa_csv.read_csv(handle)
        columns: dict[str, np.ndarray] = {}
        grouped = {col for cols in self.columns.values() for col in cols}
        missing = sorted(grouped - set(table.column_names))
        if missing:
            raise SourceFormatError(f"{where}: no column(s) {missing}; it has "
                                    f"{table.column_names}")
        for name, cols in self.columns.items():
            columns[name] = np.stack([table[c].to_numpy(zero_copy_only=False) for c in cols],
                                     axis=1)
        for name in table.column_names:
            if name not in grouped:
                values = table[name].to_numpy(zero_copy_only=False)
                if values.dtype == object:  # list columns (parquet) and strings
                    values = _object_column(values, where, name)
                columns[name] = values
        return self._steps(columns, where)

    def _read_video(self, handle: Any, where: str) -> list[dict[str, Any]]:
        import av

        steps = []
        try:
            with av.open(handle) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    seconds = float(frame.time) if frame.time is not None else len(steps) / self.fps
                    steps.append({
                        self.image_key: frame.to_ndarray(format="rgb24"),
                        TIMESTAMP_KEY: from_seconds(seconds, self.time_unit),
                    })
        except (av.FFmpegError, IndexError) as exc:
            raise SourceFormatError(f"{where}: cannot decode video ({exc})") from exc
        if not steps:
            raise SourceFormatError(f"{where}: video has no frames")
        return steps

    def _read_images(self, keys: tuple[str, ...]) -> list[dict[str, Any]]:
        from PIL import Image, UnidentifiedImageError

        stamps = fps_timestamps(len(keys), self.fps, self.time_unit)
        steps = []
        for key, stamp in zip(keys, stamps, strict=True):
            try:
                with self.store.open(key) as handle, Image.open(handle) as image:
                    pixels = np.asarray(image.convert("RGB"))
            except (UnidentifiedImageError, OSError) as exc:
                raise SourceFormatError(f"{self.store.url(key)}: not a readable image "
                                        f"({exc})") from exc
            steps.append({self.image_key: pixels, TIMESTAMP_KEY: stamp})
        return steps


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return np.asarray(value)
    return value


def _object_column(values: np.ndarray, where: str, name: str) -> np.ndarray:
    if all(isinstance(v, str) for v in values):
        return values
    try:
        return np.stack([np.asarray(v) for v in values])
    except ValueError as exc:
        raise SourceFormatError(f"{where}: column {name!r} has rows of different shapes") from exc
