"""The side-by-side benchmark suite: robodm-engine against robodm 0.1.0, LeRobot 0.6 and bare
PyAV, on the same generated content, in one run; writes ``docs/benchmarks.md`` and its plots.

Run from the repository root (after ``scripts/setup.sh``)::

    .venv/bin/python -m bench.run_all            # full suite, ~25 min on 2 cores
    .venv/bin/python -m bench.run_all --quick    # small content, one repeat, ~5 min

Content (:mod:`robodm_engine.synthetic`, identical bytes in every system): per step two RGB
cameras, a uint16 depth image, float32 state (14,) and action (7,); 224x224 and 640x480, at
10 and 30 Hz; ``--episodes`` episodes of ``--seconds`` seconds. Every (scenario, system,
operation, repeat) runs in a fresh process (see :mod:`bench.sidebyside.harness`); repeats
are interleaved across systems so that drifting machine load hits all of them alike.

Systems: robodm-engine's ``Trajectory`` (one process; its ``to_torch`` loader for shuffled
batches); robodm 0.1.0 in its own virtual environment with PyAV 13 (created on first use,
``requirements/bench-robodm010.txt``), with libx264 (its default, libaom-av1, is measured
once on a short clip: it writes under one frame per second); LeRobot 0.6.1
``LeRobotDataset`` with its default video settings and the PyAV backend; and bare PyAV
encoding/decoding the same streams with robodm-engine's settings, as the limit. Then the
scaling section (:mod:`bench.scaling`): the Ray engine with 1 and 2 workers and a model of
8, 64 and 512 workers with S3.

Outputs: ``--json`` (all raw results; ``--from-json`` re-renders the report from it without
measuring), ``--doc`` and the PNG plots beside it under ``img/``. Each is written to a
temporary name and renamed into place.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORKERS = REPO / "bench" / "sidebyside"
sys.path.insert(0, str(WORKERS))  # harness is imported by bare name in every worker

import harness  # noqa: E402
import report  # noqa: E402
import robodm_venv  # noqa: E402

log = logging.getLogger("bench.run_all")


@dataclass(frozen=True)
class System:
    """One contender: which worker script runs it, under which interpreter."""

    key: str
    label: str
    short: str
    worker: str
    ops: tuple[str, ...]
    limit: bool = False
    codec: str | None = None
    robodm_env: bool = False


SYSTEMS: tuple[System, ...] = (
    System("limit", "bare PyAV (limit)", "limit", "worker_limit.py",
           ("write", "read_seq", "read_random"), limit=True),
    System("ours", "**robodm-engine**", "robodm-engine", "worker_ours.py", harness.OPS),
    System("robodm", "robodm 0.1.0 (libx264)", "robodm 0.1.0", "worker_robodm010.py",
           harness.OPS, codec="libx264", robodm_env=True),
    System("lerobot", "LeRobot 0.6.1", "LeRobot", "worker_lerobot.py", harness.OPS),
)


def scenarios(*, quick: bool, episodes: int, seconds: float) -> list[harness.Scenario]:
    """224x224 and 640x480 at 10 and 30 Hz (``quick``: 64x64 and 128x96, same rates)."""
    sizes = [(64, 64), (96, 128)] if quick else [(224, 224), (480, 640)]
    return [
        harness.Scenario(height=h, width=w, fps=fps, episodes=episodes,
                         steps=max(round(seconds * fps), 1))
        for h, w in sizes for fps in (10.0, 30.0)
    ]


def _worker_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore",
            "TQDM_DISABLE": "1"}


def run_op(python: Path | str, system: System, scenario: harness.Scenario, op: str,
           out: Path, *, codec: str | None = None, timeout: float = 3600) -> dict[str, Any]:
    """Run one operation in a fresh process and return its result dict."""
    command = [str(python), str(WORKERS / system.worker), "--scenario", scenario.to_json(),
               "--op", op, "--dir", str(out)]
    if codec or system.codec:
        command += ["--codec", codec or system.codec or ""]
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO,
                              env=_worker_env(), timeout=timeout)
    except subprocess.TimeoutExpired:
        return asdict(harness.Result(error=f"timed out after {timeout:.0f} s"))
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(harness.RESULT_PREFIX):
            return json.loads(line[len(harness.RESULT_PREFIX):])
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return asdict(harness.Result(error=f"worker exited {done.returncode}: {' | '.join(tail)}"))


def measure_side_by_side(
    systems: Sequence[System], cases: Sequence[harness.Scenario], repeats: int, work: Path,
    robodm_python: Path | None,
) -> dict[str, Any]:
    """Every (repeat, scenario, system, operation), interleaved; returns ``runs``."""
    runs: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {
        c.name: {s.key: {op: [] for op in s.ops} for s in systems} for c in cases
    }
    total = repeats * sum(len(s.ops) for s in systems) * len(cases)
    done = 0
    for repeat in range(repeats):
        for case in cases:
            for system in systems:
                python = robodm_python if system.robodm_env else sys.executable
                assert python is not None
                out = work / case.slug / system.key
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
                for op in system.ops:
                    result = run_op(python, system, case, op, out)
                    runs[case.name][system.key][op].append(result)
                    done += 1
                    rate = (f"{result['frames'] / result['seconds']:,.1f}/s"
                            if result["seconds"] > 0 else "-")
                    log.info("[%d/%d] repeat %d · %s · %s · %s: %s%s", done, total,
                             repeat + 1, case.name, system.short, op, rate,
                             f" ERROR {result['error']}" if result.get("error") else "")
    return runs


def measure_robodm_default(robodm_python: Path, work: Path, quick: bool) -> dict[str, Any]:
    """robodm 0.1.0's default codec (auto: libaom-av1) once, on a short 224x224 clip."""
    size = 64 if quick else 224
    clip = harness.Scenario(height=size, width=size, fps=10.0, episodes=1,
                            steps=5 if quick else 10)
    system = next(s for s in SYSTEMS if s.key == "robodm")
    out = work / "robodm-default"
    out.mkdir(parents=True, exist_ok=True)
    results = {op: run_op(robodm_python, system, clip, op, out, codec="auto")
               for op in ("write", "read_seq")}
    log.info("robodm 0.1.0 default codec: %s", results["write"])
    return {"scenario": asdict(clip), "name": clip.name, **results}


def machine() -> dict[str, Any]:
    """What the figures depend on: CPU, cores available, memory, load, software versions."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        mem_kib = int(info.readline().split()[1])
    import av

    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg": list(os.getloadavg()),
        "versions": {
            "robodm-engine": version("robodm-operator"),
            "PyAV": av.__version__,
            "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
            "lerobot": version("lerobot"),
            "torch": version("torch"),
            "numpy": version("numpy"),
            "ray": version("ray"),
        },
    }


def robodm_versions(python: Path) -> dict[str, str]:
    """robodm's and PyAV's versions inside robodm's environment."""
    code = ("import json, av; from importlib.metadata import version; "
            "print(json.dumps({'robodm': version('robodm'), 'PyAV': av.__version__}))")
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run everything the arguments ask for and return the results document."""
    wanted = set(args.systems.split(","))
    unknown = wanted - {s.key for s in SYSTEMS}
    if unknown:
        raise SystemExit(f"unknown system(s) {sorted(unknown)}; known: "
                         f"{[s.key for s in SYSTEMS]}")
    systems = [s for s in SYSTEMS if s.key in wanted]
    cases = scenarios(quick=args.quick, episodes=args.episodes, seconds=args.seconds)
    if args.scenarios:
        keep = set(args.scenarios.split(","))
        if keep - {c.slug for c in cases}:
            raise SystemExit(f"--scenarios: {sorted(keep - {c.slug for c in cases})} not in "
                             f"{[c.slug for c in cases]}")
        cases = [c for c in cases if c.slug in keep]
    robodm_python = robodm_venv.ensure(args.robodm_venv) if "robodm" in wanted else None
    started = time.perf_counter()
    data: dict[str, Any] = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.run_all", *sys.argv[1:]]),
        "machine": machine(),
        "settings": {"repeats": args.repeats, "episodes": args.episodes,
                     "seconds": args.seconds, "quick": args.quick,
                     "random_steps": harness.RANDOM_STEPS, "batch_size": harness.BATCH_SIZE},
        "systems": [asdict(s) for s in systems],
        "scenarios": [{**asdict(c), "name": c.name, "frames": c.frames,
                       "raw_bytes": harness.raw_bytes(c)} for c in cases],
    }
    if robodm_python is not None:
        data["machine"]["versions"]["robodm (own venv)"] = robodm_versions(robodm_python)
    with tempfile.TemporaryDirectory(prefix="robodm-run-all-", dir=args.work) as tmp:
        work = Path(tmp)
        data["runs"] = measure_side_by_side(systems, cases, args.repeats, work, robodm_python)
        data["robodm_default"] = (measure_robodm_default(robodm_python, work, args.quick)
                                  if robodm_python is not None else None)
        data["scaling"] = None
        harness.publish(args.json, (json.dumps(data, indent=1) + "\n").encode())  # a checkpoint
        if args.scaling:
            from bench import scaling

            measured = scaling.measure(work / "scaling", **_scaling_size(args.quick),
                                       repeats=args.repeats)
            data["scaling"] = {"measured": measured, "rows": scaling.model(measured)}
    data["machine"]["loadavg_after"] = list(os.getloadavg())
    data["seconds"] = time.perf_counter() - started
    return data


def _scaling_size(quick: bool) -> dict[str, Any]:
    if quick:
        return {"height": 64, "width": 64, "fps": 10.0, "episodes": 4, "steps": 20}
    return {"height": 224, "width": 224, "fps": 10.0, "episodes": 8, "steps": 100}


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small images, short episodes, one repeat: a smoke test")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (quick: 1)")
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=None,
                        help="episode length in seconds (default 5, quick 1)")
    parser.add_argument("--systems", default=",".join(s.key for s in SYSTEMS),
                        help="comma-separated subset of: " + ", ".join(s.key for s in SYSTEMS))
    parser.add_argument("--scenarios", default=None,
                        help="comma-separated subset, e.g. 224x224@10hz,640x480@30hz")
    parser.add_argument("--no-scaling", dest="scaling", action="store_false",
                        help="skip the Ray scaling section")
    parser.add_argument("--json", type=Path, default=REPO / "docs" / "benchmarks.json",
                        help="every raw result (default: beside the report)")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md",
                        help="the report; plots go to img/ beside it")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="re-render the report from this results file, measuring nothing")
    parser.add_argument("--work", type=Path, default=None, help="scratch directory (default: tmp)")
    parser.add_argument("--robodm-venv", type=Path, default=robodm_venv.DEFAULT_VENV)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.seconds is None:
        args.seconds = 1.0 if args.quick else 5.0
    if args.repeats < 1 or args.episodes < 1 or args.seconds <= 0:
        parser.error("--repeats and --episodes must be >= 1 and --seconds > 0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    if args.from_json is not None:
        data = json.loads(args.from_json.read_text())
    else:
        data = measure(args)
        harness.publish(args.json, (json.dumps(data, indent=1) + "\n").encode())
        log.info("results: %s", args.json)
    document = report.render_document(data, args.doc)
    harness.publish(args.doc, document.encode())
    log.info("report: %s", args.doc)
    print(report.headline_line(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
