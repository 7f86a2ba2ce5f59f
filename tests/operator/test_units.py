"""Unit tests of the pure pieces: spec validation, rendering, conditions, progress, config."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import make_spec
from robodm_operator import conditions as c
from robodm_operator import render
from robodm_operator.config import ConfigError, OperatorConfig
from robodm_operator.progress import ProgressError, parse_progress, read_progress

from robodm_engine.jobspec import InvalidSpecError, parse_spec

T0 = datetime.datetime(2025, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)


def problems(raw: dict[str, Any], name: str = "job", image: str | None = None) -> list[str]:
    with pytest.raises(InvalidSpecError) as caught:
        parse_spec(raw, name=name, default_image=image)
    return [str(p) for p in caught.value.problems]


# ------------------------------------------------------------------------------------ spec


def test_minimal_spec_gets_the_crd_defaults() -> None:
    spec = parse_spec(
        {"source": {"uri": "s3://raw/a/"}, "output": {"uri": "s3://out/a/"}},
        name="job",
        default_image="engine:1",
    )
    assert spec.image == "engine:1"
    assert (spec.group_size, spec.num_workers) == (1, 4)
    assert spec.source.format == "files"
    assert spec.encoding.time_unit == "ms"
    assert spec.failure_policy.backoff_limit == 2


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"groupSize": 0}, "spec.groupSize: must be at least 1, got 0"),
        ({"numWorkers": "8"}, "spec.numWorkers: must be an integer, got '8'"),
        ({"maxItems": True}, "spec.maxItems: must be an integer, got True"),
        ({"encoding": {"timeUnit": "h"}}, "spec.encoding.timeUnit: must be one of ns, us, ms, s"),
        ({"source": {"uri": "gs://b/x"}}, "spec.source.uri: unsupported scheme 'gs'"),
        ({"source": {"uri": "data/raw"}}, "spec.source.uri: 'data/raw' is a relative local path"),
        (
            {"output": {"uri": "s3://raw/philips/x"}},
            "spec.output.uri: 's3://raw/philips/x' overlaps",
        ),
        ({"source": {"uri": "s3://r/", "format": "custom"}}, "spec.source.ingester: is required"),
        (
            {"source": {"uri": "s3://r/", "ingester": "m:C"}},
            "spec.source.ingester: is only used with format 'custom'",
        ),
        ({"rayInitKwargs": {"num_cpu": 1}}, "spec.rayInitKwargs.num_cpu: is not supported"),
        (
            {"failurePolicy": {"backoffLimit": 21}},
            "spec.failurePolicy.backoffLimit: must be at most",
        ),
    ],
)
def test_spec_problems_name_their_path(overrides: dict[str, Any], expected: str) -> None:
    found = problems(make_spec(**overrides))
    assert any(p.startswith(expected) for p in found), found


def test_storage_without_s3_is_rejected() -> None:
    raw = make_spec(source={"uri": "/data/raw"}, output={"uri": "/data/out"})
    assert "spec.storage: is set but neither" in problems(raw)[0]


def test_all_problems_are_reported_at_once() -> None:
    found = problems(make_spec(groupSize=0, numWorkers=0, image=None), name="Bad_Name")
    paths = {p.split(":")[0] for p in found}
    assert paths == {"metadata.name", "spec.groupSize", "spec.numWorkers", "spec.image"}


def test_long_names_are_rejected_because_children_would_not_fit() -> None:
    assert problems(make_spec(), name="a" * 51)[0].startswith("metadata.name: must be at most 50")


# ---------------------------------------------------------------------------------- render


def spec_of(**overrides: Any) -> Any:
    return parse_spec(make_spec(**overrides), name="job", default_image=None)


def test_ray_cluster_maps_ray_init_kwargs_to_start_params_and_resources() -> None:
    spec = spec_of(
        rayInitKwargs={
            "num_cpus": 4,
            "num_gpus": 1,
            "memory": 8_000_000_000,
            "object_store_memory": 2_000_000_000,
        }
    )
    cluster = render.render_ray_cluster("job", "ns", spec)
    assert cluster["metadata"]["name"] == "job-ray"
    workers = cluster["spec"]["workerGroupSpecs"][0]
    assert workers["replicas"] == 3
    assert workers["rayStartParams"] == {
        "num-cpus": "4",
        "num-gpus": "1",
        "memory": "8000000000",
        "object-store-memory": "2000000000",
    }
    resources = workers["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": "4", "memory": "10000000000"}
    assert resources["limits"]["nvidia.com/gpu"] == "1"
    head = cluster["spec"]["headGroupSpec"]
    ports = {
        p["name"]: p["containerPort"] for p in head["template"]["spec"]["containers"][0]["ports"]
    }
    assert ports == {"gcs-server": 6379, "dashboard": 8265, "client": 10001}
    assert head["rayStartParams"]["num-cpus"] == "0"


def test_engine_job_takes_credentials_only_from_the_secret() -> None:
    job = render.render_engine_job("job", "ns", spec_of(), attempt=2, active_deadline_seconds=90)
    assert job["metadata"]["name"] == "job-engine-2"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600
    assert job["spec"]["activeDeadlineSeconds"] == 90
    pod = job["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["RAY_ADDRESS"]["value"] == "ray://job-ray-head-svc.ns.svc:10001"
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio.minio:9000"
    assert env["AWS_REGION"]["value"] == env["AWS_DEFAULT_REGION"]["value"] == "us-east-1"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert "value" not in env[key]
        assert env[key]["valueFrom"]["secretKeyRef"]["name"] == "s3-creds"
    assert env["AWS_SESSION_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["command"] == ["robodm-engine", "run", "/etc/robodm/job.yaml"]


def test_config_map_holds_the_job_file_the_engine_reads() -> None:
    raw = make_spec()
    config_map = render.render_config_map("job", "ns", raw)
    document = yaml.safe_load(config_map["data"]["job.yaml"])
    assert document == {
        "apiVersion": "robodm.io/v1alpha1",
        "kind": "IngestionJob",
        "metadata": {"name": "job", "namespace": "ns"},
        "spec": raw,
    }


# ------------------------------------------------------------------------------ conditions


def test_last_transition_time_moves_only_when_the_status_changes() -> None:
    later = T0 + datetime.timedelta(minutes=5)
    first = c.set_condition([], "Validated", "True", "SpecValid", "ok", generation=1, now=T0)
    same = c.set_condition(
        first, "Validated", "True", "SpecValid", "still ok", generation=2, now=later
    )
    assert same[0]["lastTransitionTime"] == "2025-05-01T12:00:00Z"
    assert (same[0]["message"], same[0]["observedGeneration"]) == ("still ok", 2)
    flipped = c.set_condition(
        same, "Validated", "False", "InvalidSpec", "bad", generation=2, now=later
    )
    assert flipped[0]["lastTransitionTime"] == "2025-05-01T12:05:00Z"
    assert len(flipped) == 1


@pytest.mark.parametrize(
    ("true_types", "phase"),
    [
        ((), "Pending"),
        (("Validated",), "Provisioning"),
        (("Validated", "EngineRunning"), "Running"),
        (("Validated", "Complete"), "Succeeded"),
        (("Validated", "EngineRunning", "Failed"), "Failed"),
    ],
)
def test_phase_is_derived_from_conditions(true_types: tuple[str, ...], phase: str) -> None:
    conds: list[dict[str, Any]] = []
    for type_ in true_types:
        conds = c.set_condition(conds, type_, "True", "R", "m", generation=1, now=T0)
    assert c.phase_of(conds) == phase


# -------------------------------------------------------------------------------- progress


def test_progress_round_trips_from_the_engine_contract(tmp_path: Path) -> None:
    path = tmp_path / "_robodm" / "progress.json"
    path.parent.mkdir()
    path.write_text(
        json.dumps(
            {
                "state": "running",
                "itemsTotal": None,
                "itemsDone": 3,
                "itemsFailed": 0,
                "trajectoriesWritten": 1,
                "bytesWritten": 42,
                "updatedAt": "2025-05-01T12:00:00Z",
                "manifest": None,
                "message": "",
            }
        )
    )
    progress = read_progress(f"file://{tmp_path}/")
    assert progress is not None
    assert progress.summary() == "3/?"
    assert progress.updated_at == T0
    assert read_progress(str(tmp_path / "elsewhere")) is None


@pytest.mark.parametrize(
    "data",
    [b"not json", b"[]", b'{"state": "done"}', b'{"state": "running", "itemsDone": -1}'],
)
def test_malformed_progress_is_an_error(data: bytes) -> None:
    with pytest.raises(ProgressError):
        parse_progress(data)


# ---------------------------------------------------------------------------------- config


def test_config_from_env() -> None:
    config = OperatorConfig.from_env(
        {
            "ROBODM_WATCH_NAMESPACES": "a, b,",
            "ROBODM_LOG_LEVEL": "debug",
            "ROBODM_POLL_INTERVAL": "2.5",
            "ROBODM_ENGINE_IMAGE": "engine:1",
        }
    )
    assert config.namespaces == ("a", "b")
    assert not config.clusterwide
    assert (config.log_level, config.poll_interval, config.engine_image) == (
        "DEBUG",
        2.5,
        "engine:1",
    )
    assert OperatorConfig.from_env({}).clusterwide


@pytest.mark.parametrize(
    "env",
    [{"ROBODM_LOG_LEVEL": "LOUD"}, {"ROBODM_POLL_INTERVAL": "0"}, {"ROBODM_HEALTH_PORT": "x"}],
)
def test_bad_config_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        OperatorConfig.from_env(env)


def test_group_size_applies_to_custom_ingesters_only() -> None:
    spec = make_spec(groupSize=10)
    with pytest.raises(InvalidSpecError, match=r"spec\.groupSize: the 'files' format makes one"):
        parse_spec(spec, name="grouped", default_image="img")
    custom = make_spec(groupSize=10, source={"uri": "s3://raw/x/", "format": "custom",
                                             "ingester": "pkg.mod:Ingester"})
    assert parse_spec(custom, name="grouped", default_image="img").group_size == 10
