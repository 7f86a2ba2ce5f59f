"""One-call entry points: any data source in, a VLA dataset (or trajectory paths) out.

:func:`create_vla_dataset_from_source` detects the kind of source
(:func:`~robodm_engine.ingestion.detect.detect_ingester`), builds an
:class:`~robodm_engine.ingestion.config.IngestionConfig` from its keyword arguments, runs
:func:`~robodm_engine.ingestion.runner.run_ingestion` and opens the result as a
:class:`robodm_engine.dataset.VLADataset`. The ``create_vla_dataset_from_*`` variants skip
detection for one kind of source.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from robodm_engine.ingestion.adapters import (
    CallableAdapter,
    FileListAdapter,
    IteratorAdapter,
    PyTorchDatasetAdapter,
    TransformFn,
)
from robodm_engine.ingestion.config import IngestionConfig
from robodm_engine.ingestion.detect import OneShot, detect_ingester
from robodm_engine.ingestion.interface import DataIngestionInterface
from robodm_engine.ingestion.progress import IngestionProgress
from robodm_engine.ingestion.runner import run_ingestion

__all__ = [
    "create_vla_dataset_from_callable",
    "create_vla_dataset_from_file_list",
    "create_vla_dataset_from_iterator",
    "create_vla_dataset_from_pytorch_dataset",
    "create_vla_dataset_from_source",
    "default_output_directory",
]

logger = logging.getLogger("robodm_engine.ingestion")

# Keyword arguments the factories pass on to IngestionConfig.
_CONFIG_KWARGS = frozenset(f.name for f in dataclasses.fields(IngestionConfig)) - {
    "output_directory",
    "num_workers",
}


def default_output_directory(parent: str | os.PathLike[str] | None = None) -> str:
    """Create and return a new, empty directory for a dataset whose location was not given.

    It is ``./robodm_dataset_<UTC time>`` in the current directory (or ``parent``), e.g.
    ``./robodm_dataset_20261121T060631Z``, with ``_2``, ``_3``, ... appended if that exists:
    never an existing directory, since writing into one would resume (or clobber) another
    dataset. The directory is visible and persistent on purpose: a dataset written to a
    temporary directory would vanish under the training job that reads it.

    Examples:
        >>> import tempfile
        >>> from robodm_engine.ingestion import default_output_directory
        >>> os.path.basename(default_output_directory(tempfile.mkdtemp()))[:15]
        'robodm_dataset_'
    """
    base = Path(parent) if parent is not None else Path.cwd()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(1, 1000):
        suffix = "" if attempt == 1 else f"_{attempt}"
        candidate = base / f"robodm_dataset_{stamp}{suffix}"
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:
            continue
        return str(candidate.absolute())
    raise FileExistsError(f"could not create a new robodm_dataset_{stamp}_* under {base}")


def _config(
    output_directory: str | os.PathLike[str] | None,
    num_workers: int,
    group_size: int | None,
    kwargs: dict[str, Any],
) -> IngestionConfig:
    unknown = sorted(set(kwargs) - _CONFIG_KWARGS)
    if unknown:
        raise TypeError(
            f"unexpected keyword argument(s) {unknown}; accepted: transform_fn, group_size, "
            f"num_workers, output_directory, return_vla_dataset, progress_callback and the "
            f"IngestionConfig fields {sorted(_CONFIG_KWARGS)}"
        )
    # Validated before a default directory is created, so a typo leaves nothing behind.
    config = IngestionConfig(
        output_directory=os.fspath(output_directory) if output_directory is not None else ".",
        num_workers=num_workers,
        group_size=group_size,
        **kwargs,
    )
    if output_directory is None:
        config = dataclasses.replace(config, output_directory=default_output_directory())
        logger.info("no output_directory given; writing the dataset to %s", config.output_directory)
    return config


def _ingest(
    ingester: DataIngestionInterface,
    *,
    output_directory: str | os.PathLike[str] | None,
    num_workers: int,
    return_vla_dataset: bool,
    group_size: int | None,
    kwargs: dict[str, Any],
) -> Any:
    progress_callback: Callable[[IngestionProgress], None] | None = kwargs.pop(
        "progress_callback", None
    )
    config = _config(output_directory, num_workers, group_size, kwargs)
    result = run_ingestion(ingester, config, progress_callback=progress_callback)
    if not return_vla_dataset:
        return result.trajectory_uris
    # Imported here: the dataset module pulls in Ray Data, which plain ingestion never needs.
    from robodm_engine.dataset import VLADataset

    return VLADataset(result.output_uri, storage_options=config.storage_options)


def create_vla_dataset_from_source(
    data_source: Any,
    output_directory: str | os.PathLike[str] | None = None,
    transform_fn: TransformFn | None = None,
    group_size: int = 1,
    num_workers: int = 4,
    return_vla_dataset: bool = True,
    **kwargs: Any,
) -> Any:
    """Convert any supported data source into a VLA dataset, in parallel on Ray.

    The kind of source is detected by type without calling or consuming it (see
    :func:`~robodm_engine.ingestion.detect.detect_ingester` for the table): a
    ``DataIngestionInterface``, a map-style dataset (torch ``Dataset``, list, numpy array),
    a list of file paths, an iterator or generator, a generator function or a zero-argument
    callable. Functions are called once and iterators read once, lazily.

    Tip:
        Re-running with the same ``output_directory`` resumes: trajectories already
        published and verified are kept, the rest are written.

    Args:
        data_source: the source.
        output_directory: local directory, ``file://`` or ``s3://`` URI. ``None`` creates a
            new ``./robodm_dataset_<UTC time>`` (see :func:`default_output_directory`).
        transform_fn: item -> dict of features, for built-in sources (not with a custom
            ingester, whose ``transform_item`` does that).
        group_size: consecutive items per trajectory.
        num_workers: trajectories written in parallel (Ray tasks of 1 CPU).
        return_vla_dataset: return a ``VLADataset`` (default) or the list of trajectory
            paths/URIs in index order.
        **kwargs: any :class:`IngestionConfig` field (``max_items``, ``ray_init_kwargs``,
            ``max_failed_items``, ``trajectory_prefix``, ``video_codec``, ...) and
            ``progress_callback`` (see :func:`run_ingestion`).

    Returns:
        A :class:`robodm_engine.dataset.VLADataset` over the output, or a list of paths.

    Raises:
        TypeError: an unsupported source, or an unknown keyword argument.
        IngestionError: the job failed (see :func:`run_ingestion`).

    Examples:
        >>> import numpy as np
        >>> from robodm_engine.ingestion import create_vla_dataset_from_source
        >>> steps = [{"image": np.zeros((32, 32, 3), np.uint8), "label": i} for i in range(8)]
        >>> paths = create_vla_dataset_from_source(  # doctest: +SKIP
        ...     steps, output_directory="./my_trajectories", group_size=2, num_workers=2,
        ...     return_vla_dataset=False,
        ... )
        >>> [os.path.basename(p) for p in paths]  # doctest: +SKIP
        ['trajectory_000000.mkv', 'trajectory_000001.mkv', 'trajectory_000002.mkv', \
'trajectory_000003.mkv']
    """
    ingester = detect_ingester(data_source, transform_fn=transform_fn, group_size=group_size)
    override: int | None = None
    if ingester is data_source and group_size != 1:
        if (
            type(ingester).group_items_into_trajectories
            is not DataIngestionInterface.group_items_into_trajectories
        ):
            raise ValueError(
                f"group_size={group_size} conflicts with "
                f"{type(ingester).__name__}.group_items_into_trajectories, which does the "
                "grouping; drop one of them"
            )
        override = group_size
    return _ingest(
        ingester,
        output_directory=output_directory,
        num_workers=num_workers,
        return_vla_dataset=return_vla_dataset,
        group_size=override,
        kwargs=kwargs,
    )


def _split_common(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {
        "output_directory": kwargs.pop("output_directory", None),
        "num_workers": kwargs.pop("num_workers", 4),
        "return_vla_dataset": kwargs.pop("return_vla_dataset", True),
    }


def create_vla_dataset_from_pytorch_dataset(
    dataset: Any, trajectories_per_dataset: int = 1, **kwargs: Any
) -> Any:
    """Convert a map-style PyTorch dataset into ``trajectories_per_dataset`` trajectories.

    The samples are split, in order, into that many trajectories of (nearly) equal length.

    Args:
        dataset: anything with ``__len__`` and ``__getitem__``.
        trajectories_per_dataset: how many trajectories to make.
        **kwargs: as for :func:`create_vla_dataset_from_source` (``transform_fn``,
            ``output_directory``, ``num_workers``, config fields...), except ``group_size``.

    Examples:
        >>> from robodm_engine.ingestion import create_vla_dataset_from_pytorch_dataset
        >>> vla = create_vla_dataset_from_pytorch_dataset(  # doctest: +SKIP
        ...     cifar_like, trajectories_per_dataset=4, output_directory="./cifar"
        ... )
    """
    if isinstance(trajectories_per_dataset, bool) or not isinstance(
        trajectories_per_dataset, int
    ) or trajectories_per_dataset < 1:
        raise ValueError(
            f"trajectories_per_dataset must be an int >= 1, got {trajectories_per_dataset!r}"
        )
    if "group_size" in kwargs:
        raise TypeError("pass trajectories_per_dataset, not group_size")
    if not hasattr(dataset, "__len__"):
        raise TypeError(
            f"{type(dataset).__name__} has no __len__; use create_vla_dataset_from_iterator "
            "for iterable datasets"
        )
    common = _split_common(kwargs)
    count = len(dataset)
    if kwargs.get("max_items") is not None:
        count = min(count, kwargs["max_items"])
    group_size = max(1, math.ceil(count / trajectories_per_dataset))
    adapter = PyTorchDatasetAdapter(
        dataset, transform_fn=kwargs.pop("transform_fn", None), group_size=group_size
    )
    return _ingest(adapter, group_size=None, kwargs=kwargs, **common)


def create_vla_dataset_from_file_list(
    file_paths: Sequence[str | os.PathLike[str]],
    transform_fn: TransformFn,
    files_per_trajectory: int = 100,
    **kwargs: Any,
) -> Any:
    """Convert files into trajectories of ``files_per_trajectory`` files each.

    ``transform_fn`` receives one path and runs in a Ray worker, so files are read in
    parallel.

    Examples:
        >>> from robodm_engine.ingestion import create_vla_dataset_from_file_list
        >>> vla = create_vla_dataset_from_file_list(  # doctest: +SKIP
        ...     sorted(glob.glob("data/*.json")), load_and_transform_file,
        ...     files_per_trajectory=50,
        ... )
    """
    common = _split_common(kwargs)
    adapter = FileListAdapter(file_paths, transform_fn, group_size=files_per_trajectory)
    return _ingest(adapter, group_size=None, kwargs=kwargs, **common)


def create_vla_dataset_from_iterator(
    iterator_factory: Callable[[], Iterable[Any]] | Iterator[Any],
    max_items: int | None = None,
    items_per_trajectory: int = 100,
    **kwargs: Any,
) -> Any:
    """Convert what an iterator factory yields, streaming, into trajectories.

    ``iterator_factory`` is called once; an iterator passed directly is read once.

    Examples:
        >>> from robodm_engine.ingestion import create_vla_dataset_from_iterator
        >>> def stream():
        ...     while True:
        ...         yield {"x": 0.0}
        >>> vla = create_vla_dataset_from_iterator(  # doctest: +SKIP
        ...     stream, max_items=10_000, items_per_trajectory=500
        ... )
    """
    common = _split_common(kwargs)
    factory = (
        OneShot(iterator_factory) if isinstance(iterator_factory, Iterator) else iterator_factory
    )
    adapter = IteratorAdapter(
        factory,
        transform_fn=kwargs.pop("transform_fn", None),
        group_size=items_per_trajectory,
        max_items=max_items,
    )
    return _ingest(adapter, group_size=None, kwargs=kwargs, **common)


def create_vla_dataset_from_callable(
    data_generator: Callable[[], Iterable[Any]],
    items_per_trajectory: int = 100,
    **kwargs: Any,
) -> Any:
    """Convert what ``data_generator()`` returns into trajectories; it is called once.

    Examples:
        >>> from robodm_engine.ingestion import create_vla_dataset_from_callable
        >>> vla = create_vla_dataset_from_callable(  # doctest: +SKIP
        ...     generate_data, items_per_trajectory=100, transform_fn=process_item
        ... )
    """
    common = _split_common(kwargs)
    adapter = CallableAdapter(
        data_generator,
        transform_fn=kwargs.pop("transform_fn", None),
        group_size=items_per_trajectory,
    )
    return _ingest(adapter, group_size=None, kwargs=kwargs, **common)
