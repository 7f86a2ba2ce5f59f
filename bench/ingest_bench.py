"""Ingestion throughput and memory: the Ray engine against one writer process per core.

The source is the shared benchmark content (:mod:`robodm_engine.synthetic`): ``--trajectories``
episodes of ``--steps`` steps, each step a 224x224x3 uint8 frame plus float32 state (14,)
and action (7,). It is a *streaming* source: a generator that renders the steps in the
driver, episode after episode, so the engine has to ship every frame to its workers (as it
would for data read by the driver) and a source larger than memory is possible. Each step
is one item; ``group_size = --steps``, so each episode becomes one trajectory.

Runs:

- ``engine``: :func:`robodm_engine.ingestion.run_ingestion` with 1 and 2 workers on one
  local Ray (started once with ``num_cpus=2``; its start-up is reported, not timed), after
  a small warm-up run so worker start-up and imports are not timed either.
- ``baseline``: the same episodes written with ``robodm_engine.Trajectory`` directly by a
  ``multiprocessing`` pool of 1 and 2 processes, each rendering its own episodes (no
  shipping): the ceiling the engine's parallelism is measured against.
- ``engine x10``: 2 workers on a source ``--scale`` times larger, to show that peak memory
  does not grow with the source.

Reported per run: wall seconds, frames/s and items/s (equal here: one frame per item),
output MB/s, and peak RSS summed over the driver and all its descendant processes (Ray's
raylet, object store and workers, or the pool), sampled every 50 ms, absolute and above
the idle level measured just before the run. RSS counts shared pages (the object store)
once per process mapping them, so the sum over-states physical use; compare runs with it.

Parallel efficiency is ``rate(2 workers) / (2 * rate(1 worker))``.

Run from the repository root::

    python -m bench.ingest_bench --trajectories 4 --steps 20 --scale 2   # smoke test
    python -m bench.ingest_bench --json                                   # full, machine output

Figures on a shared 2-core machine move by +-30% between runs; the load average is printed
with the results for that reason.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from robodm_engine.synthetic import make_episode

FPS = 10.0


@dataclass
class Run:
    """One measured run."""

    name: str
    workers: int
    trajectories: int
    frames: int
    seconds: float
    bytes_out: int
    peak_rss_mb: float
    idle_rss_mb: float

    @property
    def frames_per_s(self) -> float:
        """Frames encoded per second (one frame per step)."""
        return self.frames / self.seconds

    @property
    def items_per_s(self) -> float:
        """Items (steps) ingested per second."""
        return self.frames / self.seconds

    @property
    def mb_per_s(self) -> float:
        """Trajectory bytes written per second, in MB."""
        return self.bytes_out / 1e6 / self.seconds

    def as_dict(self) -> dict[str, Any]:
        """Everything, derived rates included, for ``--json``."""
        return {
            **asdict(self),
            "frames_per_s": round(self.frames_per_s, 1),
            "items_per_s": round(self.items_per_s, 1),
            "mb_per_s": round(self.mb_per_s, 3),
            "peak_over_idle_mb": round(self.peak_rss_mb - self.idle_rss_mb, 1),
        }


class RssSampler:
    """Peak RSS of this process plus all its descendants, sampled on a thread."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @staticmethod
    def tree_rss() -> int:
        """Current RSS of this process and its descendants, in bytes."""
        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # exited between listing and reading
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.tree_rss())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.tree_rss())


def _steps(trajectories: int, steps: int) -> Iterator[dict[str, Any]]:
    """The streaming source: every step of every episode, rendered on demand."""
    for episode in range(trajectories):
        yield from make_episode(steps=steps, seed=episode, fps=FPS)


def _dir_bytes(path: Path, suffix: str = ".mkv") -> int:
    return sum(p.stat().st_size for p in path.glob(f"*{suffix}"))


def _measure(
    name: str, workers: int, trajectories: int, steps: int, work: Callable[[Path], None]
) -> Run:
    out = Path(tempfile.mkdtemp(prefix="robodm-ingest-bench-"))
    try:
        idle = RssSampler.tree_rss()
        with RssSampler() as sampler:
            started = time.perf_counter()
            work(out)
            seconds = time.perf_counter() - started
        return Run(
            name=name,
            workers=workers,
            trajectories=trajectories,
            frames=trajectories * steps,
            seconds=seconds,
            bytes_out=_dir_bytes(out),
            peak_rss_mb=sampler.peak / 1e6,
            idle_rss_mb=idle / 1e6,
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)


def engine_run(name: str, workers: int, trajectories: int, steps: int) -> Run:
    """Ingest the streaming source with ``workers`` Ray workers."""
    from robodm_engine.ingestion import IngestionConfig, IteratorAdapter, run_ingestion

    def work(out: Path) -> None:
        adapter = IteratorAdapter(lambda: _steps(trajectories, steps), group_size=steps)
        config = IngestionConfig(str(out), num_workers=workers, fps=FPS)
        result = run_ingestion(adapter, config)
        if result.counts["itemsWritten"] != trajectories * steps:
            raise RuntimeError(f"{name}: wrote {result.counts} for {trajectories * steps} items")

    return _measure(name, workers, trajectories, steps, work)


def _write_episode(args: tuple[str, int, int]) -> int:
    from robodm_engine.trajectory import Trajectory

    out, episode, steps = args
    path = Path(out, f"trajectory_{episode:06d}.mkv")
    with Trajectory(path, mode="w", fps=FPS) as traj:
        for step in make_episode(steps=steps, seed=episode, fps=FPS):
            traj.add_by_dict(step)
    return path.stat().st_size


def baseline_run(workers: int, trajectories: int, steps: int) -> Run:
    """Write the same episodes with ``Trajectory`` in a pool of ``workers`` processes."""

    def work(out: Path) -> None:
        jobs = [(str(out), episode, steps) for episode in range(trajectories)]
        # fork: the pool starts in milliseconds and inherits the imports, as the engine's
        # warm workers do; the driver holds no Ray threads at this point that matter.
        context = multiprocessing.get_context("fork")
        with context.Pool(processes=workers) as pool:
            pool.map(_write_episode, jobs, chunksize=1)

    return _measure(f"baseline {workers}p", workers, trajectories, steps, work)


def _table(runs: Sequence[Run], summary: dict[str, float | None]) -> str:
    header = (
        "run", "workers", "traj", "frames", "seconds", "frames/s", "items/s", "MB/s out",
        "peak RSS MB", "over idle MB",
    )
    rows = [
        (
            r.name, str(r.workers), str(r.trajectories), str(r.frames), f"{r.seconds:.2f}",
            f"{r.frames_per_s:.0f}", f"{r.items_per_s:.0f}", f"{r.mb_per_s:.3f}",
            f"{r.peak_rss_mb:.0f}", f"{r.peak_rss_mb - r.idle_rss_mb:.0f}",
        )
        for r in runs
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths,
                                                                               strict=True))
        )

    out = [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows), ""]
    for key, value in summary.items():
        out.append(f"{key:<40} {'n/a' if value is None else f'{value:.2f}'}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description="Ingestion throughput and memory.")
    parser.add_argument("--trajectories", type=int, default=20, help="episodes in the source")
    parser.add_argument("--steps", type=int, default=100, help="steps (frames) per episode")
    parser.add_argument("--scale", type=int, default=10,
                        help="size factor of the large-source run (0: skip it)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    # Read by Ray at import: a throwaway local cluster needs no token and no telemetry.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from robodm_engine.ingestion import IngestionConfig, IteratorAdapter, run_ingestion

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray_init_s = time.perf_counter() - started
    try:
        warm = Path(tempfile.mkdtemp(prefix="robodm-ingest-warmup-"))
        run_ingestion(
            IteratorAdapter(lambda: _steps(2, 10), group_size=10),
            IngestionConfig(str(warm), num_workers=2),
        )
        shutil.rmtree(warm, ignore_errors=True)
        runs = [
            engine_run("engine 1w", 1, args.trajectories, args.steps),
            engine_run("engine 2w", 2, args.trajectories, args.steps),
        ]
        if args.scale > 0:
            runs.append(engine_run(f"engine 2w x{args.scale}", 2,
                                   args.trajectories * args.scale, args.steps))
    finally:
        ray.shutdown()
    runs += [baseline_run(1, args.trajectories, args.steps),
             baseline_run(2, args.trajectories, args.steps)]

    by_name = {r.name: r for r in runs}
    e1, e2 = by_name["engine 1w"], by_name["engine 2w"]
    b1, b2 = by_name["baseline 1p"], by_name["baseline 2p"]
    large = by_name.get(f"engine 2w x{args.scale}")
    summary: dict[str, float | None] = {
        "engine parallel efficiency": e2.frames_per_s / (2 * e1.frames_per_s),
        "baseline parallel efficiency": b2.frames_per_s / (2 * b1.frames_per_s),
        "engine / baseline rate, 1 worker": e1.frames_per_s / b1.frames_per_s,
        "engine / baseline rate, 2 workers": e2.frames_per_s / b2.frames_per_s,
        "peak over idle, large / normal source": (
            (large.peak_rss_mb - large.idle_rss_mb) / (e2.peak_rss_mb - e2.idle_rss_mb)
            if large is not None else None
        ),
        "ray.init seconds (not timed above)": ray_init_s,
        "load average (1 min) at the end": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps({"runs": [r.as_dict() for r in runs], "summary": summary,
                          "cpus": os.cpu_count()}, indent=2))
    else:
        print(_table(runs, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
