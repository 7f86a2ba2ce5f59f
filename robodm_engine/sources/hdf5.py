"""The ``hdf5`` source format: episodes from HDF5 files in robomimic, ALOHA or plain layouts.

=============  ===================================================================  =========
layout         what it looks like                                                   fps
=============  ===================================================================  =========
``robomimic``  ``/data/demo_<n>/{obs/<k>, actions, rewards, dones, states}``;       20
               every demo of every file is one episode
``aloha``      one episode per file: ``/observations/{qpos, qvel, effort,          50
               images/<camera>}``, ``/action``; JPEG-compressed camera frames
               (``compress`` attribute) are decoded
``plain``      one episode per file: every dataset whose first axis is the          10
               episode length, named by its path
=============  ===================================================================  =========

``layout: auto`` (default) picks by structure. Feature names follow LeRobot-style
conventions: ``observation/<key>``, ``action``, ``reward``, ``done``. Files are read
through :mod:`robodm_engine.storage`, so ``s3://`` objects are streamed.

Example job spec::

    source: {uri: s3://raw/robomimic/lift/, format: hdf5, include: ["*.hdf5"],
             options: {layout: robomimic}}
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from robodm_engine.ingestion import DataIngestionInterface
from robodm_engine.sources._episode import (
    SourceFormatError,
    StoreBacked,
    columns_to_steps,
    matches,
)
from robodm_engine.storage import StorageOptions
from robodm_engine.timeline import TimeUnit, check_time_unit

Layout = Literal["auto", "robomimic", "aloha", "plain"]
DEFAULT_FPS: dict[str, float] = {"robomimic": 20.0, "aloha": 50.0, "plain": 10.0}
_SUFFIXES = (".hdf5", ".h5", ".he5")
_ROBOMIMIC_KEYS = {"actions": "action", "rewards": "reward", "dones": "done", "states": "state"}


@dataclass(frozen=True)
class HDF5Episode:
    """One item: a file key and, for robomimic, the demo group inside it."""

    key: str
    group: str | None = None


class HDF5Source(StoreBacked, DataIngestionInterface):
    """Episodes from HDF5 files (see the module docs for the layouts).

    Args:
        uri: the directory or prefix to read.
        include: glob patterns for file keys (default: ``*.hdf5``, ``*.h5``).
        layout: ``auto``, ``robomimic``, ``aloha`` or ``plain``.
        fps: step rate; default per layout (robomimic 20, ALOHA 50, plain 10).
        time_unit: the unit of the timestamps produced.
        storage_options: endpoint and retries for ``s3://`` sources.
    """

    def __init__(
        self,
        uri: str,
        include: Sequence[str] | None = None,
        *,
        layout: Layout = "auto",
        fps: float | None = None,
        time_unit: str = "ms",
        storage_options: StorageOptions | None = None,
    ) -> None:
        if layout not in ("auto", *DEFAULT_FPS):
            raise ValueError(f"layout must be auto, robomimic, aloha or plain; got {layout!r}")
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.uri = str(uri)
        self.include = list(include or [])
        self.layout = layout
        self.fps = fps
        self.time_unit: TimeUnit = check_time_unit(time_unit)
        self.storage_options = storage_options

    def get_data_items(self) -> list[HDF5Episode]:
        """One item per file, or per demo of a robomimic file (demos in numeric order)."""
        import h5py

        keys = sorted(
            info.key for info in self.store.list()
            if info.key.lower().endswith(_SUFFIXES) and matches(info.key, self.include)
        )
        if not keys:
            raise SourceFormatError(f"no HDF5 files under {self.uri}")
        items: list[HDF5Episode] = []
        for key in keys:
            with self.store.open(key) as handle, _open_h5(h5py, handle, self.store.url(key)) as f:
                if self._layout_of(f) == "robomimic":
                    demos = sorted(f["data"].keys(), key=_natural)
                    items.extend(HDF5Episode(key, f"data/{demo}") for demo in demos)
                else:
                    items.append(HDF5Episode(key))
        return items

    def get_item_id(self, item: Any, index: int) -> str:
        """Failures name the file and demo."""
        url = self.store.url(item.key)
        return url if item.group is None else f"{url}#{item.group}"

    def transform_item(self, item: HDF5Episode) -> list[dict[str, Any]]:  # type: ignore[override]
        """Read one episode into its steps."""
        import h5py

        where = self.get_item_id(item, 0)
        with self.store.open(item.key) as handle, _open_h5(h5py, handle, where) as f:
            layout = self._layout_of(f)
            if layout == "robomimic":
                columns = _robomimic_columns(f[item.group])
            elif layout == "aloha":
                columns = _aloha_columns(f, where)
            else:
                columns = _plain_columns(f, where)
        fps = self.fps or DEFAULT_FPS[layout]
        return columns_to_steps(columns, where=where, fps=fps, time_unit=self.time_unit)

    def _layout_of(self, f: Any) -> str:
        if self.layout != "auto":
            return self.layout
        if "data" in f and any(name.startswith("demo") for name in f["data"]):
            return "robomimic"
        if "observations" in f and "action" in f:
            return "aloha"
        return "plain"


def _open_h5(h5py: Any, handle: Any, where: str) -> Any:
    try:
        return h5py.File(handle, "r")
    except OSError as exc:
        raise SourceFormatError(f"{where}: not a readable HDF5 file ({exc})") from exc


def _natural(name: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def _robomimic_columns(demo: Any) -> dict[str, np.ndarray]:
    columns = {f"observation/{k}": demo["obs"][k][()] for k in demo.get("obs", {})}
    for key, feature in _ROBOMIMIC_KEYS.items():
        if key in demo:
            columns[feature] = demo[key][()]
    return columns


def _aloha_columns(f: Any, where: str) -> dict[str, np.ndarray]:
    compressed = bool(f.attrs.get("compress", False))
    columns: dict[str, np.ndarray] = {}
    observations = f["observations"]
    for key in observations:
        if key == "images":
            for camera in observations["images"]:
                frames = observations["images"][camera][()]
                columns[f"observation/images/{camera}"] = (
                    _decode_jpegs(frames, where, camera) if compressed else frames
                )
        else:
            columns[f"observation/{key}"] = observations[key][()]
    columns["action"] = f["action"][()]
    return columns


def _decode_jpegs(frames: np.ndarray, where: str, camera: str) -> np.ndarray:
    import io

    from PIL import Image, UnidentifiedImageError

    decoded = []
    for index, encoded in enumerate(frames):
        try:
            with Image.open(io.BytesIO(np.asarray(encoded).tobytes())) as image:
                decoded.append(np.asarray(image.convert("RGB")))
        except (UnidentifiedImageError, OSError) as exc:
            raise SourceFormatError(f"{where}: camera {camera!r} frame {index} is not a "
                                    f"readable JPEG ({exc})") from exc
    return np.stack(decoded)


def _plain_columns(f: Any, where: str) -> dict[str, np.ndarray]:
    import h5py

    datasets: dict[str, np.ndarray] = {}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and obj.ndim >= 1:
            datasets[name] = obj[()]

    f.visititems(visit)
    if not datasets:
        raise SourceFormatError(f"{where}: no datasets with a time axis")
    # The episode length is the most common first dimension; other datasets are metadata.
    lengths = [len(v) for v in datasets.values()]
    length = max(set(lengths), key=lengths.count)
    return {name: values for name, values in datasets.items() if len(values) == length}
