"""The engine on a real local Ray: names, contents, resume, failures, streaming, progress."""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robodm_engine.errors import IngestionError
from robodm_engine.ingestion import (
    DataIngestionInterface,
    IngestionConfig,
    IngestionProgress,
    ItemFailuresError,
    IteratorAdapter,
    PyTorchDatasetAdapter,
    create_vla_dataset_from_source,
    run_ingestion,
)
from robodm_engine.manifest import read_manifest

from .conftest import load, manifest_json, mkv_names, step


def _paths(source: Any, out: str, **kwargs: Any) -> list[str]:
    kwargs.setdefault("num_workers", 2)
    return create_vla_dataset_from_source(
        source, output_directory=out, return_vla_dataset=False, **kwargs
    )


# --- names and contents ---------------------------------------------------------------------


def test_two_workers_write_every_requested_trajectory(out_dir: str) -> None:
    items = [step(i) for i in range(8)]
    paths = _paths(items, out_dir, group_size=2)
    expected = [f"trajectory_{i:06d}.mkv" for i in range(4)]
    assert [Path(p).name for p in paths] == expected
    assert mkv_names(out_dir) == expected
    for t, path in enumerate(paths):
        data = load(path)
        np.testing.assert_array_equal(data["label"], [2 * t, 2 * t + 1])
        np.testing.assert_array_equal(data["state"][:, 0], [2 * t, 2 * t + 1])
        assert data["image"].shape == (2, 32, 32, 3)
    manifest = read_manifest(out_dir)
    assert [r.name for r in manifest.trajectories] == [e[:-4] for e in expected]
    assert manifest.counts["itemsTotal"] == 8
    assert manifest.counts["trajectories"] == 4
    assert set(manifest.features) == {"image", "state", "label"}
    assert manifest.features["state"].shape == (4,)
    records = sorted(os.listdir(Path(out_dir, "_robodm", "records")))
    assert records == [e.replace(".mkv", ".json") for e in expected]


def test_more_workers_than_cpus_and_small_batches_complete(out_dir: str) -> None:
    paths = _paths([step(i) for i in range(9)], out_dir, group_size=2, num_workers=4,
                   batch_size=2, trajectory_prefix="ep")
    # 9 items in groups of 2: the last trajectory has the odd item alone.
    assert [Path(p).name for p in paths] == [f"ep_{i:06d}.mkv" for i in range(5)]
    np.testing.assert_array_equal(load(paths[-1])["label"], [8])


def test_max_items_per_trajectory_splits_groups(out_dir: str) -> None:
    paths = _paths([step(i) for i in range(10)], out_dir, group_size=10,
                   max_items_per_trajectory=4)
    assert [len(load(p)["label"]) for p in paths] == [4, 4, 2]


def test_steps_are_stamped_at_the_configured_rate_or_the_items_own_time(out_dir: str) -> None:
    items = [{"x": np.float32(i), "t": 1000 + 50 * i} for i in range(4)]
    paths = _paths(items, out_dir, group_size=4, timestamp_key="t")
    traj_times = load_timestamps(paths[0])
    np.testing.assert_array_equal(traj_times["x"], [1000, 1050, 1100, 1150])
    assert "t" not in traj_times
    other = _paths([{"x": np.float32(i)} for i in range(3)], out_dir + "-fps", group_size=3,
                   fps=20.0)
    np.testing.assert_array_equal(load_timestamps(other[0])["x"], [0, 50, 100])


def load_timestamps(path: str) -> dict[str, np.ndarray]:
    from robodm_engine.trajectory import Trajectory

    return Trajectory(path).timestamps()


def test_shuffle_is_reproducible_with_a_seed(out_dir: str) -> None:
    items = [{"i": i} for i in range(12)]
    first = _paths(items, out_dir, group_size=12, shuffle_items=True, seed=7)
    second = _paths(items, out_dir + "-2", group_size=12, shuffle_items=True, seed=7)
    order = load(first[0])["i"].tolist()
    assert sorted(order) == list(range(12)) and order != list(range(12))
    assert load(second[0])["i"].tolist() == order


# --- custom ingesters -----------------------------------------------------------------------


class OddConstructorIngester(DataIngestionInterface):
    """Positional-only and keyword-only arguments stored under other names, plus a lambda."""

    def __init__(self, root: str, /, *scales: float, label: str, **options: Any) -> None:
        self._root = root
        self._factor = scales[0] * scales[1]
        self._label = label
        self._fmt = lambda x: f"{label}-{x}"
        self._options = options

    def get_data_items(self) -> list[int]:
        return list(range(self._options["count"]))

    def transform_item(self, item: int) -> dict[str, Any]:
        return {"value": np.float32(item * self._factor), "tag": self._fmt(item)}


def test_a_custom_ingester_with_an_unusual_constructor_reaches_the_workers(out_dir: str) -> None:
    ingester = OddConstructorIngester("/data", 2.0, 3.0, label="run", count=4)
    paths = _paths(ingester, out_dir, group_size=2)
    assert len(paths) == 2
    data = load(paths[1])
    np.testing.assert_array_equal(data["value"], [12.0, 18.0])
    assert data["tag"].tolist() == ["run-2", "run-3"]


class NamedIngester(DataIngestionInterface):
    def __init__(self, names: list[str]) -> None:
        self.names = names

    def get_data_items(self) -> list[int]:
        return list(range(len(self.names)))

    def transform_item(self, item: int) -> dict[str, Any]:
        return {"x": np.float32(item)}

    def get_trajectory_filename(self, trajectory_group: list[int], index: int) -> str:
        return self.names[index]


def test_user_names_cannot_escape_the_output_directory(out_dir: str, tmp_path: Path) -> None:
    ingester = NamedIngester(["../../escaped", "sub/dir/inner.mkv", "/etc/passwd"])
    paths = _paths(ingester, out_dir)
    assert [Path(p).name for p in paths] == ["escaped.mkv", "inner.mkv", "passwd.mkv"]
    assert all(Path(p).parent == Path(out_dir) for p in paths)
    # The file exists, but only inside the output directory.
    assert [p.parent for p in tmp_path.rglob("escaped*.mkv")] == [Path(out_dir)]


def test_colliding_user_names_fail_before_anything_is_overwritten(out_dir: str) -> None:
    with pytest.raises(IngestionError, match="both named 'same'"):
        _paths(NamedIngester(["a/same", "b/same"]), out_dir)


class PairsIngester(DataIngestionInterface):
    def get_data_items(self) -> list[int]:
        return list(range(7))

    def transform_item(self, item: int) -> dict[str, Any]:
        return {"x": np.int64(item)}

    def group_items_into_trajectories(self, items: list[int]) -> list[list[int]]:
        evens = [i for i in items if i % 2 == 0]
        odds = [i for i in items if i % 2 == 1]
        return [evens, odds]


def test_an_overridden_grouping_is_used(out_dir: str) -> None:
    paths = _paths(PairsIngester(), out_dir)
    assert [load(p)["x"].tolist() for p in paths] == [[0, 2, 4, 6], [1, 3, 5]]


# --- sources consumed exactly once ----------------------------------------------------------


def test_a_one_shot_generator_is_ingested_completely(out_dir: str) -> None:
    generator = ({"i": i} for i in range(10))
    paths = _paths(generator, out_dir, group_size=3)
    values = [v for p in paths for v in load(p)["i"].tolist()]
    assert values == list(range(10))


def test_a_callable_source_is_called_exactly_once(out_dir: str) -> None:
    calls = itertools.count()

    def make_items() -> list[dict[str, int]]:
        next(calls)
        return [{"i": i} for i in range(6)]

    paths = _paths(make_items, out_dir, group_size=2)
    assert len(paths) == 3
    assert next(calls) == 1


def test_a_generator_function_is_called_exactly_once(out_dir: str) -> None:
    calls = itertools.count()

    def items() -> Iterator[dict[str, int]]:
        next(calls)
        yield from ({"i": i} for i in range(5))

    assert len(_paths(items, out_dir, group_size=5)) == 1
    assert next(calls) == 1


def test_an_endless_source_streams_with_bounded_read_ahead(out_dir: str) -> None:
    produced = itertools.count()
    produced_so_far = [0]

    def endless() -> Iterator[dict[str, Any]]:
        for i in itertools.count():
            produced_so_far[0] = next(produced) + 1
            yield {"x": np.float32(i)}

    ahead: list[int] = []

    def watch(progress: IngestionProgress) -> None:
        ahead.append(produced_so_far[0] - progress.items_finished)
        assert progress.in_flight <= 2

    adapter = IteratorAdapter(iterator_factory=endless, group_size=5, max_items=200)
    result = run_ingestion(adapter, IngestionConfig(out_dir, num_workers=2),
                           progress_callback=watch)
    assert result.counts["itemsWritten"] == 200
    assert produced_so_far[0] == 200  # never pulled an item beyond max_items
    # 2 tasks in flight + 1 group being assembled, 5 items each.
    assert max(ahead) <= 3 * 5
    assert len(ahead) > 10


# --- resume -----------------------------------------------------------------------------------


def _mtimes(out: str) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in Path(out).glob("*.mkv")}


def test_a_rerun_writes_nothing_and_returns_the_same_manifest(out_dir: str) -> None:
    items = [step(i) for i in range(8)]
    config = IngestionConfig(out_dir, num_workers=2)
    first = run_ingestion(PyTorchDatasetAdapter(items, group_size=2), config)
    before = _mtimes(out_dir)
    second = run_ingestion(PyTorchDatasetAdapter(items, group_size=2), config)
    assert _mtimes(out_dir) == before
    assert second.counts["trajectoriesWritten"] == 0
    assert second.counts["trajectoriesResumed"] == 4
    assert second.manifest.trajectories == first.manifest.trajectories
    assert second.manifest.counts == first.manifest.counts
    assert second.manifest.features == first.manifest.features


@pytest.mark.parametrize("damage", ["flip-a-byte", "truncate", "delete-record"])
def test_a_damaged_trajectory_is_rewritten_on_resume(out_dir: str, damage: str) -> None:
    items = [step(i) for i in range(6)]
    config = IngestionConfig(out_dir, num_workers=2)
    first = run_ingestion(PyTorchDatasetAdapter(items, group_size=2), config)
    victim = Path(out_dir, "trajectory_000001.mkv")
    before = _mtimes(out_dir)
    if damage == "flip-a-byte":  # same size: only the checksum can tell
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
    elif damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:-10])
    else:
        Path(out_dir, "_robodm", "records", "trajectory_000001.json").unlink()
    second = run_ingestion(PyTorchDatasetAdapter(items, group_size=2), config)
    assert second.counts["trajectoriesWritten"] == 1
    assert second.counts["trajectoriesResumed"] == 2
    after = _mtimes(out_dir)
    assert after["trajectory_000000.mkv"] == before["trajectory_000000.mkv"]
    assert after["trajectory_000002.mkv"] == before["trajectory_000002.mkv"]
    # The new record describes the new file (Matroska files carry a random segment UID, so
    # the bytes differ from the first write even though the content is the same).
    assert second.records[1].sha256 == hashlib.sha256(victim.read_bytes()).hexdigest()
    assert second.records[0] == first.records[0]
    np.testing.assert_array_equal(load(victim)["label"], [2, 3])


def test_size_only_verification_resumes_without_reading_files(out_dir: str) -> None:
    items = [step(i) for i in range(4)]
    config = IngestionConfig(out_dir, num_workers=2, verify_checksums=False)
    run_ingestion(PyTorchDatasetAdapter(items, group_size=2), config)
    second = run_ingestion(PyTorchDatasetAdapter(items, group_size=2), config)
    assert second.counts["trajectoriesResumed"] == 2


def test_resume_false_rewrites_everything(out_dir: str) -> None:
    items = [step(i) for i in range(4)]
    run_ingestion(PyTorchDatasetAdapter(items, group_size=2), IngestionConfig(out_dir))
    again = run_ingestion(PyTorchDatasetAdapter(items, group_size=2),
                          IngestionConfig(out_dir, resume=False))
    assert again.counts["trajectoriesWritten"] == 2


# --- failures --------------------------------------------------------------------------------


def _fails_on(bad: set[int]) -> Any:
    def transform(item: dict[str, Any]) -> dict[str, Any]:
        if item["label"] in bad:
            raise ValueError(f"corrupt sample {item['label']}")
        return item

    return transform


def test_by_default_the_first_failed_item_fails_the_job(out_dir: str) -> None:
    items = [step(i) for i in range(6)]
    with pytest.raises(ItemFailuresError, match=r"item '3' \(group 1, transform\)") as info:
        _paths(items, out_dir, group_size=2, transform_fn=_fails_on({3}))
    assert info.value.failures[0].reason == "ValueError: corrupt sample 3"
    assert "max_failed_items" in str(info.value)
    progress = json.loads(Path(out_dir, "_robodm", "progress.json").read_text())
    assert progress["state"] == "failed"
    assert not Path(out_dir, "manifest.json").exists()


def test_failed_items_are_skipped_and_counted_when_allowed(out_dir: str) -> None:
    items = [step(i) for i in range(6)]
    paths = _paths(items, out_dir, group_size=2, transform_fn=_fails_on({3, 4}),
                   max_failed_items=None)
    assert [load(p)["label"].tolist() for p in paths] == [[0, 1], [2], [5]]
    manifest = manifest_json(out_dir)
    assert manifest["counts"]["itemsFailed"] == 2
    assert manifest["counts"]["itemsWritten"] == 4
    assert [(f["item_id"], f["group_index"], f["stage"]) for f in manifest["failures"]] == [
        ("3", 1, "transform"), ("4", 2, "transform"),
    ]


def test_a_failure_limit_counts_across_the_job(out_dir: str) -> None:
    items = [step(i) for i in range(6)]
    with pytest.raises(ItemFailuresError, match="2 item"):
        _paths(items, out_dir, group_size=1, transform_fn=_fails_on({1, 4}),
               max_failed_items=1)


class CheckingIngester(DataIngestionInterface):
    """Validates required keys; an empty dict skips; a shape change breaks the writer."""

    def get_data_items(self) -> list[int]:
        return list(range(8))

    def transform_item(self, item: int) -> dict[str, Any]:
        if item == 1:
            return {}
        if item == 2:
            return {"sensor1": np.zeros(3, np.float32)}  # misses sensor2
        width = 5 if item == 6 else 3
        return {"sensor1": np.zeros(width, np.float32), "sensor2": np.float32(item)}

    def validate_transformed_data(self, data: dict[str, Any]) -> bool:
        return all(key in data for key in ("sensor1", "sensor2"))


def test_validation_skips_and_writer_rejections_are_reported_per_item(out_dir: str) -> None:
    paths = _paths(CheckingIngester(), out_dir, group_size=4, max_failed_items=None)
    assert [load(p)["sensor2"].tolist() for p in paths] == [[0.0, 3.0], [4.0, 5.0, 7.0]]
    manifest = manifest_json(out_dir)
    failures = {f["item_id"]: f for f in manifest["failures"]}
    assert set(failures) == {"2", "6"}
    assert failures["2"]["stage"] == "validate"
    assert failures["6"]["stage"] == "write"
    assert "FeatureMismatchError" in failures["6"]["reason"]
    assert manifest["counts"]["itemsSkipped"] == 1
    assert manifest["counts"]["itemsWritten"] == 5


def test_a_fixed_transform_retries_the_groups_that_had_failures(out_dir: str) -> None:
    items = [step(i) for i in range(6)]
    _paths(items, out_dir, group_size=2, transform_fn=_fails_on({3}), max_failed_items=None)
    before = _mtimes(out_dir)
    result = run_ingestion(
        PyTorchDatasetAdapter(items, group_size=2), IngestionConfig(out_dir, num_workers=2)
    )
    assert result.counts["trajectoriesWritten"] == 1  # only the group with the failure
    assert result.failures == []
    assert _mtimes(out_dir)["trajectory_000000.mkv"] == before["trajectory_000000.mkv"]
    assert load(Path(out_dir, "trajectory_000001.mkv"))["label"].tolist() == [2, 3]
    assert not Path(out_dir, "_robodm", "groups", "trajectory_000001.json").exists()


def test_non_dict_transform_results_are_failures_with_a_hint(out_dir: str) -> None:
    with pytest.raises(ItemFailuresError, match="returned list; expected a dict"):
        _paths([1, 2], out_dir, transform_fn=lambda item: [item])
    with pytest.raises(ItemFailuresError, match=re.escape("return {} to skip")):
        _paths([1, 2], out_dir + "-none", transform_fn=lambda item: None)


def test_features_that_change_type_between_trajectories_fail_the_job(out_dir: str) -> None:
    items = [{"x": np.zeros(2 if i < 2 else 3, np.float32)} for i in range(4)]
    with pytest.raises(IngestionError, match=r"'x'.*one type per feature"):
        _paths(items, out_dir, group_size=2, num_workers=1)


def test_a_failing_source_and_an_empty_source_are_job_errors(out_dir: str) -> None:
    def broken() -> Iterator[dict[str, int]]:
        yield {"i": 0}
        raise OSError("disk went away")

    with pytest.raises(IngestionError, match=r"failed after 1 item.*disk went away"):
        _paths(broken, out_dir)
    with pytest.raises(IngestionError, match="yielded no items"):
        _paths([], out_dir + "-empty")
    with pytest.raises(IngestionError, match="no trajectory was written"):
        _paths([{"a": 1}], out_dir + "-skipped", transform_fn=lambda item: {})


def test_unknown_keyword_arguments_are_refused(out_dir: str) -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument.*'grup_size'"):
        _paths([{"a": 1}], out_dir, grup_size=2)
    assert not Path(out_dir).exists()


class Unpicklable(DataIngestionInterface):
    def __init__(self) -> None:
        self.lock = threading.Lock()  # locks cannot be pickled

    def get_data_items(self) -> list[int]:
        return [1]

    def transform_item(self, item: int) -> dict[str, Any]:
        return {"x": item}


def test_an_ingester_that_cannot_be_shipped_is_a_clear_error(out_dir: str) -> None:
    with pytest.raises(IngestionError, match=r"cannot ship the ingester Unpicklable.*_thread"):
        _paths(Unpicklable(), out_dir)


# --- progress -------------------------------------------------------------------------------


def test_progress_file_reports_the_finished_job(out_dir: str) -> None:
    seen: list[IngestionProgress] = []
    result = run_ingestion(
        PyTorchDatasetAdapter([step(i) for i in range(6)], group_size=3),
        IngestionConfig(out_dir, num_workers=2),
        progress_callback=seen.append,
    )
    progress = json.loads(Path(out_dir, "_robodm", "progress.json").read_text())
    assert progress["state"] == "succeeded"
    assert progress["manifest"] == result.manifest_uri
    assert (progress["itemsTotal"], progress["itemsDone"], progress["itemsFailed"]) == (6, 6, 0)
    assert progress["trajectoriesWritten"] == 2
    assert progress["bytesWritten"] == sum(r.bytes for r in result.records)
    assert seen[-1].items_done == 6
    done = [p.items_done for p in seen]
    assert done == sorted(done)
    assert set(result.timings) >= {"ray_init", "scan", "ingest", "manifest", "total"}


def test_an_ingester_the_workers_cannot_import_is_explained(
    out_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A module importable in the driver only (Ray is already running, so the workers'
    # sys.path does not get this folder): the usual "works locally, fails on the cluster".
    package = tmp_path / "driver_only"
    package.mkdir()
    (package / "local_ingesters.py").write_text(
        "from robodm_engine.ingestion import DataIngestionInterface\n"
        "class LocalIngester(DataIngestionInterface):\n"
        "    def get_data_items(self):\n"
        "        return [1, 2]\n"
        "    def transform_item(self, item):\n"
        "        return {'x': item}\n"
    )
    monkeypatch.syspath_prepend(str(package))
    module = importlib.import_module("local_ingesters")
    with pytest.raises(IngestionError, match=r"cannot import module 'local_ingesters'.*py_modules"):
        _paths(module.LocalIngester(), out_dir)


def test_an_iterator_given_to_the_iterator_factory_function_is_read_once(out_dir: str) -> None:
    from robodm_engine.ingestion import create_vla_dataset_from_iterator

    paths = create_vla_dataset_from_iterator(
        iter([{"i": i} for i in range(5)]), items_per_trajectory=2,
        output_directory=out_dir, num_workers=2, return_vla_dataset=False,
    )
    assert [load(p)["i"].tolist() for p in paths] == [[0, 1], [2, 3], [4]]


def test_group_size_applies_to_a_custom_ingester_unless_it_groups_itself(out_dir: str) -> None:
    ingester = OddConstructorIngester("/data", 1.0, 1.0, label="g", count=5)
    paths = _paths(ingester, out_dir, group_size=3)
    assert [len(load(p)["value"]) for p in paths] == [3, 2]
    with pytest.raises(ValueError, match="conflicts with PairsIngester"):
        _paths(PairsIngester(), out_dir + "-pairs", group_size=3)
