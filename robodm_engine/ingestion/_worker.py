"""What one Ray task does: turn groups of items into published trajectories.

Private component of :mod:`robodm_engine.ingestion.runner`, which decides names, batches and
resume; everything here runs inside a Ray worker on values shipped by the driver.

Per group: transform each item, validate it, write the trajectory to a local temporary file
with :class:`~robodm_engine.trajectory.Trajectory`, publish the file (atomic), then the
group report (failures / skipped items, only when there are any) and last the record. The
record's presence is what marks the group as done, so a task killed at any point leaves
either a complete, verifiable group or one that the next run redoes.

Output layout, beyond ``docs/contracts.md``: ``_robodm/groups/<name>.json`` holds the group
report ``{"name", "items", "itemsSkipped", "failures": [ItemFailure...]}`` of a group that
had failed or skipped items. A resumed run re-does groups whose report lists failures, so
fixing a transform and re-running retries exactly the failed items' groups.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robodm_engine.errors import IngestionError
from robodm_engine.ingestion.naming import TRAJECTORY_SUFFIX
from robodm_engine.manifest import (
    MANIFEST_JSON,
    MANIFEST_PARQUET,
    ItemFailure,
    Stage,
    TrajectoryRecord,
    record_key,
    record_of_file,
    write_record,
)

if TYPE_CHECKING:
    from robodm_engine.ingestion.config import IngestionConfig
    from robodm_engine.ingestion.interface import DataIngestionInterface
    from robodm_engine.storage import Store

GROUPS_PREFIX = "_robodm/groups/"
_MAX_REASON = 500
_Step = tuple[str, Mapping[str, Any], Any]  # (item id, features, timestamp or None)


def report_key(name: str) -> str:
    """Return the key of a group's report: ``_robodm/groups/<name>.json``."""
    return f"{GROUPS_PREFIX}{name}.json"


@dataclass(frozen=True)
class GroupTask:
    """One group as shipped to a worker.

    Attributes:
        index: global group index.
        name: sanitized, unique trajectory name.
        items: ``(item_id, item)`` pairs, in order.
        verify: a published record to check first; if the object matches it the group is
            reported as resumed and nothing is written.
        verify_skipped: items the group report of ``verify`` says were skipped.
        replaces: a record (and so maybe an older file and manifest) exists for this name.
        stale_report: a group report exists for this name from an earlier run.
    """

    index: int
    name: str
    items: list[tuple[str, Any]]
    verify: TrajectoryRecord | None = None
    verify_skipped: int = 0
    replaces: bool = False
    stale_report: bool = False


@dataclass
class GroupOutcome:
    """What became of one group; returned to the driver.

    ``record`` is ``None`` when no trajectory was written (every item failed or was skipped).
    """

    index: int
    name: str
    record: TrajectoryRecord | None
    items: int
    items_written: int
    items_skipped: int
    failures: list[ItemFailure] = field(default_factory=list)
    resumed: bool = False
    seconds: float = 0.0


class _StepFailed(Exception):
    """Raised inside the writer's ``with`` block so it discards the partial file."""

    def __init__(self, position: int, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.position = position
        self.cause = cause


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def verify_published(store: Store, record: TrajectoryRecord, *, checksum: bool) -> bool:
    """Return whether the object of ``record`` exists with its size (and SHA-256)."""
    if store.size(record.path) != record.bytes:
        return False
    return not checksum or store.sha256(record.path) == record.sha256


def load_ingester(payload: bytes) -> DataIngestionInterface:
    """Unpickle the ingester the driver shipped, explaining the usual deployment mistake."""
    from ray import cloudpickle

    try:
        ingester: DataIngestionInterface = cloudpickle.loads(payload)
    except ModuleNotFoundError as exc:
        raise IngestionError(
            f"the Ray workers cannot import module {exc.name!r}, which the ingester needs; "
            "install it where the workers run, ship it with ray_init_kwargs="
            "{'runtime_env': {'py_modules': [...]}} (or 'working_dir'), or define the "
            "ingester class in the driver's main script"
        ) from exc
    return ingester


def process_batch(
    ingester_payload: bytes,
    config: IngestionConfig,
    store: Store,
    tasks: list[GroupTask],
) -> list[GroupOutcome]:
    """Process groups one after the other; the Ray task body.

    Item-level problems become :class:`ItemFailure` entries; anything else (storage errors
    after retries, an ingester the worker cannot import, bugs) raises and fails the task,
    which the driver reports as a job error.
    """
    ingester = load_ingester(ingester_payload)
    outcomes = []
    scratch = Path(tempfile.mkdtemp(prefix="robodm-ingest-"))
    try:
        for task in tasks:
            started = time.perf_counter()
            outcome = _process_group(ingester, config, store, task, scratch)
            outcome.seconds = time.perf_counter() - started
            outcomes.append(outcome)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return outcomes


def _process_group(
    ingester: DataIngestionInterface,
    config: IngestionConfig,
    store: Store,
    task: GroupTask,
    scratch: Path,
) -> GroupOutcome:
    if task.verify is not None and verify_published(
        store, task.verify, checksum=config.verify_checksums
    ):
        written = len(task.items) - task.verify_skipped
        return GroupOutcome(
            task.index, task.name, task.verify, len(task.items), written, task.verify_skipped,
            resumed=True,
        )
    failures: list[ItemFailure] = []

    def fail(item_id: str, stage: Stage, reason: str) -> None:
        failures.append(ItemFailure(item_id, task.index, stage, reason))

    steps, skipped = _transform_all(ingester, config, task, fail)
    if task.replaces:
        # The published file is about to change: its record, and a manifest listing it,
        # must disappear first so no reader or resume trusts them in between.
        store.delete(MANIFEST_JSON)
        store.delete(MANIFEST_PARQUET)
        store.delete(record_key(task.name))

    local = scratch / f"{task.name}{TRAJECTORY_SUFFIX}"
    record, written = _write(steps, local, task, config, fail) if steps else (None, 0)
    if record is None and task.replaces:
        store.delete(f"{task.name}{TRAJECTORY_SUFFIX}")
    if record is not None:
        store.put_file(local, record.path, move=True)
    if failures or skipped:
        report = {
            "name": task.name,
            "items": len(task.items),
            "itemsSkipped": skipped,
            "failures": [f.to_dict() for f in failures],
        }
        store.put_bytes(report_key(task.name), json.dumps(report, indent=2).encode())
    elif task.stale_report:
        store.delete(report_key(task.name))
    if record is not None:
        write_record(store, record)
    return GroupOutcome(
        task.index,
        task.name,
        record,
        items=len(task.items),
        items_written=written,
        items_skipped=skipped,
        failures=failures,
    )


def _transform_all(
    ingester: DataIngestionInterface,
    config: IngestionConfig,
    task: GroupTask,
    fail: Callable[[str, Stage, str], None],
) -> tuple[list[_Step], int]:
    """Transform and validate the group's items; return the steps and the skipped count.

    An item transforms into one step (a dict) or, for sources whose items are whole
    episodes (files, HDF5 demos, LeRobot episodes), into a list of step dicts.
    """
    steps: list[_Step] = []
    skipped = 0
    for item_id, item in task.items:
        try:
            data = ingester.transform_item(item)
        except Exception as exc:
            fail(item_id, "transform", _reason(exc))
            continue
        if data is None:
            fail(item_id, "transform", "transform_item returned None; return {} to skip an item")
            continue
        if isinstance(data, Mapping):
            episode = [data]
        elif isinstance(data, list | tuple) and all(isinstance(s, Mapping) for s in data):
            episode = list(data)
        else:
            fail(item_id, "transform", f"transform_item returned {type(data).__name__}; expected "
                                       "a dict of features, or a list of them for an episode")
            continue
        if not any(episode):
            skipped += 1
            continue
        for position, step in enumerate(episode):
            where = "" if len(episode) == 1 else f"step {position}: "
            prepared = _prepare_step(ingester, config, item_id, step, where, fail)
            if prepared is not None:
                steps.append(prepared)
    return steps, skipped


def _prepare_step(
    ingester: DataIngestionInterface,
    config: IngestionConfig,
    item_id: str,
    data: Mapping[str, Any],
    where: str,
    fail: Callable[[str, Stage, str], None],
) -> _Step | None:
    """Take the step's timestamp out and validate it; ``None`` when it fails."""
    timestamp = None
    if config.timestamp_key is not None:
        data = dict(data)
        if config.timestamp_key not in data:
            fail(item_id, "validate", f"{where}missing timestamp key {config.timestamp_key!r}")
            return None
        timestamp = data.pop(config.timestamp_key)
    try:
        valid = ingester.validate_transformed_data(dict(data))
    except Exception as exc:
        fail(item_id, "validate", where + _reason(exc))
        return None
    if not valid:
        fail(item_id, "validate", f"{where}validate_transformed_data returned False")
        return None
    return item_id, data, timestamp


def _write(
    steps: list[_Step],
    local: Path,
    task: GroupTask,
    config: IngestionConfig,
    fail: Callable[[str, Stage, str], None],
) -> tuple[TrajectoryRecord | None, int]:
    """Write ``steps`` to ``local``; a step the writer rejects is dropped and the file redone.

    Returns the record of the file (``None`` if nothing could be written) and the number of
    items in it.

    A rejected step (dtype/shape change, bad timestamp, unsupported value) may have added
    some of its features before failing, so the file is started over without it rather than
    patched. Each retry removes one step, so this ends.
    """
    from robodm_engine.trajectory import Trajectory

    pending = list(steps)
    while pending:
        try:
            with Trajectory(
                local,
                mode="w",
                video_codec=config.video_codec,
                raw_codec=config.raw_codec,
                codec_options=config.codec_options,
                time_unit=config.time_unit,
                fps=config.fps,
            ) as traj:
                for position, (_, data, timestamp) in enumerate(pending):
                    try:
                        traj.add_by_dict(data, timestamp=timestamp)
                    except Exception as exc:
                        raise _StepFailed(position, exc) from exc
        except _StepFailed as failed:
            item_id = pending.pop(failed.position)[0]
            fail(item_id, "write", _reason(failed.cause))
            continue
        except Exception as exc:
            # The file as a whole could not be encoded (codec unavailable, disk full): every
            # item of the group is lost, and reported.
            for item_id, _, _ in pending:
                fail(item_id, "write", _reason(exc))
            return None, 0
        # Items, not steps: an episode item contributes many steps.
        items = len({item_id for item_id, _, _ in pending})
        record = record_of_file(local, name=task.name, path=f"{task.name}{TRAJECTORY_SUFFIX}",
                                items=items)
        return record, items
    return None, 0
