"""S3 behind a fault-injecting proxy: throttling, 5xx, dropped connections, truncated bodies.

Every operation must either produce exactly the right bytes or fail with a StorageError naming
the URI, and a failed upload must leave nothing behind.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from faultproxy import FAULT_KINDS, FaultProxy
from s3server import S3Server

from robodm_engine.errors import StorageError
from robodm_engine.storage import MiB, S3Store, StorageOptions, open_store

ProxyFactory = Callable[..., FaultProxy]


def _store(proxy: FaultProxy, bucket: str, **options: object) -> S3Store:
    settings: dict[str, object] = {
        "endpoint_url": proxy.url,
        "multipart_threshold": 6 * MiB,
        "multipart_chunksize": 5 * MiB,
        "read_block_size": 256 * 1024,
        "list_page_size": 4,
        "max_attempts": 10,
        **options,
    }
    store = open_store(f"s3://{bucket}/faulty", StorageOptions.from_env(**settings))
    assert isinstance(store, S3Store)
    return store


def _is_object_get(method: str, path: str) -> bool:
    return method == "GET" and "list-type=" not in path and "uploads" not in path


def _data(n: int, seed: int) -> bytes:
    return hashlib.shake_256(seed.to_bytes(4, "big")).digest(n)


def test_every_operation_survives_a_quarter_of_requests_failing(
    s3_bucket: str, fault_proxy: ProxyFactory, tmp_path: Path
) -> None:
    seed = 2
    proxy = fault_proxy(rate=0.25, seed=seed)
    store = _store(proxy, s3_bucket)
    small = {f"small/{i:02d}.bin": _data(1000 + i, seed * 100 + i) for i in range(12)}
    big = _data(11 * MiB + 3, seed)
    src = tmp_path / "big.bin"
    src.write_bytes(big)

    for key, data in small.items():
        store.put_bytes(key, data)
    store.put_file(src, "big/file.bin")  # multipart: 3 parts
    store.put_bytes("big/bytes.bin", big)  # multipart from memory

    listed = store.list()
    assert {o.key: o.size for o in listed} == {
        **{k: len(v) for k, v in small.items()},
        "big/file.bin": len(big),
        "big/bytes.bin": len(big),
    }
    for key, data in small.items():
        assert store.get_bytes(key) == data
        assert store.size(key) == len(data)
        assert store.exists(key)
    assert store.get_bytes("big/bytes.bin") == big
    store.get_file("big/file.bin", tmp_path / "down.bin")
    assert (tmp_path / "down.bin").read_bytes() == big

    rng = random.Random(seed)
    model = io.BytesIO(big)
    with store.open("big/file.bin") as f:
        for _ in range(30):
            pos, n = rng.randrange(len(big)), rng.randrange(300_000)
            f.seek(pos)
            model.seek(pos)
            assert f.read(n) == model.read(n)

    for key in list(small)[:4]:
        store.delete(key)
    assert len(store.list("small/")) == len(small) - 4

    # the test is only meaningful if every kind of fault actually happened
    assert set(proxy.faults) == set(FAULT_KINDS), proxy.faults
    assert proxy.faults.total() >= 0.15 * proxy.requests.total()


def test_threads_sharing_a_store_under_faults(s3_bucket: str, fault_proxy: ProxyFactory) -> None:
    proxy = fault_proxy(rate=0.2, seed=11, kinds=("internal", "reset", "truncate"))
    store = _store(proxy, s3_bucket)
    objects = {f"par/{i:02d}": _data(50_000 + i, i) for i in range(24)}

    def round_trip(key: str) -> bytes:
        store.put_bytes(key, objects[key])
        return store.get_bytes(key)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = dict(zip(objects, pool.map(round_trip, objects), strict=True))
    assert results == objects
    assert proxy.faults.total() > 0


def test_bodies_cut_mid_stream_resume_from_the_offset_reached(
    s3_bucket: str, fault_proxy: ProxyFactory
) -> None:
    proxy = fault_proxy(rate=0.0)
    store = _store(proxy, s3_bucket)
    data = _data(3 * MiB, 7)
    store.put_bytes("cut.bin", data)

    proxy.configure(0.5, kinds=("truncate",), match=_is_object_get)
    proxy.requests.clear()
    assert store.get_bytes("cut.bin") == data
    with store.open("cut.bin") as f:
        assert f.read() == data
    assert proxy.faults["truncate"] >= 3, proxy.faults
    # each truncation costs one extra (ranged) GET, never a restart of the whole transfer
    blocks = -(-len(data) // (256 * 1024))
    assert proxy.requests["GET"] == 1 + blocks + proxy.faults["truncate"]


def test_truncated_listing_responses_are_retried(s3_bucket: str, fault_proxy: ProxyFactory) -> None:
    proxy = fault_proxy(rate=0.0)
    store = _store(proxy, s3_bucket)
    keys = [f"k/{i:03d}" for i in range(15)]
    for key in keys:
        store.put_bytes(key, b"x")
    proxy.configure(
        0.5, kinds=("truncate", "reset"), match=lambda m, path: m == "GET" and "list-type=" in path
    )
    assert [o.key for o in store.list("k/")] == keys
    assert proxy.faults["truncate"] > 0 and proxy.faults["reset"] > 0, proxy.faults


def test_failed_put_leaves_no_object(
    s3_bucket: str, s3_server: S3Server, fault_proxy: ProxyFactory
) -> None:
    proxy = fault_proxy(rate=1.0, kinds=("internal",), match=lambda m, p: m == "PUT")
    store = _store(proxy, s3_bucket, max_attempts=3)
    with pytest.raises(StorageError) as info:
        store.put_bytes("never.bin", b"data")
    message = str(info.value)
    assert store.url("never.bin") in message
    assert "InternalError" in message and "3 attempt(s)" in message
    assert proxy.requests["PUT"] == 3
    assert "Contents" not in s3_server.client.list_objects_v2(Bucket=s3_bucket)


def test_failed_multipart_upload_is_aborted(
    s3_bucket: str, s3_server: S3Server, fault_proxy: ProxyFactory, tmp_path: Path
) -> None:
    # Only part uploads fail: create and abort go through.
    proxy = fault_proxy(
        rate=1.0, kinds=("reset", "internal"), match=lambda m, p: m == "PUT" and "partNumber=" in p
    )
    store = _store(proxy, s3_bucket, max_attempts=2, max_concurrency=2)
    src = tmp_path / "big.bin"
    src.write_bytes(_data(11 * MiB, 3))
    with pytest.raises(StorageError, match=r"s3://.*/faulty/big\.bin"):
        store.put_file(src, "big.bin")
    with pytest.raises(StorageError, match=r"s3://.*/faulty/big2\.bin"):
        store.put_bytes("big2.bin", src.read_bytes())
    client = s3_server.client
    assert "Contents" not in client.list_objects_v2(Bucket=s3_bucket)
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert proxy.requests["POST"] >= 2, "multipart uploads were started"
    assert proxy.requests["DELETE"] >= 2, "and aborted"


def test_reads_give_up_after_max_attempts_naming_the_uri(
    s3_bucket: str, fault_proxy: ProxyFactory
) -> None:
    proxy = fault_proxy(rate=0.0)
    store = _store(proxy, s3_bucket, max_attempts=3)
    store.put_bytes("r.bin", _data(100_000, 1))
    proxy.configure(1.0, kinds=("truncate",), match=_is_object_get)
    with pytest.raises(StorageError, match=r"s3://.*/faulty/r\.bin: GET failed mid-stream 3 time"):
        store.get_bytes("r.bin")
    proxy.configure(1.0, kinds=("reset",), match=_is_object_get)
    with pytest.raises(StorageError, match=r"s3://.*/faulty/r\.bin: GET failed"):
        store.get_bytes("r.bin")


def test_failed_download_leaves_no_partial_file(
    s3_bucket: str, fault_proxy: ProxyFactory, tmp_path: Path
) -> None:
    proxy = fault_proxy(rate=0.0)
    store = _store(proxy, s3_bucket, max_attempts=2)
    store.put_bytes("d.bin", _data(11 * MiB, 4))  # downloaded in parallel ranges
    dest_dir = tmp_path / "cache"
    dest_dir.mkdir()
    (dest_dir / "d.bin").write_bytes(b"stale copy")
    proxy.configure(1.0, kinds=("truncate", "reset"), match=_is_object_get)
    with pytest.raises(StorageError, match=r"s3://.*/faulty/d\.bin: download failed"):
        store.get_file("d.bin", dest_dir / "d.bin")
    assert [p.name for p in dest_dir.iterdir()] == ["d.bin"]
    assert (dest_dir / "d.bin").read_bytes() == b"stale copy", "the old file is untouched"
