"""Running an IngestionJob manifest: the engine container's work, also runnable locally.

``robodm-engine run job.yaml`` reads the very YAML a user applies with ``kubectl``, checks
it (:mod:`robodm_engine.jobspec`), builds the source its ``spec.source.format`` names
(:mod:`robodm_engine.sources`), and runs the ingestion engine
(:func:`robodm_engine.ingestion.run_ingestion`) on an embedded local Ray, or on the cluster
``RAY_ADDRESS`` names (which is how the operator's engine Job runs it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from robodm_engine import jobspec
from robodm_engine.errors import SpecError
from robodm_engine.ingestion import DataIngestionInterface, IngestionConfig, run_ingestion
from robodm_engine.ingestion.runner import IngestionResult
from robodm_engine.sources import TIMESTAMP_KEY, FileSource, HDF5Source, load_ingester
from robodm_engine.storage import StorageOptions

logger = logging.getLogger(__name__)

KIND = "IngestionJob"
API_VERSION = "robodm.io/v1alpha1"


def load_job_document(path: str | Path) -> dict[str, Any]:
    """Read an IngestionJob manifest (YAML or JSON) from a file.

    Raises:
        SpecError: when the file cannot be read or parsed, or holds no IngestionJob.
    """
    try:
        documents = [d for d in yaml.safe_load_all(Path(path).read_text()) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError([(str(path), f"cannot read the job manifest: {exc}")]) from exc
    jobs = [d for d in documents if isinstance(d, dict) and d.get("kind") == KIND]
    if len(jobs) != 1:
        raise SpecError([(str(path), f"expected exactly one {KIND} document, found {len(jobs)}")])
    return jobs[0]


def parse_job(document: Mapping[str, Any]) -> jobspec.IngestionJobSpec:
    """Validate a whole IngestionJob document and return its typed spec.

    Problems from the CRD's schema and from the checks a schema cannot express are reported
    together, each with its path.

    Raises:
        SpecError: listing every problem.
    """
    problems = jobspec.schema_problems(document)
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    name = str(metadata.get("name", "")) if metadata else ""
    spec = document.get("spec")
    if not isinstance(spec, Mapping):
        raise SpecError(problems or [("spec", "is required and must be an object")])
    try:
        # The engine runs where it reads the spec, so relative paths mean what they say; the
        # image is the operator's concern.
        parsed = jobspec.parse_spec(spec, name=name, default_image="robodm-engine",
                                    in_cluster=False)
    except jobspec.InvalidSpecError as exc:
        problems.extend((p.path, p.message) for p in exc.problems)
        parsed = None
    if problems:
        raise SpecError(sorted(set(problems)))
    assert parsed is not None
    return parsed


def build_source(spec: jobspec.IngestionJobSpec) -> DataIngestionInterface:
    """The ingester for ``spec.source``, by format.

    Raises:
        SpecError: when the source's options do not fit its format.
    """
    source = spec.source
    options = dict(source.options)
    storage = storage_options(spec)
    try:
        if source.format == "files":
            return FileSource(source.uri, source.include, time_unit=spec.encoding.time_unit,
                              storage_options=storage, **options)
        if source.format == "hdf5":
            return HDF5Source(source.uri, source.include, time_unit=spec.encoding.time_unit,
                              storage_options=storage, **options)
        if source.format == "lerobot":
            from robodm_engine.lerobot.source import LeRobotSource

            return LeRobotSource(source.uri, time_unit=spec.encoding.time_unit,
                                 storage_options=storage, **options)
        assert source.format == "custom" and source.ingester is not None
        return load_ingester(source.ingester, options)
    except (TypeError, ValueError) as exc:
        raise SpecError([("spec.source.options", str(exc))]) from exc


def storage_options(spec: jobspec.IngestionJobSpec) -> StorageOptions:
    """S3 settings from ``spec.storage`` over the standard environment variables."""
    overrides = {"endpoint_url": spec.storage.endpoint, "region": spec.storage.region}
    return StorageOptions.from_env(**{k: v for k, v in overrides.items() if v is not None})


def ingestion_config(spec: jobspec.IngestionJobSpec) -> IngestionConfig:
    """The engine configuration a spec asks for."""
    ray = spec.ray
    ray_kwargs = {
        key: value
        for key, value in (("num_cpus", ray.num_cpus), ("num_gpus", ray.num_gpus),
                           ("object_store_memory", ray.object_store_memory))
        if value is not None
    }
    return IngestionConfig(
        output_directory=spec.output.uri,
        trajectory_prefix=spec.output.trajectory_prefix,
        num_workers=spec.num_workers,
        group_size=spec.group_size,
        max_items=spec.max_items,
        time_unit=spec.encoding.time_unit,
        video_codec=spec.encoding.video_codec,
        raw_codec=spec.encoding.raw_codec,
        max_failed_items=spec.failure_policy.max_failed_items,
        # Built-in sources stamp every step; a custom ingester's steps use fps unless they do.
        timestamp_key=TIMESTAMP_KEY if spec.source.format != "custom" else None,
        storage_options=storage_options(spec),
        ray_init_kwargs=ray_kwargs,
    )


def run_job(document: Mapping[str, Any]) -> IngestionResult:
    """Validate and run one IngestionJob document to completion.

    Raises:
        SpecError: the spec is invalid (nothing is written).
        IngestionError: item failures exceeded ``failurePolicy.maxFailedItems``.
        StorageError: object storage failed after its retries.

    Examples:
        >>> from robodm_engine.job import load_job_document, run_job
        >>> run_job(load_job_document("examples/ingestionjob-local.yaml"))  # doctest: +SKIP
    """
    spec = parse_job(document)
    source = build_source(spec)
    config = ingestion_config(spec)
    logger.info("ingesting %s (%s) into %s with %d workers", spec.source.uri,
                spec.source.format, spec.output.uri, spec.num_workers)
    return run_ingestion(source, config)
