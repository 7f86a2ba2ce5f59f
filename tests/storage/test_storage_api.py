"""The Store contract, run identically against a local directory and S3 (moto over HTTP)."""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
from s3server import S3Server

from robodm_engine.errors import StorageError
from robodm_engine.storage import (
    LocalStore,
    MiB,
    ObjectInfo,
    ObjectNotFoundError,
    S3Store,
    Store,
    sha256_file,
)

StoreFactory = Callable[..., Store]


def _payload(n: int, seed: int = 0) -> bytes:
    return hashlib.shake_256(f"{seed}".encode()).digest(n) if n else b""


@pytest.mark.parametrize("n", [0, 1, 1000, 200_000])
def test_put_get_bytes_round_trip(store: Store, n: int) -> None:
    data = _payload(n, seed=n)
    store.put_bytes("a/b/obj.bin", data)
    assert store.get_bytes("a/b/obj.bin") == data
    assert store.size("a/b/obj.bin") == n
    assert store.exists("a/b/obj.bin")


def test_put_accepts_bytearray_and_memoryview(store: Store) -> None:
    store.put_bytes("ba", bytearray(b"xyz"))
    store.put_bytes("mv", memoryview(b"0123456789")[2:5])
    assert store.get_bytes("ba") == b"xyz"
    assert store.get_bytes("mv") == b"234"


def test_overwrite_replaces_whole_object(store: Store) -> None:
    store.put_bytes("k", b"a much longer first version")
    store.put_bytes("k", b"short")
    assert store.get_bytes("k") == b"short"
    assert store.size("k") == 5


def test_put_file_get_file_round_trip(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(_payload(300_000))
    store.put_file(src, "files/x.bin")
    assert src.exists(), "put_file without move must leave the source"
    dest = tmp_path / "deep" / "er" / "x.bin"
    store.get_file("files/x.bin", dest)
    assert dest.read_bytes() == src.read_bytes()
    assert sha256_file(dest) == hashlib.sha256(src.read_bytes()).hexdigest()
    assert store.sha256("files/x.bin") == sha256_file(src)
    assert not [p.name for p in dest.parent.iterdir() if p.name != "x.bin"], "temp litter"


def test_put_file_move_consumes_source(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "moved.bin"
    src.write_bytes(b"payload")
    store.put_file(src, "m/moved.bin", move=True)
    assert not src.exists()
    assert store.get_bytes("m/moved.bin") == b"payload"


def test_multipart_above_threshold(store: Store, tmp_path: Path, s3_server: S3Server) -> None:
    # threshold 6 MiB, parts of 5 MiB: 11 MiB + 1 is three parts
    data = _payload(11 * MiB + 1, seed=3)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    store.put_file(src, "big/from_file.bin")
    store.put_bytes("big/from_bytes.bin", data)
    for key in ("big/from_file.bin", "big/from_bytes.bin"):
        assert store.size(key) == len(data)
        assert store.get_bytes(key) == data
        if isinstance(store, S3Store):
            head = s3_server.client.head_object(Bucket=store.bucket, Key=f"{store.prefix}/{key}")
            # A multipart ETag is "<md5 of part md5s>-<number of parts>".
            assert head["ETag"].strip('"').endswith("-3"), head["ETag"]
    store.get_file("big/from_bytes.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data


def test_missing_objects(store: Store, tmp_path: Path) -> None:
    assert not store.exists("nope/x")
    assert store.size("nope/x") is None
    for call in (
        lambda: store.get_bytes("nope/x"),
        lambda: store.open("nope/x"),
        lambda: store.get_file("nope/x", tmp_path / "x"),
    ):
        with pytest.raises(ObjectNotFoundError) as info:
            call()
        assert store.url("nope/x") in str(info.value)
        assert isinstance(info.value, StorageError)
    # no partial download either
    assert {p.name for p in tmp_path.iterdir()} <= {"store"}


def test_delete_is_idempotent(store: Store) -> None:
    store.put_bytes("d/x", b"1")
    store.delete("d/x")
    assert not store.exists("d/x")
    store.delete("d/x")
    store.delete("never/existed")


def test_list_prefix_suffix_sorted(store: Store) -> None:
    keys = [
        "_robodm/records/t_001.json",
        "_robodm/records/t_000.json",
        "_robodm/progress.json",
        "t_000.mkv",
        "t_001.mkv",
        "t_010.mkv",
        "nested/deeper/t_100.mkv",
        "manifest.json",
    ]
    for i, key in enumerate(keys):
        store.put_bytes(key, b"x" * i)
    # list_page_size=3 in the fixture: several pages on S3
    everything = store.list()
    assert [o.key for o in everything] == sorted(keys)
    assert {o.key: o.size for o in everything} == {k: i for i, k in enumerate(keys)}
    assert store.list("_robodm/records/") == [
        ObjectInfo("_robodm/records/t_000.json", 1),
        ObjectInfo("_robodm/records/t_001.json", 0),
    ]
    assert [o.key for o in store.list(suffix=".mkv")] == [
        "nested/deeper/t_100.mkv",
        "t_000.mkv",
        "t_001.mkv",
        "t_010.mkv",
    ]
    # a prefix is a string prefix, not only a directory
    assert [o.key for o in store.list("t_0")] == ["t_000.mkv", "t_001.mkv", "t_010.mkv"]
    assert [o.key for o in store.list("t_00", ".mkv")] == ["t_000.mkv", "t_001.mkv"]
    assert [o.key for o in store.list("_robodm/re")] == [
        "_robodm/records/t_000.json",
        "_robodm/records/t_001.json",
    ]
    assert store.list("absent/") == []


def test_list_of_missing_root_is_empty(store_factory: StoreFactory) -> None:
    assert store_factory().list() == []


def test_url_and_uri(store: Store) -> None:
    if isinstance(store, S3Store):
        assert store.uri == f"s3://{store.bucket}/root/dir"
        assert store.url("a/b.mkv") == f"s3://{store.bucket}/root/dir/a/b.mkv"
    else:
        assert isinstance(store, LocalStore)
        assert store.url("a/b.mkv") == str(store.root / "a" / "b.mkv")
        assert Path(store.uri).is_absolute()


@pytest.mark.parametrize(
    "key", ["", "/abs", "a/../b", "..", "a//b", "a/", "./a", "a\\b", "a/\x00b", "x" * 1025]
)
def test_invalid_keys_rejected_by_every_method(store: Store, key: str, tmp_path: Path) -> None:
    calls = [
        lambda: store.put_bytes(key, b"x"),
        lambda: store.get_bytes(key),
        lambda: store.exists(key),
        lambda: store.size(key),
        lambda: store.open(key),
        lambda: store.delete(key),
        lambda: store.url(key),
        lambda: store.get_file(key, tmp_path / "out"),
        lambda: store.put_file(__file__, key),
    ]
    for call in calls:
        with pytest.raises(StorageError, match="invalid key"):
            call()
    assert store.list() == []


@pytest.mark.parametrize("prefix", ["/x", "a//", "../", "a/../b/"])
def test_invalid_list_prefix(store: Store, prefix: str) -> None:
    with pytest.raises(StorageError, match="invalid prefix"):
        store.list(prefix)


def test_missing_source_file(store: Store, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="source file does not exist"):
        store.put_file(tmp_path / "absent.bin", "k")
    assert store.list() == []


def test_cached_path(store: Store, tmp_path: Path) -> None:
    data = _payload(100_000, seed=9)
    store.put_bytes("t/x.mkv", data)
    cache = tmp_path / "cache"
    path = store.cached_path("t/x.mkv", cache, expected_size=len(data))
    assert path.read_bytes() == data
    if isinstance(store, S3Store):
        assert path.is_relative_to(cache)
        mtime = path.stat().st_mtime_ns
        # a hit: same file, not downloaded again
        assert store.cached_path("t/x.mkv", cache) == path
        assert path.stat().st_mtime_ns == mtime
        # a stale copy (object changed size) is replaced
        store.put_bytes("t/x.mkv", b"new")
        assert store.cached_path("t/x.mkv", cache).read_bytes() == b"new"
    else:
        assert path == Path(store.url("t/x.mkv")), "a local store serves files in place"
    with pytest.raises(StorageError):
        store.cached_path("t/x.mkv", cache, expected_size=1)
    with pytest.raises(ObjectNotFoundError):
        store.cached_path("t/none.mkv", cache)


def test_store_pickles(store: Store) -> None:
    store.put_bytes("p", b"before")
    clone = pickle.loads(pickle.dumps(store))
    assert clone.uri == store.uri
    assert clone.get_bytes("p") == b"before"
    clone.put_bytes("p", b"after")
    assert store.get_bytes("p") == b"after"
