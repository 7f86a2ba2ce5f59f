"""Write a small example dataset of robot trajectories and read it back.

Runs on embedded defaults (local files, no cluster):

    .venv/bin/python examples/quickstart.py [--out DIR] [--trajectories N] [--steps N]

Each trajectory holds a 224x224 RGB camera (stored as H.264 video), a depth image
(lossless), a float32 state(14), an action(7) and the language instruction, at 10 Hz.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from robodm_engine import Trajectory
from robodm_engine.synthetic import make_episode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: temp)")
    parser.add_argument("--trajectories", type=int, default=4)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="robodm-quickstart-"))
    out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    for index in range(args.trajectories):
        steps = make_episode(steps=args.steps, seed=index, depth=True)
        for step in steps:
            step["task"] = "pick up the red cube"
        Trajectory.from_list_of_dicts(steps, out / f"trajectory_{index:06d}.mkv", fps=10)
    written = time.perf_counter() - started

    print(f"wrote {args.trajectories} trajectories x {args.steps} steps to {out} "
          f"in {written:.2f} s")
    print(f"{'trajectory':<24}{'steps':>6}{'KiB':>9}  features")
    for path in sorted(out.glob("*.mkv")):
        traj = Trajectory(path)
        summary = traj.summary()
        data = traj.load(desired_frequency=5.0)
        features = ", ".join(f"{name} {info.dtype}{list(info.shape)} [{info.encoding}]"
                             for name, info in summary.features.items())
        print(f"{path.name:<24}{summary.steps:>6}{path.stat().st_size / 1024:>9.1f}  {features}")
        assert len(data["action"]) == len(data["observation/image"])
    first = Trajectory(sorted(out.glob("*.mkv"))[0]).load()
    print("first trajectory, action[0]:", [round(float(x), 3) for x in first["action"][0]])
    print("first trajectory, task[0]:", first["task"][0])


if __name__ == "__main__":
    main()
