"""URIs, keys and options: pure parsing, no server."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from robodm_engine.errors import StorageError
from robodm_engine.storage import (
    LocalStore,
    S3Store,
    StorageOptions,
    open_store,
    validate_key,
)


@pytest.mark.parametrize(
    "key",
    ["a", "a/b/c.mkv", "_robodm/records/t_000.json", ".hidden", "a b/ünï.json", "x" * 1024],
)
def test_valid_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("/etc/passwd", "relative"),
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("a/./b", "'.'"),
        ("a//b", "empty path segments"),
        ("a/", "empty path segments"),
        ("a\\..\\b", "backslash"),
        ("a\nb", "control"),
        ("é" * 513, "1024 bytes"),
    ],
)
def test_invalid_keys_say_why(key: str, reason: str) -> None:
    with pytest.raises(StorageError, match="invalid key") as info:
        validate_key(key)
    assert reason in str(info.value)
    assert repr(key)[:20] in str(info.value)


@given(st.text(alphabet="ab./\\\x00 é", max_size=12))
def test_every_accepted_key_stays_inside_a_local_root(key: str) -> None:
    root = Path("/srv/root")
    try:
        validate_key(key)
    except StorageError:
        return
    path = LocalStore(root).path(key)
    assert path.is_relative_to(root) and path != root
    assert ".." not in path.parts and path.as_posix() == f"{root}/{key}"


def test_non_string_key() -> None:
    with pytest.raises(StorageError, match="must be a str"):
        validate_key(Path("a"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("uri", "bucket", "prefix"),
    [
        ("s3://bucket", "bucket", ""),
        ("s3://bucket/", "bucket", ""),
        ("s3://bucket/a/b", "bucket", "a/b"),
        ("s3://bucket/a/b/", "bucket", "a/b"),
        ("S3://my.bucket-1/x", "my.bucket-1", "x"),
    ],
)
def test_open_store_s3(uri: str, bucket: str, prefix: str) -> None:
    store = open_store(uri, StorageOptions())
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == (bucket, prefix)
    # uri round-trips through open_store
    again = open_store(store.uri, StorageOptions())
    assert isinstance(again, S3Store)
    assert (again.bucket, again.prefix) == (bucket, prefix)


def test_open_store_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for uri in (str(tmp_path), f"file://{tmp_path}", f"file://localhost{tmp_path}", tmp_path):
        store = open_store(uri)
        assert isinstance(store, LocalStore)
        assert store.root == tmp_path
        assert open_store(store.uri).uri == store.uri
    spaced = open_store(f"file://{tmp_path}/with%20space")
    assert isinstance(spaced, LocalStore)
    assert spaced.root == tmp_path / "with space"
    monkeypatch.chdir(tmp_path)
    relative = open_store("out/ds")
    assert isinstance(relative, LocalStore)
    assert relative.root == tmp_path / "out" / "ds"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("gs://bucket/x", "unsupported storage URI 'gs://bucket/x'"),
        ("http://host/x", "unsupported storage URI 'http://host/x'"),
        ("s3://", "no bucket"),
        ("s3:///x", "no bucket"),
        ("s3://b/x", "invalid bucket name"),
        ("s3://bucket/a/../b", "'..'"),
        ("s3://bucket/a//b", "empty path segments"),
        ("file://relative/path", "must be absolute"),
        ("", "non-empty"),
    ],
)
def test_open_store_rejects(uri: str, message: str) -> None:
    with pytest.raises(StorageError) as info:
        open_store(uri, StorageOptions())
    assert message in str(info.value)
    if uri:
        assert repr(uri) in str(info.value)


def test_options_from_env_prefers_service_specific_variables() -> None:
    env = {
        "AWS_ENDPOINT_URL": "http://generic:9000",
        "AWS_ENDPOINT_URL_S3": "http://s3-only:9000",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-central-1",
        "AWS_MAX_ATTEMPTS": "4",
        "AWS_RETRY_MODE": "adaptive",
    }
    opts = StorageOptions.from_env(env)
    assert opts.endpoint_url == "http://s3-only:9000"
    assert opts.region == "eu-central-1"
    assert opts.max_attempts == 4
    assert opts.retry_mode == "adaptive"
    fallback = StorageOptions.from_env(
        {"AWS_ENDPOINT_URL": "http://generic:9000", "AWS_DEFAULT_REGION": "eu-west-1"}
    )
    assert (fallback.endpoint_url, fallback.region) == ("http://generic:9000", "eu-west-1")
    ignored = StorageOptions.from_env({**env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"})
    assert ignored.endpoint_url is None
    assert StorageOptions.from_env({}) == StorageOptions()


def test_options_from_env_reads_the_environment_at_call_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://first:1")
    assert StorageOptions.from_env().endpoint_url == "http://first:1"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://second:2")
    store = open_store("s3://bucket/x")
    assert store.options.endpoint_url == "http://second:2"


def test_options_overrides_and_validation() -> None:
    opts = StorageOptions.from_env({"AWS_REGION": "eu-west-1"}, region="us-east-2", max_attempts=3)
    assert (opts.region, opts.max_attempts) == ("us-east-2", 3)
    with pytest.raises(StorageError, match="unknown storage option"):
        StorageOptions.from_env({}, endpoint="http://x")
    with pytest.raises(StorageError, match="AWS_MAX_ATTEMPTS"):
        StorageOptions.from_env({"AWS_MAX_ATTEMPTS": "many"})
    with pytest.raises(StorageError, match="multipart_chunksize") as info:
        StorageOptions(multipart_chunksize=1024, max_attempts=0)
    assert "max_attempts" in str(info.value), "every problem is reported at once"
    with pytest.raises(StorageError, match="list_page_size"):
        StorageOptions(list_page_size=5000)


def test_s3_client_configuration() -> None:
    """The client gets our retries and timeouts, and path-style addressing for custom endpoints."""
    store = open_store(
        "s3://bucket/x",
        StorageOptions(endpoint_url="http://minio:9000", region="eu-west-1", max_attempts=7),
    )
    assert isinstance(store, S3Store)
    config = store.client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 7}
    assert config.s3 == {"addressing_style": "path"}
    assert store.client.meta.region_name == "eu-west-1"
    assert store.client.meta.endpoint_url == "http://minio:9000"
    aws = open_store("s3://bucket/x", StorageOptions(region="us-east-1", retry_mode="adaptive"))
    assert isinstance(aws, S3Store)
    assert aws.client.meta.config.s3 is None
    assert aws.client.meta.config.retries["mode"] == "adaptive"


def test_s3_clients_are_shared_per_options() -> None:
    first = open_store("s3://bucket/a", StorageOptions(endpoint_url="http://x:1"))
    second = open_store("s3://other/b", StorageOptions(endpoint_url="http://x:1"))
    third = open_store("s3://bucket/a", StorageOptions(endpoint_url="http://x:1", max_attempts=2))
    assert isinstance(first, S3Store) and isinstance(second, S3Store)
    assert isinstance(third, S3Store)
    assert first.client is second.client
    assert third.client is not first.client
    assert pickle.loads(pickle.dumps(first)).client is first.client
