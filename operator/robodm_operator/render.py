"""Pure renderers: a validated IngestionJob spec to the manifests of its children.

An IngestionJob owns three kinds of children, all named deterministically after it so that a
create that races or repeats finds its own object (HTTP 409) instead of making a second one:

* ``<job>-ray``: a KubeRay ``RayCluster``: one head (schedules no tasks) and one worker group
  of ``numWorkers`` pods, each sized from ``rayInitKwargs``;
* ``<job>-config``: an immutable ``ConfigMap`` holding the IngestionJob (apiVersion, kind,
  metadata.name/namespace, spec) as ``job.yaml``, mounted into the engine at
  ``/etc/robodm/job.yaml``;
* ``<job>-engine-<attempt>``: a ``batch/v1`` Job per attempt running
  ``robodm-engine run /etc/robodm/job.yaml`` as a Ray client of the cluster. One pod per Job
  (``backoffLimit: 0``): retries are new Jobs on the same RayCluster, so each attempt keeps its
  own logs until ``ttlSecondsAfterFinished``.

S3 credentials reach pods only through ``secretKeyRef``; no secret value is ever rendered.
Ownership (ownerReferences) is added by the handlers with ``kopf.adopt``; nothing here imports
kopf or talks to the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import yaml

from robodm_engine.jobspec import IngestionJobSpec, RayResources, Storage

API_GROUP: Final = "robodm.io"
API_VERSION: Final = "robodm.io/v1alpha1"
KIND: Final = "IngestionJob"

JOB_CONFIG_DIR: Final = "/etc/robodm"
JOB_CONFIG_KEY: Final = "job.yaml"
ENGINE_COMMAND: Final = ("robodm-engine", "run", f"{JOB_CONFIG_DIR}/{JOB_CONFIG_KEY}")
RAY_CLIENT_PORT: Final = 10001

LABEL_JOB: Final = "robodm.io/ingestionjob"
LABEL_ATTEMPT: Final = "robodm.io/attempt"

# The head only coordinates (num-cpus 0 keeps tasks off it), so it gets a fixed, modest size;
# the workers carry the user's rayInitKwargs.
HEAD_CPU: Final = "1"
HEAD_MEMORY: Final = "2Gi"
# The engine pod is a Ray client: it lists the source and submits tasks, the work runs on Ray.
ENGINE_CPU_REQUEST: Final = "250m"
ENGINE_MEMORY_REQUEST: Final = "512Mi"
ENGINE_MEMORY_LIMIT: Final = "2Gi"
# Ray's images run as uid 1000 ("ray"); the engine image is built on them.
RUN_AS_USER: Final = 1000

_POD_SECURITY_CONTEXT: Final[Mapping[str, Any]] = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS_USER,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def ray_cluster_name(job_name: str) -> str:
    """Name of the RayCluster of an IngestionJob."""
    return f"{job_name}-ray"


def head_service_name(job_name: str) -> str:
    """Name of the head Service KubeRay creates for the job's RayCluster."""
    return f"{ray_cluster_name(job_name)}-head-svc"


def ray_address(job_name: str, namespace: str) -> str:
    """The ``ray://`` address the engine connects to (Ray client on the head Service)."""
    return f"ray://{head_service_name(job_name)}.{namespace}.svc:{RAY_CLIENT_PORT}"


def engine_job_name(job_name: str, attempt: int) -> str:
    """Name of the engine Job of an attempt (1-based)."""
    return f"{job_name}-engine-{attempt}"


def config_map_name(job_name: str) -> str:
    """Name of the ConfigMap holding the job file the engine reads."""
    return f"{job_name}-config"


def labels(job_name: str, component: str) -> dict[str, str]:
    """Labels of every child: selectable by job, recognisable by tooling."""
    return {
        "app.kubernetes.io/name": "robodm-engine",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "robodm-operator",
        LABEL_JOB: job_name,
    }


def _container_security_context(*, read_only_root: bool) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
    }


def storage_env(storage: Storage) -> list[dict[str, Any]]:
    """S3 environment for every container that touches the data (engine, Ray head, workers).

    boto3, pyarrow and s3fs all read these names. Credentials are referenced, never copied.
    """
    env: list[dict[str, Any]] = []
    if storage.endpoint:
        env.append({"name": "AWS_ENDPOINT_URL", "value": storage.endpoint})
    if storage.region:
        env.append({"name": "AWS_REGION", "value": storage.region})
        env.append({"name": "AWS_DEFAULT_REGION", "value": storage.region})
    if storage.credentials_secret:
        for key, optional in (
            ("AWS_ACCESS_KEY_ID", False),
            ("AWS_SECRET_ACCESS_KEY", False),
            ("AWS_SESSION_TOKEN", True),
        ):
            ref: dict[str, Any] = {"name": storage.credentials_secret, "key": key}
            if optional:
                ref["optional"] = True
            env.append({"name": key, "valueFrom": {"secretKeyRef": ref}})
    return env


def _worker_resources(ray: RayResources) -> dict[str, dict[str, str]]:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if ray.num_cpus is not None:
        requests["cpu"] = limits["cpu"] = str(ray.num_cpus)
    if ray.memory is not None:
        # Ray's `memory` is heap for tasks; the object store is shared memory on top of it.
        total = ray.memory + (ray.object_store_memory or 0)
        requests["memory"] = limits["memory"] = str(total)
    if ray.num_gpus:
        # Extended resources are set in limits only; requests default to them.
        limits["nvidia.com/gpu"] = str(ray.num_gpus)
    resources: dict[str, dict[str, str]] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return resources


def _worker_start_params(ray: RayResources) -> dict[str, str]:
    # KubeRay passes rayStartParams to `ray start` as --key=value; values must be strings.
    params: dict[str, str] = {}
    if ray.num_cpus is not None:
        params["num-cpus"] = str(ray.num_cpus)
    if ray.num_gpus is not None:
        params["num-gpus"] = str(ray.num_gpus)
    if ray.memory is not None:
        params["memory"] = str(ray.memory)
    if ray.object_store_memory is not None:
        params["object-store-memory"] = str(ray.object_store_memory)
    return params


def _shm_volume(ray: RayResources) -> dict[str, Any]:
    # Docker's default /dev/shm is 64 MiB; Ray's object store lives there.
    empty_dir: dict[str, Any] = {"medium": "Memory"}
    if ray.object_store_memory is not None:
        empty_dir["sizeLimit"] = str(ray.object_store_memory)
    return {"name": "dshm", "emptyDir": empty_dir}


def _ray_pod_template(
    job_name: str,
    spec: IngestionJobSpec,
    *,
    container_name: str,
    resources: Mapping[str, Any],
    ports: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": container_name,
        "image": spec.image,
        "env": storage_env(spec.storage),
        "resources": dict(resources),
        "securityContext": _container_security_context(read_only_root=False),
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }
    if ports is not None:
        container["ports"] = ports
    return {
        "metadata": {"labels": labels(job_name, "ray")},
        "spec": {
            "securityContext": dict(_POD_SECURITY_CONTEXT),
            "containers": [container],
            "volumes": [_shm_volume(spec.ray)],
        },
    }


def render_ray_cluster(job_name: str, namespace: str, spec: IngestionJobSpec) -> dict[str, Any]:
    """The RayCluster (ray.io/v1) that runs the engine's tasks."""
    head_ports = [
        # KubeRay's head Service exposes exactly the ports declared on the head container.
        {"name": "gcs-server", "containerPort": 6379},
        {"name": "dashboard", "containerPort": 8265},
        {"name": "client", "containerPort": RAY_CLIENT_PORT},
    ]
    head_resources = {
        "requests": {"cpu": HEAD_CPU, "memory": HEAD_MEMORY},
        "limits": {"cpu": HEAD_CPU, "memory": HEAD_MEMORY},
    }
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {
            "name": ray_cluster_name(job_name),
            "namespace": namespace,
            "labels": labels(job_name, "ray"),
        },
        "spec": {
            "headGroupSpec": {
                "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
                "template": _ray_pod_template(
                    job_name,
                    spec,
                    container_name="ray-head",
                    resources=head_resources,
                    ports=head_ports,
                ),
            },
            "workerGroupSpecs": [
                {
                    "groupName": "workers",
                    "replicas": spec.num_workers,
                    "minReplicas": spec.num_workers,
                    "maxReplicas": spec.num_workers,
                    "rayStartParams": _worker_start_params(spec.ray),
                    "template": _ray_pod_template(
                        job_name,
                        spec,
                        container_name="ray-worker",
                        resources=_worker_resources(spec.ray),
                        ports=None,
                    ),
                }
            ],
        },
    }


def render_config_map(job_name: str, namespace: str, raw_spec: Mapping[str, Any]) -> dict[str, Any]:
    """The ConfigMap carrying the job file: the IngestionJob as the engine CLI reads it."""
    document = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": job_name, "namespace": namespace},
        "spec": dict(raw_spec),
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": config_map_name(job_name),
            "namespace": namespace,
            "labels": labels(job_name, "config"),
        },
        # The spec is immutable (CRD rule), so the file never changes: let kubelets skip watching.
        "immutable": True,
        "data": {JOB_CONFIG_KEY: yaml.safe_dump(document, sort_keys=False)},
    }


def render_engine_job(
    job_name: str,
    namespace: str,
    spec: IngestionJobSpec,
    *,
    attempt: int,
    active_deadline_seconds: int | None,
) -> dict[str, Any]:
    """The batch/v1 Job of one engine attempt.

    Args:
        job_name: the IngestionJob's name.
        namespace: the IngestionJob's namespace.
        spec: the validated spec.
        attempt: 1-based attempt number, part of the Job's name.
        active_deadline_seconds: what is left of the IngestionJob's deadline, so the Job stops
            on time even while the operator is down; ``None`` for no deadline.
    """
    job_labels = {**labels(job_name, "engine"), LABEL_ATTEMPT: str(attempt)}
    env = [
        {"name": "RAY_ADDRESS", "value": ray_address(job_name, namespace)},
        {"name": "ROBODM_ATTEMPT", "value": str(attempt)},
        # The root filesystem is read-only; Ray's client and Python caches write under HOME.
        {"name": "HOME", "value": "/tmp"},
        *storage_env(spec.storage),
    ]
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {
            "metadata": {"labels": job_labels},
            "spec": {
                "restartPolicy": "Never",
                "securityContext": dict(_POD_SECURITY_CONTEXT),
                "containers": [
                    {
                        "name": "engine",
                        "image": spec.image,
                        "command": list(ENGINE_COMMAND),
                        "env": env,
                        "resources": {
                            "requests": {
                                "cpu": ENGINE_CPU_REQUEST,
                                "memory": ENGINE_MEMORY_REQUEST,
                            },
                            "limits": {"memory": ENGINE_MEMORY_LIMIT},
                        },
                        "securityContext": _container_security_context(read_only_root=True),
                        "volumeMounts": [
                            {"name": "job-config", "mountPath": JOB_CONFIG_DIR, "readOnly": True},
                            {"name": "tmp", "mountPath": "/tmp"},
                        ],
                    }
                ],
                "volumes": [
                    {"name": "job-config", "configMap": {"name": config_map_name(job_name)}},
                    {"name": "tmp", "emptyDir": {}},
                ],
            },
        },
    }
    if spec.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = spec.ttl_seconds_after_finished
    if active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = max(1, active_deadline_seconds)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": engine_job_name(job_name, attempt),
            "namespace": namespace,
            "labels": job_labels,
        },
        "spec": job_spec,
    }
