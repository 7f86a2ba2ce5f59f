"""Local-directory specifics: atomic publish through temp files, permissions, moves."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from robodm_engine.errors import StorageError
from robodm_engine.storage import LocalStore, ObjectInfo, open_store


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    store = open_store(tmp_path / "root")
    assert isinstance(store, LocalStore)
    return store


def _all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_failed_put_file_leaves_nothing(local: LocalStore) -> None:
    # /proc/self/mem opens fine and fails with EIO on the first read at offset 0: a source
    # that breaks after the temp file exists, without patching anything.
    local.put_bytes("keep/old.bin", b"previous version")
    with pytest.raises(StorageError, match="cannot publish"):
        local.put_file("/proc/self/mem", "keep/old.bin")
    with pytest.raises(StorageError, match="cannot publish"):
        local.put_file("/proc/self/mem", "keep/new.bin")
    assert local.get_bytes("keep/old.bin") == b"previous version"
    assert _all_files(local.root) == ["keep/old.bin"]


def test_failed_put_bytes_leaves_nothing(local: LocalStore) -> None:
    local.put_bytes("a", b"file where a directory is needed")
    with pytest.raises(StorageError, match="cannot write"):
        local.put_bytes("a/b", b"x")
    assert _all_files(local.root) == ["a"]


def test_crashed_writers_temp_files_are_not_listed(local: LocalStore) -> None:
    local.put_bytes("t/x.mkv", b"published")
    # What a writer killed between create and rename leaves behind.
    (local.root / "t" / ".y.mkv.robodm-tmp-0123456789abcdef0123456789abcdef").write_bytes(b"p")
    (local.root / "t" / ".dotfile").write_bytes(b"a real object")
    assert local.list() == [ObjectInfo("t/.dotfile", 13), ObjectInfo("t/x.mkv", 9)]


def test_readers_never_see_partial_objects(local: LocalStore) -> None:
    """A reader polling while a writer rewrites a key sees only complete versions."""
    versions = [bytes([i]) * (512 * 1024) for i in range(1, 9)]
    local.put_bytes("hot", versions[0])
    seen: set[bytes] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.add(local.get_bytes("hot"))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for v in versions[1:]:
            local.put_bytes("hot", v)
    finally:
        done.set()
        reader.join()
    assert seen <= set(versions)
    assert _all_files(local.root) == ["hot"]


def test_published_files_follow_the_umask(local: LocalStore, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        local.put_bytes("p/bytes", b"x")
        src = tmp_path / "src"
        src.write_bytes(b"y")
        local.put_file(src, "p/file")
    finally:
        os.umask(old)
    for key in ("p/bytes", "p/file"):
        assert local.path(key).stat().st_mode & 0o777 == 0o644


def test_move_across_filesystems_falls_back_to_copy(local: LocalStore) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(local.root.parent).st_dev:
        pytest.skip("needs a second filesystem")
    src = shm / f"robodm-test-{os.getpid()}-{threading.get_ident()}"
    src.write_bytes(b"from another filesystem")
    try:
        local.put_file(src, "moved", move=True)
    finally:
        src.unlink(missing_ok=True)
    assert local.get_bytes("moved") == b"from another filesystem"
    assert not src.exists()


def test_move_within_filesystem_is_a_rename(local: LocalStore, tmp_path: Path) -> None:
    src = tmp_path / "trajectory.mkv"
    src.write_bytes(b"video")
    inode = src.stat().st_ino
    local.put_file(src, "out/trajectory.mkv", move=True)
    assert local.path("out/trajectory.mkv").stat().st_ino == inode


def test_get_file_onto_itself_is_a_no_op(local: LocalStore) -> None:
    local.put_bytes("same", b"data")
    local.get_file("same", local.path("same"))
    assert local.get_bytes("same") == b"data"


def test_open_is_a_real_file(local: LocalStore) -> None:
    local.put_bytes("f", b"0123456789")
    with local.open("f") as f:
        f.seek(-3, os.SEEK_END)
        assert f.read() == b"789"
        assert f.fileno() >= 0


def test_clean_incomplete_writes_removes_only_old_temp_files(local: LocalStore) -> None:
    local.put_bytes("t/x.mkv", b"published")
    old = local.root / "t" / ".y.mkv.robodm-tmp-0123456789abcdef0123456789abcdef"
    fresh = local.root / "t" / ".z.mkv.robodm-tmp-fedcba9876543210fedcba9876543210"
    for path in (old, fresh):
        path.write_bytes(b"partial")
    os.utime(old, (1_000_000_000, 1_000_000_000))
    assert local.clean_incomplete_writes(older_than=3600) == 1
    assert not old.exists() and fresh.exists()
    assert local.clean_incomplete_writes(older_than=0) == 1
    assert _all_files(local.root) == ["t/x.mkv"]
