"""``_robodm/progress.json`` while a job runs and after it, and the terminal bar."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

from robodm_engine.ingestion import IngestionConfig, PyTorchDatasetAdapter, run_ingestion
from robodm_engine.ingestion.progress import IngestionProgress, ProgressReporter
from robodm_engine.storage import open_store


def _snapshot(done: int, **changes: Any) -> IngestionProgress:
    values: dict[str, Any] = {
        "items_total": 10, "items_read": done, "items_done": done, "items_failed": 0,
        "items_skipped": 0, "trajectories_written": done // 2, "trajectories_resumed": 0,
        "bytes_written": 100 * done, "bytes_resumed": 0, "in_flight": 1, "elapsed_s": 1.0,
    }
    values.update(changes)
    return IngestionProgress(**values)


def test_the_file_is_rewritten_at_the_interval_not_on_every_update(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    reporter = ProgressReporter(store, interval_s=0.2, use_bar=False)
    path = tmp_path / "_robodm" / "progress.json"
    reporter.update(_snapshot(1))
    assert json.loads(path.read_text())["itemsDone"] == 1
    reporter.update(_snapshot(2))  # within the interval: not written
    assert json.loads(path.read_text())["itemsDone"] == 1
    time.sleep(0.25)
    reporter.update(_snapshot(3))
    status = json.loads(path.read_text())
    assert status["state"] == "running" and status["itemsDone"] == 3
    assert status["manifest"] is None
    reporter.finish(_snapshot(10, trajectories_resumed=2, bytes_resumed=50), "succeeded",
                    manifest="/x/manifest.json", message="done")
    final = json.loads(path.read_text())
    assert final == {
        "state": "succeeded", "itemsTotal": 10, "itemsDone": 10, "itemsFailed": 0,
        "trajectoriesWritten": 7, "bytesWritten": 1050, "updatedAt": final["updatedAt"],
        "manifest": "/x/manifest.json", "message": "done",
    }
    assert final["updatedAt"].endswith("Z")


def test_a_bar_shows_finished_items(tmp_path: Path, monkeypatch: Any) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)  # where tqdm writes
    reporter = ProgressReporter(open_store(tmp_path), interval_s=10, use_bar=True)
    reporter.update(_snapshot(4, items_failed=1, items_skipped=1))
    reporter.finish(_snapshot(10), "succeeded", manifest=None, message="")
    assert "10/10" in stream.getvalue()


def test_progress_is_published_while_the_job_runs(out_dir: str) -> None:
    path = Path(out_dir, "_robodm", "progress.json")
    seen: list[dict[str, Any]] = []

    def slow(item: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.05)
        return item

    def watch(progress: IngestionProgress) -> None:
        if path.exists():
            seen.append(json.loads(path.read_text()))

    items = [{"x": float(i)} for i in range(16)]
    run_ingestion(
        PyTorchDatasetAdapter(items, transform_fn=slow, group_size=2),
        IngestionConfig(out_dir, num_workers=2, progress_interval_s=0.05),
        progress_callback=watch,
    )
    running = [s for s in seen if s["state"] == "running"]
    assert len({s["itemsDone"] for s in running}) >= 3  # several distinct, increasing states
    assert [s["itemsDone"] for s in running] == sorted(s["itemsDone"] for s in running)
    assert json.loads(path.read_text())["state"] == "succeeded"
