"""kopf handlers for IngestionJobs: thin glue between the API and :func:`decide.decide`.

One reconciliation (:func:`reconcile`) reads the IngestionJob afresh, observes its children and
the engine's progress, asks the pure :func:`~robodm_operator.decide.decide` what to do, executes
the actions and writes the status. It runs:

* on create and on resume (operator restart), so the RayCluster is requested at once and a job
  with an invalid spec fails with a ``kopf.PermanentError`` (an Event says why);
* from a timer every ``poll_interval`` seconds while the job is not finished, to follow the
  cluster, the engine Job, the progress file and the deadline;
* serialised per object by a lock, because kopf runs create handlers and timers concurrently.

Deletion is guarded by the ``robodm.io/finalizer`` finalizer: the RayCluster and the engine Jobs
(with their pods) are deleted explicitly; the ConfigMap goes with the owner's garbage
collection. Handlers are registered on a registry built from an :class:`OperatorConfig`, not at
import time, so the poll interval and image come from configuration and tests get their own.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Mapping
from typing import Any, Final, cast

import kopf

from robodm_engine.jobspec import IngestionJobSpec, InvalidSpecError, SpecProblem, parse_spec
from robodm_operator import conditions as c
from robodm_operator import render
from robodm_operator.config import OperatorConfig
from robodm_operator.decide import (
    Action,
    CreateEngineJob,
    CreateRayCluster,
    Decision,
    DeleteEngineJob,
    DeleteRayCluster,
    Observation,
    decide,
)
from robodm_operator.kube import ApiError, KubeApi, load_api_client
from robodm_operator.progress import Progress, ProgressError, read_progress

RESOURCE: Final = ("robodm.io", "v1alpha1", "ingestionjobs")
FINALIZER: Final = "robodm.io/finalizer"
# Retry delay after an API error (a kopf.TemporaryError): long enough not to hammer a
# struggling API server, short enough to stay responsive.
API_RETRY_DELAY: Final = 5.0


def build_settings(settings: kopf.OperatorSettings) -> None:
    """Adjust kopf's settings in place for this operator."""
    settings.persistence.finalizer = FINALIZER
    # Handler bookkeeping goes to annotations so that the status schema can stay strict.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="robodm.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="robodm.io", key="last-handled-configuration"
    )
    # The CRD ships with the chart, so there is nothing to discover at runtime; not scanning
    # spares the operator list/watch rights on CRDs and namespaces.
    settings.scanning.disabled = True
    # One replica (Deployment strategy Recreate) needs no peering objects or rights.
    settings.peering.standalone = True
    # Only warnings and errors become Kubernetes Events; progress is in the status.
    settings.posting.level = logging.WARNING
    # A deletion that arrives while a poll runs in a worker thread waits for the timer to exit,
    # and kopf re-checks only every `cancellation_polling` (60 s by default). A poll takes well
    # under a second: wait briefly for it and re-check often, so deletions are not held up.
    settings.background.instant_exit_timeout = 0.5
    settings.background.cancellation_polling = 2.0


def _connection_info(config: OperatorConfig) -> kopf.ConnectionInfo:
    """kopf's credentials, from the same source as the handlers' own API client."""
    configuration = load_api_client(config.kubeconfig).configuration
    header = configuration.get_api_key_with_prefix(
        "BearerToken"
    ) or configuration.get_api_key_with_prefix("authorization")
    scheme, _, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


def _observe(
    api: KubeApi, config: OperatorConfig, body: Mapping[str, Any], logger: logging.Logger
) -> Observation:
    metadata = body["metadata"]
    name, namespace = metadata["name"], metadata["namespace"]
    status: Mapping[str, Any] = body.get("status") or {}
    spec: IngestionJobSpec | None = None
    problems: tuple[SpecProblem, ...] = ()
    try:
        spec = parse_spec(body.get("spec") or {}, name=name, default_image=config.engine_image)
    except InvalidSpecError as error:
        problems = error.problems

    ray_cluster = api.get(api.ray_cluster_path(namespace, render.ray_cluster_name(name)))
    engine_job = None
    progress: Progress | None = None
    attempts = int(status.get("attempts") or 0)
    if spec is not None and attempts > 0 and not c.is_terminal(status):
        engine_job = api.get(api.job_path(namespace, render.engine_job_name(name, attempts)))
        try:
            access = api.s3_access(namespace, spec.storage) if spec.uses_s3 else None
            progress = read_progress(spec.output.uri, access)
        except (ProgressError, ApiError) as error:
            # Progress is informative only; the engine Job decides the outcome.
            logger.warning("Cannot read the engine's progress: %s", error)
    return Observation(
        name=name,
        generation=metadata.get("generation"),
        status=status,
        spec=spec,
        problems=problems,
        ray_cluster=ray_cluster,
        engine_job=engine_job,
        progress=progress,
        now=datetime.datetime.now(datetime.UTC),
    )


def _execute(
    api: KubeApi, body: Mapping[str, Any], spec: IngestionJobSpec | None, action: Action
) -> None:
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    owner = cast(kopf.Body, body)
    match action:
        case CreateRayCluster():
            assert spec is not None  # decide() creates children only for a valid spec
            cluster = render.render_ray_cluster(name, namespace, spec)
            kopf.adopt(cluster, owner=owner)
            api.create(cluster)
        case CreateEngineJob(attempt=attempt, active_deadline_seconds=deadline):
            assert spec is not None
            config_map = render.render_config_map(name, namespace, body.get("spec") or {})
            job = render.render_engine_job(
                name, namespace, spec, attempt=attempt, active_deadline_seconds=deadline
            )
            kopf.adopt([config_map, job], owner=owner)
            api.create(config_map)
            api.create(job)
        case DeleteRayCluster():
            api.delete(api.ray_cluster_path(namespace, render.ray_cluster_name(name)))
        case DeleteEngineJob(attempt=attempt):
            api.delete(api.job_path(namespace, render.engine_job_name(name, attempt)))


def reconcile(
    api: KubeApi, config: OperatorConfig, namespace: str, name: str, logger: logging.Logger
) -> Decision | None:
    """Observe, decide, act, record. Returns the decision, or ``None`` if there is no job.

    Actions run before the status is written: if an action fails, the status still describes
    the previous state and the next reconciliation repeats the (idempotent) decision.
    """
    body = api.get(api.ingestion_job_path(namespace, name))
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    observation = _observe(api, config, body, logger)
    decision = decide(observation)
    for action in decision.actions:
        _execute(api, body, observation.spec, action)
    old_status = body.get("status") or {}
    if decision.status != old_status:
        api.patch_status(namespace, name, decision.status)
        old_phase, new_phase = old_status.get("phase"), decision.status["phase"]
        if old_phase != new_phase:
            logger.info("Phase %s -> %s", old_phase or "(new)", new_phase)
    return decision


def _lock(memo: kopf.Memo) -> threading.Lock:
    # kopf keeps one memo per object for its lifetime; setdefault is atomic under the GIL.
    return cast(threading.Lock, memo.setdefault("reconcile_lock", threading.Lock()))


def _is_active(status: Mapping[str, Any], **_: Any) -> bool:
    return not c.is_terminal(status)


def build_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    """A kopf registry with the IngestionJob handlers, configured by ``config``."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return _connection_info(config)

    @kopf.on.startup(registry=registry)
    def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        build_settings(settings)
        memo["api"] = KubeApi(load_api_client(config.kubeconfig))

    @kopf.on.resume(*RESOURCE, registry=registry)
    @kopf.on.create(*RESOURCE, registry=registry)
    def start(name: str, namespace: str, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
        try:
            with _lock(memo):
                decision = reconcile(memo["api"], config, namespace, name, logger)
        except ApiError as error:
            raise kopf.TemporaryError(str(error), delay=API_RETRY_DELAY) from error
        if decision is not None:
            failed = c.find_condition(decision.status["conditions"], c.FAILED)
            if failed is not None and failed.get("reason") == c.INVALID_SPEC:
                raise kopf.PermanentError(f"invalid spec: {failed['message']}")

    @kopf.timer(*RESOURCE, registry=registry, interval=config.poll_interval, when=_is_active)
    def poll(name: str, namespace: str, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
        try:
            with _lock(memo):
                reconcile(memo["api"], config, namespace, name, logger)
        except ApiError as error:
            raise kopf.TemporaryError(str(error), delay=API_RETRY_DELAY) from error

    @kopf.on.delete(*RESOURCE, registry=registry)
    def cleanup(
        name: str,
        namespace: str,
        status: Mapping[str, Any],
        memo: kopf.Memo,
        logger: logging.Logger,
        **_: Any,
    ) -> None:
        api: KubeApi = memo["api"]
        try:
            with _lock(memo):
                api.delete(api.ray_cluster_path(namespace, render.ray_cluster_name(name)))
                # One more than recorded: an attempt may have been created just before a crash
                # that lost its status update.
                for attempt in range(1, int(status.get("attempts") or 0) + 2):
                    api.delete(api.job_path(namespace, render.engine_job_name(name, attempt)))
        except ApiError as error:
            raise kopf.TemporaryError(str(error), delay=API_RETRY_DELAY) from error
        logger.info("Deleted the RayCluster and the engine Jobs")

    return registry
