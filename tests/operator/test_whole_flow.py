"""The whole flow: IngestionJob -> RayCluster -> engine Job -> Succeeded, with a real engine.

The test plays the two controllers this machine lacks. As KubeRay it starts a real local Ray
head (with the environment the operator put in the RayCluster's pod template, secrets
resolved) and marks the RayCluster ready. As the kubelet it runs the engine Job's container
command as a local process: the job file from the mounted ConfigMap, the container's
environment with ``secretKeyRef`` resolved from the Secret in the API double, and
``RAY_ADDRESS`` pointing at the local head's client port instead of the in-cluster Service.
The engine reads raw episodes from the moto S3 server and writes the dataset there; the
operator must report Succeeded with a manifest whose every trajectory exists in S3 with its
checksum, and must delete the RayCluster.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import NAMESPACE, ApiServer, Kube, OperatorThread, make_job, make_spec, wait_for

from robodm_engine.manifest import read_manifest
from robodm_engine.storage import StorageOptions, open_store
from robodm_engine.synthetic import episode_npz

JOBS = f"/apis/robodm.io/v1alpha1/namespaces/{NAMESPACE}/ingestionjobs"
CLUSTERS = f"/apis/ray.io/v1/namespaces/{NAMESPACE}/rayclusters"
BATCH_JOBS = f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs"
CONFIG_MAPS = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
SECRETS = f"/api/v1/namespaces/{NAMESPACE}/secrets"
EPISODES = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def resolve_env(kube: Kube, container: Mapping[str, Any]) -> dict[str, str]:
    """A container's environment as the kubelet would set it (values and secretKeyRefs)."""
    env: dict[str, str] = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
            continue
        ref = var["valueFrom"]["secretKeyRef"]
        secret = kube.get(f"{SECRETS}/{ref['name']}") or {}
        data = secret.get("data", {})
        if ref["key"] in data:
            env[var["name"]] = base64.b64decode(data[ref["key"]]).decode()
        else:
            assert ref.get("optional"), f"secret key {ref} is missing and not optional"
    return env


class LocalRayHead:
    """KubeRay's part: a Ray head on loopback, started with the pod template's environment."""

    def __init__(self, tmp_path: Path, env: Mapping[str, str], num_cpus: int) -> None:
        self.client_port = free_port()
        self.log = tmp_path / "ray-head.log"
        command = [
            sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
            f"--port={free_port()}", f"--ray-client-server-port={self.client_port}",
            f"--num-cpus={num_cpus}", "--include-dashboard=false", "--disable-usage-stats",
        ]
        # Ray's Unix sockets live under RAY_TMPDIR, and their paths may not exceed 107 bytes.
        self.ray_tmp = tempfile.mkdtemp(prefix="rayhead-")
        full_env = {**os.environ, **env, "RAY_TMPDIR": self.ray_tmp}
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, env=full_env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: "Ray runtime started" in self.log.read_text()
                 or self.process.poll() is not None, timeout=180, what="the Ray head")
        assert self.process.poll() is None, self.log.read_text()

    @property
    def address(self) -> str:
        return f"ray://127.0.0.1:{self.client_port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        shutil.rmtree(self.ray_tmp, ignore_errors=True)


def run_engine_job(kube: Kube, job: Mapping[str, Any], tmp_path: Path,
                   ray_address: str) -> subprocess.CompletedProcess[str]:
    """The kubelet's part: run the engine Job's container as a local process."""
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = resolve_env(kube, container)
    assert env["RAY_ADDRESS"].startswith("ray://") and env["RAY_ADDRESS"].endswith(":10001")
    env["RAY_ADDRESS"] = ray_address
    # Volumes (the job file's ConfigMap, scratch emptyDirs) become local directories.
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        local = tmp_path / "mounts" / mount["name"]
        local.mkdir(parents=True, exist_ok=True)
        if "configMap" in volume:
            config_map = kube.get(f"{CONFIG_MAPS}/{volume['configMap']['name']}") or {}
            for key, value in config_map.get("data", {}).items():
                (local / key).write_text(value)
        else:
            assert "emptyDir" in volume, volume
        mounts[mount["mountPath"]] = local

    def local_path(value: str) -> str:
        for path in sorted(mounts, key=len, reverse=True):
            if value == path or value.startswith(path.rstrip("/") + "/"):
                return str(mounts[path]) + value[len(path.rstrip("/")):]
        return value

    command = [local_path(arg) for arg in [*container.get("command", []),
                                            *container.get("args", [])]]
    env = {key: local_path(value) for key, value in env.items()}
    assert command[0] == "robodm-engine", command
    engine = str(Path(sys.executable).with_name("robodm-engine"))
    return subprocess.run([engine, *command[1:]], env={**os.environ, **env}, text=True,
                          capture_output=True, timeout=600, check=False)


@pytest.fixture
def raw_data(s3_server: Any, s3_env: Mapping[str, str]) -> Iterator[str]:
    bucket = s3_server.create_bucket()
    store = open_store(f"s3://{bucket}/raw", StorageOptions.from_env())
    for index in range(EPISODES):
        store.put_bytes(f"episode_{index}.npz", episode_npz(12, 32, 32, seed=index))
    yield bucket


@pytest.mark.slow
def test_ingestion_job_runs_end_to_end(
    api_server: ApiServer, kube: Kube, start_operator: Any, s3_server: Any,
    raw_data: str, tmp_path: Path,
) -> None:
    bucket = raw_data
    kube.create_secret("s3-creds", {"AWS_ACCESS_KEY_ID": "testing",
                                    "AWS_SECRET_ACCESS_KEY": "testing"})
    job = make_job("flow")
    job["spec"] = make_spec(
        source={"uri": f"s3://{bucket}/raw/", "format": "files", "include": ["*.npz"]},
        output={"uri": f"s3://{bucket}/datasets/flow/"},
        storage={"endpoint": s3_server.endpoint_url, "region": "us-east-1",
                 "credentialsSecret": "s3-creds"},
        numWorkers=2,
        rayInitKwargs={"num_cpus": 2},
        failurePolicy={"maxFailedItems": 0, "backoffLimit": 0},
    )
    operator: OperatorThread = start_operator()
    kube.create(JOBS, job)

    cluster = wait_for(lambda: kube.get(f"{CLUSTERS}/flow-ray"), what="the RayCluster")
    head_container = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    head = LocalRayHead(tmp_path, resolve_env(kube, head_container), num_cpus=2)
    try:
        kube.patch_status(f"{CLUSTERS}/flow-ray", {
            "state": "ready",
            "conditions": [{"type": "HeadPodReady", "status": "True",
                            "reason": "HeadPodRunningAndReady",
                            "lastTransitionTime": "2025-01-01T00:00:00Z"}],
        })
        engine_job = wait_for(
            lambda: next(iter((kube.get(BATCH_JOBS) or {}).get("items", [])), None),
            timeout=60, what="the engine Job",
        )
        job_path = f"{BATCH_JOBS}/{engine_job['metadata']['name']}"
        kube.patch_status(job_path, {"active": 1, "startTime": "2025-01-01T00:00:00Z"})
        started = time.monotonic()
        done = run_engine_job(kube, engine_job, tmp_path, head.address)
        print(f"\nengine ran {time.monotonic() - started:.1f} s, exit {done.returncode}")
        assert done.returncode == 0, done.stdout + done.stderr
        kube.patch_status(job_path, {"active": 0, "succeeded": 1,
                                     "conditions": [{"type": "Complete", "status": "True"}]})
    finally:
        head.stop()

    status = wait_for(
        lambda: (s := (kube.get(f"{JOBS}/flow") or {}).get("status", {})).get("phase")
        in ("Succeeded", "Failed") and s,
        timeout=60, what="the IngestionJob to finish",
    )
    assert status["phase"] == "Succeeded", status
    assert status["progress"]["trajectoriesWritten"] == EPISODES
    manifest = read_manifest(status["manifest"], StorageOptions.from_env())
    assert len(manifest.trajectories) == EPISODES
    store = open_store(f"s3://{bucket}/datasets/flow", StorageOptions.from_env())
    for record in manifest.trajectories:
        assert store.sha256(record.path) == record.sha256
    wait_for(lambda: kube.get(f"{CLUSTERS}/flow-ray") is None, what="the RayCluster deleted")
    assert operator.error is None
