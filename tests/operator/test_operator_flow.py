"""The operator (kopf, in a thread) against the Kubernetes API double over HTTP.

The tests play KubeRay and the Job controller by patching the children's status, and the engine
by writing its progress file; they check what the operator does in response through the API
alone. Timing figures are printed, never asserted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    NAMESPACE,
    ApiServer,
    Kube,
    OperatorThread,
    make_job,
    make_spec,
    wait_for,
)

JOBS = f"/apis/robodm.io/v1alpha1/namespaces/{NAMESPACE}/ingestionjobs"
CLUSTERS = f"/apis/ray.io/v1/namespaces/{NAMESPACE}/rayclusters"
BATCH_JOBS = f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs"
CONFIG_MAPS = f"/api/v1/namespaces/{NAMESPACE}/configmaps"

StartOperator = Callable[[], OperatorThread]


def local_job(tmp_path: Path, name: str = "local", **overrides: Any) -> dict[str, Any]:
    """A job on absolute local paths, so the test can write the engine's progress file."""
    (tmp_path / "raw").mkdir(exist_ok=True)
    spec = make_spec(
        source={"uri": str(tmp_path / "raw")},
        output={"uri": f"file://{tmp_path / 'out'}"},
        **overrides,
    )
    del spec["storage"]
    job = make_job(name)
    job["spec"] = spec
    return job


def write_progress(tmp_path: Path, **fields: Any) -> None:
    """Write the engine's progress file the way the engine does (whole file replaced)."""
    progress = {
        "state": "running",
        "itemsTotal": 10,
        "itemsDone": 0,
        "itemsFailed": 0,
        "trajectoriesWritten": 0,
        "bytesWritten": 0,
        "updatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "manifest": None,
        "message": "",
        **fields,
    }
    path = tmp_path / "out" / "_robodm" / "progress.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(progress))
    tmp.replace(path)


def status_of(kube: Kube, name: str) -> dict[str, Any]:
    job = kube.get(f"{JOBS}/{name}")
    return (job or {}).get("status") or {}


def wait_phase(kube: Kube, name: str, phase: str, timeout: float = 30) -> dict[str, Any]:
    status: dict[str, Any] = wait_for(
        lambda: (s := status_of(kube, name)).get("phase") == phase and s,
        timeout=timeout,
        what=f"{name} to reach phase {phase}",
    )
    return status


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def mark_cluster_ready(kube: Kube, name: str) -> None:
    """Play KubeRay: the head pod is up."""
    cluster_path = f"{CLUSTERS}/{name}-ray"
    wait_for(lambda: kube.get(cluster_path), what="the RayCluster")
    kube.patch_status(
        cluster_path,
        {
            "state": "ready",
            "conditions": [
                {
                    "type": "HeadPodReady",
                    "status": "True",
                    "reason": "HeadPodRunningAndReady",
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                }
            ],
        },
    )


def play_job(kube: Kube, name: str, outcome: str) -> None:
    """Play the Job controller: the engine pod runs, succeeds or fails."""
    path = f"{BATCH_JOBS}/{name}"
    wait_for(lambda: kube.get(path), what=f"Job {name}")
    statuses = {
        "active": {"active": 1, "startTime": "2025-01-01T00:00:00Z"},
        "succeeded": {
            "active": 0,
            "succeeded": 1,
            "conditions": [{"type": "Complete", "status": "True"}],
        },
        "failed": {
            "active": 0,
            "failed": 1,
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                }
            ],
        },
    }
    kube.patch_status(path, statuses[outcome])


def test_create_provisions_cluster_then_engine_job(
    kube: Kube,
    start_operator: StartOperator,
    ray_cluster_validator: Any,
) -> None:
    start_operator()
    started = time.monotonic()
    kube.create(JOBS, make_job("philips"))
    cluster = wait_for(lambda: kube.get(f"{CLUSTERS}/philips-ray"), what="the RayCluster")
    latency = time.monotonic() - started
    print(f"\nIngestionJob created -> RayCluster created: {latency * 1000:.0f} ms")

    job = kube.get(f"{JOBS}/philips")
    assert job is not None
    assert cluster["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    ray_cluster_validator.validate({k: v for k, v in cluster.items() if k != "status"})
    status = wait_phase(kube, "philips", "Provisioning")
    assert condition(status, "RayClusterReady")["status"] == "False"
    assert kube.get(f"{BATCH_JOBS}/philips-engine-1") is None, "no engine before the cluster"

    mark_cluster_ready(kube, "philips")
    engine = wait_for(lambda: kube.get(f"{BATCH_JOBS}/philips-engine-1"), what="the engine Job")
    config_map = kube.get(f"{CONFIG_MAPS}/philips-config")
    assert config_map is not None and "job.yaml" in config_map["data"]
    container = engine["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["robodm-engine", "run", "/etc/robodm/job.yaml"]

    play_job(kube, "philips-engine-1", "active")
    status = wait_phase(kube, "philips", "Running")
    assert status["attempts"] == 1
    assert status["engineJobName"] == "philips-engine-1"
    assert condition(status, "RayClusterReady")["status"] == "True"


def test_progress_is_mirrored_and_success_releases_the_cluster(
    kube: Kube, start_operator: StartOperator, tmp_path: Path
) -> None:
    operator = start_operator()
    kube.create(JOBS, local_job(tmp_path, "local"))
    mark_cluster_ready(kube, "local")
    play_job(kube, "local-engine-1", "active")
    written = time.monotonic()
    write_progress(tmp_path, itemsDone=4, trajectoriesWritten=1, bytesWritten=1234)
    status = wait_for(
        lambda: (s := status_of(kube, "local")).get("progress", {}).get("itemsDone") == 4 and s,
        what="progress mirrored",
    )
    print(f"\nprogress object written -> status.progress: {time.monotonic() - written:.2f} s "
          f"(poll interval {operator.config.poll_interval:g} s)")
    assert status["progressSummary"] == "4/10"
    assert status["progress"]["trajectoriesWritten"] == 1

    manifest = f"file://{tmp_path / 'out' / 'manifest.json'}"
    write_progress(
        tmp_path, state="succeeded", itemsDone=10, trajectoriesWritten=3, manifest=manifest
    )
    play_job(kube, "local-engine-1", "succeeded")
    status = wait_phase(kube, "local", "Succeeded")
    assert status["manifest"] == manifest
    assert status["progress"]["itemsDone"] == 10
    assert condition(status, "Complete")["status"] == "True"
    assert "completionTime" in status
    wait_for(lambda: kube.get(f"{CLUSTERS}/local-ray") is None, what="RayCluster deletion")
    assert kube.get(f"{BATCH_JOBS}/local-engine-1") is not None, "kept until its TTL"


def test_progress_is_read_from_s3_with_the_secrets_keys(
    kube: Kube, start_operator: StartOperator
) -> None:
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        keys = {"AWS_ACCESS_KEY_ID": "op-key", "AWS_SECRET_ACCESS_KEY": "op-secret"}
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        )
        s3.create_bucket(Bucket="datasets")
        kube.create_secret("s3-creds", keys)
        start_operator()
        job = make_job("s3job")
        job["spec"]["storage"]["endpoint"] = endpoint
        kube.create(JOBS, job)
        mark_cluster_ready(kube, "s3job")
        play_job(kube, "s3job-engine-1", "active")
        progress = {
            "state": "running",
            "itemsTotal": None,
            "itemsDone": 7,
            "itemsFailed": 1,
            "trajectoriesWritten": 2,
            "bytesWritten": 99,
            "updatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "manifest": None,
            "message": "",
        }
        s3.put_object(
            Bucket="datasets",
            Key="philips-v1/_robodm/progress.json",
            Body=json.dumps(progress).encode(),
        )
        status = wait_for(
            lambda: (s := status_of(kube, "s3job")).get("progress", {}).get("itemsDone") == 7 and s,
            what="progress read from S3",
        )
        assert status["progressSummary"] == "7/?"
        assert status["progress"]["itemsFailed"] == 1
    finally:
        server.stop()


def test_failed_attempts_are_retried_on_the_same_cluster_then_fail(
    kube: Kube, start_operator: StartOperator, api_server: ApiServer
) -> None:
    start_operator()
    job = make_job("flaky")
    job["spec"]["failurePolicy"] = {"backoffLimit": 1}
    kube.create(JOBS, job)
    mark_cluster_ready(kube, "flaky")
    cluster_uid = wait_for(lambda: kube.get(f"{CLUSTERS}/flaky-ray"))["metadata"]["uid"]

    play_job(kube, "flaky-engine-1", "failed")
    wait_for(lambda: kube.get(f"{BATCH_JOBS}/flaky-engine-2"), what="the retry Job")
    status = status_of(kube, "flaky")
    assert status["attempts"] == 2
    assert status["failedAttempts"] == 1
    assert status["phase"] != "Failed"
    cluster = kube.get(f"{CLUSTERS}/flaky-ray")
    assert cluster is not None and cluster["metadata"]["uid"] == cluster_uid, "not rebuilt"

    play_job(kube, "flaky-engine-2", "failed")
    status = wait_phase(kube, "flaky", "Failed")
    failed = condition(status, "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert "attempt 2 failed" in failed["message"]
    assert status["failedAttempts"] == 2
    wait_for(lambda: kube.get(f"{CLUSTERS}/flaky-ray") is None, what="RayCluster deletion")
    assert kube.get(f"{BATCH_JOBS}/flaky-engine-3") is None
    creates = [p for m, p in api_server.requests() if m == "POST" and p == CLUSTERS]
    assert len(creates) == 1, "the cluster was created once"


def test_active_deadline_fails_the_job_and_releases_the_cluster(
    kube: Kube, start_operator: StartOperator, api_server: ApiServer
) -> None:
    start_operator()
    kube.create(JOBS, make_job("slow", activeDeadlineSeconds=2))
    # The cluster never becomes ready (e.g. no capacity): the deadline still applies.
    status = wait_phase(kube, "slow", "Failed", timeout=15)
    failed = condition(status, "Failed")
    assert failed["reason"] == "DeadlineExceeded"
    assert "activeDeadlineSeconds=2" in failed["message"]
    assert condition(status, "RayClusterReady")["reason"] == "RayClusterReleased"
    wait_for(lambda: kube.get(f"{CLUSTERS}/slow-ray") is None, what="RayCluster deletion")
    calls = api_server.requests()
    assert ("POST", CLUSTERS) in calls, "the cluster was requested before the deadline"
    assert ("DELETE", f"{CLUSTERS}/slow-ray") in calls


def test_invalid_spec_fails_with_a_message_and_creates_nothing(
    kube: Kube, start_operator: StartOperator
) -> None:
    start_operator()
    job = make_job("overlap")
    job["spec"]["output"]["uri"] = "s3://raw/philips/out/"
    kube.create(JOBS, job)
    status = wait_phase(kube, "overlap", "Failed")
    validated = condition(status, "Validated")
    assert validated["status"] == "False"
    assert validated["reason"] == "InvalidSpec"
    assert "spec.output.uri" in validated["message"]
    assert condition(status, "Failed")["message"] == validated["message"]
    assert kube.get(f"{CLUSTERS}/overlap-ray") is None


def test_delete_removes_children_before_the_finalizer(
    kube: Kube, start_operator: StartOperator
) -> None:
    start_operator()
    kube.create(JOBS, make_job("doomed"))
    mark_cluster_ready(kube, "doomed")
    play_job(kube, "doomed-engine-1", "active")
    wait_phase(kube, "doomed", "Running")
    job = kube.get(f"{JOBS}/doomed")
    assert job is not None and "robodm.io/finalizer" in job["metadata"]["finalizers"]

    started = time.monotonic()
    assert kube.delete(f"{JOBS}/doomed") == 200
    wait_for(lambda: kube.get(f"{JOBS}/doomed") is None, what="the IngestionJob to go")
    print(f"\nIngestionJob deletion took {time.monotonic() - started:.1f} s")
    assert kube.get(f"{CLUSTERS}/doomed-ray") is None
    assert kube.get(f"{BATCH_JOBS}/doomed-engine-1") is None


def test_operator_restart_mid_job_resumes_from_cluster_state(
    kube: Kube, start_operator: StartOperator, api_server: ApiServer, tmp_path: Path
) -> None:
    first = start_operator()
    kube.create(JOBS, local_job(tmp_path, "resumable"))
    mark_cluster_ready(kube, "resumable")
    play_job(kube, "resumable-engine-1", "active")
    wait_phase(kube, "resumable", "Running")
    first.stop()

    # While the operator is down, the engine finishes.
    write_progress(tmp_path, state="succeeded", itemsDone=10, trajectoriesWritten=2)
    play_job(kube, "resumable-engine-1", "succeeded")

    start_operator()
    status = wait_phase(kube, "resumable", "Succeeded")
    assert status["attempts"] == 1
    assert status["progress"]["itemsDone"] == 10
    wait_for(lambda: kube.get(f"{CLUSTERS}/resumable-ray") is None, what="RayCluster deletion")
    posts = [p for m, p in api_server.requests() if m == "POST"]
    assert posts.count(BATCH_JOBS) == 1, "no second engine Job after the restart"
    assert posts.count(CLUSTERS) == 1, "no second RayCluster after the restart"
