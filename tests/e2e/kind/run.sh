#!/usr/bin/env bash
# End-to-end on a real Kubernetes cluster: kind + KubeRay + MinIO + our chart + an IngestionJob.
#
# Needs Docker, kind, kubectl and helm on PATH, and network access to pull KubeRay's chart and
# the MinIO image. It cannot run on the project's development machines (no Docker engine);
# the same flow runs there against an API server double (tests/operator/test_whole_flow.py).
#
#   tests/e2e/kind/run.sh            # KEEP_CLUSTER=1 keeps the cluster for inspection
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cluster="${CLUSTER_NAME:-robodm-e2e}"
ns=robodm-e2e
kuberay_version="${KUBERAY_VERSION:-1.4.2}"

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 2; }
done

cleanup() { [[ "${KEEP_CLUSTER:-0}" == 1 ]] || kind delete cluster --name "$cluster"; }
trap cleanup EXIT

kind create cluster --name "$cluster" --wait 120s
docker build -f "$repo/docker/engine.Dockerfile" -t robodm-engine:e2e "$repo"
docker build -f "$repo/docker/operator.Dockerfile" -t robodm-operator:e2e "$repo"
kind load docker-image --name "$cluster" robodm-engine:e2e robodm-operator:e2e

helm repo add kuberay https://ray-project.github.io/kuberay-helm/ --force-update
helm install kuberay-operator kuberay/kuberay-operator --version "$kuberay_version" \
  --namespace kuberay-system --create-namespace --wait

helm install robodm "$repo/charts/robodm-operator" --namespace robodm-system --create-namespace \
  --set image.repository=robodm-operator --set image.tag=e2e --set image.pullPolicy=Never \
  --set engine.image.repository=robodm-engine --set engine.image.tag=e2e \
  --set "watchNamespaces={$ns}" --wait

kubectl create namespace "$ns"
kubectl -n "$ns" apply -f "$here/minio.yaml"
kubectl -n "$ns" rollout status deployment/minio --timeout=180s
kubectl -n "$ns" apply -f "$here/seed-data.yaml"
kubectl -n "$ns" wait --for=condition=Complete job/seed-raw-data --timeout=300s

kubectl -n "$ns" apply -f "$here/ingestionjob.yaml"
kubectl -n "$ns" get ij -w & watcher=$!
if ! kubectl -n "$ns" wait ij/teleop-e2e --for=jsonpath='{.status.phase}'=Succeeded \
    --timeout=1200s; then
  kill "$watcher" || true
  kubectl -n "$ns" get ij teleop-e2e -o yaml
  kubectl -n "$ns" logs -l job-name --tail=200 --prefix || true
  exit 1
fi
kill "$watcher" || true

manifest="$(kubectl -n "$ns" get ij teleop-e2e -o jsonpath='{.status.manifest}')"
echo "manifest: $manifest"
kubectl -n "$ns" run inspect --rm -i --restart=Never --image=robodm-engine:e2e \
  --image-pull-policy=Never \
  --env=AWS_ENDPOINT_URL=http://minio:9000 --env=AWS_DEFAULT_REGION=us-east-1 \
  --env=AWS_ACCESS_KEY_ID=robodm-e2e --env=AWS_SECRET_ACCESS_KEY=robodm-e2e-secret \
  -- inspect "$manifest"
# The RayCluster is deleted once the job finishes.
kubectl -n "$ns" wait --for=delete raycluster/teleop-e2e-ray --timeout=120s
echo "kind end-to-end: OK"
