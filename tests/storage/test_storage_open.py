"""``Store.open``: a seekable file that behaves like a local one, and cheap on S3."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robodm_engine.errors import StorageError
from robodm_engine.storage import MiB, S3ReadableFile, S3Store, StorageOptions, Store, open_store

BLOCK = 64 * 1024  # read_block_size of the fixtures' stores
DATA = hashlib.shake_256(b"open").digest(5 * BLOCK + 12_345)

ops = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.integers(-1, 3 * BLOCK)),
        st.tuples(st.just("seek"), st.integers(0, len(DATA) + 100), st.just(0)),
        st.tuples(st.just("seek"), st.integers(-2 * BLOCK, 2 * BLOCK), st.just(1)),
        st.tuples(st.just("seek"), st.integers(-len(DATA), 50), st.just(2)),
        st.tuples(st.just("readinto"), st.integers(0, 2 * BLOCK)),
    ),
    max_size=25,
)


# The store fixture is function-scoped but read-only here, so sharing it across examples is safe.
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(script=ops)
def test_random_seeks_and_reads_match_bytes(store: Store, script: list[tuple]) -> None:
    if not store.exists("data.bin"):
        store.put_bytes("data.bin", DATA)
    model = io.BytesIO(DATA)
    with store.open("data.bin") as f:
        for op in script:
            if op[0] == "read":
                assert f.read(op[1]) == model.read(op[1])
            elif op[0] == "readinto":
                got, want = bytearray(op[1]), bytearray(op[1])
                assert f.readinto(got) == model.readinto(want)
                assert got == want
            else:
                target = model.tell() + op[1] if op[2] == 1 else op[1]
                if op[2] == 2:
                    target = len(DATA) + op[1]
                if target < 0:
                    with pytest.raises(OSError):
                        f.seek(op[1], op[2])
                    continue
                assert f.seek(op[1], op[2]) == model.seek(op[1], op[2])
            assert f.tell() == model.tell()


def test_file_protocol(store: Store) -> None:
    store.put_bytes("lines.txt", b"one\ntwo\nthree")
    with store.open("lines.txt") as f:
        assert f.readable() and f.seekable() and not f.writable()
        assert list(f) == [b"one\n", b"two\n", b"three"]
        assert f.read() == b""
        f.seek(0)
        assert f.readline() == b"one\n"
        assert f.read(2) == b"tw"
        f.seek(100)
        assert f.read() == b"", "reading past the end returns nothing, as for files"
    assert f.closed
    with pytest.raises(ValueError, match="closed"):
        f.read()


def test_empty_object(store: Store) -> None:
    store.put_bytes("empty", b"")
    with store.open("empty") as f:
        assert f.read() == b""
        assert f.seek(0, io.SEEK_END) == 0


def _s3_store_via(proxy: FaultProxy, bucket: str, **options: object) -> S3Store:
    opts = StorageOptions.from_env(endpoint_url=proxy.url, read_block_size=BLOCK, **options)
    store = open_store(f"s3://{bucket}/r", opts)
    assert isinstance(store, S3Store)
    return store


def test_s3_sequential_reads_cost_one_request_per_block(
    s3_bucket: str, fault_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = fault_proxy(rate=0.0)
    store = _s3_store_via(proxy, s3_bucket, read_cache_blocks=2)
    store.put_bytes("seq.bin", DATA)
    proxy.requests.clear()
    with store.open("seq.bin") as f:
        # PyAV-like: many small reads
        chunks = iter(lambda: f.read(4096), b"")
        assert b"".join(chunks) == DATA
        blocks = -(-len(DATA) // BLOCK)
        assert proxy.requests == {"HEAD": 1, "GET": blocks}
        # Matroska-like: jump to the end for the cues, then back into a recent block
        f.seek(-100, io.SEEK_END)
        f.read()
        f.seek(len(DATA) - BLOCK - 10)
        f.read(20)
        assert proxy.requests == {"HEAD": 1, "GET": blocks}, "cached blocks are not refetched"
        f.seek(0)
        f.read(10)
        assert proxy.requests == {"HEAD": 1, "GET": blocks + 1}


@pytest.mark.parametrize("read_ahead", [0, 2])
def test_s3_sequential_reader_gets_blocks_fetched_ahead(
    s3_bucket: str, fault_proxy: Callable[..., FaultProxy], read_ahead: int
) -> None:
    proxy = fault_proxy(rate=0.0)
    store = _s3_store_via(proxy, s3_bucket, read_ahead_blocks=read_ahead)
    store.put_bytes("ahead.bin", DATA)
    proxy.requests.clear()
    with store.open("ahead.bin") as f:
        assert f.read(2 * BLOCK) == DATA[: 2 * BLOCK]  # blocks 0 and 1: a sequential reader
        deadline = time.monotonic() + 10
        while proxy.requests["GET"] < 2 + read_ahead and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # and nothing beyond the read-ahead window arrives
        assert proxy.requests["GET"] == 2 + read_ahead
        assert f.read() == DATA[2 * BLOCK :]
    assert proxy.requests == {"HEAD": 1, "GET": -(-len(DATA) // BLOCK)}


def test_s3_object_replaced_while_open_fails_loudly(
    s3_bucket: str, fault_proxy: Callable[..., FaultProxy]
) -> None:
    store = _s3_store_via(fault_proxy(rate=0.0), s3_bucket)
    store.put_bytes("v.bin", DATA)
    with store.open("v.bin") as f:
        assert f.read(10) == DATA[:10]
        store.put_bytes("v.bin", DATA[::-1])
        f.seek(3 * BLOCK)
        with pytest.raises(StorageError, match="changed while being read"):
            f.read(10)


def test_s3_open_is_a_raw_file_with_size(
    s3_bucket: str, fault_proxy: Callable[..., FaultProxy]
) -> None:
    store = _s3_store_via(fault_proxy(rate=0.0), s3_bucket)
    store.put_bytes("s", b"12345")
    with store.open("s") as f:
        assert isinstance(f, S3ReadableFile)
        assert f.size == 5
        assert f.name == store.url("s")
        assert "pos=0" in repr(f)


def test_pyav_decodes_matroska_through_open(store: Store, tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    np = pytest.importorskip("numpy")
    path = tmp_path / "clip.mkv"
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "bgr0"
        for i in range(30):
            frame = np.full((48, 64, 3), i * 8, dtype=np.uint8)
            frame[:, : i + 1, 0] = 255
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
        out.mux(stream.encode(None))
    store.put_file(path, "clips/clip.mkv")

    def decode(source: object) -> list[Any]:
        with av.open(source, "r") as container:
            return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]

    expected = decode(str(path))
    with store.open("clips/clip.mkv") as f:
        got = decode(f)
    assert len(got) == len(expected) == 30
    assert all((a == b).all() for a, b in zip(got, expected, strict=True))
    # and seeking by timestamp (PyAV seeks the file object)
    with store.open("clips/clip.mkv") as f, av.open(f) as container:
        container.seek(2_000_000)  # 2 s in AV_TIME_BASE units
        first = next(container.decode(video=0))
        assert first.pts is not None


def test_large_read_spanning_many_blocks(store_factory: Callable[..., Store]) -> None:
    store = store_factory(read_block_size=64 * 1024, read_cache_blocks=1)
    data = hashlib.shake_256(b"large").digest(MiB + 7)
    store.put_bytes("large", data)
    with store.open("large") as f:
        f.seek(1000)
        assert f.read(MiB) == data[1000 : 1000 + MiB]
        assert f.read() == data[1000 + MiB :]


def test_pyarrow_reads_parquet_through_open(store: Store) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"episode": list(range(5000)), "value": [i * 0.5 for i in range(5000)]})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=1000)
    store.put_bytes("meta/episodes.parquet", sink.getvalue())
    with store.open("meta/episodes.parquet") as f:
        parquet = pq.ParquetFile(f)
        assert parquet.metadata.num_row_groups == 5
        assert parquet.read_row_group(3).column("episode").to_pylist() == list(range(3000, 4000))
        f.seek(0)
        assert pq.read_table(f).equals(table)


def test_lines_across_block_boundaries(store: Store) -> None:
    lines = [b"%d:" % i + b"x" * (i * 37 % 5000) + b"\n" for i in range(300)]
    text = b"".join(lines)
    assert len(text) > 5 * BLOCK
    store.put_bytes("log.jsonl", text)
    with store.open("log.jsonl") as f:
        assert list(f) == lines
