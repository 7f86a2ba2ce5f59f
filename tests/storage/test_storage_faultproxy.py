"""The fault proxy itself: each fault looks to boto3 like the real thing, and runs repeat."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from faultproxy import FaultProxy

from robodm_engine.errors import StorageError
from robodm_engine.storage import S3Store, StorageOptions, open_store

ProxyFactory = Callable[..., FaultProxy]


def _store(proxy: FaultProxy, bucket: str, attempts: int) -> S3Store:
    store = open_store(
        f"s3://{bucket}/p", StorageOptions.from_env(endpoint_url=proxy.url, max_attempts=attempts)
    )
    assert isinstance(store, S3Store)
    return store


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("slowdown", r"SlowDown: Please reduce your request rate\. \(HTTP 503"),
        ("internal", r"InternalError: .* \(HTTP 500"),
        ("reset", r"Connection"),
    ],
)
def test_faults_reach_the_client_as_s3_would_send_them(
    s3_bucket: str, fault_proxy: ProxyFactory, kind: str, expected: str
) -> None:
    proxy = fault_proxy(rate=1.0, kinds=(kind,))
    with pytest.raises(StorageError, match=expected):
        _store(proxy, s3_bucket, attempts=1).put_bytes("k", b"x")
    assert proxy.faults == {kind: 1}
    assert proxy.history[-1] == ("PUT", f"/{s3_bucket}/p/k", kind)


def test_truncated_body_reaches_the_client(s3_bucket: str, fault_proxy: ProxyFactory) -> None:
    proxy = fault_proxy(rate=0.0)
    store = _store(proxy, s3_bucket, attempts=1)
    store.put_bytes("k", b"0123456789" * 1000)
    proxy.configure(1.0, kinds=("truncate",))
    with pytest.raises(StorageError, match=r"mid-stream 1 time\(s\), last at byte \d+ of 10000"):
        store.get_bytes("k")


def test_same_seed_same_faults(s3_bucket: str, fault_proxy: ProxyFactory) -> None:
    runs = []
    for _ in range(2):
        proxy = fault_proxy(rate=0.4, seed=3, kinds=("internal", "reset"))
        store = _store(proxy, s3_bucket, attempts=10)
        for i in range(15):
            store.exists(f"k{i}")
        runs.append(list(proxy.history))
    assert runs[0] == runs[1]
    assert any(fault for _, _, fault in runs[0])


def test_stop_closes_the_port(fault_proxy: ProxyFactory) -> None:
    proxy = fault_proxy(rate=0.0)
    port = int(proxy.url.rsplit(":", 1)[1])
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    proxy.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
