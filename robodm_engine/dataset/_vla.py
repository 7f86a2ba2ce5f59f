"""``VLADataset``: trajectory files as a lazy Ray Data dataset of steps or whole trajectories.

Private component of :mod:`robodm_engine.dataset`. A ``VLADataset`` is a list of trajectory
files (resolved on the driver by :mod:`._sources`), read options, and the transforms the user
chained on it. Nothing is read until a method consumes it: the Ray Data pipeline
(``from_items`` of the files → a read stage running :func:`._read.read_trajectories` → the
user's transforms) is built on first use and rebuilt by each derived dataset. Keeping the file
list on the driver is what makes ``split`` deterministic by trajectory, and ``load``/``count``
able to use the manifest.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import itertools
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import ray
import ray.data
import ray.exceptions

from robodm_engine.dataset._read import (
    TRAJECTORY_COLUMN,
    Mode,
    OnError,
    ReadOptions,
    SkipLog,
    read_error_from,
    read_trajectories,
)
from robodm_engine.dataset._sources import TrajectorySource, resolve
from robodm_engine.dataset._stats import PARTIAL_COLUMN, DatasetStats, merge_partials, partial_stats
from robodm_engine.errors import DatasetError

if TYPE_CHECKING:
    from robodm_engine.dataset._torch import TorchStepDataset
    from robodm_engine.manifest import DatasetManifest
    from robodm_engine.storage import StorageOptions

__all__ = ["VLADataset"]

# Decoding a trajectory is single-threaded CPU work. Asking for more than one CPU per task is
# how upstream robodm hung forever on 2-core machines (num_parallel_reads=4 became num_cpus=4).
_READ_TASK_CPUS = 1.0
# Fractions given to split() may sum to 1 up to float error (0.7 + 0.2 + 0.1).
_FRACTION_TOLERANCE = 1e-9

_Transform = Callable[[ray.data.Dataset], ray.data.Dataset]


class _SharedState:
    """State shared by a dataset and every dataset derived from it."""

    def __init__(self) -> None:
        self.skip_log: Any | None = None  # a SkipLog actor handle, created on first read


def _ensure_ray() -> None:
    if not ray.is_initialized():
        # Joins the cluster named by RAY_ADDRESS; otherwise starts a local Ray sized to this
        # machine, without the dashboard (seconds of start-up and a core's worth of CPU).
        if os.environ.get("RAY_ADDRESS"):
            ray.init()
        else:
            ray.init(include_dashboard=False)


@contextlib.contextmanager
def _read_errors() -> Iterator[None]:
    """Re-raise a failed trajectory read, wrapped by Ray in a RayTaskError, as DatasetError."""
    try:
        yield
    except ray.exceptions.RayError as exc:
        error = read_error_from(exc)
        if error is None:
            raise
        raise error from exc


class VLADataset:
    """Robot trajectories (``.mkv`` files) as a lazy, distributed dataset on Ray Data.

    In **step mode** (the default) every row is one time step: a flat dict of features
    (``"observation/image"`` → ``(224, 224, 3)`` uint8, ...) plus ``trajectory`` (the
    trajectory's name), ``step`` (its index in the trajectory) and ``timestamp_ms``. In
    **trajectory mode** every row is a whole trajectory: each feature stacked over time
    (``(T, ...)``), plus ``trajectory`` and ``timestamp_ms`` (``(T,)``).

    Trajectories are decoded in parallel Ray tasks of one CPU each, at most
    ``num_parallel_reads`` at a time. Construction only lists the files; transforms are
    lazy; methods that return data execute the pipeline.

    Tip:
        ``iter_batches(local_shuffle_buffer_size=...)`` mixes steps of different trajectories
        cheaply; :meth:`shuffle` is a full shuffle of every row through the object store.

    Args:
        source: a trajectory file; a directory or ``s3://`` prefix (its ``manifest.json`` when
            it has one, else the ``.mkv``/``.vla`` files directly inside it); a manifest
            (``.../manifest.json``, local or ``s3://``); a glob (``"/data/*.mkv"``); or a list
            of trajectory paths or URIs.
        mode: ``"step"`` (rows are steps) or ``"trajectory"`` (rows are trajectories).
        desired_frequency: resample every trajectory to this rate in Hz (nearest sample per
            tick), which also aligns features recorded at different rates.
        features: read only these features (all when ``None``).
        num_parallel_reads: most trajectories decoded at once. Defaults to the CPUs Ray
            reports, never more than there are trajectories.
        on_error: ``"raise"``: a trajectory that cannot be read fails the operation with a
            :class:`~robodm_engine.errors.DatasetError` naming the file. ``"skip"``: it is
            left out, logged, and listed by :attr:`skipped_trajectories`.
        allow_pickle: read robodm 0.1.0 files, whose non-video features are pickles. Only for
            files you trust: unpickling runs arbitrary code.
        cache_dir: for remote files, a local directory to download them into once (reused
            while the size matches); without it they are streamed with ranged reads.
        shuffle: visit trajectories in a random order (by ``seed``); cheap, file-level.
        seed: seed of ``shuffle`` and the default seed of :meth:`split`.
        storage_options: endpoint, region and retries for ``s3://`` sources.
        ray_remote_args: Ray options for the read tasks (``runtime_env``, ``memory``,
            ``resources``, ...); ``num_cpus`` defaults to 1 and may not exceed it.

    Raises:
        DatasetError: no trajectories match ``source``, a listed file does not exist, the
            manifest is invalid, or ``features`` names a feature the manifest lacks.

    Examples:
        >>> from robodm_engine.dataset import VLADataset
        >>> ds = VLADataset("/data/my_trajectories")  # doctest: +SKIP
        >>> train, val = ds.split(0.8, 0.2, seed=0)  # doctest: +SKIP
        >>> for batch in train.iter_batches(batch_size=32):  # doctest: +SKIP
        ...     images = batch["observation/image"]  # (32, 224, 224, 3) uint8
        >>> VLADataset("s3://datasets/philips-v1/manifest.json").get_stats()  # doctest: +SKIP
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        mode: Mode = "step",
        desired_frequency: float | None = None,
        features: Sequence[str] | None = None,
        num_parallel_reads: int | None = None,
        on_error: OnError = "raise",
        allow_pickle: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        shuffle: bool = False,
        seed: int | None = None,
        storage_options: StorageOptions | None = None,
        ray_remote_args: Mapping[str, Any] | None = None,
    ) -> None:
        if mode not in get_args(Mode):
            raise ValueError(f"mode must be one of {get_args(Mode)}, got {mode!r}")
        if on_error not in get_args(OnError):
            raise ValueError(f"on_error must be one of {get_args(OnError)}, got {on_error!r}")
        _check_frequency(desired_frequency)
        if num_parallel_reads is not None and num_parallel_reads < 1:
            raise ValueError(f"num_parallel_reads must be >= 1, got {num_parallel_reads}")
        read_args = {"num_cpus": _READ_TASK_CPUS, **(ray_remote_args or {})}
        if not 0 <= read_args["num_cpus"] <= 1:
            raise ValueError(
                f"read tasks may ask for at most 1 CPU (decoding is single-threaded), got "
                f"num_cpus={read_args['num_cpus']}"
            )
        if isinstance(features, str):
            raise TypeError("features must be a list of feature names, not a str")
        sources, manifest = resolve(source, storage_options)
        if features is not None and manifest is not None:
            unknown = sorted(set(features) - set(manifest.features))
            if unknown:
                known = sorted(manifest.features)
                raise DatasetError(f"feature(s) {unknown} are not in the dataset; it has {known}")
        if shuffle:
            order = np.random.default_rng(seed).permutation(len(sources))
            sources = [sources[i] for i in order]
        self._sources: tuple[TrajectorySource, ...] = tuple(sources)
        self._manifest = manifest
        self._steps = _manifest_steps(manifest)
        self._options = ReadOptions(
            mode=mode,
            desired_frequency=desired_frequency,
            data_slice=None,
            features=tuple(features) if features is not None else None,
            allow_pickle=allow_pickle,
            on_error=on_error,
            cache_dir=os.fspath(cache_dir) if cache_dir is not None else None,
            storage_options=storage_options,
        )
        self._num_parallel_reads = num_parallel_reads
        self._read_args = read_args
        self._seed = seed
        self._transforms: tuple[_Transform, ...] = ()
        self._shared = _SharedState()
        self._dataset: ray.data.Dataset | None = None

    # --- properties --------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        """``"step"`` or ``"trajectory"``: what one row is."""
        return self._options.mode

    @property
    def trajectory_paths(self) -> list[str]:
        """Paths or URIs of this dataset's trajectory files, in reading order."""
        return [s.uri for s in self._sources]

    @property
    def manifest(self) -> DatasetManifest | None:
        """The manifest the dataset was opened from (of the whole dataset, before any split)."""
        return self._manifest

    @property
    def skipped_trajectories(self) -> dict[str, str]:
        """Trajectories left out by ``on_error="skip"`` so far: URI → reason.

        Filled as reads run; covers every execution of this dataset and of the datasets
        derived from it.
        """
        log = self._shared.skip_log
        return {} if log is None else dict(ray.get(log.entries.remote()))

    # --- execution ---------------------------------------------------------------------------

    def to_ray_dataset(self) -> ray.data.Dataset:
        """Return the underlying Ray Data dataset (lazy), for anything this class lacks.

        Errors raised from it are Ray's: a failed read surfaces as a ``RayTaskError`` whose
        message names the file, not as a ``DatasetError``.

        Examples:
            >>> ds.to_ray_dataset().write_parquet("/tmp/steps")  # doctest: +SKIP
        """
        if self._dataset is None:
            self._dataset = self._build()
        return self._dataset

    def _build(self) -> ray.data.Dataset:
        _ensure_ray()
        skip_log = None
        if self._options.on_error == "skip":
            if self._shared.skip_log is None:
                self._shared.skip_log = SkipLog.remote()  # type: ignore[attr-defined]
            skip_log = self._shared.skip_log
        items = [dataclasses.asdict(s) for s in self._sources]
        cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
        reads = max(1, min(self._num_parallel_reads or cpus, len(items)))
        # One trajectory per block, so reads spread over tasks: a trajectory is heavy enough
        # (tens of ms at least) that the per-task overhead (~1 ms) does not matter.
        dataset: ray.data.Dataset = ray.data.from_items(
            items, override_num_blocks=max(1, len(items))
        )
        dataset = dataset.map_batches(
            functools.partial(read_trajectories, options=self._options, skip_log=skip_log),
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.TaskPoolStrategy(size=reads),
            **self._read_args,
        )
        for transform in self._transforms:
            dataset = transform(dataset)
        return dataset

    def iter_batches(
        self,
        batch_size: int | None = 256,
        *,
        batch_format: Literal["numpy", "pandas", "pyarrow"] = "numpy",
        drop_last: bool = False,
        prefetch_batches: int = 1,
        local_shuffle_buffer_size: int | None = None,
        local_shuffle_seed: int | None = None,
    ) -> Iterator[Any]:
        """Iterate over batches of rows; reads run ahead in parallel while you consume.

        Args:
            batch_size: rows per batch (the last one may be smaller unless ``drop_last``);
                ``None`` yields whole blocks (one per trajectory).
            batch_format: ``"numpy"`` (a dict of arrays: tensors keep their shape, as
                ``(batch, *shape)``), ``"pandas"`` or ``"pyarrow"``.
            drop_last: drop the final batch if it is smaller than ``batch_size``.
            prefetch_batches: batches to fetch ahead of the consumer.
            local_shuffle_buffer_size: shuffle rows within a buffer of at least this many
                rows before batching (mixes trajectories without a global shuffle).
            local_shuffle_seed: seed of the local shuffle.

        Raises:
            DatasetError: a trajectory cannot be read (``on_error="raise"``).

        Examples:
            >>> for batch in ds.iter_batches(batch_size=32):  # doctest: +SKIP
            ...     batch["action"].shape
            (32, 7)
        """
        batches = self.to_ray_dataset().iter_batches(
            batch_size=batch_size,
            batch_format=batch_format,
            drop_last=drop_last,
            prefetch_batches=prefetch_batches,
            local_shuffle_buffer_size=local_shuffle_buffer_size,
            local_shuffle_seed=local_shuffle_seed,
        )
        with _read_errors():
            yield from batches

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        """Iterate over rows, one dict each.

        Raises:
            DatasetError: a trajectory cannot be read (``on_error="raise"``).

        Examples:
            >>> next(iter(ds.iter_rows()))["step"]  # doctest: +SKIP
            0
        """
        rows = self.to_ray_dataset().iter_rows()
        with _read_errors():
            yield from rows

    def take(self, limit: int = 20) -> list[dict[str, Any]]:
        """Return up to ``limit`` rows (reading only as much as needed).

        Examples:
            >>> [row["trajectory"] for row in ds.take(2)]  # doctest: +SKIP
            ['trajectory_000000', 'trajectory_000000']
        """
        with _read_errors():
            return self.to_ray_dataset().take(limit)

    def peek(self) -> dict[str, Any] | None:
        """Return the first row, or ``None`` if the dataset is empty."""
        rows = self.take(1)
        return rows[0] if rows else None

    def count(self) -> int:
        """Return the number of rows (steps, or trajectories in trajectory mode).

        Without transforms and with ``on_error="raise"`` this needs no decoding: in
        trajectory mode it is the number of files, in step mode (all features at the native
        rate) the sum of the manifest's step counts when there is a manifest. Otherwise the
        trajectories are read.

        Examples:
            >>> VLADataset("/data/ds").count()  # doctest: +SKIP
            2000
        """
        options = self._options
        if not self._transforms and options.on_error == "raise":
            if options.mode == "trajectory":
                return len(self._sources)
            if (
                options.desired_frequency is None
                and options.data_slice is None
                and options.features is None
                and all(s.name in self._steps for s in self._sources)
            ):
                return sum(self._steps[s.name] for s in self._sources)
        with _read_errors():
            return int(self.to_ray_dataset().count())

    def __len__(self) -> int:
        """Same as :meth:`count`."""
        return self.count()

    def to_torch(
        self,
        *,
        shuffle: bool = False,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> TorchStepDataset:
        """A PyTorch ``IterableDataset`` of steps, sharded by DDP rank and DataLoader worker.

        Trajectories are dealt to ``world_size * num_workers`` disjoint shards, so each step is
        read once per epoch across the job; ``shuffle`` reshuffles trajectories and the steps
        within them per epoch (call ``set_epoch``). Rank and world size come from
        ``torch.distributed`` when initialized, else from ``RANK``/``WORLD_SIZE``.

        Raises:
            ValueError: for a trajectory-mode dataset, or one with map/filter transforms (they
                run on Ray, which the DataLoader does not use).

        Examples:
            >>> from torch.utils.data import DataLoader
            >>> steps = VLADataset("out/ds").to_torch(shuffle=True, seed=0)
            >>> loader = DataLoader(steps, batch_size=32)  # doctest: +SKIP
        """
        from robodm_engine.dataset._torch import TorchStepDataset

        if self._transforms:
            raise ValueError("to_torch() reads trajectories in DataLoader workers, without Ray; "
                             "it cannot apply this dataset's map/filter/shuffle transforms")
        return TorchStepDataset(self._sources, self._options, shuffle=shuffle, seed=seed,
                                rank=rank, world_size=world_size)

    def load(
        self, desired_frequency: float | None = None, data_slice: slice | None = None
    ) -> list[dict[str, Any]]:
        """Read every trajectory whole into memory: one dict per trajectory, in order.

        Each dict maps feature → array stacked over steps, plus ``trajectory`` (its name)
        and ``timestamp_ms``, like a trajectory-mode row; the list follows
        :attr:`trajectory_paths` (with ``on_error="skip"``, minus the skipped files).
        ``data = val_dataset.load(desired_frequency=10.0)`` thus gives ``data[i]["action"]``
        for the i-th trajectory of the split; a list rather than one concatenated dict, so
        trajectory boundaries survive.

        Warning:
            Everything is materialised in the driver's memory; stream with
            :meth:`iter_batches` for anything large.

        Args:
            desired_frequency: resample to this rate (Hz); ``None`` keeps the dataset's own
                setting (the native rate unless one was given at construction).
            data_slice: the steps to return from each trajectory (after resampling).

        Raises:
            DatasetError: a trajectory cannot be read (``on_error="raise"``).
            ValueError: this is a step-mode dataset with ``map``/``filter`` transforms, which
                apply to steps and so cannot be applied to whole trajectories.

        Examples:
            >>> data = val_dataset.load(desired_frequency=10.0)  # doctest: +SKIP
            >>> data[0]["observation/state"].shape  # doctest: +SKIP
            (50, 14)
        """
        if self.mode == "step" and self._transforms:
            raise ValueError(
                "load() reads whole trajectories, but this step-mode dataset has step "
                "transforms (map/filter/shuffle); use iter_batches()/take(), or apply the "
                "transforms to a mode='trajectory' dataset"
            )
        _check_frequency(desired_frequency)
        options = dataclasses.replace(
            self._options,
            mode="trajectory",
            desired_frequency=(
                desired_frequency
                if desired_frequency is not None
                else self._options.desired_frequency
            ),
            data_slice=data_slice,
        )
        dataset = self._derive(options=options).to_ray_dataset()
        with _read_errors():
            loaded = dataset.take_all()
        # Ray Data does not preserve order across read tasks; restore the file order.
        order = {s.name: i for i, s in enumerate(self._sources)}
        loaded.sort(key=lambda row: order.get(str(row.get(TRAJECTORY_COLUMN)), len(order)))
        return loaded

    def get_stats(self) -> DatasetStats:
        """Compute counts, trajectory lengths and per-feature statistics in one parallel pass.

        Every batch is summarised in its own Ray task and the partial results are merged on
        the driver, so the cost is one read of the dataset. Statistics describe the rows as
        this dataset yields them (after ``desired_frequency``, ``filter`` and ``map``).

        Returns:
            ``{"trajectories", "steps", "length": {"min", "max", "mean"}, "features": {name:
            {"dtype", "shape", "min", "max", "mean", "std"}}, "skipped"}``; numbers over every
            element of a feature (all pixels of an image), ``std`` with ``ddof=0``.

        Raises:
            DatasetError: a trajectory cannot be read (``on_error="raise"``).

        Examples:
            >>> stats = ds.get_stats()  # doctest: +SKIP
            >>> stats["steps"], stats["features"]["action"]["shape"]  # doctest: +SKIP
            (2000, (7,))
        """
        partials = self.to_ray_dataset().map_batches(
            functools.partial(partial_stats, mode=self.mode), batch_size=None, batch_format="numpy"
        )
        with _read_errors():
            blobs = [row[PARTIAL_COLUMN] for row in partials.take_all()]
        return merge_partials(blobs, mode=self.mode, skipped=len(self.skipped_trajectories))

    # --- derived datasets --------------------------------------------------------------------

    def _derive(
        self,
        *,
        sources: Sequence[TrajectorySource] | None = None,
        options: ReadOptions | None = None,
        transform: _Transform | None = None,
    ) -> VLADataset:
        derived = copy.copy(self)
        if sources is not None:
            derived._sources = tuple(sources)
        if options is not None:
            derived._options = options
        if transform is not None:
            derived._transforms = (*self._transforms, transform)
        derived._dataset = None
        return derived

    def split(
        self, *fractions: float, shuffle: bool = True, seed: int | None = None
    ) -> list[VLADataset]:
        """Split by trajectory into datasets holding the given fractions of the trajectories.

        Every trajectory goes to at most one part (steps of one trajectory never leak between
        train and validation). Part ``i`` gets ``round(cumsum[i] * n) - round(cumsum[i-1] * n)``
        trajectories, so parts are disjoint and, when the fractions sum to 1, cover all of
        them. The assignment depends only on the file list, ``shuffle`` and ``seed``.

        Args:
            fractions: one positive fraction per part, summing to at most 1.
            shuffle: shuffle trajectories before cutting; otherwise cut in listing order.
            seed: the shuffle's seed; defaults to the dataset's ``seed``. With neither, the
                split differs from run to run.

        Raises:
            ValueError: no fractions, a fraction not in (0, 1], or a sum above 1.

        Examples:
            >>> train, val = ds.split(0.8, 0.2, seed=42)  # doctest: +SKIP
            >>> set(train.trajectory_paths).isdisjoint(val.trajectory_paths)  # doctest: +SKIP
            True
        """
        if not fractions:
            raise ValueError("split() needs at least one fraction, e.g. split(0.8, 0.2)")
        for fraction in fractions:
            if not (isinstance(fraction, int | float) and 0 < fraction <= 1):
                raise ValueError(f"split fractions must be in (0, 1], got {fraction!r}")
        if sum(fractions) > 1 + _FRACTION_TOLERANCE:
            raise ValueError(f"split fractions sum to {sum(fractions)}, more than 1: {fractions}")
        sources = list(self._sources)
        if shuffle:
            rng = np.random.default_rng(seed if seed is not None else self._seed)
            sources = [sources[i] for i in rng.permutation(len(sources))]
        bounds = [0, *(min(len(sources), round(c * len(sources))) for c in np.cumsum(fractions))]
        return [
            self._derive(sources=sources[start:end]) for start, end in itertools.pairwise(bounds)
        ]

    def filter(self, fn: Callable[[dict[str, Any]], bool], **ray_remote_args: Any) -> VLADataset:
        """Keep the rows for which ``fn(row)`` is true (lazy).

        Examples:
            >>> ds.filter(lambda row: row["step"] % 2 == 0)  # doctest: +SKIP
        """
        return self._derive(transform=lambda d: d.filter(fn, **ray_remote_args))

    def map(
        self, fn: Callable[[dict[str, Any]], dict[str, Any]], **ray_remote_args: Any
    ) -> VLADataset:
        """Transform every row with ``fn`` (lazy).

        Keep the ``trajectory`` column in the output if :meth:`get_stats` should still
        attribute steps to trajectories.

        Examples:
            >>> ds.map(lambda row: {**row, "action": row["action"] * 2})  # doctest: +SKIP
        """
        return self._derive(transform=lambda d: d.map(fn, **ray_remote_args))

    def map_batches(self, fn: Callable[..., Any], **kwargs: Any) -> VLADataset:
        """Transform batches with ``fn``; keyword arguments as ``ray.data.Dataset.map_batches``.

        Examples:
            >>> ds.map_batches(lambda b: {"x": b["action"] / 10}, batch_size=64)  # doctest: +SKIP
        """
        return self._derive(transform=lambda d: d.map_batches(fn, **kwargs))

    def shuffle(self, seed: int | None = None) -> VLADataset:
        """Shuffle all rows globally (lazy).

        Warning:
            A full shuffle moves every row through the object store; for training, shuffle
            trajectories (``shuffle=True`` at construction) and pass
            ``local_shuffle_buffer_size`` to :meth:`iter_batches` instead.

        Examples:
            >>> ds.shuffle(seed=0).take(1)  # doctest: +SKIP
        """
        return self._derive(transform=lambda d: d.random_shuffle(seed=seed))

    def __repr__(self) -> str:
        extra = f", desired_frequency={self._options.desired_frequency}"
        return (
            f"VLADataset(num_trajectories={len(self._sources)}, mode={self.mode!r}"
            f"{extra if self._options.desired_frequency is not None else ''}"
            f", transforms={len(self._transforms)})"
        )


def _check_frequency(frequency: float | None) -> None:
    if frequency is not None and not (math.isfinite(frequency) and frequency > 0):
        raise ValueError(f"desired_frequency must be a positive number of Hz, got {frequency}")


def _manifest_steps(manifest: DatasetManifest | None) -> dict[str, int]:
    if manifest is None:
        return {}
    return {record.name: record.steps for record in manifest.trajectories}
