"""Dataset statistics computed in parallel: per-batch partial moments, merged on the driver.

Private component of :mod:`robodm_engine.dataset`. Ray Data's built-in aggregations work on
scalar columns only, while features are tensors (images, state vectors), so each batch is
summarised in its task by :func:`partial_stats` (element counts, min, max, mean and the sum of
squared deviations per numeric feature, plus steps per trajectory) and the small partials are
merged with Chan et al.'s pairwise update, which stays accurate where the textbook
``E[x^2] - E[x]^2`` loses every digit (values far from zero with a small spread).
"""

from __future__ import annotations

import math
import pickle
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray

from robodm_engine.dataset._read import METADATA_COLUMNS, TIMESTAMP_COLUMN, TRAJECTORY_COLUMN, Mode
from robodm_engine.errors import DatasetError

PARTIAL_COLUMN = "partial"
# Bounds the float64 temporaries while summarising a batch of images (1M elements = 8 MB).
_CHUNK_ELEMENTS = 1 << 20


class FeatureStats(TypedDict):
    """Statistics of one feature over every element of every step.

    ``min``/``max``/``mean``/``std`` (population, ``ddof=0``) are ``None`` for non-numeric
    features (strings, bytes, booleans) and for features without any sample.
    """

    dtype: str
    shape: tuple[int, ...]
    min: float | None
    max: float | None
    mean: float | None
    std: float | None


class LengthStats(TypedDict):
    """Trajectory lengths in steps."""

    min: int
    max: int
    mean: float


class DatasetStats(TypedDict):
    """What :meth:`VLADataset.get_stats` returns.

    ``trajectories`` and ``length`` are ``None`` when a ``map`` dropped the ``trajectory``
    column, so steps can no longer be attributed to trajectories (``steps`` is then the row
    count in step mode and ``None`` in trajectory mode).
    """

    trajectories: int | None
    steps: int | None
    length: LengthStats | None
    features: dict[str, FeatureStats]
    skipped: int


@dataclass
class Moments:
    """Count, extremes, mean and sum of squared deviations (M2) of a set of numbers."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    @classmethod
    def of(cls, values: NDArray[Any]) -> Moments:
        """Moments of every element of ``values``, in row chunks to bound memory."""
        flat = values.reshape(len(values), -1) if values.ndim > 1 else values.reshape(-1, 1)
        rows = max(1, _CHUNK_ELEMENTS // max(1, flat.shape[1]))
        result = cls()
        for start in range(0, len(flat), rows):
            chunk = flat[start : start + rows]
            if chunk.size:
                result = result.merge(cls._of_chunk(chunk))
        return result

    @classmethod
    def _of_chunk(cls, chunk: NDArray[Any]) -> Moments:
        count = chunk.size
        extremes = float(chunk.min()), float(chunk.max())
        if chunk.dtype.kind in "ui" and chunk.dtype.itemsize <= 2:
            # Images and depth maps: integer sums are exact (a chunk's sum of squares stays
            # far below 2**63) and several times faster than float64 deviations.
            total = int(chunk.sum(dtype=np.int64))
            squares = int(np.square(chunk, dtype=np.int64).sum())
            m2 = (squares * count - total * total) / count
            return cls(count, total / count, m2, *extremes)
        values = chunk.astype(np.float64, copy=False)
        mean = float(values.mean())
        return cls(count, mean, float(np.square(values - mean).sum()), *extremes)

    def merge(self, other: Moments) -> Moments:
        """Moments of the union of both sets (Chan, Golub & LeVeque's pairwise update)."""
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        count = self.count + other.count
        delta = other.mean - self.mean
        return Moments(
            count=count,
            mean=self.mean + delta * other.count / count,
            m2=self.m2 + other.m2 + delta * delta * self.count * other.count / count,
            min=min(self.min, other.min),
            max=max(self.max, other.max),
        )


@dataclass
class _Feature:
    dtype: str
    shape: tuple[int, ...]
    moments: Moments | None  # None: not numeric


@dataclass
class BatchStats:
    """The partial statistics of one batch of rows."""

    rows: int = 0
    lengths: Counter[str] | None = field(default_factory=Counter)
    features: dict[str, _Feature] = field(default_factory=dict)

    def add_feature(self, name: str, values: NDArray[Any]) -> None:
        """Fold ``values`` (steps along axis 0) into the feature's statistics."""
        numeric = np.issubdtype(values.dtype, np.number) and values.dtype.kind != "c"
        part = _Feature(
            _dtype_name(values), tuple(values.shape[1:]), Moments.of(values) if numeric else None
        )
        self._merge_feature(name, part)

    def _merge_feature(self, name: str, part: _Feature) -> None:
        known = self.features.get(name)
        if known is None:
            self.features[name] = part
            return
        if (known.dtype, known.shape) != (part.dtype, part.shape):
            raise DatasetError(
                f"feature {name!r} is dtype={known.dtype} shape={known.shape} in some steps and "
                f"dtype={part.dtype} shape={part.shape} in others"
            )
        if known.moments is not None and part.moments is not None:
            known.moments = known.moments.merge(part.moments)

    def merge(self, other: BatchStats) -> BatchStats:
        """Fold ``other`` into this partial and return it."""
        self.rows += other.rows
        if self.lengths is None or other.lengths is None:
            self.lengths = None
        else:
            self.lengths.update(other.lengths)
        for name, part in other.features.items():
            self._merge_feature(name, part)
        return self


def _dtype_name(values: NDArray[Any]) -> str:
    """Name ``values``' dtype as Trajectory does: ``"str"``/``"bytes"`` for text and bytes.

    Numpy holds them as objects in step rows but as fixed-width arrays after Arrow round
    trips whole columns, so the numpy name alone would differ between modes.
    """
    kind = values.dtype.kind
    if kind == "U":
        return "str"
    if kind == "S":
        return "bytes"
    if kind == "O" and values.size:
        first = values.flat[0]
        if isinstance(first, str | bytes):
            return type(first).__name__
    return str(values.dtype.name)


def partial_stats(batch: dict[str, NDArray[Any]], *, mode: Mode) -> dict[str, NDArray[Any]]:
    """Ray Data ``map_batches`` function: summarise one batch into a one-row partial."""
    stats = BatchStats(rows=len(next(iter(batch.values()))) if batch else 0)
    names = batch.get(TRAJECTORY_COLUMN)
    if names is None:
        stats.lengths = None
    elif mode == "step":
        stats.lengths = Counter(str(n) for n in names)
    elif TIMESTAMP_COLUMN in batch:
        stats.lengths = Counter(
            {str(n): len(ts) for n, ts in zip(names, batch[TIMESTAMP_COLUMN], strict=True)}
        )
    else:
        stats.lengths = None
    for name, column in batch.items():
        if name in METADATA_COLUMNS:
            continue
        if mode == "step":
            stats.add_feature(name, column)
        else:
            # Each row is a whole trajectory: a (T, ...) array, or an object array holding
            # one when trajectories differ in length.
            for value in column:
                stats.add_feature(name, np.asarray(value))
    return {PARTIAL_COLUMN: np.array([pickle.dumps(stats)], dtype=object)}


def merge_partials(partials: Iterable[bytes], *, mode: Mode, skipped: int) -> DatasetStats:
    """Combine the outputs of :func:`partial_stats` into the final statistics."""
    total = BatchStats()
    for blob in partials:
        # Written by partial_stats in our own tasks, never read from a dataset file.
        total.merge(pickle.loads(blob))
    lengths = total.lengths
    length: LengthStats | None = None
    if lengths:
        values = list(lengths.values())
        length = {"min": min(values), "max": max(values), "mean": sum(values) / len(values)}
    # Without trajectory names, step mode still knows its steps: they are the rows.
    unattributed_steps = total.rows if mode == "step" else None
    return {
        "trajectories": None if lengths is None else len(lengths),
        "steps": unattributed_steps if lengths is None else sum(lengths.values()),
        "length": length,
        "features": {name: _feature_stats(f) for name, f in total.features.items()},
        "skipped": skipped,
    }


def _feature_stats(feature: _Feature) -> FeatureStats:
    moments = feature.moments
    if moments is None or moments.count == 0:
        return {
            "dtype": feature.dtype,
            "shape": feature.shape,
            "min": None,
            "max": None,
            "mean": None,
            "std": None,
        }
    return {
        "dtype": feature.dtype,
        "shape": feature.shape,
        "min": moments.min,
        "max": moments.max,
        "mean": moments.mean,
        "std": math.sqrt(moments.m2 / moments.count),
    }
