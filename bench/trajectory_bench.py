"""Write and read trajectories with every video codec, against bare PyAV's limits.

For each codec this writes ``--trajectories`` files of ``--steps`` steps of the shared
benchmark content (:mod:`robodm_engine.synthetic`: an RGB image, float32 state (14,) and action (7,)
per step at 10 Hz, with explicit millisecond timestamps) through
``robodm_engine.Trajectory``, reads each back with ``Trajectory(path).load()``, and reports:

- write and read throughput in steps (= frames) per second, each next to the bare PyAV
  limit for the same encoder settings (:mod:`bench.limits`) and the ratio between them;
- bytes on disk and the compression ratio against the raw arrays;
- mean image PSNR against the original frames.

Timed: writing covers opening, every ``add_by_dict`` and ``close()`` (flush, mux, fsync,
rename); reading covers opening and ``load()`` of all features. Content generation and the
correctness checks (state, action and timestamps must round-trip exactly) are not timed.

Run from the repository root::

    python -m bench.trajectory_bench --trajectories 2 --steps 20          # smoke test
    python -m bench.trajectory_bench --json bench/results/trajectory.json  # full default

Figures on a shared 2-core machine move by +-30% between runs; the load average is printed
with the results for that reason.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.limits import (
    SINGLE_THREAD,
    CodecSettings,
    Measurement,
    bare_decode_fps,
    bare_encode_fps,
    configured_threading,
    decode_rgb,
    machine_info,
    packet_bytes,
)
from robodm_engine.synthetic import make_episode, mean_psnr, raw_bytes_per_step, timestamps_ms

DEFAULT_CODECS = ("auto", "libx264", "libx265", "libsvtav1", "ffv1", "lossless", "rawvideo")
IMAGE_KEY = "observation/image"
EXACT_KEYS = ("observation/state", "action")


@dataclass
class LimitFigures:
    """Bare PyAV encode/decode of the image stream alone, with the writer's encoder settings."""

    settings: str
    encode_1t_fps: float = 0.0
    encode_cfg_fps: float = 0.0
    encode_cfg_threading: str = ""
    decode_1t_fps: float = 0.0
    decode_cfg_fps: float = 0.0
    bytes_per_frame: float = 0.0  # packet payload, comparable to the trajectory's image stream
    psnr_db: float = math.nan
    frames: int = 0

    @property
    def encode_fps(self) -> float:
        """The best bare encode rate: the limit a writer is compared with."""
        return max(self.encode_1t_fps, self.encode_cfg_fps)

    @property
    def decode_fps(self) -> float:
        """The best bare decode rate: the limit a reader is compared with."""
        return max(self.decode_1t_fps, self.decode_cfg_fps)


@dataclass
class CodecResult:
    """One table row: a ``video_codec`` value written and read ``trajectories`` times."""

    video_codec: str
    encoding: str = ""
    trajectories: int = 0
    steps: int = 0
    write_seconds: float = 0.0
    read_seconds: float = 0.0
    bytes_on_disk: int = 0
    image_bytes: int = 0
    # Image-stream bytes and PSNR of the episodes the bare limits also ran on, so the limits
    # table compares like with like (episodes differ in how well they compress).
    subset_image_bytes_per_frame: float = math.nan
    subset_psnr_db: float = math.nan
    raw_bytes: int = 0
    psnr_db: float = math.nan
    limits: LimitFigures | None = None
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    loadavg_1min: float = math.nan  # when this codec finished: how contended the run was

    @property
    def frames(self) -> int:
        """Steps written (each holds one image)."""
        return self.trajectories * self.steps

    @property
    def write_fps(self) -> float:
        """Steps written per second."""
        return self.frames / self.write_seconds if self.write_seconds else math.nan

    @property
    def read_fps(self) -> float:
        """Steps loaded per second."""
        return self.frames / self.read_seconds if self.read_seconds else math.nan

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the derived rates and ratios included."""
        out = asdict(self)
        if self.limits is not None:
            out["limits"]["psnr_db"] = _round(self.limits.psnr_db, 2)
        out.update(
            frames=self.frames,
            write_fps=_round(self.write_fps),
            read_fps=_round(self.read_fps),
            compression_ratio=_round(self.raw_bytes / self.bytes_on_disk)
            if self.bytes_on_disk
            else None,
            psnr_db=_round(self.psnr_db, 2),
            subset_psnr_db=_round(self.subset_psnr_db, 2),
            subset_image_bytes_per_frame=_round(self.subset_image_bytes_per_frame),
            image_exact=math.isinf(self.psnr_db),
        )
        if self.limits is not None:
            out["write_vs_limit"] = _round(self.write_fps / self.limits.encode_fps, 3)
            out["read_vs_limit"] = _round(self.read_fps / self.limits.decode_fps, 3)
        return out


def _round(value: float, digits: int = 1) -> float | None:
    """Round for JSON; NaN and infinity (not valid JSON) become null."""
    return round(value, digits) if math.isfinite(value) else None


def _images(episode: Sequence[dict[str, Any]]) -> list[np.ndarray]:
    return [step["observation"]["image"] for step in episode]


def _writer_settings(
    video_codec: str, shape: tuple[int, ...], codec_options: dict[str, Any] | None
) -> tuple[str, CodecSettings]:
    """The encoder the writer picks for the image, as bare-PyAV settings.

    Asking ``robodm_engine.codecs`` rather than restating its table keeps the limit at the
    writer's exact operating point (codec, pixel format, options) as that table evolves.
    """
    from robodm_engine import codecs

    choice = codecs.choose_encoding("uint8", shape, video_codec, None, codec_options)
    if choice.codec is None:  # images stored as raw bytes
        return choice.encoding, CodecSettings("rawvideo", "rgb24", {})
    assert choice.pix_fmt is not None
    return choice.encoding, CodecSettings(choice.codec, choice.pix_fmt, dict(choice.options))


class _LimitAccumulator:
    """Bare PyAV runs on the same episodes as the trajectory runs, summed per phase."""

    def __init__(self, settings: CodecSettings, fps: int) -> None:
        self.settings = settings
        self.fps = fps
        self.threading = configured_threading(settings.codec)
        self.decode_threading = configured_threading(settings.codec, decode=True)
        self.enc_1t: Measurement | None = None
        self.enc_cfg: Measurement | None = None
        self.dec_1t: Measurement | None = None
        self.dec_cfg: Measurement | None = None
        self.files: list[bytes] = []
        self.psnrs: list[float] = []

    def encode(self, frames: list[np.ndarray]) -> None:
        one = bare_encode_fps(frames, settings=self.settings, threading=SINGLE_THREAD, fps=self.fps)
        cfg = bare_encode_fps(
            frames, settings=self.settings, threading=self.threading, fps=self.fps
        )
        self.enc_1t = _add(self.enc_1t, one.measurement)
        self.enc_cfg = _add(self.enc_cfg, cfg.measurement)
        self.files.append(cfg.files[0])
        self.psnrs.append(mean_psnr(np.stack(frames), decode_rgb(cfg.files[0])))

    def decode(self, index: int) -> None:
        data = self.files[index]
        self.dec_1t = _add(self.dec_1t, bare_decode_fps(data, threading=SINGLE_THREAD))
        self.dec_cfg = _add(self.dec_cfg, bare_decode_fps(data, threading=self.decode_threading))

    def figures(self) -> LimitFigures:
        assert self.enc_1t and self.enc_cfg and self.dec_1t and self.dec_cfg
        return LimitFigures(
            settings=self.settings.describe(),
            encode_1t_fps=self.enc_1t.fps,
            encode_cfg_fps=self.enc_cfg.fps,
            encode_cfg_threading=self.enc_cfg.threading,
            decode_1t_fps=self.dec_1t.fps,
            decode_cfg_fps=self.dec_cfg.fps,
            bytes_per_frame=sum(packet_bytes(f) for f in self.files) / self.enc_cfg.frames,
            psnr_db=_mean_db(self.psnrs),
            frames=self.enc_cfg.frames,
        )


def _mean_db(values: Sequence[float]) -> float:
    """Mean PSNR over episodes: ``inf`` when every episode is exact, NaN when any failed."""
    if all(math.isinf(v) for v in values):
        return math.inf
    return float(np.mean([min(v, 100.0) for v in values]))


def _add(total: Measurement | None, item: Measurement) -> Measurement:
    return item if total is None else total + item


def run_codec(
    video_codec: str,
    out_dir: Path,
    trajectories: int,
    steps: int,
    size: tuple[int, int],
    fps: int,
    codec_options: dict[str, Any] | None,
    limit_trajectories: int,
) -> CodecResult:
    """Write, read and check ``trajectories`` files with one ``video_codec``.

    The bare PyAV limits run right after the trajectory on each of the first
    ``limit_trajectories`` episodes, not in a separate phase: on a shared machine the load
    drifts during a run, and interleaving exposes both sides of each ratio to the same load.
    """
    from robodm_engine import Trajectory

    result = CodecResult(video_codec, trajectories=trajectories, steps=steps)
    stamps = timestamps_ms(steps, fps)
    paths = [out_dir / video_codec / f"episode_{i:04d}.mkv" for i in range(trajectories)]
    try:
        result.encoding, settings = _writer_settings(video_codec, (*size, 3), codec_options)
        bare = _LimitAccumulator(settings, fps)
        for seed, path in enumerate(paths):
            episode = make_episode(steps, *size, seed=seed, fps=fps)
            result.raw_bytes += sum(raw_bytes_per_step(step) for step in episode)
            start = time.perf_counter()
            with Trajectory(
                path, mode="w", video_codec=video_codec, codec_options=codec_options
            ) as traj:
                for step, ts in zip(episode, stamps, strict=True):
                    traj.add_by_dict(step, timestamp=ts)
            result.write_seconds += time.perf_counter() - start
            result.bytes_on_disk += path.stat().st_size
            if seed < limit_trajectories:
                bare.encode(_images(episode))

        psnrs: list[float] = []
        for seed, path in enumerate(paths):
            start = time.perf_counter()
            with Trajectory(path) as traj:
                data = traj.load()
            result.read_seconds += time.perf_counter() - start
            if seed < limit_trajectories:
                bare.decode(seed)
            with Trajectory(path) as traj:
                stored_stamps = traj.timestamps()
            episode = make_episode(steps, *size, seed=seed, fps=fps)
            psnrs.append(_check(result, data, stored_stamps, episode, stamps, path.name))
        result.psnr_db = _mean_db(psnrs)
        result.image_bytes = _stream_bytes(paths, IMAGE_KEY)
        subset = min(limit_trajectories, trajectories)
        result.subset_psnr_db = _mean_db(psnrs[:subset])
        result.subset_image_bytes_per_frame = _stream_bytes(paths[:subset], IMAGE_KEY) / (
            subset * steps
        )
        result.limits = bare.figures()
    except Exception as exc:  # one codec failing (missing encoder, writer bug) must not end the run
        result.error = f"{type(exc).__name__}: {exc}"
    result.loadavg_1min = round(os.getloadavg()[0], 2)
    return result


def _check(
    result: CodecResult,
    data: dict[str, np.ndarray],
    stored_stamps: dict[str, np.ndarray],
    episode: Sequence[dict[str, Any]],
    stamps: list[int],
    name: str,
) -> float:
    """Verify a loaded trajectory against its source; return the image's mean PSNR."""
    images = np.stack(_images(episode))
    got = data.get(IMAGE_KEY)
    if got is None or got.shape != images.shape or got.dtype != images.dtype:
        shape = None if got is None else (got.dtype, got.shape)
        result.problems.append(f"{name}: image is {shape}, expected {images.shape} uint8")
        return math.nan
    for key in EXACT_KEYS:
        head, _, tail = key.rpartition("/")
        want = np.stack([(step[head] if head else step)[tail] for step in episode])
        if key not in data or not np.array_equal(data[key], want):
            result.problems.append(f"{name}: {key} does not round-trip exactly")
    for key, ts in stored_stamps.items():
        if ts.tolist() != stamps:
            result.problems.append(f"{name}: {key} timestamps {ts[:3].tolist()}... != written")
    return mean_psnr(images, got)


def _stream_bytes(paths: Sequence[Path], feature: str) -> int:
    """Packet bytes of one feature's stream across files (its share of the disk bytes)."""
    import av

    total = 0
    for path in paths:
        with av.open(str(path)) as container:
            streams = [s for s in container.streams if s.metadata.get("FEATURE_NAME") == feature]
            for packet in container.demux(streams):
                total += packet.size
    return total


# --- output --------------------------------------------------------------------------------


def _fmt_rate(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:,.0f}"


def _fmt_psnr(value: float) -> str:
    if math.isnan(value):
        return "-"
    return "exact" if math.isinf(value) else f"{value:.1f}"


def _table(rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: list[str]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "| " + " | ".join(cells) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(rows[0]), rule, *(line(r) for r in rows[1:])])


def render(results: list[CodecResult]) -> str:
    """The main table and the limits table, as aligned Markdown."""
    main = [
        [
            "video_codec",
            "stored as",
            "write f/s",
            "enc limit",
            "write/limit",
            "read f/s",
            "dec limit",
            "read/limit",
            "MB on disk",
            "vs raw",
            "PSNR dB",
        ]
    ]
    limits = [
        [
            "video_codec",
            "bare encoder settings",
            "enc 1 thread",
            "enc configured",
            "threading",
            "dec 1 thread",
            "dec configured",
            "B/frame bare",
            "B/frame traj",
            "PSNR bare",
            "PSNR traj",
        ]
    ]
    notes: list[str] = []
    for r in results:
        if r.error is not None:
            main.append([r.video_codec, "error", *["-"] * 9])
            notes.append(f"{r.video_codec}: {r.error}")
            continue
        lim = r.limits
        assert lim is not None
        main.append(
            [
                r.video_codec,
                r.encoding,
                _fmt_rate(r.write_fps),
                _fmt_rate(lim.encode_fps),
                f"{r.write_fps / lim.encode_fps:.0%}",
                _fmt_rate(r.read_fps),
                _fmt_rate(lim.decode_fps),
                f"{r.read_fps / lim.decode_fps:.0%}",
                f"{r.bytes_on_disk / 1e6:.2f}",
                f"{r.raw_bytes / r.bytes_on_disk:.0f}x",
                _fmt_psnr(r.psnr_db),
            ]
        )
        limits.append(
            [
                r.video_codec,
                lim.settings,
                _fmt_rate(lim.encode_1t_fps),
                _fmt_rate(lim.encode_cfg_fps),
                lim.encode_cfg_threading,
                _fmt_rate(lim.decode_1t_fps),
                _fmt_rate(lim.decode_cfg_fps),
                f"{lim.bytes_per_frame:,.0f}",
                f"{r.subset_image_bytes_per_frame:,.0f}",
                _fmt_psnr(lim.psnr_db),
                _fmt_psnr(r.subset_psnr_db),
            ]
        )
        notes.extend(f"{r.video_codec}: {p}" for p in r.problems[:5])
        if len(r.problems) > 5:
            notes.append(f"{r.video_codec}: ... {len(r.problems) - 5} more problems")
    text = (
        _table(main, right=set(range(2, 11)))
        + "\n\n"
        + _table(limits, right={2, 3, 5, 6, 7, 8, 9, 10})
    )
    if notes:
        text += "\n\nProblems:\n" + "\n".join(f"- {n}" for n in notes)
    return text


def _parse_size(text: str) -> tuple[int, int]:
    """``224`` or ``HxW`` (e.g. ``180x320``) to ``(height, width)``."""
    parts = text.lower().split("x")
    if len(parts) == 1:
        return int(parts[0]), int(parts[0])
    if len(parts) == 2:
        return int(parts[0]), int(parts[1])
    raise argparse.ArgumentTypeError(f"size must be N or HxW, got {text!r}")


def _machine() -> dict[str, Any]:
    import robodm_engine

    info = machine_info()
    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [ln for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    info.update(cpu=cpu, python=platform.python_version(), robodm_engine=robodm_engine.__version__)
    return info


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(
        description="Trajectory write/read throughput, size and quality per video codec.",
    )
    parser.add_argument("--trajectories", type=int, default=20, help="files per codec")
    parser.add_argument("--steps", type=int, default=100, help="steps per trajectory")
    parser.add_argument(
        "--codecs",
        default=",".join(DEFAULT_CODECS),
        help="comma-separated Trajectory(video_codec=...) values",
    )
    parser.add_argument("--size", type=_parse_size, default=(224, 224), help="N or HxW")
    parser.add_argument("--fps", type=int, default=10, help="step rate of the content")
    parser.add_argument(
        "--codec-options",
        type=json.loads,
        default=None,
        help='JSON passed as Trajectory(codec_options=...), e.g. \'{"crf": "28"}\'',
    )
    parser.add_argument(
        "--limit-trajectories",
        type=int,
        default=5,
        help="episodes used for the bare PyAV limits (a rate: a few suffice)",
    )
    parser.add_argument("--out", type=Path, default=None, help="keep files here (default: temp)")
    parser.add_argument("--json", type=Path, default=None, help="also write results as JSON")
    args = parser.parse_args(argv)
    if args.trajectories <= 0 or args.steps <= 0 or args.limit_trajectories <= 0:
        parser.error("--trajectories, --steps and --limit-trajectories must be positive")

    # SVT-AV1 prints a multi-line banner per encoder instance unless told otherwise.
    os.environ.setdefault("SVT_LOG", "1")
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="trajectory-bench-"))
    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    height, width = args.size
    machine = _machine()
    print(
        f"{args.trajectories} trajectories x {args.steps} steps per codec: "
        f"image {height}x{width}x3 uint8 + state (14,) + action (7,) float32 at {args.fps} Hz"
    )
    print(
        f"machine: {machine['cores']} cores ({machine['cpu']}), PyAV {machine['pyav']}, "
        f"FFmpeg {machine['ffmpeg']}, Python {machine['python']}, "
        f"load average {machine['loadavg_1min']}"
    )

    results: list[CodecResult] = []
    started = time.perf_counter()
    try:
        for codec in codecs:
            result = run_codec(
                codec,
                out_dir,
                args.trajectories,
                args.steps,
                (height, width),
                args.fps,
                args.codec_options,
                args.limit_trajectories,
            )
            results.append(result)
            status = "failed" if result.error else f"write {_fmt_rate(result.write_fps)} f/s"
            status += f", load average {result.loadavg_1min}"
            print(f"  {codec}: {status}", file=sys.stderr, flush=True)
    finally:
        if args.out is None:
            shutil.rmtree(out_dir, ignore_errors=True)
    load_after = round(os.getloadavg()[0], 2)

    print()
    print(render(results))
    print(
        "\nwrite/read f/s: steps per second through Trajectory (write includes close()).\n"
        "enc/dec limit: the faster of 1-thread and configured bare PyAV on the image stream "
        f"alone, run interleaved on the first {min(args.limit_trajectories, args.trajectories)} "
        "episodes; the limits table's B/frame and PSNR columns cover those episodes only.\n"
        f"Load average after: {load_after}; total {time.perf_counter() - started:.0f} s."
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "machine": {**machine, "loadavg_1min_after": load_after},
            "config": {
                "trajectories": args.trajectories,
                "steps": args.steps,
                "height": height,
                "width": width,
                "fps": args.fps,
                "codec_options": args.codec_options,
                "limit_trajectories": min(args.limit_trajectories, args.trajectories),
            },
            "results": [r.as_dict() for r in results],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
