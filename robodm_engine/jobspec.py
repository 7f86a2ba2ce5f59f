"""Typed parsing and validation of an IngestionJob: shared by the engine and the operator.

The CRD schema (``crds/ingestionjob.yaml``, shipped in this package as
``schemas/ingestionjob.crd.yaml``) rejects malformed specs when the API server enforces it;
:func:`schema_problems` applies the same schema where no API server does (``robodm-engine
validate``, a local ``run``). :func:`parse_spec` re-checks types defensively (the schema may be
older than the code, or defaulting may be off) and adds what a schema cannot express:
cross-field rules, usable URIs, child-object name lengths and the engine image fallback. Every
problem is reported with its spec path, all at once, so a user fixes a spec in one round.

Defaults and enumerations here mirror the CRD; ``tests/operator/test_schema.py`` checks that the
two agree.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any, Final

import jsonschema
import yaml

from robodm_engine import codecs
from robodm_engine.timeline import MS_PER_UNIT

FORMATS: Final = ("files", "lerobot", "hdf5", "custom")
#: Formats whose items are whole episodes: each becomes one trajectory.
EPISODE_FORMATS: Final = ("files", "lerobot", "hdf5")
# The engine's own lists, so the spec accepts exactly what the trajectory writer does.
TIME_UNITS: Final = tuple(MS_PER_UNIT)
VIDEO_CODECS: Final = codecs.VIDEO_CODECS
RAW_CODECS: Final = tuple(name for name in codecs.RAW_CODECS if name is not None)

DEFAULT_FORMAT: Final = "files"
DEFAULT_TRAJECTORY_PREFIX: Final = "trajectory"
DEFAULT_GROUP_SIZE: Final = 1
DEFAULT_NUM_WORKERS: Final = 4
DEFAULT_TIME_UNIT: Final = "ms"
DEFAULT_VIDEO_CODEC: Final = "auto"
DEFAULT_MAX_FAILED_ITEMS: Final = 0
DEFAULT_BACKOFF_LIMIT: Final = 2

# "<name>-ray-head-svc" (KubeRay's head Service) must be a DNS-1035 label of at most 63
# characters, and "<name>-engine-NN" a valid Job name: 50 leaves room for both.
MAX_NAME_LENGTH: Final = 50
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/(?P<key>.*))?$")


@dataclasses.dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with a spec, located by its path (``spec.source.uri``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidSpecError(ValueError):
    """The spec cannot be run; ``problems`` lists every reason, each with its path."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = tuple(problems)


@dataclasses.dataclass(frozen=True)
class Source:
    """``spec.source``: where the raw data is and which reader turns it into items."""

    uri: str
    format: str = DEFAULT_FORMAT
    include: tuple[str, ...] = ()
    ingester: str | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Output:
    """``spec.output``: the dataset root and the trajectory file prefix."""

    uri: str
    trajectory_prefix: str = DEFAULT_TRAJECTORY_PREFIX


@dataclasses.dataclass(frozen=True)
class Storage:
    """``spec.storage``: S3 endpoint, region and the Secret holding the credentials."""

    endpoint: str | None = None
    region: str | None = None
    credentials_secret: str | None = None


@dataclasses.dataclass(frozen=True)
class RayResources:
    """``spec.rayInitKwargs``: resources of each Ray worker node."""

    num_cpus: int | None = None
    num_gpus: int | None = None
    memory: int | None = None
    object_store_memory: int | None = None


@dataclasses.dataclass(frozen=True)
class Encoding:
    """``spec.encoding``: how the engine encodes features."""

    time_unit: str = DEFAULT_TIME_UNIT
    video_codec: str = DEFAULT_VIDEO_CODEC
    raw_codec: str | None = None


@dataclasses.dataclass(frozen=True)
class FailurePolicy:
    """``spec.failurePolicy``: item failures tolerated and engine Job retries."""

    max_failed_items: int = DEFAULT_MAX_FAILED_ITEMS
    backoff_limit: int = DEFAULT_BACKOFF_LIMIT


@dataclasses.dataclass(frozen=True)
class IngestionJobSpec:
    """A validated IngestionJob spec with defaults applied and the engine image resolved."""

    source: Source
    output: Output
    image: str
    storage: Storage = Storage()
    group_size: int = DEFAULT_GROUP_SIZE
    max_items: int | None = None
    num_workers: int = DEFAULT_NUM_WORKERS
    ray: RayResources = RayResources()
    encoding: Encoding = Encoding()
    failure_policy: FailurePolicy = FailurePolicy()
    active_deadline_seconds: int | None = None
    ttl_seconds_after_finished: int | None = None

    @property
    def uses_s3(self) -> bool:
        """Whether the source or the output lives on S3."""
        return is_s3_uri(self.source.uri) or is_s3_uri(self.output.uri)


def is_s3_uri(uri: str) -> bool:
    """Whether ``uri`` names an S3 location."""
    return uri.startswith("s3://")


class _Reader:
    """Reads typed fields out of raw dicts, recording a problem instead of raising."""

    def __init__(self) -> None:
        self.problems: list[SpecProblem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(SpecProblem(path, message))

    def section(self, raw: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        value = raw.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(f"{path}.{key}", f"must be an object, got {type(value).__name__}")
            return {}
        return value

    def string(
        self,
        raw: Mapping[str, Any],
        key: str,
        path: str,
        *,
        default: str | None = None,
        required: bool = False,
        choices: tuple[str, ...] = (),
    ) -> str | None:
        value = raw.get(key)
        where = f"{path}.{key}"
        if value is None:
            if required:
                self.problem(where, "is required")
            return default
        if not isinstance(value, str) or not value:
            self.problem(where, "must be a non-empty string")
            return default
        if choices and value not in choices:
            self.problem(where, f"must be one of {', '.join(choices)}, got {value!r}")
            return default
        return value

    def integer(
        self,
        raw: Mapping[str, Any],
        key: str,
        path: str,
        *,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        value = raw.get(key)
        where = f"{path}.{key}"
        if value is None:
            return default
        # bool is an int in Python but not in JSON: `true` is not a valid count.
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(where, f"must be an integer, got {value!r}")
            return default
        if minimum is not None and value < minimum:
            self.problem(where, f"must be at least {minimum}, got {value}")
            return default
        if maximum is not None and value > maximum:
            self.problem(where, f"must be at most {maximum}, got {value}")
            return default
        return value


def _check_uri(reader: _Reader, uri: str, path: str, *, in_cluster: bool) -> None:
    if "://" in uri and not uri.startswith(("s3://", "file://")):
        scheme = uri.split("://", 1)[0]
        reader.problem(path, f"unsupported scheme {scheme!r}; use s3://, file:// or a local path")
    elif is_s3_uri(uri):
        if not _S3_URI.match(uri):
            reader.problem(path, f"{uri!r} is not a valid s3://bucket/prefix URI")
    elif in_cluster and not _local_path(uri).startswith("/"):
        # The engine pod and the operator have different working directories: a relative
        # path would name different data in each.
        reader.problem(
            path,
            f"{uri!r} is a relative local path; in a cluster use s3://bucket/prefix "
            "(or an absolute path on storage that the engine and the operator share)",
        )


def _local_path(uri: str) -> str:
    return uri.removeprefix("file://")


def _normalised(uri: str) -> str:
    text = _local_path(uri) if not is_s3_uri(uri) else uri
    return text.rstrip("/") + "/"


def _overlaps(first: str, second: str) -> bool:
    a, b = _normalised(first), _normalised(second)
    return a.startswith(b) or b.startswith(a)


def validate_name(name: str) -> list[SpecProblem]:
    """Check that the job's name leaves room for the names of its children."""
    if len(name) > MAX_NAME_LENGTH:
        return [
            SpecProblem(
                "metadata.name",
                f"must be at most {MAX_NAME_LENGTH} characters (the RayCluster head Service "
                f"'<name>-ray-head-svc' must fit in 63), got {len(name)}",
            )
        ]
    if not _DNS_1035.match(name):
        return [
            SpecProblem(
                "metadata.name",
                f"{name!r} must start with a letter and contain only lowercase letters, digits "
                "and '-' (it names the RayCluster's Services)",
            )
        ]
    return []


def parse_spec(
    raw: Mapping[str, Any],
    *,
    name: str,
    default_image: str | None,
    in_cluster: bool = True,
) -> IngestionJobSpec:
    """Validate a raw ``spec`` and return it typed, with defaults applied.

    Args:
        raw: the ``spec`` of the IngestionJob as stored in the API server.
        name: the IngestionJob's ``metadata.name`` (its children are named after it).
        default_image: the operator's engine image, used when ``spec.image`` is unset.
        in_cluster: whether the job runs in a cluster, where relative local paths are refused
            (the engine pod and the operator would resolve them differently). A local
            ``robodm-engine run`` passes False.

    Raises:
        InvalidSpecError: listing every problem found, each with its path.
    """
    reader = _Reader()
    reader.problems.extend(validate_name(name))

    source_raw = reader.section(raw, "source", "spec")
    source_uri = reader.string(source_raw, "uri", "spec.source", required=True) or ""
    source_format = reader.string(
        source_raw, "format", "spec.source", default=DEFAULT_FORMAT, choices=FORMATS
    )
    include_raw = source_raw.get("include") or []
    if not isinstance(include_raw, list) or not all(
        isinstance(item, str) and item for item in include_raw
    ):
        reader.problem("spec.source.include", "must be a list of non-empty glob patterns")
        include_raw = []
    ingester = reader.string(source_raw, "ingester", "spec.source")
    options = reader.section(source_raw, "options", "spec.source")
    if source_format == "custom" and ingester is None:
        reader.problem("spec.source.ingester", "is required when format is 'custom'")
    if source_format != "custom" and ingester is not None:
        reader.problem(
            "spec.source.ingester",
            f"is only used with format 'custom' (format is {source_format!r})",
        )

    output_raw = reader.section(raw, "output", "spec")
    output_uri = reader.string(output_raw, "uri", "spec.output", required=True) or ""
    prefix = reader.string(
        output_raw, "trajectoryPrefix", "spec.output", default=DEFAULT_TRAJECTORY_PREFIX
    )

    if not raw.get("source"):
        reader.problem("spec.source", "is required")
    if not raw.get("output"):
        reader.problem("spec.output", "is required")
    if source_uri:
        _check_uri(reader, source_uri, "spec.source.uri", in_cluster=in_cluster)
    if output_uri:
        _check_uri(reader, output_uri, "spec.output.uri", in_cluster=in_cluster)
    if source_uri and output_uri and _overlaps(source_uri, output_uri):
        # A dataset written inside its own source would be re-read as input by later runs.
        reader.problem(
            "spec.output.uri",
            f"{output_uri!r} overlaps spec.source.uri {source_uri!r}; choose a separate location",
        )

    storage_raw = reader.section(raw, "storage", "spec")
    storage = Storage(
        endpoint=reader.string(storage_raw, "endpoint", "spec.storage"),
        region=reader.string(storage_raw, "region", "spec.storage"),
        credentials_secret=reader.string(storage_raw, "credentialsSecret", "spec.storage"),
    )
    if storage != Storage() and not (is_s3_uri(source_uri) or is_s3_uri(output_uri)):
        reader.problem(
            "spec.storage", "is set but neither spec.source.uri nor spec.output.uri is s3://"
        )

    ray_raw = reader.section(raw, "rayInitKwargs", "spec")
    known_ray_keys = {"num_cpus", "num_gpus", "memory", "object_store_memory"}
    for key in sorted(set(ray_raw) - known_ray_keys):
        reader.problem(
            f"spec.rayInitKwargs.{key}",
            f"is not supported (supported: {', '.join(sorted(known_ray_keys))})",
        )
    ray = RayResources(
        num_cpus=reader.integer(ray_raw, "num_cpus", "spec.rayInitKwargs", minimum=1),
        num_gpus=reader.integer(ray_raw, "num_gpus", "spec.rayInitKwargs", minimum=0),
        memory=reader.integer(ray_raw, "memory", "spec.rayInitKwargs", minimum=1),
        object_store_memory=reader.integer(
            ray_raw, "object_store_memory", "spec.rayInitKwargs", minimum=78_643_200
        ),
    )

    encoding_raw = reader.section(raw, "encoding", "spec")
    encoding = Encoding(
        time_unit=reader.string(
            encoding_raw, "timeUnit", "spec.encoding", default=DEFAULT_TIME_UNIT, choices=TIME_UNITS
        )
        or DEFAULT_TIME_UNIT,
        video_codec=reader.string(
            encoding_raw,
            "videoCodec",
            "spec.encoding",
            default=DEFAULT_VIDEO_CODEC,
            choices=VIDEO_CODECS,
        )
        or DEFAULT_VIDEO_CODEC,
        raw_codec=reader.string(encoding_raw, "rawCodec", "spec.encoding", choices=RAW_CODECS),
    )

    policy_raw = reader.section(raw, "failurePolicy", "spec")
    policy = FailurePolicy(
        max_failed_items=reader.integer(
            policy_raw,
            "maxFailedItems",
            "spec.failurePolicy",
            default=DEFAULT_MAX_FAILED_ITEMS,
            minimum=0,
        )
        or 0,
        backoff_limit=reader.integer(
            policy_raw,
            "backoffLimit",
            "spec.failurePolicy",
            default=DEFAULT_BACKOFF_LIMIT,
            minimum=0,
            maximum=20,
        )
        or 0,
    )

    image = reader.string(raw, "image", "spec") or default_image
    if not image:
        reader.problem(
            "spec.image", "is not set and the operator has no default engine image configured"
        )

    group_size = reader.integer(
        raw, "groupSize", "spec", default=DEFAULT_GROUP_SIZE, minimum=1, maximum=1_000_000
    )
    if group_size is not None and group_size > 1 and source_format in EPISODE_FORMATS:
        reader.problem(
            "spec.groupSize",
            f"the {source_format!r} format makes one trajectory per episode (file, folder, demo), "
            "so groupSize must be 1; it groups items of custom ingesters only",
        )
    num_workers = reader.integer(
        raw, "numWorkers", "spec", default=DEFAULT_NUM_WORKERS, minimum=1, maximum=1000
    )
    max_items = reader.integer(raw, "maxItems", "spec", minimum=1)
    deadline = reader.integer(raw, "activeDeadlineSeconds", "spec", minimum=1)
    ttl = reader.integer(raw, "ttlSecondsAfterFinished", "spec", minimum=0)

    if reader.problems:
        raise InvalidSpecError(reader.problems)
    return IngestionJobSpec(
        source=Source(
            uri=source_uri,
            format=source_format or DEFAULT_FORMAT,
            include=tuple(include_raw),
            ingester=ingester,
            options=dict(options),
        ),
        output=Output(uri=output_uri, trajectory_prefix=prefix or DEFAULT_TRAJECTORY_PREFIX),
        image=image or "",
        storage=storage,
        group_size=group_size or DEFAULT_GROUP_SIZE,
        max_items=max_items,
        num_workers=num_workers or DEFAULT_NUM_WORKERS,
        ray=ray,
        encoding=encoding,
        failure_policy=policy,
        active_deadline_seconds=deadline,
        ttl_seconds_after_finished=ttl,
    )


# --------------------------------------------------------------------------------------------
# The CRD's schema, applied without an API server
# --------------------------------------------------------------------------------------------


def openapi_to_jsonschema(node: Any, *, strict: bool = True) -> Any:
    """Translate a CRD's OpenAPI v3 schema into JSON Schema as the API server applies it.

    ``nullable`` becomes a ``null`` type, ``x-kubernetes-int-or-string`` an anyOf, and with
    ``strict`` every object with declared properties refuses unknown fields, as the API server
    does under strict field validation (kubectl's default since 1.27).
    """
    if isinstance(node, list):
        return [openapi_to_jsonschema(item, strict=strict) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: openapi_to_jsonschema(value, strict=strict) for key, value in node.items()}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    preserve = out.get("x-kubernetes-preserve-unknown-fields", False)
    if strict and "properties" in out and not preserve and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def crd_validator(crd: Mapping[str, Any], version: str) -> jsonschema.Draft7Validator:
    """A validator for objects of one version of a CRD.

    Raises:
        KeyError: when the CRD does not serve ``version``.
    """
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema = openapi_to_jsonschema(served["schema"]["openAPIV3Schema"])
            return jsonschema.Draft7Validator(schema)
    raise KeyError(f"{crd['metadata']['name']} has no version {version}")


def load_crd() -> dict[str, Any]:
    """The IngestionJob CRD shipped with this package (a copy of ``crds/ingestionjob.yaml``)."""
    text = resources.files("robodm_engine").joinpath("schemas/ingestionjob.crd.yaml").read_text()
    crd: dict[str, Any] = yaml.safe_load(text)
    return crd


@functools.cache
def _ingestion_job_validator() -> jsonschema.Draft7Validator:
    return crd_validator(load_crd(), "v1alpha1")


def schema_problems(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Check a whole IngestionJob object against the CRD schema.

    Returns ``(path, message)`` pairs such as ``("spec.numWorkers", "0 is less than the
    minimum of 1")``; empty when the object fits. CEL rules are not evaluated here (they need
    an API server); :func:`parse_spec` checks what they express.

    Examples:
        >>> schema_problems({"apiVersion": "robodm.io/v1alpha1", "kind": "IngestionJob",
        ...                  "metadata": {"name": "x"}, "spec": {"source": {}}})[0][0]
        'spec'
    """
    problems = []
    for error in _ingestion_job_validator().iter_errors(dict(document)):
        path = ".".join(str(part) for part in error.absolute_path) or "(document)"
        problems.append((path, error.message))
    return sorted(problems)
