"""robodm-engine in one process: ``Trajectory`` for writing and direct reads, ``to_torch`` for
shuffled batches (see :mod:`harness` for the operations)."""

from __future__ import annotations

import argparse

import harness
from harness import Result, measured

from robodm_engine import Trajectory


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
    harness.run_worker({**harness.trajectory_ops(Trajectory), "read_shuffled": read_shuffled})
