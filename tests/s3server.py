"""A real moto S3 server on loopback for tests, plus pytest fixtures over it.

The server runs in a child process (``python tests/s3server.py``) so that moto's in-memory
backend, its Werkzeug threads and its GIL stay out of the test process, and nothing in the
test process is patched: every request goes over HTTP exactly as against MinIO or AWS. The child
binds port 0, reports the port on stdout and exits when its stdin closes, so a crashed test
session cannot leave a server behind.

Use from any test package::

    from s3server import S3Server, run_s3_server   # tests/ is on sys.path (rootless conftest)

    with run_s3_server() as server:
        bucket = server.create_bucket()
        store = open_store(f"s3://{bucket}/out", StorageOptions(endpoint_url=server.endpoint_url))

or through the fixtures defined below (``s3_server``, ``s3_env``, ``s3_bucket``), which
``tests/conftest.py`` registers for every package by importing them. (Import the module as
``s3server``, not ``tests.s3server``: a ``tests`` package installed by draccus in site-packages
shadows ours as long as ``tests/`` has no ``__init__.py``.)
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

# Credentials the child and the clients agree on; moto accepts any.
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
# Variables that would make boto3 look beyond the environment (profiles, metadata services,
# real endpoints) during a test.
_ISOLATING = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
_CLEARED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
)
_START_TIMEOUT_S = 60.0


@dataclass
class S3Server:
    """A running moto server: its endpoint and the environment a client needs to reach it."""

    endpoint_url: str
    process: subprocess.Popen[str] = field(repr=False)

    @property
    def env(self) -> dict[str, str]:
        """``AWS_*`` variables pointing boto3 (and ``StorageOptions.from_env``) at the server."""
        return {**TEST_CREDENTIALS, **_ISOLATING, "AWS_ENDPOINT_URL": self.endpoint_url}

    @functools.cached_property
    def client(self) -> Any:
        """A plain boto3 S3 client for setup and assertions, independent of the code under test."""
        import boto3.session
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=TEST_CREDENTIALS["AWS_REGION"],
        )
        return session.client(
            "s3", endpoint_url=self.endpoint_url, config=Config(s3={"addressing_style": "path"})
        )

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh uniquely named one by default) and return its name."""
        name = name or f"test-{uuid.uuid4().hex[:20]}"
        self.client.create_bucket(Bucket=name)
        return name

    def delete_bucket(self, name: str) -> None:
        """Empty a bucket (objects and unfinished multipart uploads) and delete it.

        moto keeps every byte in memory, so tests give their data back.
        """
        client = self.client
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", ())]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        uploads = client.list_multipart_uploads(Bucket=name).get("Uploads", ())
        for upload in uploads:
            client.abort_multipart_upload(
                Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        client.delete_bucket(Bucket=name)

    def reset(self) -> None:
        """Drop every bucket and object (moto's reset API)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()


def _start(timeout: float) -> S3Server:
    # -u: the port line must not sit in a pipe buffer.
    process = subprocess.Popen(
        [sys.executable, "-u", __file__],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **TEST_CREDENTIALS},
    )
    assert process.stdout is not None
    # The child prints one JSON line once its socket is bound and listening.
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else ""
    if not line:
        process.kill()
        process.wait(timeout=10)
        raise RuntimeError(
            f"moto server did not start within {timeout:.0f} s (exit code {process.returncode})"
        )
    port = int(json.loads(line)["port"])
    return S3Server(endpoint_url=f"http://127.0.0.1:{port}", process=process)


def _stop(server: S3Server) -> None:
    process = server.process
    with contextlib.suppress(OSError):
        assert process.stdin is not None
        process.stdin.close()  # the child exits on EOF
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


@contextlib.contextmanager
def run_s3_server(timeout: float = _START_TIMEOUT_S) -> Iterator[S3Server]:
    """Start a moto S3 server on 127.0.0.1 (a free port) for the duration of the block."""
    server = _start(timeout)
    try:
        yield server
    finally:
        _stop(server)


# ---------------------------------------------------------------------------------------------
# pytest fixtures


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One moto S3 server for the whole session (tests isolate themselves by bucket)."""
    with run_s3_server() as server:
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the standard AWS variables at the server for one test (restored afterwards)."""
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server.env


@pytest.fixture
def s3_bucket(s3_server: S3Server, s3_env: dict[str, str]) -> Iterator[str]:
    """A fresh empty bucket, with the environment pointing at the server; deleted afterwards."""
    name = s3_server.create_bucket()
    yield name
    s3_server.delete_bucket(name)


# ---------------------------------------------------------------------------------------------
# The child process


def _serve() -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    print(json.dumps({"port": port}), flush=True)
    # Block until the parent closes our stdin (or dies, which closes it too).
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    _serve()
