"""Rendered objects are valid for their APIs; the CRD accepts and rejects the right specs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from conftest import REPO, make_job, make_spec
from robodm_operator import render

from robodm_engine import jobspec as spec
from robodm_engine.jobspec import parse_spec

K8S_VERSION = "1.33.0"
EXAMPLES = sorted((REPO / "examples").glob("ingestionjob*.yaml"))
KIND_JOB = REPO / "tests" / "e2e" / "kind" / "ingestionjob.yaml"


def validate_builtin(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_the_crd_is_a_valid_custom_resource_definition(crd: dict[str, Any]) -> None:
    validate_builtin(crd)
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["names"]["shortNames"] == ["ij"]
    assert version["subresources"] == {"status": {}}
    columns = {column["name"] for column in version["additionalPrinterColumns"]}
    assert {"Phase", "Progress", "Trajectories", "Cluster", "Age"} <= columns


def test_crd_enums_and_defaults_match_the_operators(crd: dict[str, Any]) -> None:
    props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]
    assert set(props["source"]["properties"]["format"]["enum"]) == set(spec.FORMATS)
    assert set(props["encoding"]["properties"]["timeUnit"]["enum"]) == set(spec.TIME_UNITS)
    assert set(props["encoding"]["properties"]["videoCodec"]["enum"]) == set(spec.VIDEO_CODECS)
    assert set(props["encoding"]["properties"]["rawCodec"]["enum"]) == set(spec.RAW_CODECS)
    defaults = {
        "groupSize": spec.DEFAULT_GROUP_SIZE,
        "numWorkers": spec.DEFAULT_NUM_WORKERS,
    }
    for key, value in defaults.items():
        assert props[key]["default"] == value
    assert (
        props["failurePolicy"]["properties"]["backoffLimit"]["default"]
        == spec.DEFAULT_BACKOFF_LIMIT
    )
    assert props["encoding"]["properties"]["timeUnit"]["default"] == spec.DEFAULT_TIME_UNIT
    assert (
        props["output"]["properties"]["trajectoryPrefix"]["default"]
        == spec.DEFAULT_TRAJECTORY_PREFIX
    )


@pytest.mark.parametrize("path", [*EXAMPLES, KIND_JOB], ids=lambda p: p.name)
def test_examples_are_valid_ingestion_jobs(
    path: Path, ingestion_job_validator: jsonschema.Draft7Validator
) -> None:
    ingestion_job_validator.validate(yaml.safe_load(path.read_text()))


def test_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} == {"ingestionjob.yaml", "ingestionjob-local.yaml"}


@pytest.mark.parametrize("path", [REPO / "examples" / "ingestionjob.yaml", KIND_JOB],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_the_s3_examples_are_accepted_by_the_operator(path: Path) -> None:
    job = yaml.safe_load(path.read_text())
    parse_spec(job["spec"], name=job["metadata"]["name"], default_image=None)


def broken(path: str, value: Any) -> dict[str, Any]:
    """A valid job with one field replaced (``value`` None deletes it)."""
    job = make_job()
    node = job
    *parents, leaf = path.split(".")
    for key in parents:
        node = node[key]
    if value is None:
        del node[leaf]
    else:
        node[leaf] = value
    return job


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("spec.source.uri", None),
        ("spec.output.uri", None),
        ("spec.output", None),
        ("spec.source.format", "csv"),
        ("spec.encoding.timeUnit", "h"),
        ("spec.encoding.videoCodec", "h264"),
        ("spec.encoding.rawCodec", "pickle"),
        ("spec.numWorkers", 0),
        ("spec.groupSize", 0),
        ("spec.groupSize", "100"),
        ("spec.maxItems", 0),
        ("spec.failurePolicy.backoffLimit", -1),
        ("spec.rayInitKwargs.object_store_memory", 1024),
        ("spec.rayInitKwargs.num_cpu", 4),
        ("spec.source.ingester", "not a python path"),
        ("spec.storage.credentialsSecret", "Not_A_Name"),
        ("spec.storage.endpoint", "minio:9000"),
        ("spec.unknownField", 1),
        ("spec.output.trajectoryPrefix", "../escape"),
    ],
)
def test_malformed_specs_are_rejected_by_the_schema(
    path: str, value: Any, ingestion_job_validator: jsonschema.Draft7Validator
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        ingestion_job_validator.validate(broken(path, value))


def test_free_form_options_accept_anything(
    ingestion_job_validator: jsonschema.Draft7Validator,
) -> None:
    job = make_job()
    job["spec"]["source"]["options"] = {"anything": {"nested": [1, "two"]}}
    job["spec"]["maxItems"] = None
    ingestion_job_validator.validate(job)


def test_the_status_the_operator_writes_fits_the_schema(
    ingestion_job_validator: jsonschema.Draft7Validator,
) -> None:
    from robodm_operator.decide import decide
    from robodm_operator.progress import Progress
    from test_decide import READY_CLUSTER, job_status, observe, running_status

    progress = Progress("succeeded", 10, 0, 2, 100, items_total=10, manifest="s3://m")
    done = decide(
        observe(
            running_status(),
            cluster=READY_CLUSTER,
            engine=job_status(outcome="Complete"),
            progress=progress,
        )
    )
    ingestion_job_validator.validate({**make_job(), "status": done.status})


RENDER_CASES = {
    "defaults": {},
    "gpus": {"rayInitKwargs": {"num_cpus": 8, "num_gpus": 2, "memory": 16_000_000_000}},
    "no-storage": {"storage": None, "source": {"uri": "/data/raw"}, "output": {"uri": "/data/out"}},
    "deadline-ttl": {"activeDeadlineSeconds": 100, "ttlSecondsAfterFinished": 0},
}


def rendered(case: str) -> tuple[Any, dict[str, Any]]:
    raw = make_spec(**RENDER_CASES[case])
    raw = {key: value for key, value in raw.items() if value is not None}
    return parse_spec(raw, name="philips", default_image="engine:1"), raw


@pytest.mark.parametrize("case", RENDER_CASES)
def test_rendered_builtins_are_valid(case: str) -> None:
    parsed, raw = rendered(case)
    validate_builtin(
        render.render_engine_job("philips", "ns", parsed, attempt=1, active_deadline_seconds=50)
    )
    validate_builtin(render.render_config_map("philips", "ns", raw))


@pytest.mark.parametrize("case", RENDER_CASES)
def test_rendered_ray_cluster_is_valid_for_kuberay(
    case: str, ray_cluster_validator: jsonschema.Draft7Validator
) -> None:
    parsed, _ = rendered(case)
    cluster = render.render_ray_cluster("philips", "ns", parsed)
    ray_cluster_validator.validate(cluster)
    # The pod templates inside are core/v1 PodTemplateSpecs: check them with the k8s schema too.
    templates = [cluster["spec"]["headGroupSpec"]["template"]]
    templates += [group["template"] for group in cluster["spec"]["workerGroupSpecs"]]
    for template in templates:
        validate_builtin(
            {
                "apiVersion": "v1",
                "kind": "PodTemplate",
                "metadata": {"name": "t", "namespace": "ns"},
                "template": copy.deepcopy(template),
            }
        )


def test_the_kuberay_validator_is_strict(ray_cluster_validator: jsonschema.Draft7Validator) -> None:
    parsed, _ = rendered("defaults")
    cluster = render.render_ray_cluster("philips", "ns", parsed)
    cluster["spec"]["workerGroupSpecs"][0]["rayStartParam"] = {}
    with pytest.raises(jsonschema.ValidationError):
        ray_cluster_validator.validate(cluster)
