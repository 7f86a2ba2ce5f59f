#!/usr/bin/env bash
# Set up everything on a fresh machine: a Python 3.12 virtual environment in .venv with the
# locked dependencies (requirements/lock.txt), this project in editable mode, and helm for
# the chart tests. Idempotent: a second run with an unchanged lock file takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
    local candidates=()
    command -v pyenv >/dev/null 2>&1 && candidates+=("$(pyenv root)/versions/3.12.1/bin/python3.12")
    candidates+=("$HOME/.pyenv/versions/3.12.1/bin/python3.12" python3.12)
    for py in "${candidates[@]}"; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
            echo "$py"; return 0
        fi
    done
    echo "error: Python 3.12 not found (tried: ${candidates[*]}); install it, e.g. 'pyenv install 3.12.1'" >&2
    return 1
}

stamp=.venv/.robodm-setup-stamp
want="$(cat requirements/lock.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ -x .venv/bin/python && -f $stamp && "$(cat $stamp)" == "$want" ]]; then
    echo "setup: .venv is up to date"
else
    PY="$(find_python)"
    echo "setup: using $PY"
    [[ -x .venv/bin/python ]] || "$PY" -m venv .venv
    .venv/bin/python -m pip --version >/dev/null 2>&1 || .venv/bin/python -m ensurepip --upgrade >/dev/null
    # uv installs the several-GB locked environment in parallel, far faster than pip.
    .venv/bin/python -m pip install --quiet --disable-pip-version-check uv
    .venv/bin/python -m uv pip install --python .venv/bin/python -r requirements/lock.txt
    .venv/bin/python -m uv pip install --python .venv/bin/python --no-deps -e .
    echo "$want" > "$stamp"
fi
if [[ -f scripts/install-helm.sh ]]; then
    bash scripts/install-helm.sh
fi
