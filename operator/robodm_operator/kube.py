"""The few Kubernetes API calls the handlers make, over the official client's transport.

Objects are exchanged as plain dicts (the renderers' output, the API's JSON) rather than the
client's generated models, so what is sent is exactly what :mod:`robodm_operator.render`
produced and what is validated in the tests. The client library contributes configuration
(in-cluster service account or kubeconfig, token refresh, TLS) and connection pooling.

Every method maps to one RBAC rule in ``charts/robodm-operator/templates/clusterrole.yaml``;
adding a call here means adding its verb there.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, Final

import kubernetes.client
import kubernetes.config

from robodm_engine.jobspec import Storage
from robodm_operator.progress import ProgressError, S3Access

GROUP: Final = "robodm.io"
VERSION: Final = "v1alpha1"
PLURAL: Final = "ingestionjobs"
REQUEST_TIMEOUT_SECONDS: Final = 30

_COLLECTIONS: Final[Mapping[str, str]] = {
    "ray.io/v1/RayCluster": "/apis/ray.io/v1/namespaces/{ns}/rayclusters",
    "batch/v1/Job": "/apis/batch/v1/namespaces/{ns}/jobs",
    "v1/ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
}


class ApiError(Exception):
    """The API server refused a request; ``status`` is the HTTP status code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class NotFoundError(ApiError):
    """HTTP 404: the object (or its kind) does not exist."""


class ConflictError(ApiError):
    """HTTP 409: the object already exists (or was changed concurrently)."""


def load_api_client(kubeconfig: str | None = None) -> kubernetes.client.ApiClient:
    """An API client configured in-cluster, else from a kubeconfig file.

    Args:
        kubeconfig: explicit kubeconfig path; ``None`` tries the service account first, then
            ``$KUBECONFIG`` / ``~/.kube/config``.
    """
    configuration = kubernetes.client.Configuration()
    if kubeconfig is None:
        try:
            kubernetes.config.load_incluster_config(client_configuration=configuration)
            return kubernetes.client.ApiClient(configuration)
        except kubernetes.config.ConfigException:
            pass
    kubernetes.config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return kubernetes.client.ApiClient(configuration)


def collection_path(manifest: Mapping[str, Any]) -> str:
    """The collection URL a manifest is created in."""
    key = f"{manifest['apiVersion']}/{manifest['kind']}"
    return _COLLECTIONS[key].format(ns=manifest["metadata"]["namespace"])


class KubeApi:
    """Synchronous JSON calls on the API server (the handlers run in kopf's thread pool)."""

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self._client = api_client

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send one request; return the decoded JSON body or raise :class:`ApiError`."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, body, _ = self._client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._client.call_api(
            method, url, header_params=headers, body=body, _request_timeout=REQUEST_TIMEOUT_SECONDS
        )
        data = response.read()
        if response.status >= 400:
            try:
                message = str(json.loads(data).get("message", ""))
            except (ValueError, AttributeError):
                message = data[:256].decode(errors="replace")
            error_class = {404: NotFoundError, 409: ConflictError}.get(response.status, ApiError)
            raise error_class(response.status, message)
        decoded: dict[str, Any] = json.loads(data) if data else {}
        return decoded

    def get(self, path: str) -> dict[str, Any] | None:
        """GET an object; ``None`` if it does not exist."""
        try:
            return self.request("GET", path)
        except NotFoundError:
            return None

    def create(self, manifest: Mapping[str, Any]) -> bool:
        """Create an object; ``False`` if one with its name already exists (idempotent)."""
        try:
            self.request("POST", collection_path(manifest), manifest)
        except ConflictError:
            return False
        return True

    def delete(self, path: str) -> bool:
        """Delete an object and, in the background, its dependents; ``False`` if absent.

        Background propagation matters for Jobs: the API's default for them orphans the pods.
        """
        try:
            self.request("DELETE", path, {"propagationPolicy": "Background"})
        except NotFoundError:
            return False
        return True

    # Paths of the objects the operator reads and deletes.

    @staticmethod
    def ingestion_job_path(namespace: str, name: str) -> str:
        """Path of an IngestionJob."""
        return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"

    @staticmethod
    def ray_cluster_path(namespace: str, name: str) -> str:
        """Path of a RayCluster."""
        return f"/apis/ray.io/v1/namespaces/{namespace}/rayclusters/{name}"

    @staticmethod
    def job_path(namespace: str, name: str) -> str:
        """Path of a batch/v1 Job."""
        return f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge-patch an IngestionJob's status subresource."""
        self.request(
            "PATCH",
            f"{self.ingestion_job_path(namespace, name)}/status",
            {"status": dict(status)},
            content_type="application/merge-patch+json",
        )

    def s3_access(self, namespace: str, storage: Storage) -> S3Access:
        """S3 settings for reading progress: endpoint/region from the spec, keys from the Secret.

        Read at every poll (no cache), so a rotated Secret is used at the next poll.

        Raises:
            ProgressError: the referenced Secret does not exist.
        """
        values: dict[str, str] = {}
        if storage.credentials_secret:
            name = storage.credentials_secret
            secret = self.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
            if secret is None:
                raise ProgressError(
                    f"Secret {name!r} (spec.storage.credentialsSecret) not found in {namespace!r}"
                )
            values = {
                key: base64.b64decode(value).decode()
                for key, value in (secret.get("data") or {}).items()
            }
        return S3Access(
            endpoint=storage.endpoint,
            region=storage.region,
            access_key_id=values.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=values.get("AWS_SECRET_ACCESS_KEY"),
            session_token=values.get("AWS_SESSION_TOKEN"),
        )
