"""Ingest and read throughput: local disk vs S3 (a moto server on loopback), side by side.

    .venv/bin/python -m bench.s3_bench [--trajectories 20] [--steps 100] [--size 224] [--json]

Rows, all on the same raw episodes (npz files of video-like 224x224 frames + state + action):

- ingest, local -> local: the baseline;
- ingest, local -> S3: the same job publishing every trajectory to S3;
- ingest, S3 -> S3: reading the raw episodes from S3 as well;
- read, whole trajectories one after the other through ``Trajectory`` (local file vs an S3
  object streamed with ranged GETs, no download);
- read, ``VLADataset.iter_batches`` over the local dataset vs its S3 manifest.

moto keeps objects in memory and re-reads a whole object for each ranged GET, so S3 figures
here are a lower bound on what a real object store gives over a network.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from s3server import run_s3_server

from robodm_engine import Trajectory
from robodm_engine.ingestion import IngestionConfig, run_ingestion
from robodm_engine.sources import TIMESTAMP_KEY, FileSource
from robodm_engine.storage import StorageOptions, Store, open_store
from robodm_engine.synthetic import episode_npz


def timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def ingest(source: str, output: str, options: StorageOptions, workers: int) -> None:
    config = IngestionConfig(output_directory=output, num_workers=workers,
                             timestamp_key=TIMESTAMP_KEY, storage_options=options,
                             resume=False)
    run_ingestion(FileSource(source, include=["*.npz"], storage_options=options), config)


def read_trajectories(store: Store) -> int:
    frames = 0
    for info in store.list(suffix=".mkv"):
        with store.open(info.key) as handle:
            frames += len(Trajectory(handle).load()["observation/image"])
    return frames


def read_batches(root: str, options: StorageOptions) -> int:
    from robodm_engine import VLADataset

    frames = 0
    for batch in VLADataset(root, storage_options=options).iter_batches(batch_size=32):
        frames += len(batch["observation/image"])
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trajectories", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    frames = args.trajectories * args.steps

    import ray

    with run_s3_server() as server, tempfile.TemporaryDirectory() as tmp:
        # Ray workers inherit the driver's environment: credentials before ray.init.
        os.environ.update(server.env)
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        options = StorageOptions.from_env(endpoint_url=server.endpoint_url)
        bucket = server.create_bucket()
        local_raw, s3_raw = f"{tmp}/raw", f"s3://{bucket}/raw"
        for index in range(args.trajectories):
            data = episode_npz(args.steps, args.size, args.size, seed=index)
            for root in (local_raw, s3_raw):
                open_store(root, options).put_bytes(f"episode_{index:03d}.npz", data)
        # Warm-up: worker start-up and imports are not what is measured.
        warm = f"{tmp}/warm"
        open_store(warm + "-raw").put_bytes("e.npz", episode_npz(10, args.size, args.size))
        ingest(warm + "-raw", warm, options, args.workers)

        rows: list[dict[str, Any]] = []

        def row(operation: str, path: str, seconds: float, baseline: float | None) -> None:
            rows.append({"operation": operation, "path": path, "seconds": round(seconds, 3),
                         "frames_per_s": round(frames / seconds, 1),
                         "vs_local": None if baseline is None else round(baseline / seconds, 3)})

        local_out, s3_out = f"{tmp}/dataset", f"s3://{bucket}/dataset"
        base = timed(lambda: ingest(local_raw, local_out, options, args.workers))
        row("ingest", "local -> local", base, None)
        row("ingest", "local -> S3", timed(lambda: ingest(local_raw, s3_out, options,
                                                          args.workers)), base)
        row("ingest", "S3 -> S3", timed(lambda: ingest(s3_raw, f"{s3_out}-2", options,
                                                       args.workers)), base)

        local_store, s3_store = open_store(local_out), open_store(s3_out, options)
        base = timed(lambda: read_trajectories(local_store))
        row("read Trajectory, sequential", "local", base, None)
        row("read Trajectory, sequential", "S3 (streamed)",
            timed(lambda: read_trajectories(s3_store)), base)
        # Warm-up of both: Ray Data, and boto3 clients in the read workers (a training job
        # reads for many epochs; the first read's set-up is not what is compared).
        read_batches(local_out, options)
        read_batches(s3_out, options)
        base = timed(lambda: read_batches(local_out, options))
        row("read VLADataset.iter_batches", "local", base, None)
        row("read VLADataset.iter_batches", "S3 manifest",
            timed(lambda: read_batches(s3_out, options)), base)
        ray.shutdown()

    machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
               "trajectories": args.trajectories, "steps": args.steps, "size": args.size,
               "workers": args.workers}
    if args.json:
        print(json.dumps({"machine": machine, "rows": rows}, indent=2))
        return
    print(f"# local vs S3 (moto on loopback); {machine}")
    print(f"| {'operation':<30} | {'path':<15} | {'seconds':>8} | {'frames/s':>9} | "
          f"{'vs local':>8} |")
    print(f"|{'-' * 32}|{'-' * 17}|{'-' * 10}:|{'-' * 11}:|{'-' * 10}:|")
    for r in rows:
        ratio = "" if r["vs_local"] is None else f"{r['vs_local']:.2f}"
        print(f"| {r['operation']:<30} | {r['path']:<15} | {r['seconds']:>8.2f} | "
              f"{r['frames_per_s']:>9.0f} | {ratio:>8} |")


if __name__ == "__main__":
    main()
