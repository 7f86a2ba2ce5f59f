"""Stores in a local (or mounted) directory, published by temp file and rename."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from robodm_engine.errors import StorageError
from robodm_engine.storage._base import (
    _TEMP_MARKER,
    _TEMP_NAME,
    ObjectInfo,
    ObjectNotFoundError,
    ReadableFile,
    Store,
    _validate_prefix,
    validate_key,
)
from robodm_engine.storage._options import MiB, StorageOptions

_COPY_CHUNK = 4 * MiB


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not all filesystems allow opening a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _temp_path(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}{_TEMP_MARKER}{secrets.token_hex(16)}")


def _atomic_write(dest: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Write ``dest`` through ``fill`` into a temp file next to it, fsync, then rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(dest)
    try:
        # O_EXCL: never clobber; mode 0o666 so the umask applies as for any new file
        # (mkstemp would force 0600 and hide published data from other users).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(dest.parent)


def _copy_into(src: BinaryIO, dst: BinaryIO) -> None:
    """Copy file to file, in the kernel when possible (copy_file_range may reflink)."""
    try:
        in_fd, out_fd = src.fileno(), dst.fileno()
    except (AttributeError, io.UnsupportedOperation):
        shutil.copyfileobj(src, dst, _COPY_CHUNK)
        return
    if hasattr(os, "copy_file_range"):
        try:
            while os.copy_file_range(in_fd, out_fd, 1 << 30):
                pass
            return
        except OSError as exc:
            # Not supported between these filesystems: fall back to user-space copying from
            # wherever the kernel stopped (both offsets advanced together).
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
    shutil.copyfileobj(src, dst, _COPY_CHUNK)


class LocalStore(Store):
    """A directory on a local (or mounted) filesystem.

    ``uri`` and ``url(key)`` are absolute filesystem paths, directly usable by PyAV or numpy.

    >>> store = LocalStore("/data/out")
    >>> store.url("_robodm/progress.json")
    '/data/out/_robodm/progress.json'
    """

    def __init__(self, root: str | os.PathLike[str], options: StorageOptions | None = None) -> None:
        # absolute() without resolve(): keep the user's symlinks, as os.path.abspath would.
        self.root = Path(os.path.normpath(Path(root).expanduser().absolute()))
        self.options = options or StorageOptions()

    @property
    def uri(self) -> str:
        """The root directory as an absolute path."""
        return str(self.root)

    def path(self, key: str) -> Path:
        """The local path of ``key`` (validated, inside the root)."""
        return self.root.joinpath(*validate_key(key).split("/"))

    def url(self, key: str) -> str:
        """The absolute path of ``key``."""
        return str(self.path(key))

    def exists(self, key: str) -> bool:
        """Whether a regular file exists at ``key``."""
        return self.size(key) is not None

    def size(self, key: str) -> int | None:
        """Size of the file at ``key``, or ``None`` if there is none."""
        path = self.path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(f"{path}: cannot stat: {exc}") from exc
        return st.st_size if _is_regular(st.st_mode) else None

    def put_bytes(self, key: str, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` to ``key`` through a temp file and a rename."""
        path = self.path(key)
        try:
            _atomic_write(path, lambda f: f.write(data))
        except OSError as exc:
            raise StorageError(f"{path}: cannot write: {exc}") from exc

    def put_file(self, local_path: str | os.PathLike[str], key: str, *, move: bool = False) -> None:
        """Copy (kernel-side when possible) or, with ``move=True``, rename a file into the store."""
        src = Path(local_path)
        dest = self.path(key)
        try:
            if move and self._move(src, dest):
                return
            with src.open("rb") as fsrc:
                _atomic_write(dest, lambda f: _copy_into(fsrc, f))
            if move:
                src.unlink()
        except FileNotFoundError as exc:
            if not src.exists():
                raise StorageError(f"{src}: source file does not exist") from exc
            raise StorageError(f"{dest}: cannot publish {src}: {exc}") from exc
        except OSError as exc:
            raise StorageError(f"{dest}: cannot publish {src}: {exc}") from exc

    @staticmethod
    def _move(src: Path, dest: Path) -> bool:
        """Rename ``src`` onto ``dest`` if on the same filesystem; False when a copy is needed."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        # The writer closed the file but may not have synced it: a rename must not publish a
        # name whose data is still only in the page cache.
        with src.open("rb") as f:
            os.fsync(f.fileno())
        try:
            src.replace(dest)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return False
            raise
        _fsync_dir(dest.parent)
        return True

    def get_bytes(self, key: str) -> bytes:
        """The whole file at ``key``."""
        path = self.path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFoundError(str(path)) from None
        except OSError as exc:
            raise StorageError(f"{path}: cannot read: {exc}") from exc

    def get_file(self, key: str, local_path: str | os.PathLike[str]) -> None:
        """Copy ``key`` to ``local_path`` atomically."""
        src = self.path(key)
        dest = Path(local_path)
        try:
            with src.open("rb") as fsrc:
                if dest.exists() and src.samefile(dest):
                    return
                _atomic_write(dest, lambda f: _copy_into(fsrc, f))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            if self.size(key) is None:
                raise ObjectNotFoundError(str(src)) from None
            raise StorageError(f"{dest}: cannot download {src}: {exc}") from exc
        except OSError as exc:
            raise StorageError(f"{dest}: cannot download {src}: {exc}") from exc

    def open(self, key: str) -> ReadableFile:
        """The file at ``key`` opened ``"rb"``."""
        path = self.path(key)
        try:
            return path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFoundError(str(path)) from None
        except OSError as exc:
            raise StorageError(f"{path}: cannot open: {exc}") from exc

    def list(self, prefix: str = "", suffix: str | None = None) -> list[ObjectInfo]:
        """Regular files under the root whose key starts with ``prefix``, sorted by key.

        Temporary files of in-flight (or crashed) writes are never listed.
        """
        _validate_prefix(prefix)
        # Walk only the deepest directory the prefix pins down, not the whole tree.
        start_rel = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root.joinpath(*start_rel.split("/")) if start_rel else self.root
        found: list[ObjectInfo] = []

        def on_error(exc: OSError) -> None:
            if not isinstance(exc, FileNotFoundError | NotADirectoryError):
                raise StorageError(f"{exc.filename}: cannot list: {exc}") from exc

        for dirpath, dirnames, filenames in os.walk(start, onerror=on_error):
            rel_dir = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            rel_dir = "" if rel_dir == "." else rel_dir + "/"
            dirnames.sort()
            for name in filenames:
                key = rel_dir + name
                if not key.startswith(prefix) or _TEMP_NAME.match(name):
                    continue
                if suffix is not None and not key.endswith(suffix):
                    continue
                try:
                    st = (Path(dirpath) / name).stat()
                except FileNotFoundError:
                    continue  # deleted while listing
                if _is_regular(st.st_mode):
                    found.append(ObjectInfo(key, st.st_size))
        found.sort(key=lambda info: info.key)
        return found

    def delete(self, key: str) -> None:
        """Remove the file at ``key`` if present.

        Emptied directories are left in place: removing them would race with a concurrent
        writer that has just created the directory for a new temp file.
        """
        path = self.path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"{path}: cannot delete: {exc}") from exc

    def clean_incomplete_writes(self, older_than: float = 86400.0) -> int:
        """Delete temp files of crashed writers last modified over ``older_than`` seconds ago."""
        cutoff = time.time() - older_than
        removed = 0
        for dirpath, _, filenames in os.walk(self.root):
            for name in filenames:
                if not _TEMP_NAME.match(name):
                    continue
                path = Path(dirpath) / name
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
        return removed

    def cached_path(
        self,
        key: str,
        cache_dir: str | os.PathLike[str],
        *,
        expected_size: int | None = None,
    ) -> Path:
        """The file itself: a local store needs no cache."""
        path = self.path(key)
        size = self.size(key)
        if size is None:
            raise ObjectNotFoundError(str(path))
        if expected_size is not None and size != expected_size:
            raise StorageError(f"{path}: has {size} bytes, expected {expected_size}")
        return path


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)
