"""LeRobot 0.6 in one process: ``LeRobotDataset.create`` for writing (its default video
settings), ``LeRobotDataset`` for reading, PyAV as its video backend (see :mod:`harness`).

Cameras are ``video`` features; depth is an ``image`` feature (uint16 PNG frames, LeRobot's
only lossless way to keep millimetres), which LeRobot returns as float32 ``(1, H, W)``.
"""

from __future__ import annotations

import argparse
from typing import Any

import harness
import numpy as np
import torch
from harness import Checker, Result, Scenario, measured
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from torch.utils.data import DataLoader

REPO_ID = "bench/side-by-side"
TASK = "pick up the red block"
DATASET = "dataset"  # LeRobotDataset.create wants a root that does not exist yet


def _camera_key(camera: str) -> str:
    return f"observation.images.{camera}"


def _features(scenario: Scenario) -> dict[str, dict[str, Any]]:
    image = (scenario.height, scenario.width, 3)
    names = ["height", "width", "channels"]
    features: dict[str, dict[str, Any]] = {
        _camera_key(c): {"dtype": "video", "shape": image, "names": names}
        for c in scenario.cameras
    }
    if scenario.depth:
        features["observation.depth"] = {
            "dtype": "image", "shape": (scenario.height, scenario.width, 1), "names": names
        }
    features["observation.state"] = {"dtype": "float32", "shape": (14,), "names": None}
    features["action"] = {"dtype": "float32", "shape": (7,), "names": None}
    return features


def _frame(scenario: Scenario, step: dict[str, Any]) -> dict[str, Any]:
    observation = step["observation"]
    frame: dict[str, Any] = {_camera_key(c): observation[c] for c in scenario.cameras}
    if scenario.depth:
        frame["observation.depth"] = observation["depth"][..., None]
    frame["observation.state"] = observation["state"]
    frame["action"] = step["action"]
    frame["task"] = TASK
    return frame


def write(args: argparse.Namespace, result: Result) -> None:
    scenario = args.scenario
    frames = [[_frame(scenario, s) for s in steps] for steps in harness.episodes(scenario)]
    with measured(result):
        dataset = LeRobotDataset.create(
            REPO_ID, fps=round(scenario.fps), features=_features(scenario), root=args.dir / DATASET,
            use_videos=True,
        )
        for episode in frames:
            for frame in episode:
                dataset.add_frame(frame)
            dataset.save_episode()
        dataset.finalize()
    result.frames = scenario.frames
    result.bytes = harness.dir_bytes(args.dir)


def _open(args: argparse.Namespace) -> Any:
    return LeRobotDataset(REPO_ID, root=args.dir / DATASET, video_backend="pyav")


def _uint8_hwc(chw: Any) -> np.ndarray:
    """LeRobot's float [0, 1] (…, C, H, W) back to uint8 (…, H, W, C), as a trainer sees it."""
    array = np.asarray(chw, dtype=np.float32)
    return np.clip(np.rint(np.moveaxis(array, -3, -1) * 255.0), 0, 255).astype(np.uint8)


def read_seq(args: argparse.Namespace, result: Result) -> None:
    scenario = args.scenario
    batches = []
    with measured(result):
        dataset = _open(args)
        for batch in DataLoader(dataset, batch_size=harness.BATCH_SIZE, num_workers=0):
            batches.append(batch)
    merged = {key: np.concatenate([np.asarray(b[key]) for b in batches])
              for key in batches[0] if key != "task"}
    episode_index = merged["episode_index"]
    checker = Checker(scenario)
    for index in range(scenario.episodes):
        rows = episode_index == index
        decoded = {c: _uint8_hwc(merged[_camera_key(c)][rows]) for c in scenario.cameras}
        decoded["state"] = merged["observation.state"][rows]
        decoded["action"] = merged["action"][rows]
        if scenario.depth:
            decoded["depth"] = merged["observation.depth"][rows][:, 0]
        checker.add(index, decoded)
    checker.fill(result)
    result.frames = len(episode_index)


def read_random(args: argparse.Namespace, result: Result) -> None:
    scenario = args.scenario
    frames = 0
    with measured(result):
        dataset = _open(args)
        for index, step in harness.random_steps(scenario):
            item = dataset[index * scenario.steps + step]
            frames += int(item[_camera_key(scenario.cameras[0])].shape[0] == 3)
    result.frames = frames


def read_shuffled(args: argparse.Namespace, result: Result) -> None:
    key = _camera_key(args.scenario.cameras[0])
    frames = 0
    with measured(result):
        dataset = _open(args)
        generator = torch.Generator().manual_seed(0)
        loader = DataLoader(dataset, batch_size=harness.BATCH_SIZE, shuffle=True,
                            num_workers=0, generator=generator)
        for batch in loader:
            frames += len(batch[key])
    result.frames = frames
    result.notes.append("DataLoader(shuffle=True): uniform over all steps")


if __name__ == "__main__":
    harness.run_worker({"write": write, "read_seq": read_seq, "read_random": read_random,
                        "read_shuffled": read_shuffled})
