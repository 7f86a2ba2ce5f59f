"""``robodm-engine`` as users and the operator's engine Job run it: real processes, real S3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from robodm_engine import Trajectory
from robodm_engine.manifest import DatasetManifest, read_manifest
from robodm_engine.storage import StorageOptions, open_store

from .conftest import ENGINE, fill_raw, job_document, run_engine

WriteJob = Callable[..., Path]


def verify(manifest: DatasetManifest, root: str) -> None:
    """Every trajectory is listed once and its object matches size and checksum."""
    store = open_store(root, StorageOptions.from_env())
    names = [record.name for record in manifest.trajectories]
    assert len(names) == len(set(names))
    for record in manifest.trajectories:
        assert store.size(record.path) == record.bytes
        assert store.sha256(record.path) == record.sha256


def test_validate_reports_every_problem_with_its_path(tmp_path: Path,
                                                      write_job: WriteJob) -> None:
    bad = job_document("./raw", "./out", numWorkers=0, groupSize=4, unknownField=1)
    bad["spec"]["source"]["format"] = "rlds"
    done = run_engine("validate", str(write_job(bad)))
    assert done.returncode == 2, done.stderr
    for path in ("spec.numWorkers", "spec.source.format", "spec: Additional properties"):
        assert path in done.stderr, done.stderr
    good = run_engine("validate", str(write_job(job_document("./raw", "./out"), "good.yaml")))
    assert good.returncode == 0 and "valid" in good.stdout


def test_unreadable_job_file(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text("spec: [unclosed\n")
    done = run_engine("run", str(tmp_path / "job.yaml"))
    assert done.returncode == 2 and "cannot read the job manifest" in done.stderr
    assert not (tmp_path / "out").exists()


def test_run_local_job_then_inspect(tmp_path: Path, write_job: WriteJob) -> None:
    raw = tmp_path / "raw"
    fill_raw(open_store(str(raw)), episodes=3)
    output = tmp_path / "dataset"
    done = run_engine("run", str(write_job(job_document(str(raw), str(output)))))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["trajectories"] == 3 and summary["items_failed"] == 0
    manifest = read_manifest(str(output))
    assert [r.steps for r in manifest.trajectories] == [20, 20, 20]
    assert manifest.features["observation/image"].encoding == "libx264"
    verify(manifest, str(output))
    progress = json.loads((output / "_robodm" / "progress.json").read_text())
    assert progress["state"] == "succeeded" and progress["trajectoriesWritten"] == 3

    text = run_engine("inspect", str(output))
    assert text.returncode == 0 and "trajectories: 3" in text.stdout
    described = json.loads(run_engine("inspect", str(output / manifest.trajectories[0].path),
                                      "--json").stdout)
    assert described["kind"] == "trajectory" and described["steps"] == 20
    assert described["features"]["action"] == {"dtype": "float32", "shape": [7],
                                               "encoding": "raw", "samples": 20}


def test_data_failures_exit_3_and_leave_the_earlier_dataset_intact(
    tmp_path: Path, write_job: WriteJob
) -> None:
    raw = tmp_path / "raw"
    fill_raw(open_store(str(raw)), episodes=2)
    output = tmp_path / "dataset"
    job = write_job(job_document(str(raw), str(output)))
    assert run_engine("run", str(job)).returncode == 0
    before = read_manifest(str(output))
    (raw / "episode_zzz.npz").write_bytes(b"this is not an npz archive")
    done = run_engine("run", str(job))
    assert done.returncode == 3, done.stderr
    assert "episode_zzz.npz" in done.stderr
    after = read_manifest(str(output))
    assert after == before
    verify(after, str(output))


def test_unreachable_storage_exits_4(tmp_path: Path, write_job: WriteJob,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    raw = tmp_path / "raw"
    fill_raw(open_store(str(raw)), episodes=1)
    job = job_document(str(raw), "s3://nowhere/dataset/",
                       storage={"endpoint": "http://127.0.0.1:9", "region": "us-east-1"})
    done = run_engine("run", str(write_job(job)))
    assert done.returncode == 4, done.stderr
    assert "127.0.0.1:9" in done.stderr or "s3://nowhere" in done.stderr


@pytest.mark.slow
def test_killed_engine_resumes_on_s3(s3_bucket: str, s3_server: Any, tmp_path: Path,
                                     write_job: WriteJob) -> None:
    episodes = 10
    fill_raw(open_store(f"s3://{s3_bucket}/raw", StorageOptions.from_env()), episodes,
             steps=40, side=64)
    output = f"s3://{s3_bucket}/dataset"
    job = write_job(job_document(f"s3://{s3_bucket}/raw/", output,
                                 storage={"endpoint": s3_server.endpoint_url}))
    store = open_store(output, StorageOptions.from_env())

    # Like a pod being killed: the engine and every process it started die at once.
    engine = subprocess.Popen([ENGINE, "run", str(job)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while len(store.list("_robodm/records/")) < 2:
        assert engine.poll() is None, "the engine finished before it could be killed"
        assert time.monotonic() < deadline, "no trajectory published in time"
        time.sleep(0.2)
    os.killpg(engine.pid, signal.SIGKILL)
    engine.wait(timeout=60)
    assert not store.exists("manifest.json")

    done = run_engine("run", str(job))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["trajectoriesResumed"] >= 2
    manifest = read_manifest(output, StorageOptions.from_env())
    assert len(manifest.trajectories) == episodes
    verify(manifest, output)


@pytest.mark.slow
def test_faults_between_engine_and_s3_give_the_same_dataset(
    s3_bucket: str, s3_server: Any, fault_proxy: Any, write_job: WriteJob
) -> None:
    raw = f"s3://{s3_bucket}/raw/"
    fill_raw(open_store(raw, StorageOptions.from_env()), episodes=4)
    clean = job_document(raw, f"s3://{s3_bucket}/clean/",
                         storage={"endpoint": s3_server.endpoint_url})
    assert run_engine("run", str(write_job(clean, "clean.yaml"))).returncode == 0

    proxy = fault_proxy(rate=0.2, seed=3)
    faulty = job_document(raw, f"s3://{s3_bucket}/faulty/", storage={"endpoint": proxy.url})
    done = run_engine("run", str(write_job(faulty, "faulty.yaml")))
    assert done.returncode == 0, done.stderr
    assert sum(proxy.faults.values()) > 0

    def content(root: str) -> list[tuple[Any, ...]]:
        """What a dataset holds: raw features exactly, video by its decoded size and quality."""
        manifest = read_manifest(root, StorageOptions.from_env())
        verify(manifest, root)
        store = open_store(root, StorageOptions.from_env())
        rows: list[tuple[Any, ...]] = []
        for record in manifest.trajectories:
            with store.open(record.path) as handle:
                data = Trajectory(handle).load()
            rows.append((record.name, record.steps, record.start_ms, record.end_ms,
                         data["observation/state"].tobytes(), data["action"].tobytes(),
                         data["observation/image"].shape))
        return rows

    assert content(f"s3://{s3_bucket}/faulty") == content(f"s3://{s3_bucket}/clean")
