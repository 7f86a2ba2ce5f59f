"""The trajectory file: one Matroska file per trajectory, one stream per feature.

:class:`Trajectory` is the public facade over a writer and a reader (private modules
``_trajectory_writer`` and ``_trajectory_reader``); :mod:`robodm_engine.codecs` decides how
each feature is stored and :mod:`robodm_engine.timeline` handles time. The format is
robodm-compatible in its tags (``FEATURE_NAME``, ``FEATURE_TYPE``) and safe: nothing read
from a file is unpickled unless the caller passes ``allow_pickle=True``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Literal

import numpy as np

from robodm_engine import timeline
from robodm_engine._trajectory_reader import TrajectoryReader
from robodm_engine._trajectory_writer import TrajectoryWriter
from robodm_engine.codecs import FeatureInfo
from robodm_engine.errors import TrajectoryError

__all__ = ["FeatureInfo", "Trajectory", "TrajectorySummary"]


@dataclass(frozen=True)
class TrajectorySummary:
    """What a trajectory holds, known without decoding any sample.

    Attributes:
        steps: the largest number of samples of any feature.
        features: every feature's dtype, shape and encoding.
        counts: samples per feature.
        start_ms: the earliest timestamp of any feature, in milliseconds.
        end_ms: the latest timestamp of any feature, in milliseconds.
    """

    steps: int
    features: dict[str, FeatureInfo]
    counts: dict[str, int]
    start_ms: int
    end_ms: int


class Trajectory:
    """A robot trajectory stored as one Matroska file, written or read.

    Write mode encodes samples as they are added and publishes the file at ``path`` only
    when :meth:`close` succeeds (an exception inside a ``with`` block discards it). Read
    mode loads features as numpy arrays, optionally resampled to a frequency.

    Args:
        path: the ``.mkv`` file. In read mode also a seekable binary file object.
        mode: ``"r"`` to read, ``"w"`` to write.
        video_codec: how ``(H, W, 3)`` uint8 images are stored: ``"auto"`` (libx264,
            crf 23; RGB libx264rgb for odd sides), ``"libx264"``, ``"libx265"``,
            ``"libsvtav1"``, ``"libaom-av1"``, ``"ffv1"`` / ``"lossless"`` /
            ``"libx264rgb"`` (bit-exact RGB) or ``"rawvideo"`` (uncompressed bytes).
            Grayscale and depth images always use lossless ffv1.
        raw_codec: compression of non-image features: None (none), ``"zstd"``, ``"lz4"``
            or ``"gzip"``. ``"rawvideo"``/``"rawvideo_pyarrow"`` (robodm's names) mean none.
        codec_options: encoder options, flat (``{"crf": "18"}``) or per codec.
        feature_name_separator: joins nested dict keys in :meth:`add_by_dict`.
        time_unit: unit of the timestamps given to :meth:`add` (ns, us, ms or s).
            Files store milliseconds; finer values round to the nearest millisecond.
        fps: when set, a sample added without a timestamp is at ``index / fps`` seconds;
            otherwise at the wall-clock time since the writer opened.
        allow_pickle: read robodm 0.1.0 files, whose raw features are pickles. Unpickling
            runs arbitrary code: only for files from a source you trust.

    Raises:
        TrajectoryFormatError: in read mode, for a missing, empty, truncated or
            non-Matroska file.
        CodecError: for an unknown codec name.

    Examples:
        >>> import numpy as np, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "episode.mkv")
        >>> with Trajectory(path, mode="w", fps=10) as traj:
        ...     for step in range(3):
        ...         traj.add_by_dict({"observation": {"state": np.zeros(7, np.float32)},
        ...                           "action": np.ones(2, np.float32)})
        >>> data = Trajectory(path).load()
        >>> data["observation/state"].shape, data["action"].dtype
        ((3, 7), dtype('float32'))
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | BinaryIO,
        mode: Literal["r", "w"] = "r",
        video_codec: str = "auto",
        raw_codec: str | None = None,
        codec_options: dict[str, Any] | None = None,
        feature_name_separator: str = "/",
        time_unit: str = "ms",
        *,
        fps: float | None = None,
        allow_pickle: bool = False,
    ) -> None:
        self.mode = mode
        self.feature_name_separator = feature_name_separator
        self.time_unit = timeline.check_time_unit(time_unit)
        self._writer: TrajectoryWriter | None = None
        self._reader: TrajectoryReader | None = None
        if isinstance(path, str | os.PathLike):
            self.path: str = os.fspath(path)
        else:
            self.path = str(getattr(path, "name", "<file object>"))
        if mode == "w":
            if not isinstance(path, str | os.PathLike):
                raise TypeError("write mode needs a file path, not a file object")
            self._writer = TrajectoryWriter(
                Path(path),
                video_codec=video_codec,
                raw_codec=raw_codec,
                codec_options=codec_options,
                separator=feature_name_separator,
                time_unit=self.time_unit,
                fps=fps,
            )
        elif mode == "r":
            source = Path(path) if isinstance(path, str | os.PathLike) else path
            self._reader = TrajectoryReader(source, allow_pickle=allow_pickle, name=self.path)
        else:
            raise ValueError(f"mode must be 'r' or 'w', got {mode!r}")

    # --- writing -----------------------------------------------------------------------------

    def add(self, feature: str, data: Any, timestamp: int | float | None = None) -> None:
        """Add one sample of ``feature`` at ``timestamp`` (in ``time_unit``).

        Raises:
            FeatureMismatchError: when dtype or shape differ from the feature's first sample.
            TimestampError: when the timestamp is not after the feature's previous one.
        """
        self._require_writer().add(feature, data, timestamp)

    def add_by_dict(self, data: Mapping[str, Any], timestamp: int | float | None = None) -> None:
        """Add one step: every leaf of a nested dict, under keys joined by the separator.

        Examples:
            >>> traj.add_by_dict({"observation": {"image": img}, "action": act}, timestamp=0)
            ... # doctest: +SKIP
        """
        self._require_writer().add_by_dict(dict(data), timestamp)

    @classmethod
    def from_list_of_dicts(
        cls,
        data: Sequence[Mapping[str, Any]],
        path: str | os.PathLike[str],
        *,
        fps: float = 10.0,
        timestamps: Sequence[int | float] | None = None,
        **writer_kwargs: Any,
    ) -> Trajectory:
        """Write a list of step dicts as a trajectory and open it for reading.

        Step ``i`` is at ``timestamps[i]`` (in ``time_unit``) when given, else at ``i / fps`` s.

        Examples:
            >>> import numpy as np, tempfile, os
            >>> steps = [{"state": np.full(3, i, np.float32)} for i in range(5)]
            >>> path = os.path.join(tempfile.mkdtemp(), "t.mkv")
            >>> Trajectory.from_list_of_dicts(steps, path, fps=20).load()["state"][:, 0]
            array([0., 1., 2., 3., 4.], dtype=float32)
        """
        if timestamps is not None and len(timestamps) != len(data):
            raise ValueError(f"{len(timestamps)} timestamps for {len(data)} steps")
        with cls(path, mode="w", fps=fps, **writer_kwargs) as traj:
            for index, step in enumerate(data):
                traj.add_by_dict(step, None if timestamps is None else timestamps[index])
        return cls(path, allow_pickle=False)

    @classmethod
    def from_dict_of_lists(
        cls,
        data: Mapping[str, Any],
        path: str | os.PathLike[str],
        *,
        fps: float = 10.0,
        timestamps: Sequence[int | float] | None = None,
        **writer_kwargs: Any,
    ) -> Trajectory:
        """Write ``{feature: sequence of samples}`` (nested dicts allowed) and open it.

        Every feature must have the same number of samples.

        Examples:
            >>> import numpy as np, tempfile, os
            >>> path = os.path.join(tempfile.mkdtemp(), "t.mkv")
            >>> cols = {"obs": {"state": np.zeros((4, 3))}, "reward": [0.0, 0.0, 1.0, 0.5]}
            >>> Trajectory.from_dict_of_lists(cols, path).load()["obs/state"].shape
            (4, 3)
        """
        from robodm_engine._trajectory_writer import flatten

        separator = writer_kwargs.get("feature_name_separator", "/")
        columns = flatten(dict(data), separator)
        lengths = {name: len(values) for name, values in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"features have different lengths: {lengths}")
        count = next(iter(lengths.values()), 0)
        steps = [{name: values[i] for name, values in columns.items()} for i in range(count)]
        return cls.from_list_of_dicts(steps, path, fps=fps, timestamps=timestamps,
                                      **writer_kwargs)

    # --- reading -----------------------------------------------------------------------------

    def load(
        self,
        return_type: Literal["numpy"] = "numpy",
        desired_frequency: float | None = None,
        data_slice: slice | None = None,
        *,
        features: list[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Load features as arrays stacked over time.

        Args:
            return_type: ``"numpy"``: a dict of arrays (strings and bytes as object arrays).
            desired_frequency: resample every feature to this rate (Hz): tick ``k`` is at
                ``start + k / desired_frequency`` and takes each feature's sample nearest in
                time, so all features then have the same length. Works for any source rate.
            data_slice: which steps to return: sample indices of each feature, or grid ticks
                when resampling. Only the samples selected are decoded.
            features: load only these features (all when None).

        Raises:
            PickleNotAllowedError: the file has pickled features and ``allow_pickle`` is off.
            TrajectoryFormatError: the file is truncated or corrupt.

        Examples:
            >>> traj.load(desired_frequency=10.0, data_slice=slice(0, 50))  # doctest: +SKIP
        """
        if return_type != "numpy":
            raise ValueError(f"return_type must be 'numpy', got {return_type!r}")
        return self._require_reader().load(
            desired_frequency=desired_frequency, data_slice=data_slice, features=features
        )

    def timestamps(self) -> dict[str, np.ndarray]:
        """Each feature's sample times in milliseconds (int64, ascending)."""
        return self._require_reader().timestamps()

    @property
    def features(self) -> dict[str, FeatureInfo]:
        """Every feature's dtype, shape and encoding."""
        if self._writer is not None:
            return self._writer.features
        return self._require_reader().features

    def summary(self) -> TrajectorySummary:
        """Steps, features and time range; in write mode valid once samples were added."""
        if self._writer is not None:
            counts = self._writer.sample_counts()
            ranges = self._writer.time_ranges()
        else:
            reader = self._require_reader()
            tagged = reader.tagged_summary()
            if tagged is None:
                stamps = reader.timestamps()
                counts = {name: len(ts) for name, ts in stamps.items()}
                ranges = {n: (int(ts[0]), int(ts[-1])) for n, ts in stamps.items() if len(ts)}
            else:
                counts, ranges = tagged
        return TrajectorySummary(
            steps=max(counts.values(), default=0),
            features=self.features,
            counts=counts,
            start_ms=min((r[0] for r in ranges.values()), default=0),
            end_ms=max((r[1] for r in ranges.values()), default=0),
        )

    def __len__(self) -> int:
        return self.summary().steps

    # --- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Finish: in write mode, encode the rest and publish the file at ``path``."""
        if self._writer is not None:
            if not self._writer.features:
                self._writer.abort()
                raise TrajectoryError("nothing to write: no samples were added", path=self.path)
            self._writer.close()
        if self._reader is not None:
            self._reader.close()

    def __enter__(self) -> Trajectory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None and self._writer is not None:
            self._writer.abort()
            return
        self.close()

    def __repr__(self) -> str:
        return f"Trajectory({self.path!r}, mode={self.mode!r})"

    def _require_writer(self) -> TrajectoryWriter:
        if self._writer is None:
            raise TrajectoryError("trajectory was opened for reading (mode='r')", path=self.path)
        return self._writer

    def _require_reader(self) -> TrajectoryReader:
        if self._reader is None:
            raise TrajectoryError("trajectory is open for writing; close it and reopen with "
                                  "mode='r' to read", path=self.path)
        return self._reader
