"""Built-in :class:`DataIngestionInterface` implementations for common sources.

Each adapter streams its source: items are produced one at a time as the engine asks for
them (:meth:`~DataIngestionInterface.iter_data_items`), so a dataset larger than memory is
never materialized, and a one-shot source (a generator) is consumed exactly once.

Without a ``transform_fn``, items go through :func:`default_transform`. The adapters are
shipped to Ray workers without their source (:func:`worker_view`): workers only transform
items they receive by value, so a large in-memory dataset is not copied into every task.
"""

from __future__ import annotations

import copy
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from typing import Any

from robodm_engine.errors import IngestionError
from robodm_engine.ingestion.interface import DataIngestionInterface

__all__ = [
    "CallableAdapter",
    "FileListAdapter",
    "IteratorAdapter",
    "PyTorchDatasetAdapter",
    "default_transform",
    "worker_view",
]

TransformFn = Callable[[Any], dict[str, Any]]


def default_transform(item: Any) -> dict[str, Any]:
    """Turn an item into a step when no ``transform_fn`` is given.

    ============================  ==========================================================
    item                          step
    ============================  ==========================================================
    a mapping                     the mapping itself (nested dicts become ``a/b`` features)
    a pair ``(x, y)``             ``{"data": x, "target": y}`` (torchvision's sample, target)
    another tuple or list         ``{"field_0": ..., "field_1": ..., ...}``
    anything else                 ``{"data": item}``
    ============================  ==========================================================

    Examples:
        >>> default_transform((1.5, 3))
        {'data': 1.5, 'target': 3}
        >>> default_transform({"state": 0.0})
        {'state': 0.0}
    """
    if isinstance(item, Mapping):
        return dict(item)
    if isinstance(item, tuple | list):
        if len(item) == 2:
            return {"data": item[0], "target": item[1]}
        return {f"field_{i}": value for i, value in enumerate(item)}
    return {"data": item}


def _check_group_size(owner: str, group_size: Any) -> int:
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"{owner}: group_size must be an int >= 1, got {group_size!r}")
    return group_size


def _check_max_items(owner: str, max_items: Any) -> int | None:
    if max_items is None:
        return None
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0:
        raise ValueError(f"{owner}: max_items must be an int >= 0 or None, got {max_items!r}")
    return max_items


def _check_transform(owner: str, transform_fn: Any, *, required: bool = False) -> None:
    if transform_fn is None and not required:
        return
    if not callable(transform_fn):
        need = "a callable item -> dict" + ("" if required else " or None")
        raise TypeError(f"{owner}: transform_fn must be {need}, got {transform_fn!r}")


class _Adapter(DataIngestionInterface):
    """Shared behaviour: optional transform, group size, item limit."""

    # The attribute holding the source; dropped from the copy shipped to workers.
    _source_attr: str = ""

    def __init__(
        self, transform_fn: TransformFn | None, group_size: int, max_items: int | None
    ) -> None:
        owner = type(self).__name__
        _check_transform(owner, transform_fn)
        self.transform_fn = transform_fn
        self.group_size = _check_group_size(owner, group_size)
        self.max_items = _check_max_items(owner, max_items)

    def transform_item(self, item: Any) -> dict[str, Any]:
        """Apply ``transform_fn``, or :func:`default_transform` when there is none."""
        if self.transform_fn is None:
            return default_transform(item)
        return self.transform_fn(item)

    def get_data_items(self) -> list[Any]:
        """Return all items as a list (materializes the source; the engine streams instead)."""
        return list(self.iter_data_items())

    def _limit(self, items: Iterable[Any]) -> Iterable[Any]:
        return items if self.max_items is None else itertools.islice(items, self.max_items)

    def _limit_count(self, count: int) -> int:
        return count if self.max_items is None else min(count, self.max_items)

    def _without_source(self) -> _Adapter:
        clone = copy.copy(self)
        setattr(clone, self._source_attr, None)
        return clone


class PyTorchDatasetAdapter(_Adapter):
    """Ingest a map-style dataset: anything with ``__len__`` and ``__getitem__``.

    That covers ``torch.utils.data.Dataset`` subclasses, lists and numpy arrays. Samples are
    read in index order, lazily, in the driver (``dataset[i]``) and shipped to the workers
    by value; item ids are the indices.

    Args:
        dataset: the dataset.
        transform_fn: sample -> dict of features; default :func:`default_transform`
            (a ``(image, label)`` sample becomes ``{"data": image, "target": label}``).
        group_size: consecutive samples per trajectory.
        max_items: read at most this many samples.

    Examples:
        >>> import numpy as np
        >>> from robodm_engine.ingestion import PyTorchDatasetAdapter
        >>> images = np.zeros((10, 32, 32, 3), dtype=np.uint8)
        >>> adapter = PyTorchDatasetAdapter(
        ...     dataset=images,
        ...     transform_fn=lambda image: {"image": image},
        ...     group_size=4,
        ... )
        >>> adapter.count_items(), len(adapter.group_items_into_trajectories(range(10)))
        (10, 3)
    """

    _source_attr = "dataset"

    def __init__(
        self,
        dataset: Any,
        transform_fn: TransformFn | None = None,
        group_size: int = 1,
        max_items: int | None = None,
    ) -> None:
        super().__init__(transform_fn, group_size, max_items)
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise TypeError(
                "PyTorchDatasetAdapter needs a map-style dataset (with __len__ and "
                f"__getitem__), got {type(dataset).__name__}; use IteratorAdapter for "
                "iterable datasets and generators"
            )
        self.dataset = dataset

    def iter_data_items(self) -> Iterator[Any]:
        """Yield ``dataset[0]``, ``dataset[1]``, ... up to ``max_items``."""
        dataset = self.dataset
        if dataset is None:
            raise IngestionError("this PyTorchDatasetAdapter is a worker copy without its dataset")
        return (dataset[i] for i in range(self._limit_count(len(dataset))))

    def count_items(self) -> int | None:
        """Return ``len(dataset)``, capped at ``max_items``."""
        return None if self.dataset is None else self._limit_count(len(self.dataset))


class IteratorAdapter(_Adapter):
    """Ingest the items an iterator factory yields (a generator function, typically).

    ``iterator_factory`` is called exactly once per ingestion, and the iterator it returns is
    consumed lazily: only as many items as the workers can take are read ahead, so an
    endless generator with ``max_items`` streams in bounded memory.

    Args:
        iterator_factory: a zero-argument callable returning an iterable.
        transform_fn: item -> dict of features; default :func:`default_transform`.
        group_size: consecutive items per trajectory.
        max_items: read at most this many items.

    Examples:
        >>> from robodm_engine.ingestion import IteratorAdapter
        >>> def my_data_generator():
        ...     for i in range(10000):
        ...         yield {"value": float(i)}
        >>> adapter = IteratorAdapter(
        ...     iterator_factory=my_data_generator,
        ...     transform_fn=lambda item: {"x": item["value"]},
        ...     max_items=1000,
        ... )
        >>> sum(1 for _ in adapter.iter_data_items())
        1000
    """

    _source_attr = "iterator_factory"

    def __init__(
        self,
        iterator_factory: Callable[[], Iterable[Any]],
        transform_fn: TransformFn | None = None,
        group_size: int = 1,
        max_items: int | None = None,
    ) -> None:
        super().__init__(transform_fn, group_size, max_items)
        if not callable(iterator_factory):
            hint = (
                "; wrap an iterator as `lambda: it` or pass it to create_vla_dataset_from_source"
                if isinstance(iterator_factory, Iterator)
                else ""
            )
            raise TypeError(
                "IteratorAdapter: iterator_factory must be a zero-argument callable returning "
                f"an iterable, got {type(iterator_factory).__name__}{hint}"
            )
        self.iterator_factory = iterator_factory

    def iter_data_items(self) -> Iterable[Any]:
        """Call ``iterator_factory()`` once and return its items, lazily, up to ``max_items``."""
        if self.iterator_factory is None:
            raise IngestionError("this IteratorAdapter is a worker copy without its factory")
        produced = self.iterator_factory()
        if not isinstance(produced, Iterable):
            raise TypeError(
                f"iterator_factory {self.iterator_factory!r} returned "
                f"{type(produced).__name__}, which is not iterable"
            )
        return self._limit(produced)


class FileListAdapter(_Adapter):
    """Ingest a list of files: each path is one item, loaded by ``transform_fn`` in a worker.

    Paths are made absolute and shipped to the workers, which open the files themselves, so
    loading and decoding run in parallel. Item ids (in failure reports) are the paths.

    Args:
        file_paths: the files (``str`` or ``os.PathLike``).
        transform_fn: path -> dict of features (required: only you know the file format).
        group_size: consecutive files per trajectory.
        max_items: process at most this many files.

    Examples:
        >>> import json
        >>> from robodm_engine.ingestion import FileListAdapter
        >>> def load_and_transform_file(path):
        ...     with open(path) as f:
        ...         return json.load(f)
        >>> adapter = FileListAdapter(
        ...     file_paths=["data1.json", "data2.json", "data3.json"],
        ...     transform_fn=load_and_transform_file,
        ...     group_size=50,
        ... )
        >>> adapter.count_items(), adapter.get_item_id("/data/data2.json", 1)
        (3, '/data/data2.json')
    """

    _source_attr = "file_paths"

    def __init__(
        self,
        file_paths: Sequence[str | os.PathLike[str]],
        transform_fn: TransformFn,
        group_size: int = 1,
        max_items: int | None = None,
    ) -> None:
        _check_transform(type(self).__name__, transform_fn, required=True)
        super().__init__(transform_fn, group_size, max_items)
        if isinstance(file_paths, str | bytes | os.PathLike) or not isinstance(
            file_paths, Sequence
        ):
            raise TypeError(
                "FileListAdapter: file_paths must be a list of paths, got "
                f"{type(file_paths).__name__}; wrap a single path in a list"
            )
        bad = [p for p in file_paths if not isinstance(p, str | os.PathLike)]
        if bad:
            raise TypeError(
                f"FileListAdapter: file_paths must hold str or os.PathLike, got {bad[0]!r}"
            )
        # Absolute, because transform_fn opens them in Ray workers, whose working directory
        # is not the caller's.
        self.file_paths: list[str] | None = [os.path.abspath(os.fspath(p)) for p in file_paths]

    def iter_data_items(self) -> Iterable[str]:
        """Return the paths, up to ``max_items``."""
        if self.file_paths is None:
            raise IngestionError("this FileListAdapter is a worker copy without its file list")
        return self._limit(self.file_paths)

    def count_items(self) -> int | None:
        """Return the number of paths, capped at ``max_items``."""
        return None if self.file_paths is None else self._limit_count(len(self.file_paths))

    def get_item_id(self, item: Any, index: int) -> str:
        """Return the file's path."""
        return str(item)


class CallableAdapter(_Adapter):
    """Ingest what a zero-argument function returns (a list, or any iterable).

    ``data_generator`` is called exactly once, when the ingestion starts (never to probe
    it); a list it returns is read in order, an iterator or generator lazily.

    Args:
        data_generator: zero-argument callable returning the items.
        transform_fn: item -> dict of features; default :func:`default_transform`.
        group_size: consecutive items per trajectory.
        max_items: read at most this many items.

    Examples:
        >>> from robodm_engine.ingestion import CallableAdapter
        >>> def generate_data():
        ...     return [{"i": i} for i in range(1000)]
        >>> adapter = CallableAdapter(
        ...     data_generator=generate_data,
        ...     transform_fn=lambda item: {"value": item["i"] * 2},
        ... )
        >>> adapter.transform_item({"i": 4})
        {'value': 8}
    """

    _source_attr = "data_generator"

    def __init__(
        self,
        data_generator: Callable[[], Iterable[Any]],
        transform_fn: TransformFn | None = None,
        group_size: int = 1,
        max_items: int | None = None,
    ) -> None:
        super().__init__(transform_fn, group_size, max_items)
        if not callable(data_generator):
            raise TypeError(
                "CallableAdapter: data_generator must be a zero-argument callable, got "
                f"{type(data_generator).__name__}"
            )
        self.data_generator = data_generator
        self._produced: Iterable[Any] | None = None

    def iter_data_items(self) -> Iterable[Any]:
        """Call ``data_generator()`` (the first time only) and return its items lazily."""
        if self._produced is None:
            if self.data_generator is None:
                raise IngestionError("this CallableAdapter is a worker copy without its function")
            produced = self.data_generator()
            if not isinstance(produced, Iterable) or isinstance(produced, str | bytes | Mapping):
                raise TypeError(
                    f"data_generator {getattr(self.data_generator, '__name__', '')!r} returned "
                    f"{type(produced).__name__}; it must return a list or an iterable of items"
                )
            self._produced = produced
        elif isinstance(self._produced, Iterator):
            raise IngestionError(
                "the iterator returned by data_generator was already consumed; an ingester "
                "built on a one-shot iterator can run only once"
            )
        return self._limit(self._produced)

    def count_items(self) -> int | None:
        """Return the number of items once the function was called and returned a sized list."""
        if isinstance(self._produced, Sized):
            return self._limit_count(len(self._produced))
        return None

    def _without_source(self) -> _Adapter:
        clone = super()._without_source()
        clone._produced = None  # type: ignore[attr-defined]
        return clone


_BUILTIN: tuple[type[_Adapter], ...] = (
    PyTorchDatasetAdapter,
    IteratorAdapter,
    FileListAdapter,
    CallableAdapter,
)


def worker_view(ingester: DataIngestionInterface) -> DataIngestionInterface:
    """Return what to ship to the workers: the ingester, minus the source for built-ins.

    Subclasses of the adapters are shipped whole, since an override may use the source.
    """
    if isinstance(ingester, _Adapter) and type(ingester) in _BUILTIN:
        return ingester._without_source()
    return ingester
