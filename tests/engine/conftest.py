"""Running ``robodm-engine`` as a real process on jobs written to temporary files."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from robodm_engine.storage import Store
from robodm_engine.synthetic import episode_npz

ENGINE = str(Path(sys.executable).with_name("robodm-engine"))

Engine = Callable[..., subprocess.CompletedProcess[str]]


def run_engine(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``robodm-engine ARGS`` with this process's environment (S3 fixtures' variables too)."""
    return subprocess.run([ENGINE, *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def fill_raw(store: Store, episodes: int, steps: int = 20, side: int = 32) -> None:
    """Raw ``.npz`` episodes, as a teleoperation logger might write them."""
    for index in range(episodes):
        store.put_bytes(f"episode_{index:03d}.npz", episode_npz(steps, side, side, seed=index))


def job_document(source: str, output: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "robodm.io/v1alpha1",
        "kind": "IngestionJob",
        "metadata": {"name": "engine-test"},
        "spec": {
            "source": {"uri": source, "format": "files", "include": ["*.npz"]},
            "output": {"uri": output},
            "numWorkers": 2,
            "rayInitKwargs": {"num_cpus": 2},
            **spec,
        },
    }


@pytest.fixture
def write_job(tmp_path: Path) -> Callable[[Mapping[str, Any]], Path]:
    def write(document: Mapping[str, Any], name: str = "job.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(dict(document), sort_keys=False))
        return path

    return write
