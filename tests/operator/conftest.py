"""Fixtures for the operator tests: schemas, job factories, and a Kubernetes API double.

The API double is kmock's ``KubernetesEmulator`` served over real HTTP, extended by
:class:`KubeDouble` with the server behaviour kopf and the operator depend on and kmock 0.8 does
not emulate: uid/resourceVersion/generation/creationTimestamp stamping, namespaces from the URL,
JSON-patch ``test`` failures as 422, status-subresource separation, finalizer-aware deletion,
and watches that cannot lose events between their replay and their live part. The operator
runs in its own thread and event loop (kopf cancels pytest-asyncio's fixtures otherwise) and
reaches the double only through a kubeconfig, as it would reach a real cluster.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonpatch
import jsonschema
import kmock
import kopf
import pytest
import yaml
from robodm_operator.config import OperatorConfig
from robodm_operator.handlers import build_registry

from robodm_engine.jobspec import crd_validator

REPO = Path(__file__).resolve().parents[2]
CRD_PATH = REPO / "crds" / "ingestionjob.yaml"
CHART_DIR = REPO / "charts" / "robodm-operator"
KUBERAY_CRD_PATH = REPO.parent / "shared" / "anchors" / "kuberay" / "ray.io_rayclusters.yaml"
NAMESPACE = "robodm"


# --------------------------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def crd() -> dict[str, Any]:
    """Our IngestionJob CRD."""
    loaded: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return loaded


@pytest.fixture(scope="session")
def ingestion_job_validator(crd: dict[str, Any]) -> jsonschema.Draft7Validator:
    """Validates IngestionJob objects against our CRD's schema."""
    return crd_validator(crd, "v1alpha1")


@pytest.fixture(scope="session")
def ray_cluster_validator() -> jsonschema.Draft7Validator:
    """Validates RayCluster objects against KubeRay's own CRD schema."""
    if not KUBERAY_CRD_PATH.exists():
        pytest.skip(f"KubeRay's CRD is not available at {KUBERAY_CRD_PATH}")
    # libyaml: KubeRay's CRD is nearly 1 MB, the pure-Python loader takes seconds.
    kuberay = yaml.load(KUBERAY_CRD_PATH.read_text(), Loader=yaml.CSafeLoader)
    return crd_validator(kuberay, "v1")


# --------------------------------------------------------------------------------------------
# IngestionJob factories
# --------------------------------------------------------------------------------------------


def make_spec(**overrides: Any) -> dict[str, Any]:
    """A valid, realistic IngestionJob spec; keyword arguments replace top-level fields."""
    spec: dict[str, Any] = {
        "source": {"uri": "s3://raw/philips/", "format": "files", "include": ["*.npz"]},
        "output": {"uri": "s3://datasets/philips-v1/", "trajectoryPrefix": "trajectory"},
        "storage": {
            "endpoint": "http://minio.minio:9000",
            "region": "us-east-1",
            "credentialsSecret": "s3-creds",
        },
        "numWorkers": 3,
        "rayInitKwargs": {"num_cpus": 4, "memory": 8_000_000_000, "object_store_memory": 2**31},
        "encoding": {"timeUnit": "ms", "videoCodec": "auto"},
        "image": "ghcr.io/robodm/engine:0.1.0",
        "failurePolicy": {"maxFailedItems": 0, "backoffLimit": 2},
        "ttlSecondsAfterFinished": 3600,
    }
    spec.update(overrides)
    return spec


def make_job(name: str = "philips", **overrides: Any) -> dict[str, Any]:
    """A whole IngestionJob object as a user would submit it."""
    return {
        "apiVersion": "robodm.io/v1alpha1",
        "kind": "IngestionJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": make_spec(**overrides),
    }


# --------------------------------------------------------------------------------------------
# The Kubernetes API double
# --------------------------------------------------------------------------------------------


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _error(status: int, reason: str, message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=status, reason=reason, message=message, details={})


class KubeDouble(kmock.KubernetesEmulator):  # type: ignore[misc]
    """kmock's emulator with the API-server semantics the operator and kopf rely on."""

    _versions = itertools.count(1)

    async def _handle(self, request: kmock.Request) -> Any:
        mutating = {kmock.action.CREATE, kmock.action.UPDATE, kmock.action.DELETE}
        if request.resource is not None and request.action in mutating:
            async with self._lock:
                for event in self._mutate(request):
                    await self._buses[request.resource].put(event)
        # Skip KubernetesEmulator's own mutation (done above); keep its routing and rendering.
        return await super(kmock.KubernetesEmulator, self)._handle(request)

    def _stamp(self, obj: dict[str, Any]) -> None:
        obj["metadata"]["resourceVersion"] = str(next(self._versions))

    def _mutate(self, request: kmock.Request) -> list[dict[str, Any]]:
        if request.action == kmock.action.CREATE:
            obj = copy.deepcopy(request.data)
            meta = obj.setdefault("metadata", {})
            if request.namespace is not None:
                meta["namespace"] = request.namespace
            key = (request.resource, meta.get("namespace"), meta.get("name"))
            if key in self._objects and not self._objects[key].deleted:
                raise _error(409, "AlreadyExists", f"{meta.get('name')} already exists")
            meta.update(
                uid=str(uuid.uuid4()),
                generation=1,
                creationTimestamp=kopf_time(datetime.datetime.now(datetime.UTC)),
            )
            self._stamp(obj)
            if key in self._objects:
                self._objects[key].create(obj)
            else:
                self._objects[key] = obj
            return [{"type": "ADDED", "object": obj}]

        key = (request.resource, request.namespace, request.name)
        if key not in self._objects or self._objects[key].deleted:
            raise _error(404, "NotFound", f"{request.name} not found")
        stored = self._objects[key]
        old = copy.deepcopy(stored.raw)
        if request.action == kmock.action.DELETE:
            if old["metadata"].get("finalizers"):
                if old["metadata"].get("deletionTimestamp"):
                    return []
                old["metadata"]["deletionTimestamp"] = kopf_time(
                    datetime.datetime.now(datetime.UTC)
                )
                self._stamp(old)
                stored.create(old)
                return [{"type": "MODIFIED", "object": old}]
            stored.delete()
            return [{"type": "DELETED", "object": old}]

        patch = request.data
        try:
            if isinstance(patch, list):
                new = jsonpatch.apply_patch(old, patch)
            else:
                new = _merge_patch(old, patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
            raise _error(422, "Invalid", f"patch failed: {error}") from error
        if request.subresource == "status":
            new = {**old, "status": new.get("status")}
        else:
            # The main endpoint ignores status changes (every resource here has /status).
            new["status"] = old.get("status")
        new = {key: value for key, value in new.items() if value is not None}
        changed_spec = {k: v for k, v in new.items() if k not in {"metadata", "status"}} != {
            k: v for k, v in old.items() if k not in {"metadata", "status"}
        }
        if changed_spec:
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        self._stamp(new)
        stored.create(new)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            stored.delete()
            return [{"type": "DELETED", "object": new}]
        return [{"type": "MODIFIED", "object": new}]

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        yield b""
        assert request.resource is not None
        bus = self._buses[request.resource]
        # Mark the bus and snapshot the objects atomically, so that nothing that happens
        # between the replay and the live stream is lost (kmock 0.8 loses it).
        async with self._lock:
            mark = await bus.mark()
            replay = [
                {"type": "ADDED", "object": copy.deepcopy(obj.raw)}
                for (resource, namespace, _), obj in self._objects.items()
                if resource == request.resource
                and not obj.deleted
                and request.namespace in (None, namespace)
            ]
        try:
            for event in replay:
                yield event
            async for event in bus.stream(since=mark):
                namespace = event["object"]["metadata"].get("namespace")
                if request.namespace in (None, namespace):
                    yield event
        finally:
            await bus.unmark(mark)


def kopf_time(moment: datetime.datetime) -> str:
    """RFC 3339 UTC timestamp as the API server writes it."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


TEST_USER_AGENT = "robodm-operator-tests"
ALL_VERBS = {"create", "delete", "get", "list", "patch", "update", "watch"}


class ApiServer:
    """The double served over HTTP from its own thread and event loop."""

    def __init__(self) -> None:
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="kube-double", daemon=True)
        self.double: KubeDouble | None = None

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        double = KubeDouble()
        double.resources.load_bundled()
        for plural, kind in [
            ("robodm.io/v1alpha1/ingestionjobs", "IngestionJob"),
            ("ray.io/v1/rayclusters", "RayCluster"),
        ]:
            double.resources[plural] = kmock.ResourceInfo(
                kind=kind,
                singular=kind.lower(),
                namespaced=True,
                verbs=ALL_VERBS,
                subresources={"status"},
            )
        self.double = double
        async with double, kmock.Server(double) as server:
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Kubernetes API double did not start")

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request served so far."""
        return [(method, path) for method, path, _ in self.operator_calls(include_tests=True)]

    def operator_calls(self, *, include_tests: bool = False) -> list[tuple[str, str, bool]]:
        """(method, path, is_watch) of the requests, without the tests' own unless asked."""
        assert self.double is not None
        return [
            (str(r.method.value), r.url.path, r.params.get("watch") == "true")
            for r in list(self.double)
            if include_tests or r.headers.get("User-Agent") != TEST_USER_AGENT
        ]


class Kube:
    """A minimal synchronous client of the double, for the tests' own reads and writes."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, dict[str, Any]]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.server.url + path,
            data=data,
            method=method,
            headers={"Content-Type": content_type, "User-Agent": TEST_USER_AGENT},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        status, obj = self.request("POST", path, body)
        assert status in (200, 201), obj
        return obj

    def get(self, path: str) -> dict[str, Any] | None:
        status, obj = self.request("GET", path)
        return obj if status == 200 else None

    def patch_status(self, path: str, status: Mapping[str, Any]) -> None:
        code, obj = self.request(
            "PATCH", f"{path}/status", {"status": status}, "application/merge-patch+json"
        )
        assert code == 200, obj

    def delete(self, path: str) -> int:
        return self.request("DELETE", path)[0]

    def create_secret(self, name: str, values: Mapping[str, str]) -> None:
        data = {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}
        self.create(
            f"/api/v1/namespaces/{NAMESPACE}/secrets",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data},
        )


def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def api_server() -> Iterator[ApiServer]:
    """A fresh Kubernetes API double on a random local port."""
    server = ApiServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def kube(api_server: ApiServer) -> Kube:
    """The tests' own client of the API double."""
    return Kube(api_server)


@pytest.fixture
def kubeconfig(api_server: ApiServer, tmp_path: Path) -> Path:
    """A kubeconfig pointing at the API double, as a user's would point at a cluster."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "double", "cluster": {"server": api_server.url}}],
                "users": [{"name": "tester", "user": {"token": "test-token"}}],
                "contexts": [
                    {
                        "name": "double",
                        "context": {"cluster": "double", "user": "tester", "namespace": NAMESPACE},
                    }
                ],
                "current-context": "double",
            }
        )
    )
    return path


class OperatorThread:
    """The operator (kopf) running in its own thread and event loop, stoppable and restartable."""

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="operator", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            kopf.run(
                loop=loop,
                registry=build_registry(self.config),
                clusterwide=self.config.clusterwide,
                namespaces=self.config.namespaces,
                standalone=True,
                stop_flag=self._stop,
                ready_flag=self._ready,
            )
        except BaseException as error:  # reported to the test that started it
            self.error = error
        finally:
            loop.close()

    def start(self) -> OperatorThread:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"the operator did not start: {self.error!r}")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "the operator did not stop"


@pytest.fixture
def operator_config(kubeconfig: Path) -> OperatorConfig:
    """Operator settings for the tests: a short poll interval so flows take seconds."""
    return OperatorConfig(
        namespaces=(NAMESPACE,),
        engine_image="ghcr.io/robodm/engine:test",
        poll_interval=0.2,
        health_port=0,
        kubeconfig=str(kubeconfig),
    )


@pytest.fixture
def start_operator(operator_config: OperatorConfig) -> Iterator[Callable[[], OperatorThread]]:
    """Start (and at teardown stop) operator instances; call it again to simulate a restart."""
    running: list[OperatorThread] = []

    def start() -> OperatorThread:
        instance = OperatorThread(operator_config).start()
        running.append(instance)
        return instance

    yield start
    for instance in running:
        if instance._thread.is_alive():
            instance.stop()


def pytest_configure(config: pytest.Config) -> None:
    """Silence a deprecation inside kmock 0.8 (importlib.resources.read_binary)."""
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:kmock.*")
