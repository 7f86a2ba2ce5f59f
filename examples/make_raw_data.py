"""Write example raw robot data: the input of examples/ingestionjob-local.yaml.

Each episode is one ``.npz`` file with a 96x96 camera, a float32 state(14), an action(7)
and per-step timestamps, as a teleoperation logger might write them::

    .venv/bin/python examples/make_raw_data.py [OUT] [--episodes N] [--steps N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from robodm_engine.synthetic import episode_npz

DEFAULT_OUT = Path(__file__).parent / "data" / "raw"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for index in range(args.episodes):
        data = episode_npz(steps=args.steps, height=96, width=96, seed=index)
        (args.out / f"episode_{index:03d}.npz").write_bytes(data)
    print(f"wrote {args.episodes} episodes x {args.steps} steps to {args.out}")


if __name__ == "__main__":
    main()
