"""What bare PyAV achieves on the benchmark content: the ceiling for any trajectory writer/reader.

A trajectory writer has to do at least what :func:`bare_encode_fps` does for each image
stream (wrap the RGB array in a frame, convert it to the codec's pixel format, encode, mux
into Matroska), and a reader at least what :func:`bare_decode_fps` does (demux, decode,
convert back to an RGB array). Measuring these with the same frames and codec settings turns
a trajectory benchmark's absolute numbers into a ratio to what is physically possible here.

Threading matters as much as the codec: libx264 in PyAV defaults to slice threading, and
frame threading measured 10-40% faster with slightly smaller files on this machine
(shared/notes/limits.md), so :func:`configured_threading` picks frame threading where a codec
supports it. Both single-threaded and configured figures are reported.

Run ``python -m bench.limits`` from the repository root for a quick table.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from robodm_engine.codecs import ENCODER_OPTIONS

# The writer's own encoder settings, so the bare figures are for the same operating point.
DEFAULT_OPTIONS: dict[str, dict[str, str]] = {**ENCODER_OPTIONS, "rawvideo": {}}
# The pixel format each encoder is fed. yuv420p for the lossy codecs (what players and
# decoders are fastest at); bgr0 is ffv1's bit-exact RGB format (8-bit gbrp fails to open).
DEFAULT_PIX_FMT: dict[str, str] = {
    "libx264": "yuv420p",
    "libx265": "yuv420p",
    "libsvtav1": "yuv420p",
    "libaom-av1": "yuv420p",
    "libx264rgb": "rgb24",
    "ffv1": "bgr0",
    "rawvideo": "rgb24",
}


@dataclass(frozen=True)
class Threading:
    """FFmpeg threading for a codec context. ``count`` 0 lets FFmpeg use every core."""

    count: int = 1
    kind: str | None = None  # "SLICE", "FRAME", "AUTO" or None to keep PyAV's default

    def apply(self, ctx: av.CodecContext) -> None:
        """Set these values on an unopened codec context."""
        ctx.thread_count = self.count
        if self.kind is not None:
            ctx.thread_type = self.kind

    def describe(self) -> str:
        """Short label such as ``1 thread`` or ``auto threads, FRAME``."""
        count = "auto" if self.count == 0 else str(self.count)
        noun = "thread" if self.count == 1 else "threads"
        return f"{count} {noun}" + (f", {self.kind}" if self.kind and self.count != 1 else "")


SINGLE_THREAD = Threading(1, None)
_SHAPE_TAG = "BENCH_SHAPE"  # shape of raw image packets, for decoding them back


def configured_threading(codec: str, *, decode: bool = False) -> Threading:
    """The best threading measured for ``codec`` on this kind of machine.

    libx264/libx265: frame threads (faster and smaller than PyAV's slice default). SVT-AV1 and
    libaom run their own thread pools, steered by their options, so FFmpeg's setting is left
    alone. ffv1 threads over slices. Decoders use FFmpeg's automatic choice.
    """
    if decode:
        return Threading(0, "AUTO")
    if codec in ("libx264", "libx264rgb", "libx265"):
        return Threading(0, "FRAME")
    if codec == "ffv1":
        return Threading(0, "SLICE")
    return Threading(0, None)


@dataclass(frozen=True)
class CodecSettings:
    """Everything that decides an encoder's speed and output for one image stream."""

    codec: str
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def default(cls, codec: str, options: dict[str, str] | None = None) -> CodecSettings:
        """Settings for ``codec`` with :data:`DEFAULT_OPTIONS`, updated by ``options``.

        Raises:
            ValueError: for a codec without a known pixel format.
        """
        if codec not in DEFAULT_PIX_FMT:
            raise ValueError(f"no default pixel format for {codec!r}; pass CodecSettings")
        return cls(codec, DEFAULT_PIX_FMT[codec], {**DEFAULT_OPTIONS[codec], **(options or {})})

    def describe(self) -> str:
        """Short label such as ``libx264 yuv420p crf=23 preset=medium``."""
        opts = " ".join(f"{k}={v}" for k, v in self.options.items() if "params" not in k)
        return f"{self.codec} {self.pix_fmt} {opts}".strip()


@dataclass(frozen=True)
class Measurement:
    """Frames processed, wall time and compressed bytes of one encode or decode run."""

    frames: int
    seconds: float
    bytes: int
    threading: str

    @property
    def fps(self) -> float:
        """Frames per second (``inf`` for a run too short to time)."""
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    def __add__(self, other: Measurement) -> Measurement:
        return Measurement(
            self.frames + other.frames,
            self.seconds + other.seconds,
            self.bytes + other.bytes,
            self.threading,
        )


@dataclass(frozen=True)
class EncodeResult:
    """An encode measurement plus the Matroska files it produced (one per stream)."""

    measurement: Measurement
    files: list[bytes] = field(repr=False)


def bare_encode_fps(
    frames: Iterable[np.ndarray],
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    *,
    settings: CodecSettings | None = None,
    threading: Threading | None = None,
    fps: int = 10,
) -> EncodeResult:
    """Encode RGB frames into one in-memory Matroska file, as a writer must, and time it.

    Timed: ``VideoFrame.from_ndarray(rgb24)``, the conversion to the encoder's pixel format,
    encoding, muxing and the final flush (a trajectory ends its stream the same way).

    Args:
        frames: uint8 ``(H, W, 3)`` RGB arrays of one stream.
        codec: encoder name, used with :data:`DEFAULT_OPTIONS` unless ``settings`` is given.
        options: encoder options overriding the defaults (ignored with ``settings``).
        settings: exact codec, pixel format and options, e.g. the writer's own choice.
        threading: FFmpeg threading; :func:`configured_threading` when None.
        fps: frame rate used for the stream's timestamps (time base 1/1000 s, as robodm).
    """
    settings = settings or CodecSettings.default(codec, options)
    threading = threading or configured_threading(settings.codec)
    buffer = io.BytesIO()
    frame_list = list(frames)
    if not frame_list:
        raise ValueError("no frames to encode")
    height, width = frame_list[0].shape[:2]
    step_ms = 1000 // fps

    start = time.perf_counter()
    with av.open(buffer, mode="w", format="matroska") as container:
        if settings.codec == "rawvideo":
            _mux_raw(container, frame_list, step_ms)
        else:
            stream = container.add_stream(settings.codec, rate=fps, options=dict(settings.options))
            stream.width, stream.height, stream.pix_fmt = width, height, settings.pix_fmt
            stream.time_base = Fraction(1, 1000)
            threading.apply(stream.codec_context)
            for i, array in enumerate(frame_list):
                frame = av.VideoFrame.from_ndarray(array, format="rgb24")
                if settings.pix_fmt != "rgb24":
                    frame = frame.reformat(format=settings.pix_fmt)
                frame.pts = i * step_ms
                # Without this PyAV reads pts in the codec's 1/fps time base: frames 100x
                # apart make x264's rate control spend ~10x the bits.
                frame.time_base = stream.time_base
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    seconds = time.perf_counter() - start
    data = buffer.getvalue()
    measurement = Measurement(len(frame_list), seconds, len(data), threading.describe())
    return EncodeResult(measurement, [data])


def _mux_raw(
    container: av.container.OutputContainer, frames: list[np.ndarray], step_ms: int
) -> None:
    """Store frames as raw byte packets, as a writer does for uncompressed images.

    Matroska cannot carry rawvideo rgb24 as a video codec, so (like robodm and our writer)
    the bytes go into packets of a data-less ``rawvideo`` stream, the shape in a tag.
    """
    stream = container.add_stream("rawvideo")
    stream.time_base = Fraction(1, 1000)
    stream.metadata[_SHAPE_TAG] = ",".join(map(str, frames[0].shape))
    for i, array in enumerate(frames):
        packet = av.Packet(np.ascontiguousarray(array).tobytes())
        packet.pts = packet.dts = i * step_ms
        packet.time_base = stream.time_base
        packet.stream = stream
        container.mux(packet)


def bare_encode_episodes(
    episodes: Sequence[Sequence[np.ndarray]],
    settings: CodecSettings,
    threading: Threading | None = None,
    fps: int = 10,
) -> EncodeResult:
    """:func:`bare_encode_fps` once per episode (one file each, as trajectories are), summed.

    Per-episode streams pay encoder start-up and the end-of-stream flush every time; one long
    stream would hide that cost and overstate the limit.
    """
    total: Measurement | None = None
    files: list[bytes] = []
    for frames in episodes:
        result = bare_encode_fps(frames, settings=settings, threading=threading, fps=fps)
        total = result.measurement if total is None else total + result.measurement
        files.extend(result.files)
    if total is None:
        raise ValueError("no episodes to encode")
    return EncodeResult(total, files)


def bare_decode_fps(
    source: str | os.PathLike[str] | bytes,
    *,
    threading: Threading | None = None,
    to_rgb: bool = True,
) -> Measurement:
    """Decode the first stream of a file (path or bytes) and time it.

    Timed: opening, demuxing, decoding and, with ``to_rgb``, ``to_ndarray(format="rgb24")``
    for every frame, which is what a reader returning RGB arrays pays. Without it the figure
    is the decoder alone (the colour conversion is often the larger cost).
    """
    threading = threading or configured_threading("", decode=True)
    if isinstance(source, bytes):
        size = len(source)
        opened: io.BytesIO | str = io.BytesIO(source)
    else:
        size = Path(source).stat().st_size
        opened = os.fspath(source)
    frames = 0
    start = time.perf_counter()
    with av.open(opened, mode="r") as container:
        stream = container.streams[0]
        if _SHAPE_TAG in stream.metadata:
            shape = tuple(int(n) for n in stream.metadata[_SHAPE_TAG].split(","))
            for packet in container.demux(stream):
                if packet.size:
                    np.frombuffer(bytes(packet), dtype=np.uint8).reshape(shape)
                    frames += 1
        else:
            threading.apply(stream.codec_context)
            for frame in container.decode(stream):
                if to_rgb:
                    frame.to_ndarray(format="rgb24")
                frames += 1
    seconds = time.perf_counter() - start
    return Measurement(frames, seconds, size, threading.describe())


def bare_decode_files(
    files: Sequence[bytes], threading: Threading | None = None, to_rgb: bool = True
) -> Measurement:
    """:func:`bare_decode_fps` over several files, summed."""
    total: Measurement | None = None
    for data in files:
        result = bare_decode_fps(data, threading=threading, to_rgb=to_rgb)
        total = result if total is None else total + result
    if total is None:
        raise ValueError("no files to decode")
    return total


@dataclass(frozen=True)
class Limits:
    """Bare encode/decode figures for one codec, single-threaded and as configured."""

    settings: CodecSettings
    encode_1t: Measurement
    encode: Measurement
    decode_1t: Measurement
    decode: Measurement
    files: list[bytes] = field(repr=False)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""

        def m(x: Measurement) -> dict[str, object]:
            return {
                "frames": x.frames,
                "seconds": round(x.seconds, 6),
                "fps": round(x.fps, 1),
                "bytes": x.bytes,
                "threading": x.threading,
            }

        return {
            "codec": self.settings.codec,
            "pix_fmt": self.settings.pix_fmt,
            "options": self.settings.options,
            "encode_single_thread": m(self.encode_1t),
            "encode_configured": m(self.encode),
            "decode_single_thread": m(self.decode_1t),
            "decode_configured": m(self.decode),
        }


def measure_limits(
    episodes: Sequence[Sequence[np.ndarray]], settings: CodecSettings, fps: int = 10
) -> Limits:
    """Encode and decode ``episodes`` with ``settings`` at one thread and as configured."""
    enc_1t = bare_encode_episodes(episodes, settings, SINGLE_THREAD, fps)
    enc = bare_encode_episodes(episodes, settings, configured_threading(settings.codec), fps)
    dec_1t = bare_decode_files(enc.files, SINGLE_THREAD)
    dec = bare_decode_files(enc.files, configured_threading(settings.codec, decode=True))
    return Limits(settings, enc_1t.measurement, enc.measurement, dec_1t, dec, enc.files)


def packet_bytes(data: bytes) -> int:
    """Payload bytes of a file's first stream, without Matroska's headers, index and framing."""
    with av.open(io.BytesIO(data), mode="r") as container:
        return sum(packet.size for packet in container.demux(container.streams[0]))


def decode_rgb(data: bytes) -> np.ndarray:
    """All frames of a file written by :func:`bare_encode_fps`, as a ``(T, H, W, 3)`` array."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams[0]
        if _SHAPE_TAG in stream.metadata:
            shape = tuple(int(n) for n in stream.metadata[_SHAPE_TAG].split(","))
            return np.stack(
                [
                    np.frombuffer(bytes(p), dtype=np.uint8).reshape(shape)
                    for p in container.demux(stream)
                    if p.size
                ]
            )
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])


def machine_info() -> dict[str, object]:
    """Cores and library versions, to print next to any figure."""
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "pyav": av.__version__,
        "ffmpeg": str(av.ffmpeg_version_info),
        "numpy": np.__version__,
        # Benchmarks share this machine with other work: the load says how noisy figures are.
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }


def _main() -> None:
    from robodm_engine.synthetic import make_episode, mean_psnr

    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints a banner per encoder otherwise

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--codecs", default="libx264,libx265,libsvtav1,ffv1,libx264rgb,rawvideo")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()

    episodes = [
        [s["observation"]["image"] for s in make_episode(args.steps, args.size, args.size, seed=i)]
        for i in range(args.episodes)
    ]
    raw = sum(f.nbytes for e in episodes for f in e)
    print(machine_info())
    size = f"{args.size}x{args.size}x3"
    print(f"{args.episodes} x {args.steps} frames of {size} ({raw / 1e6:.1f} MB)")
    header = "| codec | enc 1t f/s | enc cfg f/s | dec 1t f/s | dec cfg f/s | B/frame | PSNR dB |"
    print(header + "\n|" + "---|" * (header.count("|") - 1))
    for codec in args.codecs.split(","):
        settings = CodecSettings.default(codec)
        lim = measure_limits(episodes, settings)
        quality = mean_psnr(np.stack(episodes[0]), decode_rgb(lim.files[0]))
        print(
            f"| {settings.describe()} | {lim.encode_1t.fps:.0f} | {lim.encode.fps:.0f} "
            f"| {lim.decode_1t.fps:.0f} | {lim.decode.fps:.0f} "
            f"| {lim.encode.bytes / lim.encode.frames:.0f} "
            f"| {'exact' if math.isinf(quality) else f'{quality:.1f}'} |"
        )


if __name__ == "__main__":
    _main()
