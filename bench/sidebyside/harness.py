"""What every side-by-side worker shares: the content, the operations, timing and memory.

Each measurement runs in a fresh process (``python bench/sidebyside/<worker>.py``), so
imports, caches and the peak memory of one run never leak into the next, and robodm 0.1.0
runs in its own virtual environment. This module is imported by every worker, including the
one running under robodm's environment, so it needs nothing but the standard library and
numpy; the content generator (:mod:`robodm_engine.synthetic`, numpy only) is loaded from its
file for the same reason.

Protocol: a worker is called with ``--scenario <json> --op <op> --dir <dir>`` and prints one
line ``RESULT <json>`` (see :func:`emit`). Operations:

``write``
    every episode of the scenario, one file (or dataset) per episode as the system does it.
``read_seq``
    every trajectory whole, in order; checks frame counts and computes PSNR and exactness.
``read_random``
    :data:`RANDOM_STEPS` single steps at random (episode, step) positions, each a fresh read.
``read_shuffled``
    every step once, in shuffled batches of :data:`BATCH_SIZE`, through the system's own
    training-loader API.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

OPS = ("write", "read_seq", "read_random", "read_shuffled")
RANDOM_STEPS = 48  # single-step reads per read_random run
BATCH_SIZE = 32
RESULT_PREFIX = "RESULT "
_SYNTHETIC = Path(__file__).resolve().parents[2] / "robodm_engine" / "synthetic.py"


@dataclass(frozen=True)
class Scenario:
    """One content configuration: episodes of two RGB cameras, depth, state and action."""

    height: int
    width: int
    fps: float
    episodes: int
    steps: int
    cameras: tuple[str, ...] = ("cam_high", "cam_wrist")
    depth: bool = True

    @property
    def name(self) -> str:
        """Short label such as ``224x224 @ 10 Hz``."""
        return f"{self.width}x{self.height} @ {self.fps:g} Hz"

    @property
    def slug(self) -> str:
        """File-name-safe label such as ``224x224@10hz``."""
        return f"{self.width}x{self.height}@{self.fps:g}hz"

    @property
    def frames(self) -> int:
        """Time steps in the scenario; each holds one image per camera and one depth image."""
        return self.episodes * self.steps

    def to_json(self) -> str:
        """Serialize for a worker's command line."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Scenario:
        """Parse :meth:`to_json` output."""
        data = json.loads(text)
        data["cameras"] = tuple(data["cameras"])
        return cls(**data)


@dataclass
class Result:
    """What one operation measured. ``error`` is set when the system gave a wrong result."""

    frames: int = 0
    seconds: float = 0.0
    peak_memory: int = 0  # bytes above the resident size before the operation
    bytes: int | None = None  # on disk, for write
    psnr: float | None = None  # mean over cameras and frames, for read_seq
    exact: dict[str, bool] = field(default_factory=dict)  # non-lossy features, for read_seq
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def synthetic() -> ModuleType:
    """:mod:`robodm_engine.synthetic`, loaded from its file (no package import needed)."""
    if "bench_synthetic" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_synthetic", _SYNTHETIC)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_synthetic"] = module
        spec.loader.exec_module(module)
    return sys.modules["bench_synthetic"]


def episode(scenario: Scenario, index: int) -> list[dict[str, Any]]:
    """Episode ``index`` of the scenario: the same arrays in every worker and environment."""
    return synthetic().make_episode(
        steps=scenario.steps, height=scenario.height, width=scenario.width, seed=index,
        cameras=scenario.cameras, depth=scenario.depth, fps=scenario.fps,
    )


def episodes(scenario: Scenario) -> list[list[dict[str, Any]]]:
    """Every episode, generated up front so generation is never timed."""
    return [episode(scenario, i) for i in range(scenario.episodes)]


def timestamps_ms(scenario: Scenario) -> list[int]:
    """Millisecond timestamps of one episode's steps."""
    return synthetic().timestamps_ms(scenario.steps, scenario.fps)


def raw_bytes(scenario: Scenario) -> int:
    """Uncompressed size of the whole scenario (every array's ``nbytes``)."""
    step = episode(scenario, 0)[0]
    return synthetic().raw_bytes_per_step(step) * scenario.frames


def random_steps(scenario: Scenario, count: int = RANDOM_STEPS) -> list[tuple[int, int]]:
    """``count`` (episode, step) positions, the same in every worker."""
    rng = np.random.default_rng(1234)
    return [
        (int(rng.integers(scenario.episodes)), int(rng.integers(scenario.steps)))
        for _ in range(count)
    ]


def trajectory_path(root: Path, index: int) -> Path:
    """The file of episode ``index`` for systems that write one file per episode."""
    return root / f"episode_{index:04d}.mkv"


def dir_bytes(root: Path) -> int:
    """Bytes of every file under ``root``."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


class Checker:
    """Accumulates PSNR of decoded camera frames and exactness of the other features."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.psnr_values: list[float] = []
        self.exact: dict[str, bool] = {}

    def add(self, index: int, decoded: dict[str, np.ndarray]) -> None:
        """Compare one decoded episode (``"camera"``, ``"depth"``, ``"state"``, ``"action"``).

        Each value must be stacked over time: cameras uint8 ``(T, H, W, 3)``, depth
        ``(T, H, W)`` in millimetres, state and action float32.
        """
        original = episode(self.scenario, index)
        syn = synthetic()
        for camera in self.scenario.cameras:
            expected = np.stack([s["observation"][camera] for s in original])
            self.psnr_values.append(syn.mean_psnr(expected, decoded[camera]))
        wanted = {
            "state": np.stack([s["observation"]["state"] for s in original]),
            "action": np.stack([s["action"] for s in original]),
        }
        if self.scenario.depth:
            wanted["depth"] = np.stack([s["observation"]["depth"] for s in original])
        for key, expected in wanted.items():
            got = np.asarray(decoded[key])
            same = got.shape == expected.shape and bool(
                np.array_equal(got.astype(expected.dtype), expected)
            )
            self.exact[key] = self.exact.get(key, True) and same

    def fill(self, result: Result) -> None:
        """Store the mean PSNR and exactness flags in ``result``."""
        finite = [v for v in self.psnr_values if math.isfinite(v)]
        result.psnr = float(np.mean(finite)) if finite else math.inf
        result.exact = dict(self.exact)


def check_flat(scenario: Scenario, decoded: list[dict[str, np.ndarray]], result: Result) -> None:
    """Check whole episodes loaded as flat ``"observation/<camera>"`` dicts (both robodm
    readers return these) and store frames, PSNR and exactness in ``result``."""
    checker = Checker(scenario)
    for index, data in enumerate(decoded):
        episode_arrays = {camera: data[f"observation/{camera}"] for camera in scenario.cameras}
        episode_arrays["state"], episode_arrays["action"] = (data["observation/state"],
                                                             data["action"])
        if scenario.depth:
            episode_arrays["depth"] = data["observation/depth"]
        checker.add(index, episode_arrays)
    checker.fill(result)
    result.frames = sum(len(d["action"]) for d in decoded)


def trajectory_ops(trajectory: Callable[..., Any]) -> dict[str, Callable[..., None]]:
    """``write``, ``read_seq`` and ``read_random`` for a robodm-style ``Trajectory`` class.

    robodm-engine keeps robodm 0.1.0's ``Trajectory(path, mode, video_codec)``,
    ``add_by_dict(step, timestamp)``, ``close()`` and ``load(data_slice=...)``, so one set of
    operations measures both; each worker passes its own class.
    """

    def write(args: argparse.Namespace, result: Result) -> None:
        scenario = args.scenario
        content = episodes(scenario)
        stamps = timestamps_ms(scenario)
        with measured(result):
            for index, steps in enumerate(content):
                path = str(trajectory_path(args.dir, index))
                writer = trajectory(path, mode="w", video_codec=args.codec or "auto")
                for step, stamp in zip(steps, stamps, strict=True):
                    writer.add_by_dict(step, timestamp=stamp)
                writer.close()
        result.frames = scenario.frames
        result.bytes = dir_bytes(args.dir)

    def read_seq(args: argparse.Namespace, result: Result) -> None:
        scenario = args.scenario
        with measured(result):
            decoded = [trajectory(str(trajectory_path(args.dir, index)), mode="r").load()
                       for index in range(scenario.episodes)]
        check_flat(scenario, decoded, result)

    def read_random(args: argparse.Namespace, result: Result) -> None:
        scenario = args.scenario
        camera = f"observation/{scenario.cameras[0]}"
        frames = 0
        with measured(result):
            for index, step in random_steps(scenario):
                path = str(trajectory_path(args.dir, index))
                data = trajectory(path, mode="r").load(data_slice=slice(step, step + 1))
                frames += int(data[camera].shape[1:] == (scenario.height, scenario.width, 3))
        result.frames = frames
        if frames != RANDOM_STEPS:
            result.error = (f"load(data_slice=slice(k, k + 1)) returned the camera frame for "
                            f"{frames} of {RANDOM_STEPS} steps")

    return {"write": write, "read_seq": read_seq, "read_random": read_random}


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


@contextmanager
def measured(result: Result) -> Iterator[None]:
    """Time the block and record its peak memory above the resident size at its start.

    Linux resets a process's high-water mark (``VmHWM``) when ``5`` is written to
    ``/proc/self/clear_refs``, so the peak is the block's own, not that of the content
    generation before it. Where that is refused, the lifetime peak (``ru_maxrss``) is used
    and a note says so.
    """
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        reset = True
    except OSError:
        reset = False
        result.notes.append("peak memory is the process lifetime peak (clear_refs refused)")
    before = _status_kib("VmRSS") * 1024
    start = time.perf_counter()
    yield
    result.seconds = time.perf_counter() - start
    peak = (
        _status_kib("VmHWM") * 1024
        if reset
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    result.peak_memory = max(peak - before, 0)


def publish(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide reports from other users
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def emit(result: Result) -> None:
    """Print the result line the orchestrator parses."""
    print(RESULT_PREFIX + json.dumps(asdict(result)), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments every worker takes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", required=True, type=Scenario.from_json)
    parser.add_argument("--op", required=True, choices=OPS)
    parser.add_argument("--dir", required=True, type=Path, help="the system's output directory")
    parser.add_argument("--codec", default=None, help="video codec, for systems that take one")
    return parser.parse_args(argv)


def run_worker(ops: dict[str, Callable[[argparse.Namespace, Result], None]]) -> None:
    """Parse arguments, run the requested operation and emit its result.

    An exception becomes the result's ``error`` (the orchestrator reports it in the table);
    the worker still exits 0 so that one system's failure does not stop the suite.
    """
    args = parse_args()
    result = Result()
    try:
        ops[args.op](args, result)
    except Exception as exc:  # reported, not hidden: the table shows the error
        result.error = f"{type(exc).__name__}: {exc}"[:300]
    emit(result)
