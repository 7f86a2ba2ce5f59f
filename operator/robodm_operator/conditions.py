"""Condition types, reasons and phases of an IngestionJob, and pure helpers to update them.

Conditions are the source of truth of ``status``; ``phase`` is only a summary derived from them
by :func:`phase_of` (as KubeRay and batch/v1 Job do). ``Complete`` and ``Failed`` are mutually
exclusive and terminal, like a batch Job's. Every helper here is pure: callers pass ``now`` and
get new lists back, so :mod:`robodm_operator.decide` stays testable without a clock.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

ConditionStatus = Literal["True", "False", "Unknown"]
Condition = dict[str, Any]

# Condition types.
VALIDATED: Final = "Validated"
RAY_CLUSTER_READY: Final = "RayClusterReady"
ENGINE_RUNNING: Final = "EngineRunning"
COMPLETE: Final = "Complete"
FAILED: Final = "Failed"

# Reasons (CamelCase, machine-readable; the message says it for people).
SPEC_VALID: Final = "SpecValid"
INVALID_SPEC: Final = "InvalidSpec"
RAY_CLUSTER_CREATING: Final = "RayClusterCreating"
RAY_CLUSTER_PROVISIONING: Final = "RayClusterProvisioning"
RAY_CLUSTER_HEAD_READY: Final = "HeadPodReady"
RAY_CLUSTER_RELEASED: Final = "RayClusterReleased"
WAITING_FOR_RAY_CLUSTER: Final = "WaitingForRayCluster"
ENGINE_JOB_PENDING: Final = "EngineJobPending"
ENGINE_JOB_ACTIVE: Final = "EngineJobActive"
ENGINE_JOB_RETRYING: Final = "EngineJobRetrying"
ENGINE_JOB_SUCCEEDED: Final = "EngineJobSucceeded"
ENGINE_JOB_FAILED: Final = "EngineJobFailed"
ENGINE_STOPPED: Final = "EngineStopped"
BACKOFF_LIMIT_EXCEEDED: Final = "BackoffLimitExceeded"
DEADLINE_EXCEEDED: Final = "DeadlineExceeded"

# Phases, derived from the conditions.
PENDING: Final = "Pending"
PROVISIONING: Final = "Provisioning"
RUNNING: Final = "Running"
SUCCEEDED: Final = "Succeeded"
FAILED_PHASE: Final = "Failed"
TERMINAL_PHASES: Final = frozenset({SUCCEEDED, FAILED_PHASE})


def format_time(moment: datetime.datetime) -> str:
    """Render an aware datetime as Kubernetes does: RFC 3339, UTC, whole seconds, ``Z``."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime.datetime:
    """Parse an RFC 3339 timestamp (``Z`` or an offset; naive values are taken as UTC)."""
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def find_condition(conditions: Sequence[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    """Return the condition of the given type, or ``None``."""
    for condition in conditions:
        if condition.get("type") == type_:
            return condition
    return None


def is_true(conditions: Sequence[Mapping[str, Any]], type_: str) -> bool:
    """Whether the condition of the given type exists and has status ``"True"``."""
    condition = find_condition(conditions, type_)
    return condition is not None and condition.get("status") == "True"


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime.datetime,
) -> list[Condition]:
    """Return a copy of ``conditions`` with the condition ``type_`` set, keyed by type.

    ``lastTransitionTime`` moves only when ``status`` changes, as with
    ``meta.SetStatusCondition``; reason, message and observedGeneration are always refreshed.
    The position of an existing condition is kept so that patches stay small and stable.
    """
    new: Condition = {"type": type_, "status": status, "reason": reason, "message": message}
    if generation is not None:
        new["observedGeneration"] = generation
    result: list[Condition] = []
    replaced = False
    for condition in conditions:
        if condition.get("type") != type_:
            result.append(dict(condition))
            continue
        same_status = condition.get("status") == status and "lastTransitionTime" in condition
        new["lastTransitionTime"] = (
            condition["lastTransitionTime"] if same_status else format_time(now)
        )
        result.append(new)
        replaced = True
    if not replaced:
        new["lastTransitionTime"] = format_time(now)
        result.append(new)
    return result


def phase_of(conditions: Sequence[Mapping[str, Any]]) -> str:
    """Derive the phase from the conditions (terminal conditions win)."""
    if is_true(conditions, FAILED):
        return FAILED_PHASE
    if is_true(conditions, COMPLETE):
        return SUCCEEDED
    if is_true(conditions, ENGINE_RUNNING):
        return RUNNING
    if is_true(conditions, VALIDATED):
        return PROVISIONING
    return PENDING


def is_terminal(status: Mapping[str, Any] | None) -> bool:
    """Whether a status records a finished job (Complete or Failed is True)."""
    conditions = (status or {}).get("conditions") or []
    return is_true(conditions, COMPLETE) or is_true(conditions, FAILED)
