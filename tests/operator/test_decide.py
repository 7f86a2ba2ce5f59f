"""Every transition of the pure reconciliation decision, without any server."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from conftest import make_spec
from robodm_operator import conditions as c
from robodm_operator.decide import (
    CreateEngineJob,
    CreateRayCluster,
    Decision,
    DeleteEngineJob,
    DeleteRayCluster,
    Observation,
    decide,
)
from robodm_operator.progress import Progress

from robodm_engine.jobspec import InvalidSpecError, parse_spec

T0 = datetime.datetime(2025, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)
READY_CLUSTER = {"status": {"conditions": [{"type": "HeadPodReady", "status": "True"}]}}
PENDING_CLUSTER: dict[str, Any] = {"status": {}}


def job_status(*, active: int = 0, outcome: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"active": active}
    if outcome == "Complete":
        status["conditions"] = [{"type": "Complete", "status": "True"}]
    elif outcome == "Failed":
        status["conditions"] = [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "x"}
        ]
    return {"status": status}


def observe(
    status: dict[str, Any] | None = None,
    *,
    cluster: dict[str, Any] | None = None,
    engine: dict[str, Any] | None = None,
    progress: Progress | None = None,
    now: datetime.datetime = T0,
    **spec_overrides: Any,
) -> Observation:
    raw = make_spec(**spec_overrides)
    try:
        spec, problems = parse_spec(raw, name="job", default_image=None), ()
    except InvalidSpecError as error:
        spec, problems = None, error.problems
    return Observation(
        name="job",
        generation=1,
        status=status or {},
        spec=spec,
        problems=problems,
        ray_cluster=cluster,
        engine_job=engine,
        progress=progress,
        now=now,
    )


def cond(decision: Decision, type_: str) -> dict[str, Any]:
    found = c.find_condition(decision.status["conditions"], type_)
    assert found is not None, f"no {type_} condition"
    return dict(found)


def test_new_job_creates_the_cluster_and_waits() -> None:
    decision = decide(observe())
    assert decision.actions == (CreateRayCluster(),)
    assert decision.status["phase"] == "Provisioning"
    assert decision.status["startTime"] == "2025-05-01T12:00:00Z"
    assert decision.status["rayClusterName"] == "job-ray"
    assert cond(decision, "Validated")["status"] == "True"
    assert cond(decision, "RayClusterReady")["reason"] == "RayClusterCreating"
    assert cond(decision, "EngineRunning")["reason"] == "WaitingForRayCluster"
    assert decision.status["observedGeneration"] == 1


def test_provisioning_cluster_reports_kuberay_trouble() -> None:
    first = decide(observe())
    cluster = {
        "status": {
            "conditions": [
                {"type": "ReplicaFailure", "status": "True", "message": "exceeded quota: cpu"}
            ]
        }
    }
    decision = decide(observe(first.status, cluster=cluster))
    assert decision.actions == ()
    ready = cond(decision, "RayClusterReady")
    assert ready["reason"] == "RayClusterProvisioning"
    assert "exceeded quota: cpu" in ready["message"]


@pytest.mark.parametrize(
    "cluster",
    [
        READY_CLUSTER,
        {"status": {"conditions": [{"type": "RayClusterProvisioned", "status": "True"}]}},
        {"status": {"state": "ready"}},
    ],
    ids=["HeadPodReady", "RayClusterProvisioned", "state-ready"],
)
def test_ready_cluster_starts_attempt_one(cluster: dict[str, Any]) -> None:
    first = decide(observe())
    decision = decide(observe(first.status, cluster=cluster))
    assert decision.actions == (CreateEngineJob(attempt=1, active_deadline_seconds=None),)
    assert decision.status["attempts"] == 1
    assert decision.status["engineJobName"] == "job-engine-1"
    assert cond(decision, "RayClusterReady")["status"] == "True"
    assert decision.status["phase"] == "Provisioning"


def running_status() -> dict[str, Any]:
    first = decide(observe())
    started = decide(observe(first.status, cluster=READY_CLUSTER))
    return decide(
        observe(started.status, cluster=READY_CLUSTER, engine=job_status(active=1))
    ).status


def test_active_engine_is_running_and_progress_is_mirrored() -> None:
    progress = Progress(
        state="running",
        items_total=200,
        items_done=50,
        items_failed=2,
        trajectories_written=1,
        bytes_written=10,
        updated_at=T0,
    )
    decision = decide(
        observe(
            running_status(), cluster=READY_CLUSTER, engine=job_status(active=1), progress=progress
        )
    )
    assert decision.actions == ()
    assert decision.status["phase"] == "Running"
    assert decision.status["progress"]["itemsDone"] == 50
    assert decision.status["progress"]["updatedAt"] == "2025-05-01T12:00:00Z"
    assert decision.status["progressSummary"] == "50/200"


def test_stale_progress_from_an_earlier_run_is_ignored() -> None:
    stale = Progress(
        state="succeeded",
        items_done=999,
        items_failed=0,
        trajectories_written=9,
        bytes_written=9,
        updated_at=T0 - datetime.timedelta(days=3),
    )
    decision = decide(
        observe(
            running_status(), cluster=READY_CLUSTER, engine=job_status(active=1), progress=stale
        )
    )
    assert "progress" not in decision.status


def test_success_records_the_manifest_and_releases_the_cluster() -> None:
    decision = decide(
        observe(running_status(), cluster=READY_CLUSTER, engine=job_status(outcome="Complete"))
    )
    assert decision.actions == (DeleteRayCluster(),)
    assert decision.terminal
    assert decision.status["phase"] == "Succeeded"
    assert decision.status["manifest"] == "s3://datasets/philips-v1/manifest.json"
    assert decision.status["completionTime"] == "2025-05-01T12:00:00Z"
    assert cond(decision, "RayClusterReady")["reason"] == "RayClusterReleased"
    assert c.find_condition(decision.status["conditions"], "Failed") is None


def test_failed_attempt_is_retried_on_the_same_cluster() -> None:
    decision = decide(
        observe(running_status(), cluster=READY_CLUSTER, engine=job_status(outcome="Failed"))
    )
    assert decision.actions == (CreateEngineJob(attempt=2, active_deadline_seconds=None),)
    assert decision.status["attempts"] == 2
    assert decision.status["failedAttempts"] == 1
    assert cond(decision, "EngineRunning")["reason"] == "EngineJobRetrying"
    assert "starting attempt 2 of 3" in cond(decision, "EngineRunning")["message"]


def test_retry_waits_for_a_cluster_that_is_not_ready() -> None:
    decision = decide(
        observe(running_status(), cluster=PENDING_CLUSTER, engine=job_status(outcome="Failed"))
    )
    assert decision.actions == ()
    assert cond(decision, "EngineRunning")["reason"] == "EngineJobRetrying"
    assert decision.status["failedAttempts"] == 1


def test_last_failure_within_backoff_limit_fails_the_job() -> None:
    status = {**running_status(), "attempts": 3}
    decision = decide(observe(status, cluster=READY_CLUSTER, engine=job_status(outcome="Failed")))
    assert decision.actions == (DeleteRayCluster(),)
    failed = cond(decision, "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert "backoffLimit 2 reached after 3 attempt(s)" in failed["message"]
    assert decision.status["failedAttempts"] == 3
    assert decision.status["phase"] == "Failed"


def test_engine_failure_message_includes_the_engines_reason() -> None:
    progress = Progress(
        state="failed",
        items_done=3,
        items_failed=5,
        trajectories_written=0,
        bytes_written=0,
        updated_at=T0,
        message="maxFailedItems exceeded",
    )
    decision = decide(
        observe(
            running_status(),
            cluster=READY_CLUSTER,
            engine=job_status(outcome="Failed"),
            progress=progress,
            failurePolicy={"backoffLimit": 0},
        )
    )
    assert "maxFailedItems exceeded" in cond(decision, "Failed")["message"]


def test_vanished_engine_job_counts_as_a_failed_attempt() -> None:
    decision = decide(observe(running_status(), cluster=READY_CLUSTER, engine=None))
    assert decision.actions == (CreateEngineJob(attempt=2, active_deadline_seconds=None),)
    assert "disappeared" in cond(decision, "EngineRunning")["message"]


def test_deadline_stops_the_engine_and_fails() -> None:
    status = running_status()
    later = T0 + datetime.timedelta(seconds=61)
    decision = decide(
        observe(
            status,
            cluster=READY_CLUSTER,
            engine=job_status(active=1),
            now=later,
            activeDeadlineSeconds=60,
        )
    )
    assert set(decision.actions) == {DeleteEngineJob(1), DeleteRayCluster()}
    assert cond(decision, "Failed")["reason"] == "DeadlineExceeded"
    assert decision.status["phase"] == "Failed"


def test_engine_job_gets_the_rest_of_the_deadline() -> None:
    first = decide(observe(activeDeadlineSeconds=600))
    later = T0 + datetime.timedelta(seconds=100.5)
    decision = decide(
        observe(first.status, cluster=READY_CLUSTER, now=later, activeDeadlineSeconds=600)
    )
    assert decision.actions == (CreateEngineJob(attempt=1, active_deadline_seconds=500),)


def test_invalid_spec_fails_with_every_problem() -> None:
    decision = decide(observe(groupSize=0, output={"uri": "s3://raw/philips/sub/"}))
    assert decision.actions == ()
    validated = cond(decision, "Validated")
    assert validated["status"] == "False"
    assert "spec.groupSize: must be at least 1" in validated["message"]
    assert "spec.output.uri" in validated["message"]
    assert cond(decision, "Failed")["reason"] == "InvalidSpec"
    assert decision.status["phase"] == "Failed"


def test_finished_job_only_makes_sure_the_cluster_is_gone() -> None:
    done = decide(
        observe(running_status(), cluster=READY_CLUSTER, engine=job_status(outcome="Complete"))
    )
    again = decide(observe(done.status, cluster=READY_CLUSTER))
    assert again.actions == (DeleteRayCluster(),)
    assert again.status == done.status
    assert decide(observe(done.status, cluster=None)).actions == ()


def test_decisions_are_idempotent_across_restarts() -> None:
    """Same observation, same decision: a restarted operator repeats what the first did."""
    status = running_status()
    later = T0 + datetime.timedelta(seconds=30)
    obs = observe(status, cluster=READY_CLUSTER, engine=job_status(active=1), now=later)
    first, second = decide(obs), decide(obs)
    assert first == second
    # And re-deciding on the status it produced changes nothing, not even timestamps.
    again = decide(
        observe(first.status, cluster=READY_CLUSTER, engine=job_status(active=1), now=later)
    )
    assert again.status == first.status
    assert again.actions == ()


def test_lost_status_update_recreates_the_same_attempt_name() -> None:
    """If the status write after creating attempt 1 was lost, the retry targets the same name."""
    first = decide(observe())
    started = decide(observe(first.status, cluster=READY_CLUSTER))
    replay = decide(observe(first.status, cluster=READY_CLUSTER))
    assert started.actions == replay.actions == (CreateEngineJob(1, None),)
