"""robodm-engine in one process: ``Trajectory`` for writing and direct reads, ``to_torch`` for
shuffled batches (see :mod:`harness` for the operations)."""

from __future__ import annotations

import argparse

import harness
from harness import Result, measured

from robodm_engine import Trajectory


def write(args: argparse.Namespace, result: Result) -> None:
    scenario = args.scenario
    content = harness.episodes(scenario)
    stamps = harness.timestamps_ms(scenario)
    codec = args.codec or "auto"
    with measured(result):
        for index, steps in enumerate(content):
            path = harness.trajectory_path(args.dir, index)
            with Trajectory(path, mode="w", video_codec=codec) as trajectory:
                for step, stamp in zip(steps, stamps, strict=True):
                    trajectory.add_by_dict(step, timestamp=stamp)
    result.frames = scenario.frames
    result.bytes = harness.dir_bytes(args.dir)


def read_seq(args: argparse.Namespace, result: Result) -> None:
    scenario = args.scenario
    decoded = []
    with measured(result):
        for index in range(scenario.episodes):
            decoded.append(Trajectory(harness.trajectory_path(args.dir, index)).load())
    harness.check_flat(scenario, decoded, result)


def read_random(args: argparse.Namespace, result: Result) -> None:
    scenario = args.scenario
    frames = 0
    with measured(result):
        for index, step in harness.random_steps(scenario):
            path = harness.trajectory_path(args.dir, index)
            data = Trajectory(path).load(data_slice=slice(step, step + 1))
            frames += min(len(v) for v in data.values())
    result.frames = frames
    if frames != harness.RANDOM_STEPS:
        result.error = f"{frames} of {harness.RANDOM_STEPS} single-step reads returned a frame"


def read_shuffled(args: argparse.Namespace, result: Result) -> None:
    from torch.utils.data import DataLoader

    from robodm_engine.dataset import VLADataset

    scenario = args.scenario
    key = f"observation/{scenario.cameras[0]}"
    frames = 0
    with measured(result):
        steps = VLADataset(args.dir).to_torch(shuffle=True, seed=0)
        for batch in DataLoader(steps, batch_size=harness.BATCH_SIZE, num_workers=0):
            frames += len(batch[key])
    result.frames = frames
    result.notes.append("to_torch(shuffle=True): trajectories and the steps within them "
                        "shuffled; a batch holds steps of one or two trajectories")


if __name__ == "__main__":
    harness.run_worker({"write": write, "read_seq": read_seq, "read_random": read_random,
                        "read_shuffled": read_shuffled})
