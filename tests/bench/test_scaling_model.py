"""The scaling figure's model, rendering and plot on hand-made costs, and one real measurement."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pytest` (unlike `python -m pytest`) does not add the root
    sys.path.insert(0, str(ROOT))

from bench.scaling import (  # noqa: E402
    AWS_PARALLELIZATION_URL,
    AWS_REQUEST_RATES_URL,
    Assumptions,
    classify_requests,
    measure,
    model,
    plot,
    render_markdown,
)

WORKERS = (1, 2, 8, 64, 512)


def measured_dict(**costs: float) -> dict[str, Any]:
    """A ``measure()``-shaped result with round numbers, overridable per cost."""
    base = {
        "per_worker_frames_per_s": 100.0,
        "frames_per_task": 100,
        "task_overhead_s": 0.01,  # driver bound 10,000 frames/s
        "s3_puts_per_task": 2.0,  # 3500 * 100 / 2 = 175,000
        "s3_gets_per_task": 6.0,  # 5500 * 100 / 6 = 91,666.7
        "input_bytes_per_frame": 400_000.0,  # 85e6 / 4e5 = 212.5 per worker
        "output_bytes_per_frame": 25_000.0,  # 1.25e9 / 425e3 = 2,941.2 per node
        "s_per_frame_1w": 1 / 120,
        "s_per_frame_per_worker_2w": 1 / 100,
        "per_worker_frames_per_s_1w": 120.0,
        "raw_bytes_per_frame": 401_492,
        "overhead_tasks": 16,
    }
    base.update(costs)
    return {
        "content": {"height": 224, "width": 224, "fps": 10.0, "episodes": 8, "steps": 100,
                    "frames": 800, "cameras": ["cam_high", "cam_wrist"], "depth": True,
                    "repeats": 3},
        "machine": {"cpus": 2, "python": "3.12", "ray": "2.x", "ray_started_here": True,
                    "load_avg_1min_start": 0.5, "load_avg_1min_end": 1.5},
        "runs": [
            {"workers": 1, "frames": 800, "seconds": [6.7],
             "frames_per_s": {"median": 120.0, "min": 110.0, "max": 130.0}},
            {"workers": 2, "frames": 800, "seconds": [4.0],
             "frames_per_s": {"median": 200.0, "min": 190.0, "max": 210.0}},
        ],
        "costs": base,
        "s3": {"trajectories": 2, "gets_per_task": 6.0, "puts_per_task": 2.0,
               "input_per_task": {"GET": 5.0, "HEAD": 1.0}, "output_per_task": {"PUT": 2.0},
               "per_job": {"GET": 4, "PUT": 5}},
        "seconds": 30.0,
    }


def bindings(rows: list[dict[str, Any]]) -> list[str]:
    return [row["binding"] for row in rows]


def test_bounds_equal_hand_computed_values() -> None:
    rows = model(measured_dict(), WORKERS)
    by_workers = {row["workers"]: row for row in rows}
    assert by_workers[512]["bounds"] == pytest.approx({
        "compute": 51_200.0,
        "driver": 10_000.0,
        "s3_put_rate": 175_000.0,
        "s3_get_rate": 5500 * 100 / 6,
        "s3_stream": 512 * 212.5,
        "node_network": 64 * 1.25e9 / 425_000,
    })
    assert by_workers[8]["bounds"]["node_network"] == pytest.approx(1.25e9 / 425_000)
    assert [row["nodes"] for row in rows] == [1, 1, 1, 8, 64]
    assert [row["frames_per_s"] for row in rows] == pytest.approx(
        [100.0, 200.0, 800.0, 6_400.0, 10_000.0]
    )
    # Compute-bound while few workers, then the one driver caps the cluster.
    assert bindings(rows) == ["compute", "compute", "compute", "compute", "driver"]


def test_measurement_sits_beside_the_model_at_measured_counts_only() -> None:
    rows = model(measured_dict(), WORKERS)
    assert rows[0]["measured"] == {"median": 120.0, "min": 110.0, "max": 130.0}
    assert rows[0]["measured_over_model"] == pytest.approx(1.2)
    assert rows[1]["measured_over_model"] == pytest.approx(1.0)
    assert all(row["measured"] is None and row["measured_over_model"] is None
               for row in rows[2:])


def test_tiny_connection_bandwidth_makes_s3_streams_bind_everywhere() -> None:
    # 20 MB/s per stream / 400 kB per frame = 50 frames/s per worker, below compute's 100.
    rows = model(measured_dict(task_overhead_s=1e-4), WORKERS,
                 Assumptions(stream_bytes_per_s=20e6))
    assert bindings(rows) == ["s3_stream"] * 5
    assert [row["frames_per_s"] for row in rows] == pytest.approx([50 * n for n in WORKERS])


def test_node_network_takes_over_once_a_node_is_full() -> None:
    # A NIC carrying 500 frames/s (500 * 425 kB): 1-2 workers compute less, 8 per node more.
    assumptions = Assumptions(nic_bytes_per_s=500 * 425_000.0)
    rows = model(measured_dict(task_overhead_s=1e-4), WORKERS, assumptions)
    assert bindings(rows) == ["compute", "compute", "node_network", "node_network",
                              "node_network"]
    assert [row["frames_per_s"] for row in rows] == pytest.approx(
        [100.0, 200.0, 500.0, 4_000.0, 32_000.0]
    )


def test_s3_put_rate_binds_with_many_puts_and_scales_with_prefixes() -> None:
    costs = {"task_overhead_s": 1e-4, "s3_puts_per_task": 100.0}
    one = model(measured_dict(**costs), WORKERS)
    assert bindings(one) == ["compute", "compute", "compute", "s3_put_rate", "s3_put_rate"]
    assert one[-1]["frames_per_s"] == pytest.approx(3_500.0)
    four = model(measured_dict(**costs), WORKERS, Assumptions(prefixes=4))
    assert four[-1]["frames_per_s"] == pytest.approx(14_000.0)
    assert four[-1]["bounds"]["s3_get_rate"] == pytest.approx(4 * 5500 * 100 / 6)
    assert four[3]["binding"] == "compute"  # 6,400 < 14,000


def test_invalid_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="prefixes"):
        Assumptions(prefixes=0)
    with pytest.raises(ValueError, match="workers"):
        model(measured_dict(), [0])
    with pytest.raises(ValueError, match="task_overhead_s"):
        model(measured_dict(task_overhead_s=0.0))


def test_requests_are_split_per_trajectory_and_per_job() -> None:
    history = [
        ("HEAD", "/bkt/raw/episode_000.npz"),
        ("GET", "/bkt/raw/episode_000.npz"),
        ("GET", "/bkt/raw/episode_000.npz"),
        ("HEAD", "/bkt/raw/episode_001.npz"),
        ("GET", "/bkt/raw/episode_001.npz"),
        ("GET", "/bkt/raw/episode_001.npz"),
        ("PUT", "/bkt/dataset/trajectory_000000.mkv"),
        ("PUT", "/bkt/dataset/_robodm/records/trajectory_000000.json"),
        ("POST", "/bkt/dataset/trajectory_000001.mkv?uploads"),
        ("PUT", "/bkt/dataset/trajectory_000001.mkv?partNumber=1&uploadId=x"),
        ("POST", "/bkt/dataset/trajectory_000001.mkv?uploadId=x"),
        ("PUT", "/bkt/dataset/_robodm/records/trajectory_000001.json"),
        ("GET", "/bkt?list-type=2&prefix=raw%2F"),
        ("GET", "/bkt?list-type=2&prefix=dataset%2F"),
        ("PUT", "/bkt/dataset/_robodm/progress.json"),
        ("PUT", "/bkt/dataset/manifest.json"),
    ]
    counts = classify_requests(history, trajectories=2)
    assert counts["gets_per_task"] == 3.0
    assert counts["puts_per_task"] == 3.0  # (2 + 4) PUT/POST over 2 trajectories
    assert counts["input_per_task"] == {"GET": 2.0, "HEAD": 1.0}
    assert counts["output_per_task"] == {"POST": 1.0, "PUT": 2.0}
    assert counts["per_job"] == {"GET": 2, "PUT": 2}


def test_markdown_has_the_table_the_costs_and_the_assumptions() -> None:
    measured = measured_dict()
    text = render_markdown(measured, model(measured, WORKERS), Assumptions())
    lines = text.splitlines()
    assert lines[0].startswith("### ")
    assert not [line for line in lines if line.startswith("#") and not line.startswith("###")]
    assert "| 1 | 1 | 100 | compute | 120 (110-130) | 1.20 |" in lines
    assert "| 2 | 1 | 200 | compute | 200 (190-210) | 1.00 |" in lines
    assert "| 512 | 64 | 10,000 | driver / scheduling |  |  |" in lines
    assert "| 512 | 51,200 | **10,000** | 175,000 | 91,667 | 108,800 | 188,235 |" in lines
    assert AWS_REQUEST_RATES_URL in text
    assert AWS_PARALLELIZATION_URL in text
    # Read-then-encode per worker: 1 / (1/100 + 1/212.5) = 68.0 frames/s, 32% below compute.
    assert "= 68.0 frames/s per worker, 32% below" in text
    for figure in ("3,500", "5,500", "85 MB/s", "10 Gbit/s", "ceil(N / 8)", "10.0 ms"):
        assert figure in text, figure
    changed = render_markdown(measured, model(measured, WORKERS, Assumptions(workers_per_node=4)),
                              Assumptions(workers_per_node=4))
    assert "ceil(N / 4)" in changed


def test_plot_writes_a_png_atomically(tmp_path: Path) -> None:
    measured = measured_dict()
    target = tmp_path / "figures" / "scaling.png"
    plot(measured, model(measured, WORKERS), target)
    first = target.read_bytes()
    assert first.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(first) > 10_000
    plot(measured, model(measured, WORKERS, Assumptions(stream_bytes_per_s=20e6)), target)
    assert target.read_bytes() != first  # replaced, not appended to or left alone
    assert sorted(p.name for p in target.parent.iterdir()) == ["scaling.png"]


@pytest.mark.slow
def test_quick_measurement_is_real(tmp_path: Path, ray_local: None) -> None:
    import ray

    work = tmp_path / "work"
    measured = measure(work, height=64, width=64, episodes=4, steps=20, repeats=1)
    assert ray.is_initialized()  # the caller's Ray is left running
    assert list(work.iterdir()) == []  # inputs, outputs and scratch are gone
    json.dumps(measured, allow_nan=False)
    assert [run["workers"] for run in measured["runs"]] == [1, 2]
    for run in measured["runs"]:
        assert run["frames"] == 80
        assert len(run["seconds"]) == 1
        assert run["frames_per_s"]["median"] == pytest.approx(80 / run["seconds"][0])
        assert run["frames_per_s"]["min"] > 0
    costs = measured["costs"]
    assert costs["frames_per_task"] == 20
    # Uncompressed npz: the raw arrays (2 RGB + uint16 depth + floats) plus small headers.
    assert costs["raw_bytes_per_frame"] == 2 * 64 * 64 * 3 + 64 * 64 * 2 + (14 + 7) * 4
    assert costs["raw_bytes_per_frame"] <= costs["input_bytes_per_frame"]
    assert 0 < costs["output_bytes_per_frame"] < costs["input_bytes_per_frame"]
    assert costs["task_overhead_s"] > 0
    # Per trajectory at least: HEAD + GET of the npz; PUT of the file and of its record.
    assert costs["s3_gets_per_task"] >= 2
    assert costs["s3_puts_per_task"] >= 2
    assert measured["s3"]["per_job"]  # listings and the manifest
    rows = model(measured)
    assert [row["workers"] for row in rows] == list(WORKERS)
    assert all(row["frames_per_s"] > 0 for row in rows)
