"""Progress of a running ingestion: a snapshot type and the reporter that publishes it.

Three audiences: a person at a terminal (a tqdm bar, only when stderr is a TTY), logs
(one INFO line per interval otherwise), and machines (``_robodm/progress.json`` in the
output store, rewritten atomically at a steady interval and at the end, in the shape
``docs/contracts.md`` pins down; the operator copies it into the job's status). A
``progress_callback`` additionally receives every snapshot.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from robodm_engine.errors import StorageError

if TYPE_CHECKING:
    from robodm_engine.storage import Store

__all__ = ["PROGRESS_KEY", "IngestionProgress", "ProgressReporter", "utc_now"]

logger = logging.getLogger("robodm_engine.ingestion")

PROGRESS_KEY = "_robodm/progress.json"
State = Literal["running", "succeeded", "failed"]


def utc_now() -> str:
    """Return the current UTC time in RFC 3339 (``2026-11-21T06:00:00.123Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class IngestionProgress:
    """A snapshot of a running ingestion.

    Attributes:
        items_total: items the source will yield, when known in advance.
        items_read: items pulled from the source so far.
        items_done: items written into trajectories (including resumed groups).
        items_failed: items that failed to transform, validate or write.
        items_skipped: items whose transform returned ``{}``.
        trajectories_written: trajectories written by this run.
        trajectories_resumed: published trajectories found verified and kept.
        bytes_written: bytes of trajectories written by this run.
        bytes_resumed: bytes of the published trajectories kept by this run.
        in_flight: Ray tasks submitted and not finished.
        elapsed_s: seconds since the ingestion started.

    Examples:
        >>> def report(progress: IngestionProgress) -> None:
        ...     print(f"{progress.items_finished}/{progress.items_total} items")
        >>> run_ingestion(ingester, config, progress_callback=report)  # doctest: +SKIP
        0/1000 items
        ...
    """

    items_total: int | None
    items_read: int
    items_done: int
    items_failed: int
    items_skipped: int
    trajectories_written: int
    trajectories_resumed: int
    bytes_written: int
    bytes_resumed: int
    in_flight: int
    elapsed_s: float

    @property
    def items_finished(self) -> int:
        """Items whose fate is decided: done, failed or skipped."""
        return self.items_done + self.items_failed + self.items_skipped

    def to_status(self, state: State, manifest: str | None, message: str) -> dict[str, Any]:
        """Return the ``progress.json`` object of the contract.

        Its figures describe the dataset, not this run: a resumed run starts from what the
        earlier runs published (``trajectoriesWritten``, ``bytesWritten``, ``itemsDone``).
        """
        return {
            "state": state,
            "itemsTotal": self.items_total,
            "itemsDone": self.items_done,
            "itemsFailed": self.items_failed,
            "trajectoriesWritten": self.trajectories_written + self.trajectories_resumed,
            "bytesWritten": self.bytes_written + self.bytes_resumed,
            "updatedAt": utc_now(),
            "manifest": manifest,
            "message": message,
        }


class ProgressReporter:
    """Publishes snapshots to a progress bar or the log, ``progress.json`` and a callback.

    :meth:`update` is cheap to call often: the file and the log are only written when
    ``interval_s`` has passed since the last write.
    """

    def __init__(
        self,
        store: Store,
        *,
        interval_s: float,
        callback: Callable[[IngestionProgress], None] | None = None,
        use_bar: bool | None = None,
    ) -> None:
        self._store = store
        self._interval_s = interval_s
        self._callback = callback
        self._last_write = float("-inf")
        self._bar: Any = None
        if use_bar if use_bar is not None else sys.stderr.isatty():
            from tqdm.auto import tqdm

            self._bar = tqdm(desc="ingesting", unit="item", dynamic_ncols=True)

    def update(self, progress: IngestionProgress, *, force: bool = False) -> None:
        """Report ``progress``; write the file and log line if the interval has passed."""
        if self._callback is not None:
            self._callback(progress)
        if self._bar is not None:
            self._bar.total = progress.items_total
            self._bar.n = progress.items_finished
            self._bar.set_postfix(
                trajectories=progress.trajectories_written + progress.trajectories_resumed,
                failed=progress.items_failed,
                refresh=False,
            )
            self._bar.refresh()
        now = time.monotonic()
        if force or now - self._last_write >= self._interval_s:
            self._last_write = now
            self._write(progress.to_status("running", None, ""))
            if self._bar is None:
                total = "?" if progress.items_total is None else str(progress.items_total)
                logger.info(
                    "ingestion: %d/%s items done, %d failed, %d skipped, %d trajectories, "
                    "%.1f MB, %.0f s",
                    progress.items_done, total, progress.items_failed, progress.items_skipped,
                    progress.trajectories_written + progress.trajectories_resumed,
                    (progress.bytes_written + progress.bytes_resumed) / 1e6, progress.elapsed_s,
                )

    def finish(
        self, progress: IngestionProgress, state: State, *, manifest: str | None, message: str
    ) -> None:
        """Write the final ``progress.json`` and close the bar."""
        if self._callback is not None:
            self._callback(progress)
        if self._bar is not None:
            self._bar.n = progress.items_finished
            self._bar.close()
        self._write(progress.to_status(state, manifest, message))

    def _write(self, status: dict[str, Any]) -> None:
        # Progress is advisory: a failed write must not fail the job it describes.
        try:
            self._store.put_bytes(PROGRESS_KEY, json.dumps(status, indent=2).encode())
        except StorageError as exc:
            logger.warning("could not write %s: %s", self._store.url(PROGRESS_KEY), exc)
