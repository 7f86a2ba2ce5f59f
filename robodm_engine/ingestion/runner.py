"""The ingestion engine: pull items, group and name them, run Ray tasks, publish a manifest.

The driver (this module) owns every decision that must be global and deterministic:
reading the source (lazily, exactly once), grouping, trajectory names from the global group
index, resume, the failure policy and the manifest. Ray tasks
(:mod:`robodm_engine.ingestion._worker`) only transform, validate, write and publish the
groups they are given, by value.

Memory stays bounded whatever the source size: at most ``config.in_flight_limit`` tasks are
outstanding and one more batch is being assembled, so the source is read only that far
ahead of the workers. Only when grouping needs every item (``shuffle_items``, or an
overridden ``group_items_into_trajectories``) is the source materialized in the driver.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any

from robodm_engine.errors import DatasetError, IngestionError
from robodm_engine.ingestion._worker import (
    GROUPS_PREFIX,
    GroupOutcome,
    GroupTask,
    process_batch,
    report_key,
)
from robodm_engine.ingestion.adapters import worker_view
from robodm_engine.ingestion.cluster import ensure_ray
from robodm_engine.ingestion.config import IngestionConfig
from robodm_engine.ingestion.interface import DataIngestionInterface
from robodm_engine.ingestion.naming import NameRegistry, default_name, sanitize_name
from robodm_engine.ingestion.progress import IngestionProgress, ProgressReporter, utc_now
from robodm_engine.manifest import (
    RECORDS_PREFIX,
    DatasetManifest,
    FeatureSpec,
    ItemFailure,
    TrajectoryRecord,
    merge_features,
    read_record,
    write_manifest,
)
from robodm_engine.storage import Store, open_store

__all__ = ["IngestionResult", "ItemFailuresError", "run_ingestion"]

logger = logging.getLogger("robodm_engine.ingestion")

_FAILURES_SHOWN = 10
# The progress bar and callback are refreshed at most this often while reading the source.
_REFRESH_S = 0.2


class ItemFailuresError(IngestionError):
    """More items failed than ``IngestionConfig.max_failed_items`` allows.

    Attributes:
        failures: every failure seen before the job stopped, in the order reported.
        max_failed_items: the limit that was exceeded.

    Examples:
        >>> from robodm_engine.manifest import ItemFailure
        >>> error = ItemFailuresError([ItemFailure("7", 3, "transform", "KeyError: 'x'")], 0)
        >>> print(str(error).splitlines()[1])
          item '7' (group 3, transform): KeyError: 'x'
    """

    def __init__(self, failures: list[ItemFailure], max_failed_items: int) -> None:
        shown = "\n".join(
            f"  item {f.item_id!r} (group {f.group_index}, {f.stage}): {f.reason}"
            for f in failures[:_FAILURES_SHOWN]
        )
        more = len(failures) - _FAILURES_SHOWN
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(
            f"{len(failures)} item(s) failed, more than max_failed_items={max_failed_items}; "
            f"fix them, or raise max_failed_items (None: never fail) to skip and continue:\n"
            f"{shown}{tail}"
        )
        self.failures = failures
        self.max_failed_items = max_failed_items


@dataclass(frozen=True)
class IngestionResult:
    """What :func:`run_ingestion` produced.

    Attributes:
        output_uri: the dataset root.
        manifest_uri: URI of the published ``manifest.json``.
        manifest: the manifest itself.
        records: every trajectory of the dataset in index order, resumed ones included.
        trajectory_uris: the trajectories' URIs (local paths for a local output), in order.
        failures: items that failed, by group index.
        counts: the manifest's counts plus this run's (``trajectoriesWritten``,
            ``trajectoriesResumed``, ``bytesWritten``).
        timings: seconds spent in ``ray_init``, ``scan`` (resume listing), ``ingest``,
            ``manifest`` and ``total``.

    Examples:
        >>> result = run_ingestion(ingester, config)  # doctest: +SKIP
        >>> result.counts["trajectories"], result.counts["trajectoriesResumed"]  # doctest: +SKIP
        (20, 0)
        >>> [f.item_id for f in result.failures]  # doctest: +SKIP
        []
    """

    output_uri: str
    manifest_uri: str
    manifest: DatasetManifest
    records: list[TrajectoryRecord]
    trajectory_uris: list[str]
    failures: list[ItemFailure]
    counts: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)


def run_ingestion(
    ingester: DataIngestionInterface,
    config: IngestionConfig,
    *,
    progress_callback: Callable[[IngestionProgress], None] | None = None,
) -> IngestionResult:
    """Run an ingestion job to completion and publish its manifest.

    The source is read once, lazily; groups become Ray tasks of 1 CPU, at most
    ``config.in_flight_limit`` at a time; trajectories are published atomically as they are
    written, then ``manifest.json`` last. Re-running into the same output resumes: groups
    whose record and file match (size, and SHA-256 with ``verify_checksums``) are kept.

    Time complexity: O(items / num_workers) for the writes, plus one listing of the output.

    Args:
        ingester: what to ingest (a custom ingester or a built-in adapter).
        config: where and how.
        progress_callback: called with an :class:`IngestionProgress` on every change (at
            most every 0.2 s while reading the source), in the calling thread.

    Returns:
        An :class:`IngestionResult` with the manifest, records, failures, counts and timings.

    Raises:
        ItemFailuresError: more items failed than ``config.max_failed_items``.
        IngestionError: the source failed, yielded nothing usable, names collide, the
            ingester cannot be shipped to Ray, a task failed (storage errors after retries),
            or trajectories disagree on a feature's type.

    Examples:
        >>> import numpy as np
        >>> from robodm_engine.ingestion import IngestionConfig, PyTorchDatasetAdapter
        >>> from robodm_engine.ingestion import run_ingestion
        >>> adapter = PyTorchDatasetAdapter(
        ...     [{"state": np.full(3, i, np.float32)} for i in range(8)], group_size=4
        ... )
        >>> result = run_ingestion(adapter, IngestionConfig("/tmp/out"))  # doctest: +SKIP
        >>> [r.name for r in result.records]  # doctest: +SKIP
        ['trajectory_000000', 'trajectory_000001']
    """
    if not isinstance(ingester, DataIngestionInterface):
        raise TypeError(
            f"run_ingestion needs a DataIngestionInterface, got {type(ingester).__name__}; "
            "use create_vla_dataset_from_source for other sources"
        )
    started = time.perf_counter()
    store = open_store(config.output_directory, config.storage_options)
    ensure_ray(config)
    ray_s = time.perf_counter() - started
    result = _Job(ingester, config, store, progress_callback).run()
    result.timings["ray_init"] = ray_s
    result.timings["total"] = time.perf_counter() - started
    return result


@dataclass
class _Existing:
    """What an earlier run left in the output (from one listing)."""

    records: set[str]
    reports: set[str]
    sizes: dict[str, int]


def _with_encoder_threads(config: IngestionConfig, ray: Any) -> IngestionConfig:
    """Give each task's encoders its share of the cluster's CPUs, unless the user chose.

    Video encoders start a thread per core by default; with several tasks per machine they
    oversubscribe it (measured: two tasks on two cores ran slower than one). A share of
    ``CPUs / tasks in flight`` keeps one task on a big machine fast and many tasks fair.
    """
    options = dict(config.codec_options or {})
    if "threads" in options:
        return config
    cpus = float(ray.cluster_resources().get("CPU", 1))
    options["threads"] = str(max(1, int(cpus // max(1, config.in_flight_limit))))
    return dataclasses.replace(config, codec_options=options)


def _names_under(store: Store, prefix: str) -> set[str]:
    return {
        info.key[len(prefix) : -len(".json")]
        for info in store.list(prefix, suffix=".json")
        if "/" not in info.key[len(prefix) :]
    }


class _Job:
    """The state of one run of :func:`run_ingestion` in the driver."""

    def __init__(
        self,
        ingester: DataIngestionInterface,
        config: IngestionConfig,
        store: Store,
        progress_callback: Callable[[IngestionProgress], None] | None,
    ) -> None:
        self.ingester = ingester
        self.config = config
        self.store = store
        self.reporter = ProgressReporter(
            store, interval_s=config.progress_interval_s, callback=progress_callback
        )
        self.names = NameRegistry()
        self.started = time.monotonic()
        self.last_refresh = float("-inf")
        self.items_total: int | None = None
        self.items_read = 0
        self.items_done = 0
        self.items_skipped = 0
        self.failures: list[ItemFailure] = []
        self.records: dict[int, TrajectoryRecord] = {}
        self.written = 0
        self.resumed = 0
        self.bytes_written = 0
        self.bytes_resumed = 0
        self.feature_owner: dict[str, tuple[FeatureSpec, str]] = {}
        self.in_flight: dict[Any, list[int]] = {}
        klass = type(ingester)
        self.custom_names = (
            klass.get_trajectory_filename is not DataIngestionInterface.get_trajectory_filename
        )
        self.custom_grouping = (
            klass.group_items_into_trajectories
            is not DataIngestionInterface.group_items_into_trajectories
        )

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> IngestionResult:
        import ray

        timings: dict[str, float] = {}
        try:
            mark = time.perf_counter()
            existing = self._scan()
            timings["scan"] = time.perf_counter() - mark
            mark = time.perf_counter()
            self._execute(ray, existing)
            timings["ingest"] = time.perf_counter() - mark
            mark = time.perf_counter()
            result = self._publish_manifest()
            timings["manifest"] = time.perf_counter() - mark
        except BaseException as exc:
            for ref in self.in_flight:
                ray.cancel(ref)
            self.in_flight.clear()
            self.reporter.finish(
                self._snapshot(), "failed", manifest=None, message=str(exc)[:2000]
            )
            raise
        result.timings.update(timings)
        return result

    def _scan(self) -> _Existing:
        sizes = {
            info.key: info.size
            for info in self.store.list("", suffix=".mkv")
            if "/" not in info.key
        }
        return _Existing(
            records=_names_under(self.store, RECORDS_PREFIX),
            reports=_names_under(self.store, GROUPS_PREFIX),
            sizes=sizes,
        )

    def _execute(self, ray: Any, existing: _Existing) -> None:
        remote_args: dict[str, Any] = {
            "num_cpus": 1,
            "name": "robodm_ingest",
            "retry_exceptions": False,
            **self.config.ray_remote_args,
        }
        remote = ray.remote(process_batch).options(**remote_args)
        # Pickled here rather than by ray.put so an unpicklable ingester gets a short,
        # actionable error (Ray's own is a page of serialization diagnostics).
        try:
            payload = ray.cloudpickle.dumps(worker_view(self.ingester))
        except Exception as exc:
            raise IngestionError(
                f"cannot ship the ingester {type(self.ingester).__name__} to Ray workers "
                f"({type(exc).__name__}: {exc}); keep open files, locks and connections out "
                "of its attributes (open them lazily in transform_item)"
            ) from exc
        ingester_ref = ray.put(payload)
        config_ref = ray.put(_with_encoder_threads(self.config, ray))
        store_ref = ray.put(self.store)
        limit = self.config.in_flight_limit
        for batch in self._batches(existing):
            while len(self.in_flight) >= limit:
                self._collect(ray, timeout=self.config.progress_interval_s)
            ref = remote.remote(ingester_ref, config_ref, store_ref, batch)
            self.in_flight[ref] = [task.index for task in batch]
            self._refresh(force=True)
        while self.in_flight:
            self._collect(ray, timeout=self.config.progress_interval_s)

    def _collect(self, ray: Any, timeout: float) -> None:
        """Wait up to ``timeout`` for one task; absorb its outcomes; report progress."""
        ready, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=timeout)
        for ref in ready:
            indices = self.in_flight.pop(ref)
            try:
                outcomes: list[GroupOutcome] = ray.get(ref)
            except ray.exceptions.RayError as exc:
                cause = getattr(exc, "cause", None) or exc
                raise IngestionError(
                    f"the Ray task writing group(s) {indices} failed: "
                    f"{type(cause).__name__}: {cause}"
                ) from cause
            for outcome in outcomes:
                self._absorb(outcome)
        self._refresh(force=True)

    # --- reading and grouping ----------------------------------------------------------------

    def _read(self) -> Iterator[tuple[int, Any]]:
        """Yield ``(source index, item)``, counting, wrapping the source's own errors."""
        try:
            iterable: Iterable[Any] = self.ingester.iter_data_items()
        except IngestionError:
            raise
        except Exception as exc:
            raise IngestionError(
                f"getting the items of {type(self.ingester).__name__} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if isinstance(iterable, str | bytes) or not isinstance(iterable, Iterable):
            raise IngestionError(
                f"{type(self.ingester).__name__}.get_data_items must return a list or an "
                f"iterable of items, got {type(iterable).__name__}"
            )
        total = self.ingester.count_items()
        if total is None and isinstance(iterable, Sized):
            total = len(iterable)
        limit = self.config.max_items
        if limit is not None and total is not None:
            total = min(total, limit)
        self.items_total = total
        iterator = iter(iterable)
        index = 0
        while limit is None or index < limit:
            try:
                item = next(iterator)
            except StopIteration:
                return
            except Exception as exc:
                raise IngestionError(
                    f"the data source failed after {index} item(s): {type(exc).__name__}: {exc}"
                ) from exc
            self.items_read += 1
            yield index, item
            index += 1
            self._refresh()

    def _raw_groups(self) -> Iterator[list[tuple[int | None, Any]]]:
        """Yield groups of ``(source index or None, item)`` in trajectory order."""
        items: Iterable[tuple[int, Any]] = self._read()
        if self.config.shuffle_items:
            materialized = list(items)
            random.Random(self.config.seed).shuffle(materialized)
            items = materialized
        cap = self.config.max_items_per_trajectory
        if not self.custom_grouping:
            size = self.config.group_size or max(1, int(self.ingester.group_size))
            size = min(size, cap) if cap is not None else size
            for chunk in itertools.batched(items, size):
                yield list(chunk)
            return
        pairs = list(items)
        position = {id(item): index for index, item in pairs}
        try:
            groups = self.ingester.group_items_into_trajectories([item for _, item in pairs])
        except Exception as exc:
            raise IngestionError(
                f"{type(self.ingester).__name__}.group_items_into_trajectories failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if isinstance(groups, str | bytes) or not isinstance(groups, Iterable):
            raise IngestionError(
                "group_items_into_trajectories must return a list of lists of items, got "
                f"{type(groups).__name__}"
            )
        for group in groups:
            if isinstance(group, str | bytes) or not isinstance(group, Sequence):
                raise IngestionError(
                    "group_items_into_trajectories must return a list of lists of items; "
                    f"found a {type(group).__name__} where a list was expected"
                )
            located = [(position.get(id(item)), item) for item in group]
            step = cap or max(1, len(located))
            for start in range(0, len(located), step):
                yield located[start : start + step]

    def _batches(self, existing: _Existing) -> Iterator[list[GroupTask]]:
        batch: list[GroupTask] = []
        index = 0
        for group in self._raw_groups():
            if not group:
                continue
            task = self._plan(index, group, existing)
            index += 1
            if task is None:
                continue
            batch.append(task)
            if len(batch) >= self.config.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _plan(
        self, index: int, group: list[tuple[int | None, Any]], existing: _Existing
    ) -> GroupTask | None:
        """Name group ``index`` and decide its fate; ``None`` when resumed in the driver."""
        raw_items = [item for _, item in group]
        try:
            if self.custom_names:
                name = sanitize_name(self.ingester.get_trajectory_filename(raw_items, index))
            else:
                name = default_name(self.config.trajectory_prefix, index)
            items = [
                (
                    self.ingester.get_item_id(item, position)
                    if position is not None
                    else f"group{index}[{k}]",
                    item,
                )
                for k, (position, item) in enumerate(group)
            ]
        except IngestionError:
            raise
        except Exception as exc:
            raise IngestionError(
                f"naming group {index} failed in {type(self.ingester).__name__}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.names.claim(name, index)
        replaces = name in existing.records
        stale_report = name in existing.reports
        task = GroupTask(index, name, items, replaces=replaces, stale_report=stale_report)
        if not (self.config.resume and replaces):
            return task
        record, skipped = self._resumable(name, len(items), existing)
        if record is None:
            return task
        if self.config.verify_checksums:
            return GroupTask(
                index, name, items, verify=record, verify_skipped=skipped,
                replaces=True, stale_report=stale_report,
            )
        self._absorb(
            GroupOutcome(index, name, record, len(items), len(items) - skipped, skipped,
                         resumed=True)
        )
        return None

    def _resumable(
        self, name: str, item_count: int, existing: _Existing
    ) -> tuple[TrajectoryRecord | None, int]:
        """Return the published record of ``name`` if it may be kept, and its skipped items."""
        skipped = 0
        if name in existing.reports:
            try:
                report = json.loads(self.store.get_bytes(report_key(name)))
                skipped = int(report["itemsSkipped"])
                had_failures = bool(report["failures"])
            except (ValueError, KeyError, TypeError, DatasetError) as exc:
                logger.warning("group report of %s is unreadable (%s); redoing it", name, exc)
                return None, 0
            if had_failures:
                return None, 0  # retry the failed items
        try:
            record = read_record(self.store, name)
        except DatasetError as exc:
            logger.warning("record of %s is invalid (%s); redoing it", name, exc)
            return None, 0
        if record is None or existing.sizes.get(record.path) != record.bytes:
            return None, 0
        if record.items != item_count - skipped:
            # Not the group this record was written from (the source changed), or a record of
            # unknown provenance.
            return None, 0
        return record, skipped

    # --- outcomes ----------------------------------------------------------------------------

    def _absorb(self, outcome: GroupOutcome) -> None:
        for failure in outcome.failures:
            self.failures.append(failure)
            # The first few are logged as they happen; all of them go to the manifest.
            if len(self.failures) <= _FAILURES_SHOWN:
                logger.warning(
                    "item %r (group %d) failed at %s: %s",
                    failure.item_id, failure.group_index, failure.stage, failure.reason,
                )
            elif len(self.failures) == _FAILURES_SHOWN + 1:
                logger.warning("more items failed; the manifest lists every failure")
        self.items_done += outcome.items_written
        self.items_skipped += outcome.items_skipped
        record = outcome.record
        if record is not None:
            self._check_features(record)
            self.records[outcome.index] = record
            if outcome.resumed:
                self.resumed += 1
                self.bytes_resumed += record.bytes
            else:
                self.written += 1
                self.bytes_written += record.bytes
        limit = self.config.max_failed_items
        if limit is not None and len(self.failures) > limit:
            raise ItemFailuresError(list(self.failures), limit)

    def _check_features(self, record: TrajectoryRecord) -> None:
        # Checked as trajectories arrive, not only in the manifest, so a job of many hours
        # stops at the first inconsistent trajectory instead of at the very end.
        for name, spec in record.features.items():
            known = self.feature_owner.setdefault(name, (spec, record.name))
            if (known[0].dtype, known[0].shape) != (spec.dtype, spec.shape):
                raise IngestionError(
                    f"feature {name!r} is dtype={known[0].dtype} shape={known[0].shape} in "
                    f"{known[1]!r} but dtype={spec.dtype} shape={spec.shape} in "
                    f"{record.name!r}; a dataset needs one type per feature (e.g. resize "
                    "images to one size in transform_item)"
                )

    # --- reporting and the manifest ----------------------------------------------------------

    def _snapshot(self) -> IngestionProgress:
        return IngestionProgress(
            items_total=self.items_total,
            items_read=self.items_read,
            items_done=self.items_done,
            items_failed=len(self.failures),
            items_skipped=self.items_skipped,
            trajectories_written=self.written,
            trajectories_resumed=self.resumed,
            bytes_written=self.bytes_written,
            bytes_resumed=self.bytes_resumed,
            in_flight=len(self.in_flight),
            elapsed_s=time.monotonic() - self.started,
        )

    def _refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_refresh >= _REFRESH_S:
            self.last_refresh = now
            self.reporter.update(self._snapshot())

    def _publish_manifest(self) -> IngestionResult:
        if self.items_read == 0:
            raise IngestionError(
                f"the data source of {type(self.ingester).__name__} yielded no items"
            )
        if not self.records:
            raise IngestionError(
                f"no trajectory was written: of {self.items_read} item(s), "
                f"{len(self.failures)} failed and {self.items_skipped} were skipped"
            )
        records = [self.records[i] for i in sorted(self.records)]
        failures = sorted(self.failures, key=lambda f: f.group_index)
        counts = {
            "itemsTotal": self.items_read,
            "itemsWritten": self.items_done,
            "itemsFailed": len(failures),
            "itemsSkipped": self.items_skipped,
            "trajectories": len(records),
            "steps": sum(r.steps for r in records),
            "bytes": sum(r.bytes for r in records),
        }
        try:
            features = merge_features(records)
        except DatasetError as exc:
            raise IngestionError(str(exc)) from exc
        manifest = DatasetManifest(
            trajectories=records,
            features=features,
            config=self.config.to_manifest_dict(),
            counts=counts,
            failures=failures,
            created_at=utc_now(),
        )
        manifest_uri = write_manifest(self.store, manifest)
        self.reporter.finish(
            self._snapshot(), "succeeded", manifest=manifest_uri,
            message=f"{len(records)} trajectories, {len(failures)} failed item(s)",
        )
        logger.info(
            "ingestion finished: %d trajectories (%d written, %d resumed), %d items, "
            "%d failed, %d skipped; manifest %s",
            len(records), self.written, self.resumed, self.items_done, len(failures),
            self.items_skipped, manifest_uri,
        )
        return IngestionResult(
            output_uri=self.store.uri,
            manifest_uri=manifest_uri,
            manifest=manifest,
            records=records,
            trajectory_uris=[self.store.url(r.path) for r in records],
            failures=failures,
            counts={
                **counts,
                "trajectoriesWritten": self.written,
                "trajectoriesResumed": self.resumed,
                "bytesWritten": self.bytes_written,
            },
        )
