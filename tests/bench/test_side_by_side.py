"""The side-by-side suite: its statistics and ratios on hand-made results, and a real quick run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench" / "sidebyside"))

import harness  # noqa: E402
import report  # noqa: E402

SCENARIO = harness.Scenario(height=32, width=32, fps=10.0, episodes=1, steps=10)


def _result(frames: int, seconds: float, **extra: Any) -> dict[str, Any]:
    return {"frames": frames, "seconds": seconds, "peak_memory": 0, "bytes": None,
            "psnr": None, "exact": {}, "error": None, "notes": [], **extra}


def _data(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    systems = [
        {"key": "limit", "label": "limit", "short": "limit", "limit": True},
        {"key": "ours", "label": "ours", "short": "ours", "limit": False},
        {"key": "peer_a", "label": "A", "short": "A", "limit": False},
        {"key": "peer_b", "label": "B", "short": "B", "limit": False},
    ]
    return {
        "systems": systems,
        "scenarios": [{"name": SCENARIO.name, "raw_bytes": 10_000_000, "steps": 10,
                       "episodes": 1}],
        "runs": {SCENARIO.name: runs},
    }


def test_cells_compare_with_the_limit_and_the_best_other_system() -> None:
    data = _data({
        "limit": {"write": [_result(100, 0.5, bytes=1_000_000)],
                  "read_seq": [_result(100, 0.1)]},
        # Three repeats: 100, 200 and 400 frames/s.
        "ours": {"write": [_result(100, 1.0, bytes=2_000_000), _result(100, 0.5, bytes=2_000_000),
                           _result(100, 0.25, bytes=2_000_000)],
                 "read_shuffled": [_result(100, 0.2)]},
        "peer_a": {"write": [_result(100, 2.0, bytes=4_000_000)],
                   "read_shuffled": [_result(100, 0.4)]},
        "peer_b": {"write": [_result(100, 0.8, bytes=8_000_000)]},
    })
    ours = report.cells(data, SCENARIO.name)["ours"]

    write = ours["write"]
    assert (write.stat.median, write.stat.low, write.stat.high) == (200.0, 100.0, 400.0)
    assert write.to_limit == pytest.approx(200 / 200)
    assert write.best_peer == "peer_b"  # 125 frames/s beats A's 50
    assert write.to_best_peer == pytest.approx(200 / 125)

    size = ours["size"]  # smaller is better: A's 4 MB is the best peer, not B's 8 MB
    assert size.best_peer == "peer_a"
    assert size.to_best_peer == pytest.approx(0.5)
    assert size.to_limit == pytest.approx(2.0)

    # The shuffled read is compared with the limit's sequential read (1,000 frames/s).
    shuffled = ours["read_shuffled"]
    assert shuffled.to_limit == pytest.approx(500 / 1000)
    assert shuffled.best_peer == "peer_a"

    # A peer is compared with the best of the others, robodm-engine included.
    assert report.cells(data, SCENARIO.name)["peer_b"]["write"].best_peer == "ours"


def test_failed_repeats_are_left_out_and_reported() -> None:
    data = _data({
        "limit": {},
        "ours": {"read_random": [_result(48, 1.0), _result(0, 0.5, error="0 of 48 steps")]},
        "peer_a": {"read_random": [_result(0, 0.1, error="returned no frame")]},
        "peer_b": {},
    })
    cells = report.cells(data, SCENARIO.name)
    ours = cells["ours"]["read_random"]
    assert ours.stat.median == 48.0 and ours.stat.repeats == 1
    assert ours.stat.errors == ["0 of 48 steps"]
    assert ours.best_peer is None  # the only peer that ran failed every repeat
    assert not cells["peer_a"]["read_random"].stat.ok
    table = report.scenario_table(data, data["scenarios"][0])
    assert "✗ returned no frame" in table
    assert "⚠ 1 failed repeat(s)" in table
    assert any("returned no frame" in n for n in report.notes(data, SCENARIO.name))


def test_formatting() -> None:
    assert report.fmt(1234.4) == "1,234"
    assert report.fmt(12.34) == "12.3"
    assert report.fmt(1.234) == "1.23"
    assert report.fmt(36.04, "dB") == "36.0"
    assert report.fmt(None) == "—"
    assert report.fmt_ratio(0.856) == "0.86×"


def test_scenario_round_trips_through_json() -> None:
    text = SCENARIO.to_json()
    assert harness.Scenario.from_json(text) == SCENARIO
    assert SCENARIO.slug == "32x32@10hz" and SCENARIO.frames == 10


def test_quick_run_writes_the_report(tmp_path: Path) -> None:
    """The whole command on tiny content: every worker runs for real and checks its output."""
    results, doc = tmp_path / "run_all.json", tmp_path / "docs" / "benchmarks.md"
    subprocess.run(
        [sys.executable, "-m", "bench.run_all", "--quick", "--no-scaling",
         "--systems", "limit,ours,lerobot", "--scenarios", "64x64@10hz", "--seconds", "0.5",
         "--json", str(results), "--doc", str(doc), "--work", str(tmp_path)],
        cwd=REPO, check=True, timeout=600,
    )
    data = json.loads(results.read_text())
    runs = data["runs"]["64x64 @ 10 Hz"]
    for system, ops in runs.items():
        for op, repeats in ops.items():
            assert [r["error"] for r in repeats] == [None], (system, op)
            expected = harness.RANDOM_STEPS if op == "read_random" else 10  # 2 x 5 steps
            assert repeats[0]["frames"] == expected, (system, op)
    # Lossy cameras, exact everything else, in both systems that read back.
    for system in ("ours", "lerobot"):
        seq = runs[system]["read_seq"][0]
        assert 25.0 < seq["psnr"] < 60.0
        assert seq["exact"] == {"state": True, "action": True, "depth": True}
    text = doc.read_text()
    assert "| **robodm-engine** |" in text and "| LeRobot 0.6.1 |" in text
    for png in ("benchmarks-throughput.png", "benchmarks-size-memory.png"):
        assert (doc.parent / "img" / png).stat().st_size > 10_000
    assert not list(tmp_path.glob("robodm-run-all-*"))  # scratch space is removed


def test_robodm_0_1_0_runs_in_its_own_environment(tmp_path: Path) -> None:
    """robodm 0.1.0's worker, in the venv the suite creates, writes and reads the content."""
    import robodm_venv

    from bench import run_all

    python = robodm_venv.ensure()
    system = next(s for s in run_all.SYSTEMS if s.key == "robodm")
    scenario = harness.Scenario(height=64, width=64, fps=10.0, episodes=2, steps=6)
    write = run_all.run_op(python, system, scenario, "write", tmp_path)
    assert write["error"] is None and write["frames"] == 12 and write["bytes"] > 0
    read = run_all.run_op(python, system, scenario, "read_seq", tmp_path)
    assert read["error"] is None and read["frames"] == 12
    assert 25.0 < read["psnr"] < 60.0
    assert read["exact"] == {"state": True, "action": True, "depth": True}
    # robodm 0.1.0 returns no video frame for a one-step data_slice; the suite reports it.
    random_read = run_all.run_op(python, system, scenario, "read_random", tmp_path)
    assert "returned the camera frame for 0 of 48 steps" in random_read["error"]
