"""A seekable file over one S3 object: aligned blocks, a small cache, read-ahead."""

from __future__ import annotations

import collections
import concurrent.futures
import errno
import io
from typing import TYPE_CHECKING, Any

from robodm_engine.errors import StorageError

if TYPE_CHECKING:
    from robodm_engine.storage._s3 import S3Store

_PEEK_BYTES = 64 * 1024


class S3ReadableFile(io.BufferedIOBase):
    """A seekable, read-only file over one S3 object, for readers like PyAV and pyarrow.

    The object's size and ETag come from one HEAD at open. Reads are served from aligned blocks
    of ``read_block_size`` bytes, each fetched with one ranged GET pinned to that ETag; the last
    ``read_cache_blocks`` blocks are kept, so a seek back into a recent block costs nothing.
    When reads move forward block after block, the next ``read_ahead_blocks`` blocks are fetched
    in the background, so a reader that decodes while it reads (PyAV) rarely waits on the
    network. ``read(n)`` returns ``n`` bytes unless the end of the object comes first.

    Like other buffered files, one instance must not be used from several threads at once.

    >>> with store.open("trajectory_000.mkv") as f:  # doctest: +SKIP
    ...     container = av.open(f)
    """

    def __init__(self, store: S3Store, key: str, size: int, etag: str | None) -> None:
        super().__init__()
        self._store = store
        self._key = key
        self._size = size
        self._etag = etag
        self._pos = 0
        opts = store.options
        self._block = opts.read_block_size
        self._blocks = -(-size // self._block)
        self._cache_limit = opts.read_cache_blocks
        self._cache: collections.OrderedDict[int, bytes] = collections.OrderedDict()
        self._read_ahead = opts.read_ahead_blocks
        self._pending: dict[int, concurrent.futures.Future[bytes]] = {}
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._last_index = -2
        self.name = store.url(key)

    @property
    def size(self) -> int:
        """Size of the object in bytes (from the HEAD at open)."""
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        if pos < 0:
            raise OSError(errno.EINVAL, f"negative seek position {pos}")
        # Seeking past the end is allowed (reads there return b""), as for regular files.
        self._pos = pos
        return pos

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def _fetch(self, index: int) -> bytes:
        start = index * self._block
        end = min(start + self._block, self._size)
        block = self._store._read(self._key, start, end, self._etag)
        if len(block) != end - start:
            raise StorageError(
                f"{self.name}: short read at byte {start}: got {len(block)} of {end - start} "
                "bytes (object truncated since it was opened?)"
            )
        return block

    def _get_block(self, index: int) -> bytes:
        block = self._cache.get(index)
        if block is not None:
            self._cache.move_to_end(index)
        else:
            pending = self._pending.pop(index, None)
            block = pending.result() if pending is not None else self._fetch(index)
            self._cache[index] = block
            while len(self._cache) > self._cache_limit:
                self._cache.popitem(last=False)
        if index == self._last_index + 1:
            self._prefetch_after(index)
        self._last_index = index
        return block

    def _prefetch_after(self, index: int) -> None:
        if not self._read_ahead:
            return
        # Blocks fetched ahead but skipped over by a seek would only hold memory.
        for stale in [i for i in self._pending if i <= index or i > index + self._read_ahead]:
            self._pending.pop(stale).cancel()
        for ahead in range(index + 1, min(index + 1 + self._read_ahead, self._blocks)):
            if ahead in self._cache or ahead in self._pending:
                continue
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self._read_ahead, thread_name_prefix="robodm-s3-read-ahead"
                )
            self._pending[ahead] = self._executor.submit(self._fetch, ahead)

    def peek(self, size: int = 0) -> bytes:
        """Bytes from the current position without moving it (at least one, unless at EOF)."""
        self._check_open()
        if self._pos >= self._size:
            return b""
        index, offset = divmod(self._pos, self._block)
        # readline() peeks before every line: return a slice, not the rest of an 8 MiB block.
        return self._get_block(index)[offset : offset + max(size, _PEEK_BYTES)]

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes from the current position (all remaining if negative)."""
        self._check_open()
        end = self._size if size is None or size < 0 else min(self._size, self._pos + size)
        if end <= self._pos:
            return b""
        parts = []
        pos = self._pos
        while pos < end:
            index, offset = divmod(pos, self._block)
            block = self._get_block(index)
            take = min(end - pos, len(block) - offset)
            parts.append(block[offset : offset + take] if (offset or take < len(block)) else block)
            pos += take
        self._pos = pos
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read1(self, size: int = -1) -> bytes:
        """Like :meth:`read`: every read here is at most a few requests."""
        return self.read(size)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(view.nbytes)
        view[: len(data)] = data
        return len(data)

    def readinto1(self, buffer: Any) -> int:
        return self.readinto(buffer)

    def detach(self) -> io.RawIOBase:
        raise io.UnsupportedOperation("S3ReadableFile has no underlying raw stream")

    def close(self) -> None:
        if self._executor is not None:
            # A fetch already running finishes in the background; its result is dropped.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._pending.clear()
        self._cache.clear()
        super().close()

    def __repr__(self) -> str:
        return f"<S3ReadableFile {self.name!r} size={self._size} pos={self._pos}>"
