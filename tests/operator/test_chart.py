"""The Helm chart: lints, renders valid objects, ships the same CRD, and grants exactly enough.

helm comes from ``scripts/install-helm.sh`` (CI runs it); without it these tests skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from conftest import CHART_DIR, CRD_PATH, REPO, ApiServer, Kube, make_job, wait_for
from test_operator_flow import BATCH_JOBS, CLUSTERS, JOBS, mark_cluster_ready, play_job, wait_phase

K8S_VERSION = "1.33.0"


def find_helm() -> str | None:
    venv_helm = REPO / ".venv" / "bin" / "helm"
    return str(venv_helm) if venv_helm.exists() else shutil.which("helm")


HELM = find_helm()
needs_helm = pytest.mark.skipif(
    HELM is None, reason="helm not found: run scripts/install-helm.sh (CI does)"
)


def helm(*args: str) -> str:
    assert HELM is not None
    done = subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def template(*sets: str) -> list[dict[str, Any]]:
    flags = [arg for value in sets for arg in ("--set", value)]
    out = helm("template", "rdm", str(CHART_DIR), "--namespace", "ops", "--include-crds", *flags)
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.mark.parametrize("copy", [
    CHART_DIR / "crds" / "ingestionjob.yaml",
    REPO / "robodm_engine" / "schemas" / "ingestionjob.crd.yaml",
])
def test_every_copy_of_the_crd_is_identical(copy: Path) -> None:
    """crds/ingestionjob.yaml is the source of truth; the chart and the engine ship copies."""
    relative = copy.relative_to(REPO)
    assert copy.read_bytes() == CRD_PATH.read_bytes(), (
        f"{relative} drifted from crds/ingestionjob.yaml; run: cp crds/ingestionjob.yaml {relative}"
    )


def test_every_value_is_documented() -> None:
    """Each key has a helm-docs "# --" comment, unless it is a map or inside a documented one."""
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    undocumented = []
    ancestors: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing keys
    for number, line in enumerate(lines):
        key = re.match(r"^(\s*)([A-Za-z]\w*):(.*)$", line)
        if not key:
            continue
        indent = len(key.group(1))
        while ancestors and ancestors[-1][0] >= indent:
            ancestors.pop()
        comments = []
        for previous in reversed(lines[:number]):
            if not previous.strip().startswith("#"):
                break
            comments.append(previous)
        documented = any("# --" in comment for comment in comments)
        following = next((ln for ln in lines[number + 1 :] if ln.strip()), "")
        is_map = not key.group(3).strip() and len(following) - len(following.lstrip()) > indent
        if not (documented or is_map or any(doc for _, doc in ancestors)):
            undocumented.append(f"values.yaml:{number + 1}: {line.strip()}")
        ancestors.append((indent, documented))
    assert not undocumented, undocumented


@needs_helm
def test_helm_lint_strict() -> None:
    helm("lint", "--strict", str(CHART_DIR))


@needs_helm
@pytest.mark.parametrize(
    "sets",
    [(), ("watchNamespaces={team-a,team-b}", "logLevel=debug", "pollInterval=2")],
    ids=["clusterwide", "namespaced"],
)
def test_rendered_objects_are_valid(sets: tuple[str, ...]) -> None:
    docs = template(*sets)
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    kinds = sorted(doc["kind"] for doc in docs)
    if sets:
        assert kinds.count("Role") == kinds.count("RoleBinding") == 2
        assert "ClusterRole" not in kinds
    else:
        assert {"ClusterRole", "ClusterRoleBinding"} <= set(kinds)
    assert {"CustomResourceDefinition", "Deployment", "ServiceAccount"} <= set(kinds)


@needs_helm
def test_deployment_is_locked_down_and_configured() -> None:
    deployment = next(d for d in template("watchNamespaces={a,b}") if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert context["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["securityContext"]["runAsNonRoot"] is True
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["ROBODM_WATCH_NAMESPACES"] == "a,b"
    assert env["ROBODM_ENGINE_IMAGE"] == "ghcr.io/robodm/robodm-engine:0.1.0"
    assert container["image"] == "ghcr.io/robodm/robodm-operator:0.1.0"
    assert deployment["spec"]["strategy"]["type"] == "Recreate"


@needs_helm
def test_bad_values_fail_the_render() -> None:
    assert HELM is not None
    done = subprocess.run(
        [HELM, "template", "rdm", str(CHART_DIR), "--set", "logLevel=LOUD"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "logLevel must be" in done.stderr


def rbac_allows(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
        for rule in rules
    )


_RESOURCE_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)(?:/namespaces/[^/]+)?/(?P<plural>[^/]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?$"
)


def required_permission(method: str, path: str, watch: bool) -> tuple[str, str, str] | None:
    """The RBAC (group, resource, verb) a request needs; None for discovery."""
    match = _RESOURCE_PATH.match(path)
    if match is None or (path.startswith("/api/v1/") is False and match.group("group") is None):
        return None
    if path.count("/") <= 3 and not path.startswith("/api/v1/"):
        return None  # /apis/<group>/<version>: discovery
    group = match.group("group") or ""
    resource = match.group("plural") + (f"/{match.group('sub')}" if match.group("sub") else "")
    name = match.group("name")
    verb = {
        "GET": "watch" if watch else ("get" if name else "list"),
        "POST": "create",
        "PATCH": "patch",
        "PUT": "update",
        "DELETE": "delete",
    }[method]
    return group, resource, verb


@needs_helm
def test_rbac_covers_every_call_the_operator_makes(
    kube: Kube,
    api_server: ApiServer,
    start_operator: Callable[[], Any],
    tmp_path: Path,
) -> None:
    """Run a whole lifecycle and check each API call against the chart's ClusterRole."""
    rules = next(d for d in template() if d["kind"] == "ClusterRole")["rules"]
    kube.create_secret("s3-creds", {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"})
    start_operator()
    kube.create(JOBS, make_job("audited"))
    kube.create(JOBS, make_job("bad-spec", groupSize=0))
    mark_cluster_ready(kube, "audited")
    play_job(kube, "audited-engine-1", "failed")
    play_job(kube, "audited-engine-2", "succeeded")
    wait_phase(kube, "audited", "Succeeded")
    wait_phase(kube, "bad-spec", "Failed")
    kube.delete(f"{JOBS}/audited")
    wait_for(lambda: kube.get(f"{JOBS}/audited") is None, what="deletion")
    time.sleep(0.5)  # let kopf post its events for the failed spec

    needed = {
        permission
        for method, path, watch in api_server.operator_calls()
        if (permission := required_permission(method, path, watch)) is not None
    }
    missing = sorted(p for p in needed if not rbac_allows(rules, *p))
    assert not missing, f"the ClusterRole lacks: {missing}"
    # The lifecycle exercised the sensitive rules, so they are demonstrably needed.
    assert {
        ("", "secrets", "get"),
        ("robodm.io", "ingestionjobs/status", "patch"),
        ("ray.io", "rayclusters", "create"),
        ("batch", "jobs", "create"),
        ("", "configmaps", "create"),
    } <= needed
    assert kube.get(f"{CLUSTERS}/audited-ray") is None
    assert kube.get(f"{BATCH_JOBS}/audited-engine-2") is None
