"""The extension point of the ingestion engine: :class:`DataIngestionInterface`.

A user describes *what* to ingest by implementing two methods (list the items, turn one item
into a dict of features); the engine in :mod:`robodm_engine.ingestion.runner` decides *how*:
grouping, naming, parallel execution on Ray, failure policy, resume and the manifest. The
built-in adapters in :mod:`robodm_engine.ingestion.adapters` are ready-made implementations.

The instance itself is shipped to the Ray workers (cloudpickled, once per job), so its
constructor may take any arguments; it only has to be picklable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["DataIngestionInterface"]


class DataIngestionInterface(ABC):
    """How to turn one kind of data source into trajectories.

    Implement :meth:`get_data_items` and :meth:`transform_item`; override the other methods
    to customize grouping, naming, validation or item ids. Each item becomes one step of a
    trajectory; :attr:`group_size` consecutive items (default 1) make one trajectory.

    The methods run in two places: :meth:`get_data_items` / :meth:`iter_data_items`,
    :meth:`group_items_into_trajectories`, :meth:`get_trajectory_filename` and
    :meth:`get_item_id` in the driver; :meth:`transform_item` and
    :meth:`validate_transformed_data` in Ray workers, on a copy of the instance.

    Examples:
        >>> import numpy as np
        >>> from robodm_engine.ingestion import DataIngestionInterface
        >>> class SquaresIngester(DataIngestionInterface):
        ...     group_size = 5
        ...     def get_data_items(self):
        ...         return list(range(10))
        ...     def transform_item(self, item):
        ...         return {"x": np.float32(item), "x2": np.float32(item * item)}
        >>> SquaresIngester().group_items_into_trajectories([0, 1, 2, 3, 4, 5, 6])
        [[0, 1, 2, 3, 4], [5, 6]]
    """

    group_size: int = 1
    """Items per trajectory used by the default :meth:`group_items_into_trajectories`."""

    @abstractmethod
    def get_data_items(self) -> Sequence[Any] | Iterable[Any]:
        """Return the data items to process (file paths, indices, records, ...).

        Keep items light (a path rather than the decoded file): they are shipped to workers
        by value and :meth:`transform_item` does the heavy loading there.
        """

    @abstractmethod
    def transform_item(self, item: Any) -> dict[str, Any]:
        """Transform one item into one trajectory step: a (nested) dict of features.

        Values are numpy arrays, numbers, ``str`` or ``bytes`` (torch tensors are converted);
        nested dicts are flattened with ``/``. Return ``{}`` to skip the item on purpose (it is
        counted as skipped, not failed); raise to report it as a failed item.
        """

    def iter_data_items(self) -> Iterable[Any]:
        """Return the items as an iterable the engine consumes exactly once, lazily.

        The default returns :meth:`get_data_items`. Override it (the built-in adapters do) to
        stream a source larger than memory: the engine then pulls items only as fast as the
        workers write them.
        """
        return self.get_data_items()

    def count_items(self) -> int | None:
        """Return the number of items if known without consuming them, else ``None``.

        Called once, right after :meth:`iter_data_items`; used only for progress reporting
        (``itemsTotal``). When it returns ``None`` and the iterable is sized, its ``len`` is
        used.
        """
        return None

    def group_items_into_trajectories(self, items: Sequence[Any]) -> list[list[Any]]:
        """Group items into trajectories: one inner list per trajectory file.

        The default makes consecutive chunks of :attr:`group_size` items (one item per
        trajectory unless ``group_size`` is changed). When this method is **not** overridden,
        the engine streams the source in such chunks without materializing it; an override
        receives the full list of items, so the whole source is held in the driver's memory.
        """
        size = max(1, int(self.group_size))
        return [list(items[start : start + size]) for start in range(0, len(items), size)]

    def get_trajectory_filename(self, trajectory_group: Sequence[Any], index: int) -> str:
        """Return the name of the trajectory made of ``trajectory_group`` (no extension).

        ``index`` is the global index of the group, deterministic for a given source order.
        The engine sanitizes the result (directories and unsafe characters are removed) and
        fails the job if two groups get the same name. When not overridden, the engine uses
        ``f"{config.trajectory_prefix}_{index:06d}"``, which is this default for the default
        prefix.
        """
        return f"trajectory_{index:06d}"

    def validate_transformed_data(self, data: dict[str, Any]) -> bool:
        """Return whether a transformed item may be added to its trajectory.

        Returning ``False`` (or raising) reports the item as failed at stage ``"validate"``;
        :attr:`IngestionConfig.max_failed_items` decides whether the job continues.
        """
        return True

    def get_item_id(self, item: Any, index: int) -> str:
        """Return the identifier reported for ``item`` in failures (default: its index).

        ``index`` is the item's position in the source. Override it to report something a
        person can find again, such as a file path or a record key.
        """
        return str(index)
