"""Fixtures shared by every test package.

Ray and Hugging Face are pointed at per-session temporary folders so a test run
leaves nothing in ``$HOME`` or ``/tmp/ray``, and no hub is ever contacted.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="robodm-tests-"))
# Set before anything imports ray or huggingface_hub: both read these at import.
os.environ.setdefault("RAY_TMPDIR", str(_SESSION_TMP / "ray"))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# A loaded 2-core machine can take over a minute to start a raylet.
os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HOME", str(_SESSION_TMP / "hf"))
os.environ.setdefault("HF_LEROBOT_HOME", str(_SESSION_TMP / "lerobot"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """A real local Ray cluster with 2 CPUs, shared by the whole session."""
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            _temp_dir=os.environ["RAY_TMPDIR"],
        )
    yield
    ray.shutdown()


# The moto S3 server fixtures (s3_server, s3_env, s3_bucket) and the fault-injecting proxy
# in front of it (fault_proxy), for every test package.
from faultproxy import fault_proxy  # noqa: E402, F401
from s3server import s3_bucket, s3_env, s3_server  # noqa: E402, F401
