"""LeRobot's own dataset pipeline against robodm's, on the same content, side by side.

The content is :func:`robodm_engine.synthetic.make_episode`: ``--episodes`` episodes of ``--steps``
steps at ``--fps``, one ``--size`` RGB camera, state (14,) and action (7,), and a task string
per episode. Measured, in one run:

write
  - LeRobot: ``LeRobotDataset.create`` + ``add_frame`` / ``save_episode`` / ``finalize`` with
    its default video settings (AV1, libsvtav1 crf 30, g 2).
  - robodm: ingestion of the same steps (``create_vla_dataset_from_source``, one trajectory
    per episode, ``--workers`` Ray workers, H.264 by default). Ray is started before timing.
  - LeRobot -> robodm: ingestion of the LeRobot dataset just written
    (:class:`robodm_engine.lerobot.source.LeRobotSource`, ``--workers`` Ray workers). Its
    first tasks pay for importing ``lerobot`` in each worker (see the report on
    ``robodm_engine.lerobot.__init__``).
  - robodm -> LeRobot: :func:`robodm_engine.lerobot.export.export_lerobot` of that dataset
    (AV1 with LeRobot's settings), the writer this repository uses instead of LeRobot's.
read (``--batch-size`` batches, ``--workers`` DataLoader workers, PyAV decoding)
  - LeRobot: ``LeRobotDataset`` through a ``DataLoader``, sequential and shuffled.
  - robodm: ``VLADataset.iter_batches``; ``RoboDMLeRobotDataset`` through a ``DataLoader``,
    sequential, shuffled (``shuffle=True``) and with ``EpisodeBlockSampler``.

Reported: frames per second, bytes on disk, and the mean PSNR of sampled camera frames
against the generated ones. Reads stop after ``--read-frames`` frames (all by default)
except the fully shuffled robodm read, which decodes a trajectory per frame and is capped
at 8 batches.

Run from the repository root::

    python -m bench.lerobot_bench --quick
    python -m bench.lerobot_bench --json bench/results/lerobot.json   # 20 x 100, 224x224

Figures on a shared 2-core machine move by +-30% between runs; the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from robodm_engine.synthetic import make_episode, psnr

TASKS = ("pick up the red block", "put the block in the bin")
CAMERA = "observation.image"
SHUFFLED_CAP_BATCHES = 8


@dataclass
class Row:
    """One measurement: what ran, how many frames, how long, and what it produced."""

    operation: str
    implementation: str
    frames: int
    seconds: float
    bytes: int | None = None
    psnr_db: float | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else math.nan


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _mean_psnr(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    values = [psnr(a, b) for a, b in pairs]
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.inf


def _to_uint8(chw: Any) -> np.ndarray:
    return (chw.numpy().transpose(1, 2, 0) * 255.0).round().astype(np.uint8)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _count_frames(batches: Iterable[dict[str, Any]], limit: int, key: str) -> int:
    frames = 0
    for batch in batches:
        frames += len(batch[key])
        if frames >= limit:
            break
    return frames


# --- writers ------------------------------------------------------------------------------


def lerobot_create(episodes: Sequence[list[dict[str, Any]]], root: Path, fps: int) -> float:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    first = episodes[0][0]
    height, width = first["observation"]["image"].shape[:2]
    features = {
        CAMERA: {
            "dtype": "video",
            "shape": (height, width, 3),
            "names": ["height", "width", "channels"],
        },
        "observation.state": {
            "dtype": "float32",
            "shape": first["observation"]["state"].shape,
            "names": None,
        },
        "action": {"dtype": "float32", "shape": first["action"].shape, "names": None},
    }

    def run() -> None:
        dataset = LeRobotDataset.create(
            "bench/lerobot", fps=fps, features=features, root=root, use_videos=True
        )
        for index, episode in enumerate(episodes):
            for step in episode:
                dataset.add_frame(
                    {
                        CAMERA: step["observation"]["image"],
                        "observation.state": step["observation"]["state"],
                        "action": step["action"],
                        "task": TASKS[index % len(TASKS)],
                    }
                )
            dataset.save_episode()
        dataset.finalize()

    return _timed(run)[1]


def robodm_ingest(
    episodes: Sequence[list[dict[str, Any]]], root: Path, fps: int, workers: int
) -> float:
    from robodm_engine.ingestion import create_vla_dataset_from_source

    steps = [
        {**step, "task": TASKS[index % len(TASKS)]}
        for index, episode in enumerate(episodes)
        for step in episode
    ]
    _, seconds = _timed(
        lambda: create_vla_dataset_from_source(
            steps,
            output_directory=str(root),
            group_size=len(episodes[0]),
            num_workers=workers,
            fps=float(fps),
            return_vla_dataset=False,
            progress_interval_s=60.0,
        )
    )
    return seconds


def lerobot_import(lerobot_root: Path, root: Path, workers: int) -> float:
    from robodm_engine.ingestion import IngestionConfig, run_ingestion
    from robodm_engine.lerobot.source import LeRobotSource

    config = IngestionConfig(
        output_directory=str(root),
        num_workers=workers,
        timestamp_key="timestamp",
        progress_interval_s=60.0,
    )
    return _timed(lambda: run_ingestion(LeRobotSource(str(lerobot_root)), config))[1]


# --- readers ------------------------------------------------------------------------------


def read_loader(
    dataset: Any,
    *,
    batch_size: int,
    workers: int,
    limit: int,
    shuffle: bool = False,
    sampler: Any = None,
) -> tuple[int, float]:
    from torch.utils.data import DataLoader

    # forkserver: a fork of this process, which has run Ray, PyAV and torch threads, crashed
    # (segfaults in the first worker). Timing starts after the first batch, so worker start-up
    # is excluded alike for every loader.
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler, num_workers=workers,
        multiprocessing_context="forkserver" if workers else None,
    )
    batches = iter(loader)
    first = len(next(batches)["index"])
    frames, seconds = _timed(lambda: _count_frames(batches, limit - first, "index"))
    return frames, seconds


def read_vla(root: Path, *, batch_size: int, limit: int) -> tuple[int, float]:
    from robodm_engine.dataset import VLADataset

    dataset = VLADataset(str(root))
    batches = iter(dataset.iter_batches(batch_size=batch_size))
    first = len(next(batches)["step"])  # like the DataLoaders: start-up is not timed
    return _timed(lambda: _count_frames(batches, limit - first, "step"))


# --- the run ------------------------------------------------------------------------------


def run(args: argparse.Namespace, work: Path) -> tuple[list[Row], dict[str, Any]]:
    import ray
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from robodm_engine.lerobot.export import export_lerobot
    from robodm_engine.lerobot.robodm_dataset import EpisodeBlockSampler, RoboDMLeRobotDataset
    from robodm_engine.trajectory import Trajectory

    height, width = args.size
    episodes = [
        make_episode(args.steps, height, width, seed=e, fps=args.fps) for e in range(args.episodes)
    ]
    total = args.episodes * args.steps
    limit = min(total, args.read_frames or total)
    sample = list(range(0, total, max(1, total // 50)))

    def source_frame(index: int) -> np.ndarray:
        return episodes[index // args.steps][index % args.steps]["observation"]["image"]

    rows: list[Row] = []
    lerobot_root, robodm_root, export_root = work / "lerobot", work / "robodm", work / "export"

    seconds = lerobot_create(episodes, lerobot_root, args.fps)
    lerobot = LeRobotDataset("bench/lerobot", root=lerobot_root, video_backend="pyav")
    rows.append(
        Row(
            "write",
            "LeRobot create+add_frame+save_episode (AV1)",
            total,
            seconds,
            _size(lerobot_root),
            _mean_psnr((_to_uint8(lerobot[i][CAMERA]), source_frame(i)) for i in sample),
        )
    )

    ray.init(
        num_cpus=args.workers,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    seconds = robodm_ingest(episodes, robodm_root, args.fps, args.workers)
    trajectories = sorted(robodm_root.glob("*.mkv"))
    decoded = [
        Trajectory(p).load(features=["observation/image"])["observation/image"]
        for p in trajectories
    ]
    rows.append(
        Row(
            "write",
            f"robodm ingestion ({args.workers} Ray workers, H.264)",
            total,
            seconds,
            sum(p.stat().st_size for p in trajectories),
            _mean_psnr((decoded[i // args.steps][i % args.steps], source_frame(i)) for i in sample),
        )
    )

    imported_root = work / "imported"
    seconds = lerobot_import(lerobot_root, imported_root, args.workers)
    imported = sorted(imported_root.glob("*.mkv"))
    decoded_imports = [
        Trajectory(p).load(features=["observation/image"])["observation/image"] for p in imported
    ]
    rows.append(
        Row(
            "write",
            f"LeRobot -> robodm LeRobotSource ingestion ({args.workers} workers)",
            total,
            seconds,
            sum(p.stat().st_size for p in imported),
            _mean_psnr(
                (decoded_imports[i // args.steps][i % args.steps], source_frame(i)) for i in sample
            ),
        )
    )

    result, seconds = _timed(
        lambda: export_lerobot(robodm_root, export_root, repo_id="bench/export", fps=args.fps)
    )
    exported = LeRobotDataset("bench/export", root=export_root, video_backend="pyav")
    rows.append(
        Row(
            "write",
            "robodm -> LeRobot export_lerobot (AV1)",
            result.frames,
            seconds,
            result.bytes,
            _mean_psnr((_to_uint8(exported[i][CAMERA]), source_frame(i)) for i in sample),
        )
    )

    batch, workers = args.batch_size, args.workers
    for name, shuffle in (("sequential", False), ("shuffled", True)):
        frames, seconds = read_loader(
            lerobot, batch_size=batch, workers=workers, limit=limit, shuffle=shuffle
        )
        rows.append(Row("read", f"LeRobotDataset + DataLoader, {name}", frames, seconds))
    frames, seconds = read_vla(robodm_root, batch_size=batch, limit=limit)
    rows.append(Row("read", "VLADataset.iter_batches", frames, seconds))
    ours = RoboDMLeRobotDataset(robodm_root, default_task=TASKS[0])
    frames, seconds = read_loader(ours, batch_size=batch, workers=workers, limit=limit)
    rows.append(Row("read", "RoboDMLeRobotDataset + DataLoader, sequential", frames, seconds))
    frames, seconds = read_loader(
        ours,
        batch_size=batch,
        workers=workers,
        limit=limit,
        sampler=EpisodeBlockSampler(ours, seed=0),
    )
    rows.append(
        Row("read", "RoboDMLeRobotDataset + DataLoader, EpisodeBlockSampler", frames, seconds)
    )
    frames, seconds = read_loader(
        ours,
        batch_size=batch,
        workers=workers,
        shuffle=True,
        limit=min(limit, SHUFFLED_CAP_BATCHES * batch),
    )
    rows.append(Row("read", "RoboDMLeRobotDataset + DataLoader, shuffled (naive)", frames, seconds))
    ray.shutdown()
    config = {
        "episodes": args.episodes,
        "steps": args.steps,
        "size": f"{height}x{width}",
        "fps": args.fps,
        "workers": args.workers,
        "batch_size": batch,
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    return rows, config


def render(rows: Sequence[Row]) -> str:
    header = ["operation", "implementation", "frames", "s", "frames/s", "MB on disk", "PSNR dB"]
    table = [header]
    for row in rows:
        table.append(
            [
                row.operation,
                row.implementation,
                str(row.frames),
                f"{row.seconds:.2f}",
                f"{row.fps:,.0f}",
                "-" if row.bytes is None else f"{row.bytes / 2**20:.2f}",
                "-"
                if row.psnr_db is None
                else ("exact" if math.isinf(row.psnr_db) else f"{row.psnr_db:.1f}"),
            ]
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    right = {2, 3, 4, 5, 6}

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if i in right else "-" * (w + 2) for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(table[0]), rule, *(line(r) for r in table[1:])])


def _parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) in (1, 2) and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[-1])
    raise argparse.ArgumentTypeError(f"size must be N or HxW, got {text!r}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100, help="frames per episode")
    parser.add_argument("--size", type=_parse_size, default=(224, 224), help="N or HxW")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="Ray workers for ingestion and DataLoader workers for reads",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--read-frames",
        type=int,
        default=None,
        help="stop each read after this many frames (default: all)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="4 episodes x 30 frames at 96x96: a smoke run"
    )
    parser.add_argument("--out", type=Path, default=None, help="keep datasets here")
    parser.add_argument("--json", type=Path, default=None, help="also write results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.episodes, args.steps, args.size = 4, 30, (96, 96)
    work = args.out or Path(tempfile.mkdtemp(prefix="lerobot-bench-"))
    if work.exists() and any(work.iterdir()):
        parser.error(f"{work} is not empty")
    work.mkdir(parents=True, exist_ok=True)
    try:
        rows, config = run(args, work)
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"{config['episodes']} episodes x {config['steps']} frames, {config['size']}, "
        f"{config['fps']} fps; {config['workers']} workers, batch {config['batch_size']}; "
        f"load average {', '.join(f'{x:.1f}' for x in config['load_average'])} on "
        f"{config['cpus']} CPUs"
    )
    print(render(rows))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"config": config, "rows": [{**asdict(r), "fps": r.fps} for r in rows]}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
