"""Writing one trajectory file: encode samples as they arrive, mux everything on close.

Private component of :class:`robodm_engine.trajectory.Trajectory`.

Matroska needs every stream declared before its header is written, but a trajectory's
features are only known once the last sample has arrived. So video is encoded as samples
arrive (the frames are never held) and the resulting packets, which are small, are held
together with raw samples (spooled to a temporary file past a size) until ``close()``,
which declares all streams with their final tags (sample counts, time range), muxes every
packet in decode order, and publishes the file by renaming it from a temporary name in
the same directory. A crash or an exception therefore never leaves a file at ``path``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from robodm_engine import codecs, timeline
from robodm_engine.codecs import EncodingChoice, FeatureInfo
from robodm_engine.errors import CodecError, FeatureMismatchError, TimestampError, TrajectoryError

logger = logging.getLogger(__name__)

MS: Fraction = Fraction(1, 1000)
# Raw samples beyond this many bytes in total move from memory to a temporary file.
_SPOOL_BYTES = 64 * 1024 * 1024


@dataclass
class _FeatureWriter:
    info: FeatureInfo
    choice: EncodingChoice
    stream: Any  # av.VideoStream for video features, None until close() for raw ones
    timestamps: list[int] = field(default_factory=list)
    packets: list[av.Packet] = field(default_factory=list)
    raw_spans: list[tuple[int, int]] = field(default_factory=list)  # (offset, length) in spool


class TrajectoryWriter:
    """Accumulates samples for one trajectory file; see :class:`Trajectory` for the API."""

    def __init__(
        self,
        path: Path,
        *,
        video_codec: str,
        raw_codec: str | None,
        codec_options: dict[str, Any] | None,
        separator: str,
        time_unit: timeline.TimeUnit,
        fps: float | None,
    ) -> None:
        if video_codec not in codecs.VIDEO_CODECS:
            raise CodecError(
                f"unknown video_codec {video_codec!r}; choose one of {codecs.VIDEO_CODECS}",
                path=str(path),
            )
        if raw_codec not in codecs.RAW_CODECS:
            raise CodecError(
                f"unknown raw_codec {raw_codec!r}; choose one of {codecs.RAW_CODECS}",
                path=str(path),
            )
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.path = path
        self._video_codec = video_codec
        self._raw_codec = raw_codec
        self._codec_options = codec_options
        self._separator = separator
        self._time_unit = time_unit
        self._fps = fps
        self._features: dict[str, _FeatureWriter] = {}
        self._opened_ns = time.monotonic_ns()
        self._spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115
        self._tmp_path = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        # avoid_negative_ts: FFmpeg would otherwise shift every timestamp of the file to make
        # the negative dts of B-frame streams non-negative; Matroska stores pts only.
        # bitexact: no random segment UID or version strings, so the same samples give the
        # same bytes (and checksum) on every run, which resume and dataset diffs rely on.
        self._container = av.open(
            str(self._tmp_path), mode="w", format="matroska",
            options={"avoid_negative_ts": "disabled", "fflags": "+bitexact"},
        )
        self._closed = False

    # --- adding samples --------------------------------------------------------------------

    def add(self, feature: str, data: Any, timestamp: int | float | None) -> None:
        self._check_open()
        if not isinstance(feature, str) or not feature:
            raise TrajectoryError(f"feature names must be non-empty str, got {feature!r}",
                                  path=str(self.path))
        now_ms = self._now_ms() if timestamp is None else None
        self._add(feature, data, timestamp, now_ms)

    def add_by_dict(self, data: dict[str, Any], timestamp: int | float | None) -> None:
        self._check_open()
        now_ms = self._now_ms() if timestamp is None else None  # one clock reading per step
        for name, value in flatten(data, self._separator).items():
            self._add(name, value, timestamp, now_ms)

    def _add(self, name: str, data: Any, timestamp: int | float | None, now_ms: int | None) -> None:
        try:
            value, dtype, shape = codecs.normalize_value(data)
        except TypeError as exc:
            raise TrajectoryError(str(exc), path=str(self.path), feature=name) from exc
        writer = self._features.get(name) or self._new_feature(name, dtype, shape)
        info = writer.info
        if (dtype, shape) != (info.dtype, info.shape):
            raise FeatureMismatchError(
                f"sample {len(writer.timestamps)} has dtype={dtype} shape={shape}, but the "
                f"feature started as dtype={info.dtype} shape={info.shape}",
                path=str(self.path), feature=name,
            )
        ts_ms = self._timestamp_ms(writer, timestamp, now_ms)
        if writer.choice.codec is None:
            payload = codecs.encode_raw(value, writer.choice.compression)
            offset = self._spool.seek(0, os.SEEK_END)
            self._spool.write(payload)
            writer.raw_spans.append((offset, len(payload)))
        else:
            self._encode_frame(writer, value, ts_ms)  # type: ignore[arg-type]
        writer.timestamps.append(ts_ms)

    def _timestamp_ms(self, writer: _FeatureWriter, timestamp: Any, now_ms: int | None) -> int:
        previous = writer.timestamps[-1] if writer.timestamps else None
        if timestamp is not None:
            try:
                ts_ms = timeline.to_ms(timestamp, self._time_unit)
            except (TypeError, ValueError) as exc:
                raise TimestampError(f"invalid timestamp {timestamp!r}: {exc}",
                                     path=str(self.path), feature=writer.info.name) from exc
        elif self._fps is not None:
            ts_ms = timeline.step_ms(len(writer.timestamps), self._fps)
        else:
            # Wall clock; two samples within one millisecond are nudged apart rather than
            # rejected, since the caller gave no time of their own.
            assert now_ms is not None
            ts_ms = now_ms if previous is None else max(now_ms, previous + 1)
        if previous is not None and ts_ms <= previous:
            given = "" if timestamp is None else f" (given {timestamp!r} {self._time_unit})"
            raise TimestampError(
                f"timestamp {ts_ms} ms{given} of sample {len(writer.timestamps)} is not after "
                f"the previous one ({previous} ms); timestamps must increase, at 1 ms resolution",
                path=str(self.path), feature=writer.info.name,
            )
        return ts_ms

    def _now_ms(self) -> int:
        return (time.monotonic_ns() - self._opened_ns) // 1_000_000

    def _new_feature(self, name: str, dtype: str, shape: tuple[int, ...]) -> _FeatureWriter:
        try:
            choice = codecs.choose_encoding(
                dtype, shape, self._video_codec, self._raw_codec, self._codec_options
            )
        except ValueError as exc:
            raise CodecError(str(exc), path=str(self.path), feature=name) from exc
        stream = None
        if choice.codec is not None:
            stream = self._add_video_stream(name, choice, shape)
        writer = _FeatureWriter(FeatureInfo(name, dtype, shape, choice.encoding), choice, stream)
        self._features[name] = writer
        return writer

    def _add_video_stream(self, name: str, choice: EncodingChoice, shape: tuple[int, ...]) -> Any:
        try:
            stream = self._container.add_stream(choice.codec, options=choice.options)
        except (av.FFmpegError, ValueError) as exc:
            raise CodecError(f"cannot create a {choice.codec} encoder: {exc}",
                             path=str(self.path), feature=name) from exc
        stream.width, stream.height = shape[1], shape[0]
        stream.pix_fmt = choice.pix_fmt
        stream.time_base = MS
        stream.codec_context.time_base = MS
        if self._fps is not None:
            # Rate control (x265's in particular) assumes 1 / time_base fps, i.e. 1000, otherwise.
            stream.codec_context.framerate = Fraction(self._fps).limit_denominator(1001)
        if choice.codec in ("libx264", "libx264rgb"):
            # Frame threading measured 10-40% faster than x264's default slice threading
            # here, with smaller files.
            stream.codec_context.thread_type = "FRAME"
        return stream

    def _encode_frame(self, writer: _FeatureWriter, image: np.ndarray, ts_ms: int) -> None:
        in_format = {"rgb": "rgb24", "gray": "gray"}[writer.choice.kind]
        if image.dtype == np.uint16:
            in_format = "gray16le"
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=in_format)
        frame.pts = ts_ms
        frame.time_base = MS
        try:
            writer.packets.extend(writer.stream.encode(frame))
        except av.FFmpegError as exc:
            raise CodecError(f"{writer.choice.codec} failed to encode sample "
                             f"{len(writer.timestamps)}: {exc}",
                             path=str(self.path), feature=writer.info.name) from exc

    # --- finishing -------------------------------------------------------------------------

    @property
    def features(self) -> dict[str, FeatureInfo]:
        return {name: w.info for name, w in self._features.items()}

    def sample_counts(self) -> dict[str, int]:
        return {name: len(w.timestamps) for name, w in self._features.items()}

    def time_ranges(self) -> dict[str, tuple[int, int]]:
        return {n: (w.timestamps[0], w.timestamps[-1]) for n, w in self._features.items()}

    def close(self) -> None:
        """Flush encoders, mux every packet and publish the file at its final path."""
        if self._closed:
            return
        try:
            for writer in self._features.values():
                if writer.stream is not None:
                    writer.packets.extend(writer.stream.encode(None))
            self._mux_all()
            self._container.close()
            with open(self._tmp_path, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(self._tmp_path, self.path)
        except BaseException:
            self.abort()
            raise
        finally:
            self._closed = True
            self._spool.close()
        logger.debug("wrote %s (%d features)", self.path, len(self._features))

    def abort(self) -> None:
        """Discard everything: no file is left at the final or the temporary path."""
        if not self._closed:
            self._closed = True
            # The container is being thrown away; its own errors do not matter.
            with contextlib.suppress(av.FFmpegError, OSError, ValueError):
                self._container.close()
            self._spool.close()
        self._tmp_path.unlink(missing_ok=True)

    def _mux_all(self) -> None:
        container = self._container
        container.metadata["ROBODM_FORMAT_VERSION"] = codecs.FORMAT_VERSION
        raw_streams: dict[str, Any] = {}
        for name, writer in self._features.items():
            if writer.stream is None:
                # robodm stores raw samples in rawvideo streams; so do we, for its tools.
                raw_streams[name] = container.add_stream("rawvideo")
            stream = writer.stream or raw_streams[name]
            self._tag(stream, writer)
        queue: list[tuple[int, int, av.Packet]] = []
        for name, writer in self._features.items():
            if writer.stream is not None:
                index = writer.stream.index
                queue.extend((p.dts if p.dts is not None else p.pts, index, p)
                             for p in writer.packets)
                continue
            stream = raw_streams[name]
            for ts_ms, (offset, length) in zip(writer.timestamps, writer.raw_spans, strict=True):
                self._spool.seek(offset)
                packet = av.Packet(self._spool.read(length))
                packet.pts = packet.dts = ts_ms
                packet.time_base = MS
                packet.stream = stream
                queue.append((ts_ms, stream.index, packet))
        queue.sort(key=lambda entry: (entry[0], entry[1]))
        for _, _, packet in queue:
            container.mux(packet)

    def _tag(self, stream: Any, writer: _FeatureWriter) -> None:
        info = writer.info
        stream.metadata["FEATURE_NAME"] = info.name
        stream.metadata["FEATURE_TYPE"] = codecs.feature_type_tag(info.dtype, info.shape)
        stream.metadata["ROBODM_ENCODING"] = info.encoding
        stream.metadata["ROBODM_DTYPE"] = info.dtype
        stream.metadata["ROBODM_SHAPE"] = ",".join(str(n) for n in info.shape)
        stream.metadata["ROBODM_COUNT"] = str(len(writer.timestamps))
        stream.metadata["ROBODM_START_MS"] = str(writer.timestamps[0])
        stream.metadata["ROBODM_END_MS"] = str(writer.timestamps[-1])

    def _check_open(self) -> None:
        if self._closed:
            raise TrajectoryError("trajectory is closed", path=str(self.path))


def flatten(data: dict[str, Any], separator: str, prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts into ``{"a/b": value}`` keys.

    Examples:
        >>> flatten({"observation": {"state": 1}, "action": 2}, "/")
        {'observation/state': 1, 'action': 2}
    """
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{separator}{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten(value, separator, name))
        else:
            flat[name] = value
    return flat
