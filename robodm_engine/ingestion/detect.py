"""Choosing an ingester for an arbitrary data source, without touching the source.

Detection looks only at types and signatures: it never calls a user's function and never
pulls an item from an iterator (upstream robodm called a callable once to "probe" it, so
the function ran twice and a generator lost its first items). See
:func:`detect_ingester` for the table.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from robodm_engine.errors import IngestionError
from robodm_engine.ingestion.adapters import (
    CallableAdapter,
    FileListAdapter,
    IteratorAdapter,
    PyTorchDatasetAdapter,
    TransformFn,
)
from robodm_engine.ingestion.interface import DataIngestionInterface

__all__ = ["ACCEPTED_SOURCES", "OneShot", "detect_ingester"]

ACCEPTED_SOURCES = (
    "a DataIngestionInterface instance, a map-style dataset (torch Dataset, list, tuple, "
    "numpy array: anything with __len__ and __getitem__), a list of file paths (with "
    "transform_fn), an iterator or generator object, a torch IterableDataset or other "
    "iterable, a generator function, or a zero-argument callable returning the items"
)


class OneShot:
    """An iterator factory over an iterator that already exists: usable exactly once.

    A second call raises instead of silently yielding nothing, which is what a consumed
    iterator would do.
    """

    def __init__(self, iterator: Iterator[Any]) -> None:
        self._iterator: Iterator[Any] | None = iterator
        self._lock = threading.Lock()

    def __call__(self) -> Iterator[Any]:
        with self._lock:
            iterator, self._iterator = self._iterator, None
        if iterator is None:
            raise IngestionError(
                "this source is a one-shot iterator that an earlier ingestion already "
                "consumed; pass a generator function (or a list) to ingest it more than once"
            )
        return iterator

    def __reduce__(self) -> Any:
        raise TypeError("a one-shot iterator source cannot be pickled")


def _is_torch_iterable_dataset(source: Any) -> bool:
    # Only look if torch is already imported: a torch object implies it is.
    torch_data = sys.modules.get("torch.utils.data")
    return torch_data is not None and isinstance(source, torch_data.IterableDataset)


def _is_path_list(source: Any) -> bool:
    return (
        isinstance(source, list | tuple)
        and len(source) > 0
        and all(isinstance(p, str | os.PathLike) for p in source)
    )


def _takes_no_arguments(fn: Callable[..., Any]) -> bool:
    try:
        inspect.signature(fn).bind()
    except TypeError:
        return False
    except ValueError:  # no signature available (some builtins): give it the benefit
        return True
    return True


def _describe(source: Any) -> str:
    kind = type(source)
    return f"{kind.__module__}.{kind.__qualname__}"


def detect_ingester(
    data_source: Any,
    *,
    transform_fn: TransformFn | None = None,
    group_size: int = 1,
) -> DataIngestionInterface:
    """Return the ingester for ``data_source``, chosen by type, in this order.

    ==========================================  ===============================================
    data_source                                 ingester
    ==========================================  ===============================================
    ``DataIngestionInterface`` instance         itself (``transform_fn`` must be ``None``)
    ``torch.utils.data.IterableDataset``        ``IteratorAdapter`` over ``iter(source)``
    non-empty list/tuple of ``str``/PathLike    ``FileListAdapter`` (``transform_fn`` required)
    ``__len__`` + ``__getitem__`` (torch        ``PyTorchDatasetAdapter``: read lazily by
    ``Dataset``, list, tuple, numpy array)      index
    iterator or generator object                ``IteratorAdapter``, consumed exactly once
    generator function                          ``IteratorAdapter``; called exactly once
    other zero-argument callable                ``CallableAdapter``; called exactly once
    other iterable (``DataLoader``, set, ...)   ``IteratorAdapter`` over ``iter(source)``
    a class, str, bytes, path, mapping, other   ``TypeError`` naming the type
    ==========================================  ===============================================

    Nothing is called or consumed here: the ingestion itself calls the function or reads
    the iterator, once.

    Raises:
        TypeError: the source is of none of the accepted kinds, or ``transform_fn`` is
            combined with a custom ingester, or a file list comes without ``transform_fn``.

    Examples:
        >>> from robodm_engine.ingestion.detect import detect_ingester
        >>> type(detect_ingester([{"x": 1.0}, {"x": 2.0}])).__name__
        'PyTorchDatasetAdapter'
        >>> type(detect_ingester(["a.json", "b.json"], transform_fn=dict)).__name__
        'FileListAdapter'
        >>> type(detect_ingester(iter([1, 2]))).__name__
        'IteratorAdapter'
    """
    if isinstance(data_source, DataIngestionInterface):
        if transform_fn is not None:
            raise TypeError(
                f"transform_fn cannot be combined with a custom ingester "
                f"({_describe(data_source)}): put the logic in its transform_item()"
            )
        return data_source
    if isinstance(data_source, type):
        raise TypeError(
            f"data_source is the class {_describe(data_source)}, not an instance; "
            "pass an instance (e.g. MyIngester(...))"
        )
    if isinstance(data_source, str | bytes | os.PathLike):
        raise TypeError(
            f"data_source is a single path or string ({data_source!r}); pass a list of file "
            "paths together with a transform_fn that loads one file"
        )
    if isinstance(data_source, Mapping):
        raise TypeError(
            f"data_source is a mapping ({_describe(data_source)}); pass a list of items "
            "(e.g. a list of dicts, one per step)"
        )
    kwargs: dict[str, Any] = {"transform_fn": transform_fn, "group_size": group_size}
    if _is_torch_iterable_dataset(data_source):
        return IteratorAdapter(functools.partial(iter, data_source), **kwargs)
    if _is_path_list(data_source):
        if transform_fn is None:
            raise TypeError(
                "data_source is a list of file paths: pass transform_fn=<function path -> "
                "dict of features> to load each file"
            )
        return FileListAdapter(data_source, **kwargs)
    if hasattr(data_source, "__getitem__") and hasattr(data_source, "__len__"):
        return PyTorchDatasetAdapter(data_source, **kwargs)
    if isinstance(data_source, Iterator):
        return IteratorAdapter(OneShot(data_source), **kwargs)
    if inspect.isgeneratorfunction(data_source) or (
        isinstance(data_source, functools.partial)
        and inspect.isgeneratorfunction(data_source.func)
    ):
        if not _takes_no_arguments(data_source):
            raise TypeError(
                f"generator function {getattr(data_source, '__name__', data_source)!r} needs "
                "arguments; pass functools.partial(fn, ...) or a lambda taking none"
            )
        return IteratorAdapter(data_source, **kwargs)
    if callable(data_source):
        if not _takes_no_arguments(data_source):
            raise TypeError(
                f"callable {getattr(data_source, '__name__', _describe(data_source))!r} "
                "needs arguments; data_source callables are called once with none"
            )
        return CallableAdapter(data_source, **kwargs)
    if isinstance(data_source, Iterable):
        return IteratorAdapter(functools.partial(iter, data_source), **kwargs)
    raise TypeError(
        f"cannot ingest a data_source of type {_describe(data_source)}; accepted: "
        f"{ACCEPTED_SOURCES}"
    )
