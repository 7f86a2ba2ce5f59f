"""The reconciliation decision: what was observed → the next status and the actions to take.

:func:`decide` is a pure function of an :class:`Observation` (the IngestionJob's spec and
status, its RayCluster and current engine Job as read from the API, the engine's progress and
the time). It returns the complete next ``status`` and a list of idempotent actions. All the
state lives in the API objects, none in the operator's memory, so the same observation after an
operator restart yields the same decision, and running a decision twice is harmless: children
have deterministic names (creates answer 409) and deletes of absent objects answer 404.

The life of a job::

    (new) ── invalid spec ─────────────────────────────────────────────▶ Failed/InvalidSpec
      │ create RayCluster
      ▼
    Provisioning ── cluster ready: create engine Job attempt 1 ──▶ Running
                                                                     │ Job Complete
                 ◀── Job failed, attempts ≤ backoffLimit: new Job ───┤────────────▶ Succeeded
                                       Job failed, no attempts left ─┴────────────▶ Failed
    any non-terminal state ── activeDeadlineSeconds passed ───────────▶ Failed/DeadlineExceeded

Every terminal decision deletes the RayCluster; engine Jobs stay until their TTL.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from robodm_engine.jobspec import IngestionJobSpec, SpecProblem
from robodm_operator import conditions as c
from robodm_operator.progress import Progress, manifest_uri
from robodm_operator.render import engine_job_name, ray_cluster_name

# Progress files written this long before the job started are a previous run's leftovers.
# The slack absorbs clock skew between the engine's pod and the operator.
STALE_PROGRESS_SLACK = datetime.timedelta(seconds=60)

EngineState = Literal["pending", "active", "succeeded", "failed"]


@dataclasses.dataclass(frozen=True)
class CreateRayCluster:
    """Create the job's RayCluster (409 means it already exists)."""


@dataclasses.dataclass(frozen=True)
class CreateEngineJob:
    """Create the ConfigMap and the engine Job of ``attempt`` (409 means they exist)."""

    attempt: int
    active_deadline_seconds: int | None


@dataclasses.dataclass(frozen=True)
class DeleteRayCluster:
    """Delete the job's RayCluster (404 means it is already gone)."""


@dataclasses.dataclass(frozen=True)
class DeleteEngineJob:
    """Stop the engine Job of ``attempt`` and its pod (404 means it is already gone)."""

    attempt: int


Action = CreateRayCluster | CreateEngineJob | DeleteRayCluster | DeleteEngineJob


@dataclasses.dataclass(frozen=True)
class Observation:
    """Everything :func:`decide` may look at, as read in one reconciliation.

    Attributes:
        name: the IngestionJob's name.
        generation: its ``metadata.generation`` (``None`` if the server sets none).
        status: its current ``status`` (empty for a new job).
        spec: the validated spec, or ``None`` when ``problems`` is not empty.
        problems: every reason the spec cannot run.
        ray_cluster: the RayCluster object, or ``None`` if it does not exist.
        engine_job: the engine Job of the current attempt (``status.attempts``), or ``None``.
        progress: the engine's latest progress, or ``None`` if there is none yet.
        now: the time of the observation (aware).
    """

    name: str
    generation: int | None
    status: Mapping[str, Any]
    spec: IngestionJobSpec | None
    problems: tuple[SpecProblem, ...]
    ray_cluster: Mapping[str, Any] | None
    engine_job: Mapping[str, Any] | None
    progress: Progress | None
    now: datetime.datetime


@dataclasses.dataclass(frozen=True)
class Decision:
    """The complete next status and the actions that bring the children in line with it."""

    status: dict[str, Any]
    actions: tuple[Action, ...] = ()

    @property
    def terminal(self) -> bool:
        """Whether the job has finished (Complete or Failed)."""
        return c.is_terminal(self.status)


def ray_cluster_ready(cluster: Mapping[str, Any]) -> bool:
    """Whether KubeRay reports the cluster usable.

    Accepts the conditions (``HeadPodReady``/``RayClusterProvisioned``, KubeRay ≥ 1.3) and the
    deprecated ``state: ready`` of older KubeRay versions.
    """
    status = cluster.get("status") or {}
    conds = status.get("conditions") or []
    return (
        c.is_true(conds, "HeadPodReady")
        or c.is_true(conds, "RayClusterProvisioned")
        or status.get("state") == "ready"
    )


def ray_cluster_trouble(cluster: Mapping[str, Any]) -> str | None:
    """KubeRay's explanation of why pods cannot be created (``ReplicaFailure``), if any."""
    conds = (cluster.get("status") or {}).get("conditions") or []
    failure = c.find_condition(conds, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return str(failure.get("message") or failure.get("reason") or "ReplicaFailure")
    return None


def engine_state(job: Mapping[str, Any]) -> tuple[EngineState, str]:
    """The state of a batch/v1 Job from its conditions and counters, with an explanation."""
    status = job.get("status") or {}
    conds: Sequence[Mapping[str, Any]] = status.get("conditions") or []
    failed = c.find_condition(conds, "Failed")
    if failed is not None and failed.get("status") == "True":
        reason = failed.get("reason") or "Failed"
        message = failed.get("message") or ""
        return "failed", f"{reason}: {message}" if message else str(reason)
    if c.is_true(conds, "Complete"):
        return "succeeded", "completed"
    if (status.get("active") or 0) > 0:
        return "active", "running"
    return "pending", "waiting for the engine pod to start"


def _start_time(status: Mapping[str, Any], now: datetime.datetime) -> datetime.datetime:
    text = status.get("startTime")
    return c.parse_time(text) if text else now


def _fresh(progress: Progress | None, start: datetime.datetime) -> Progress | None:
    if progress is None or progress.updated_at is None:
        return progress
    return progress if progress.updated_at >= start - STALE_PROGRESS_SLACK else None


class _Builder:
    """Accumulates the next status and actions during one decision."""

    def __init__(self, obs: Observation) -> None:
        self.obs = obs
        self.status: dict[str, Any] = dict(obs.status)
        self.conditions: list[c.Condition] = [dict(x) for x in obs.status.get("conditions") or []]
        self.actions: list[Action] = []

    def condition(self, type_: str, status: c.ConditionStatus, reason: str, message: str) -> None:
        self.conditions = c.set_condition(
            self.conditions,
            type_,
            status,
            reason,
            message,
            generation=self.obs.generation,
            now=self.obs.now,
        )

    def mirror(self, progress: Progress | None) -> None:
        if progress is not None:
            self.status["progress"] = progress.to_status()
            self.status["progressSummary"] = progress.summary()

    def release_cluster(self, message: str) -> None:
        if self.obs.ray_cluster is not None:
            self.actions.append(DeleteRayCluster())
        self.condition(c.RAY_CLUSTER_READY, "False", c.RAY_CLUSTER_RELEASED, message)

    def finish(self, *, succeeded: bool, reason: str, message: str) -> None:
        if succeeded:
            self.condition(c.COMPLETE, "True", reason, message)
        else:
            self.condition(c.FAILED, "True", reason, message)
        self.status.setdefault("completionTime", c.format_time(self.obs.now))
        self.release_cluster("deleted because the job finished")

    def build(self) -> Decision:
        self.status["conditions"] = self.conditions
        self.status["phase"] = c.phase_of(self.conditions)
        if self.obs.generation is not None:
            self.status["observedGeneration"] = self.obs.generation
        return Decision(status=self.status, actions=tuple(self.actions))


def decide(obs: Observation) -> Decision:
    """Decide the next status and actions for one IngestionJob. Pure and idempotent."""
    out = _Builder(obs)

    if c.is_terminal(obs.status):
        # Finished earlier; only make sure the cluster is gone (a delete may have been lost).
        if obs.ray_cluster is not None:
            out.actions.append(DeleteRayCluster())
        return out.build()

    out.status.setdefault("startTime", c.format_time(obs.now))
    if obs.spec is None:
        message = "; ".join(str(problem) for problem in obs.problems) or "invalid spec"
        out.condition(c.VALIDATED, "False", c.INVALID_SPEC, message)
        out.finish(succeeded=False, reason=c.INVALID_SPEC, message=message)
        return out.build()
    spec = obs.spec
    out.condition(c.VALIDATED, "True", c.SPEC_VALID, "the spec is valid")
    out.status["rayClusterName"] = ray_cluster_name(obs.name)

    start = _start_time(out.status, obs.now)
    attempts = int(obs.status.get("attempts") or 0)
    progress = _fresh(obs.progress, start)
    out.mirror(progress)

    state: EngineState | None = None
    explanation = ""
    if attempts > 0:
        if obs.engine_job is None:
            # Deleted by someone while it ran: count it as a failed attempt.
            state = "failed"
            explanation = f"engine Job {engine_job_name(obs.name, attempts)} disappeared"
        else:
            state, explanation = engine_state(obs.engine_job)
        if state == "failed" and progress is not None and progress.state == "failed":
            explanation = f"{explanation} (engine: {progress.message})"
    out.status["failedAttempts"] = max(0, attempts - 1) + (1 if state == "failed" else 0)

    if state == "succeeded":
        manifest = (progress.manifest if progress else None) or manifest_uri(spec.output.uri)
        out.status["manifest"] = manifest
        message = f"attempt {attempts} succeeded; manifest at {manifest}"
        out.condition(c.ENGINE_RUNNING, "False", c.ENGINE_JOB_SUCCEEDED, message)
        out.finish(succeeded=True, reason=c.ENGINE_JOB_SUCCEEDED, message=message)
        return out.build()

    deadline = spec.active_deadline_seconds
    remaining: int | None = None
    if deadline is not None:
        left = (start + datetime.timedelta(seconds=deadline) - obs.now).total_seconds()
        remaining = math.ceil(left)
        if left <= 0:
            message = f"the job ran longer than activeDeadlineSeconds={deadline}"
            if state in {"active", "pending"}:
                out.actions.append(DeleteEngineJob(attempts))
            out.condition(c.ENGINE_RUNNING, "False", c.ENGINE_STOPPED, message)
            out.finish(succeeded=False, reason=c.DEADLINE_EXCEEDED, message=message)
            return out.build()

    retries_left = spec.failure_policy.backoff_limit - out.status["failedAttempts"]
    if state == "failed" and retries_left < 0:
        message = (
            f"attempt {attempts} failed ({explanation}); backoffLimit "
            f"{spec.failure_policy.backoff_limit} reached after {attempts} attempt(s)"
        )
        out.condition(c.ENGINE_RUNNING, "False", c.ENGINE_JOB_FAILED, message)
        out.finish(succeeded=False, reason=c.BACKOFF_LIMIT_EXCEEDED, message=message)
        return out.build()

    cluster = obs.ray_cluster
    ready = cluster is not None and ray_cluster_ready(cluster)
    if cluster is None:
        out.actions.append(CreateRayCluster())
        out.condition(
            c.RAY_CLUSTER_READY, "False", c.RAY_CLUSTER_CREATING, "creating the RayCluster"
        )
    elif ready:
        out.condition(c.RAY_CLUSTER_READY, "True", c.RAY_CLUSTER_HEAD_READY, "Ray head is ready")
    else:
        trouble = ray_cluster_trouble(cluster)
        out.condition(
            c.RAY_CLUSTER_READY,
            "False",
            c.RAY_CLUSTER_PROVISIONING,
            f"waiting for the Ray head: {trouble}" if trouble else "waiting for the Ray head",
        )

    if state in {"active", "pending"}:
        if state == "active":
            out.condition(
                c.ENGINE_RUNNING, "True", c.ENGINE_JOB_ACTIVE, f"attempt {attempts} is running"
            )
        else:
            message = f"attempt {attempts}: {explanation}"
            out.condition(c.ENGINE_RUNNING, "False", c.ENGINE_JOB_PENDING, message)
        return out.build()

    # No attempt yet, or the last one failed with retries left: start the next one on a ready
    # cluster (the same cluster: retries never rebuild it).
    if not ready:
        reason = c.ENGINE_JOB_RETRYING if state == "failed" else c.WAITING_FOR_RAY_CLUSTER
        prefix = f"attempt {attempts} failed ({explanation}); " if state == "failed" else ""
        out.condition(
            c.ENGINE_RUNNING, "False", reason, f"{prefix}waiting for the RayCluster to be ready"
        )
        return out.build()
    attempt = attempts + 1
    out.actions.append(CreateEngineJob(attempt, remaining))
    out.status["attempts"] = attempt
    out.status["engineJobName"] = engine_job_name(obs.name, attempt)
    if state == "failed":
        message = (
            f"attempt {attempts} failed ({explanation}); starting attempt {attempt} of "
            f"{spec.failure_policy.backoff_limit + 1}"
        )
        out.condition(c.ENGINE_RUNNING, "False", c.ENGINE_JOB_RETRYING, message)
    else:
        out.condition(
            c.ENGINE_RUNNING, "False", c.ENGINE_JOB_PENDING, f"starting attempt {attempt}"
        )
    return out.build()
