"""robodm 0.1.0 (the PyPI release this project replaces), run in its own virtual environment
with the PyAV it needs (see :mod:`robodm_venv`); operations as in :mod:`harness`.

Its default codec (``auto``) is libaom-av1, which wrote under one step per second here, so
the suite runs it with ``--codec libx264`` (the same codec as robodm-engine's default) and
measures the default once, on a short clip. Depth is stored the way robodm stores any
non-RGB array: as pickled raw packets.
"""

from __future__ import annotations

import argparse
import random

import harness
import numpy as np
import robodm
from harness import Result, measured


def read_shuffled(args: argparse.Namespace, result: Result) -> None:
    # robodm 0.1.0 has no step-level training loader outside its Ray Data VLADataset, so this
    # is the same algorithm as robodm-engine's to_torch(shuffle=True), with robodm's reader:
    # trajectories in a random order, the steps of each shuffled, cut into batches.
    scenario = args.scenario
    camera = f"observation/{scenario.cameras[0]}"
    order = list(range(scenario.episodes))
    random.Random(0).shuffle(order)
    frames = 0
    with measured(result):
        pending: list[np.ndarray] = []
        for index in order:
            path = str(harness.trajectory_path(args.dir, index))
            data = robodm.Trajectory(path, mode="r").load()
            steps = np.random.default_rng(index).permutation(len(data[camera]))
            pending.extend(data[camera][steps])
            while len(pending) >= harness.BATCH_SIZE:
                frames += len(np.stack(pending[: harness.BATCH_SIZE]))
                del pending[: harness.BATCH_SIZE]
        frames += len(pending)
    result.frames = frames
    result.notes.append("robodm has no step loader: whole trajectories in random order, "
                        "steps shuffled within each")


if __name__ == "__main__":
    harness.run_worker({**harness.trajectory_ops(robodm.Trajectory),
                        "read_shuffled": read_shuffled})
