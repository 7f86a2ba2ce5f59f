"""Reading one trajectory file: demux once, decode only the samples asked for.

Private component of :class:`robodm_engine.trajectory.Trajectory`.

Packets of every stream are demuxed first (cheap: no decoding), which gives each
feature's exact timestamps. The samples a load needs (all, a slice, or those nearest to a
resampling grid) are chosen from those timestamps, and only those are decoded and
converted: for video, the RGB conversion, not the decoder, dominates the cost. Files by
robodm 0.1.0 store non-video features as pickles; they load only with ``allow_pickle``.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np

from robodm_engine import codecs, timeline
from robodm_engine.codecs import FeatureInfo
from robodm_engine.errors import PickleNotAllowedError, TrajectoryError, TrajectoryFormatError


@dataclass
class _Stream:
    info: FeatureInfo
    av_stream: Any
    compression: str | None
    expected_count: int | None
    packets: list[av.Packet] = field(default_factory=list)
    timestamps: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))


class TrajectoryReader:
    """Reads a trajectory file; see :class:`Trajectory` for the API."""

    def __init__(self, source: Path | BinaryIO, *, allow_pickle: bool, name: str) -> None:
        self._name = name
        self._allow_pickle = allow_pickle
        if isinstance(source, Path):
            if not source.exists():
                raise TrajectoryFormatError("no such file", path=name)
            with source.open("rb") as handle:
                _check_complete(handle, name)
        else:
            _check_complete(source, name)
        try:
            self._container = av.open(
                source if not isinstance(source, Path) else str(source), mode="r"
            )
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise TrajectoryFormatError(f"not a readable Matroska file ({exc})", path=name) from exc
        if self._container.format.name.split(",")[0] not in ("matroska", "webm"):
            self._container.close()
            raise TrajectoryFormatError(
                f"not a Matroska file (detected {self._container.format.name})", path=name
            )
        self._streams = self._read_stream_tags()
        self._demuxed = False

    def _read_stream_tags(self) -> dict[int, _Stream]:
        streams: dict[int, _Stream] = {}
        for av_stream in self._container.streams:
            tags = av_stream.metadata
            name = tags.get("FEATURE_NAME")
            if name is None:
                continue
            try:
                if "ROBODM_ENCODING" in tags:
                    dtype = tags["ROBODM_DTYPE"]
                    shape_text = tags["ROBODM_SHAPE"]
                    shape = tuple(int(n) for n in shape_text.split(",")) if shape_text else ()
                    encoding = tags["ROBODM_ENCODING"]
                    count: int | None = int(tags["ROBODM_COUNT"])
                else:  # written by robodm itself
                    dtype, shape = codecs.parse_feature_type_tag(tags["FEATURE_TYPE"])
                    codec_name = av_stream.codec_context.name
                    encoding = "pickle" if codec_name == "rawvideo" else codec_name
                    count = None
            except (KeyError, ValueError) as exc:
                raise TrajectoryFormatError(f"malformed stream tags {dict(tags)}: {exc}",
                                            path=self._name) from exc
            compression = encoding.split("+", 1)[1] if encoding.startswith("raw+") else None
            info = FeatureInfo(name, dtype, shape, encoding)
            streams[av_stream.index] = _Stream(info, av_stream, compression, count)
        return streams

    @property
    def features(self) -> dict[str, FeatureInfo]:
        return {s.info.name: s.info for s in self._streams.values()}

    def tagged_summary(self) -> tuple[dict[str, int], dict[str, tuple[int, int]]] | None:
        """Counts and time ranges from our tags, without demuxing; None for robodm files."""
        counts: dict[str, int] = {}
        ranges: dict[str, tuple[int, int]] = {}
        for stream in self._streams.values():
            tags = stream.av_stream.metadata
            if "ROBODM_START_MS" not in tags:
                return None
            counts[stream.info.name] = int(tags["ROBODM_COUNT"])
            ranges[stream.info.name] = (int(tags["ROBODM_START_MS"]), int(tags["ROBODM_END_MS"]))
        return counts, ranges

    def _demux(self) -> None:
        if self._demuxed:
            return
        try:
            for packet in self._container.demux(*(s.av_stream for s in self._streams.values())):
                if packet.size == 0 or packet.pts is None:
                    continue  # the demuxer's end-of-stream marker
                self._streams[packet.stream.index].packets.append(packet)
        except av.FFmpegError as exc:
            raise TrajectoryFormatError(f"file is corrupt or truncated ({exc})",
                                        path=self._name) from exc
        for stream in self._streams.values():
            found = len(stream.packets)
            if stream.expected_count is not None and found != stream.expected_count:
                raise TrajectoryFormatError(
                    f"file is truncated: {found} of {stream.expected_count} samples present",
                    path=self._name,
                )
            # Packets of B-frame streams arrive in decode order; samples are in time order.
            stream.timestamps = np.sort(np.fromiter((p.pts for p in stream.packets), np.int64))
        self._demuxed = True

    def timestamps(self) -> dict[str, np.ndarray]:
        self._demux()
        return {s.info.name: s.timestamps.copy() for s in self._streams.values()}

    def load(
        self,
        *,
        desired_frequency: float | None,
        data_slice: slice | None,
        features: list[str] | None,
    ) -> dict[str, np.ndarray]:
        self._demux()
        selected = self._select_streams(features)
        if not selected:
            return {}
        picks: dict[str, np.ndarray]
        if desired_frequency is None:
            picks = {
                s.info.name: np.arange(len(s.timestamps))[data_slice or slice(None)]
                for s in selected
            }
        else:
            start = min(int(s.timestamps[0]) for s in selected if len(s.timestamps))
            end = max(int(s.timestamps[-1]) for s in selected if len(s.timestamps))
            grid = timeline.resample_grid(start, end, desired_frequency)[data_slice or slice(None)]
            picks = {s.info.name: timeline.nearest_indices(s.timestamps, grid) for s in selected}
        return {s.info.name: self._decode(s, picks[s.info.name]) for s in selected}

    def _select_streams(self, features: list[str] | None) -> list[_Stream]:
        streams = list(self._streams.values())
        if features is None:
            return streams
        known = {s.info.name: s for s in streams}
        missing = [f for f in features if f not in known]
        if missing:
            raise TrajectoryError(f"no feature(s) {missing}; the file has {sorted(known)}",
                                  path=self._name)
        return [known[f] for f in features]

    def _decode(self, stream: _Stream, indices: np.ndarray) -> np.ndarray:
        info = stream.info
        if info.encoding == "pickle" and not self._allow_pickle:
            raise PickleNotAllowedError(
                "stored as pickles by robodm 0.1.0; unpickling runs arbitrary code, so pass "
                "allow_pickle=True only for files from a source you trust",
                path=self._name, feature=info.name,
            )
        if info.is_video:
            return self._decode_video(stream, indices)
        if info.encoding == "raw" and info.dtype not in ("str", "bytes"):
            return self._decode_fixed_size(stream, indices)
        # Raw streams have no reordering: packet order is sample order.
        values = [self._decode_raw_packet(stream, stream.packets[i]) for i in indices]
        return _stack(values, info)

    def _decode_fixed_size(self, stream: _Stream, indices: np.ndarray) -> np.ndarray:
        """Uncompressed numeric samples: one copy and one ``frombuffer`` for all of them."""
        info = stream.info
        dtype = np.dtype(info.dtype)
        size = dtype.itemsize * int(np.prod(info.shape, dtype=np.int64))
        if size == 0:
            return np.empty((len(indices), *info.shape), dtype=dtype)
        payload = bytearray().join(bytes(stream.packets[i]) for i in indices)
        if len(payload) != size * len(indices):
            raise TrajectoryFormatError(
                f"samples hold {len(payload)} bytes in all, expected {size} each",
                path=self._name, feature=info.name,
            )
        return np.frombuffer(payload, dtype=dtype).reshape((len(indices), *info.shape))

    def _decode_raw_packet(self, stream: _Stream, packet: av.Packet) -> Any:
        payload = bytes(packet)
        if stream.info.encoding == "pickle":
            value = pickle.loads(payload)  # allowed explicitly by the caller (checked above)
            # robodm declares Python floats as float32 and casts on load; so do we.
            return value if stream.info.dtype in ("str", "bytes") else np.asarray(
                value, dtype=stream.info.dtype)
        try:
            return codecs.decode_raw(payload, stream.info.dtype, stream.info.shape,
                                     stream.compression)
        except (ValueError, OSError) as exc:
            raise TrajectoryFormatError(f"corrupt sample at {packet.pts} ms: {exc}",
                                        path=self._name, feature=stream.info.name) from exc

    def _decode_video(self, stream: _Stream, indices: np.ndarray) -> np.ndarray:
        info = stream.info
        out = np.empty((len(indices), *info.shape), dtype=np.dtype(info.dtype))
        if len(indices) == 0:
            return out
        # Decoders emit frames in presentation order, so the k-th frame out is sample k. This
        # holds even for robodm's files, whose delayed packets all carry the same bogus pts.
        wanted: dict[int, list[int]] = {}
        for row, index in enumerate(indices):
            wanted.setdefault(int(index), []).append(row)
        last_needed = max(wanted)
        out_format = _frame_format(info)
        codec_context = stream.av_stream.codec_context
        if codec_context.is_open:
            codec_context.flush_buffers()  # an earlier load() drained it
        else:
            codec_context.thread_type = "AUTO"
        start, by_pts = _decode_start(stream, min(wanted), codec_context.codec.reorder)
        filled = 0
        ordinal = start
        try:
            for packet in [*stream.packets[start:], None]:
                for frame in codec_context.decode(packet):
                    index = ordinal if by_pts is None else by_pts.get(frame.pts, -1)
                    ordinal += 1
                    rows = wanted.get(index)
                    if rows is not None:
                        image = frame.to_ndarray(format=out_format)
                        for row in rows:
                            out[row] = image
                        filled += len(rows)
                    if index >= last_needed:
                        return out
        except av.FFmpegError as exc:
            raise TrajectoryFormatError(f"video is corrupt ({exc})",
                                        path=self._name, feature=info.name) from exc
        if filled != len(indices):
            raise TrajectoryFormatError(
                f"decoded {filled} of {len(indices)} wanted frames", path=self._name,
                feature=info.name,
            )
        return out

    def close(self) -> None:
        self._container.close()


def _decode_start(
    stream: _Stream, first: int, reorder: bool
) -> tuple[int, dict[int, int] | None]:
    """Where to start decoding for sample ``first``, and how to number the frames out.

    Returns the packet to start at and, when frames must be identified by their pts rather
    than counted, a ``{pts: sample index}`` map. Without reordering, packet k is sample k,
    so decoding starts at the last keyframe at or before it (for intra-only ffv1 depth, the
    sample itself). With reordering (H.264/H.265 B-frames) it starts at the last keyframe
    whose pts is at or before the sample's, and frames are matched by pts, which also skips
    an open GOP's undecodable leading frames; that needs unique pts, which robodm 0.1.0's
    files lack (its delayed packets share one pts), so those decode from the start.
    """
    packets = stream.packets
    if not reorder:
        return next((k for k in range(first, -1, -1) if packets[k].is_keyframe), 0), None
    if len(np.unique(stream.timestamps)) != len(packets):
        return 0, None
    target = int(stream.timestamps[first])
    start = 0
    for k, packet in enumerate(packets):
        if packet.is_keyframe and packet.pts <= target:
            start = k
    if start == 0:
        return 0, None
    return start, {int(ts): i for i, ts in enumerate(stream.timestamps)}


_EBML_ID = 0x1A45DFA3
_SEGMENT_ID = 0x18538067


def _check_complete(handle: BinaryIO, name: str) -> None:
    """Compare the size the Matroska Segment declares with the bytes present.

    The demuxer reads a file cut anywhere after its header without complaint (it just
    finds fewer packets, or no index), so truncation is checked here, from the first bytes.
    """
    start = handle.tell()
    size = handle.seek(0, 2)
    handle.seek(start)
    if size == 0:
        raise TrajectoryFormatError("file is empty", path=name)
    head = handle.read(128)
    handle.seek(start)
    if not head.startswith(_EBML_ID.to_bytes(4, "big")):
        return  # not Matroska: av.open reports what it is
    try:
        header_size, offset = _read_vint(head, 4)
        offset += header_size
        element, offset = _read_vint(head, offset, keep_marker=True)
        segment_size, offset = _read_vint(head, offset)
    except IndexError:
        raise TrajectoryFormatError("file is truncated inside its header", path=name) from None
    if element == _SEGMENT_ID and segment_size is not None and offset + segment_size > size:
        raise TrajectoryFormatError(
            f"file is truncated: {size} of {offset + segment_size} bytes present", path=name
        )


def _read_vint(data: bytes, offset: int, keep_marker: bool = False) -> tuple[int, int]:
    """An EBML variable-length integer at ``offset``: (value, offset after it)."""
    first = data[offset]
    length = 9 - first.bit_length() if first else 9
    if length > 8:
        raise IndexError("invalid EBML integer")
    value = int.from_bytes(data[offset : offset + length], "big")
    if len(data) < offset + length:
        raise IndexError("EBML integer runs past the data")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
    return value, offset + length


def _frame_format(info: FeatureInfo) -> str:
    if len(info.shape) == 3:
        return "rgb24"
    return "gray16le" if info.dtype == "uint16" else "gray"


def _stack(values: list[Any], info: FeatureInfo) -> np.ndarray:
    if info.dtype in ("str", "bytes"):
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    if not values:
        return np.empty((0, *info.shape), dtype=np.dtype(info.dtype))
    return np.stack([np.asarray(v) for v in values])
