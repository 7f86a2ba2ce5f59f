"""Time in trajectories: unit conversion and resampling, as pure functions.

Matroska stores packet times at a resolution of one millisecond, so every timestamp a
writer receives is converted to integer milliseconds with exact rational arithmetic
(``Fraction``, never floats) and rounded half-to-even only when it has a sub-millisecond
part. Resampling (``desired_frequency``) picks, for every tick of a regular grid, the
sample of each feature nearest in time, so it is correct for any source rate.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Final, Literal

import numpy as np

TimeUnit = Literal["ns", "us", "ms", "s"]

#: Milliseconds per unit, exact.
MS_PER_UNIT: Final[dict[str, Fraction]] = {
    "ns": Fraction(1, 1_000_000),
    "us": Fraction(1, 1_000),
    "ms": Fraction(1),
    "s": Fraction(1_000),
}


def check_time_unit(time_unit: str) -> TimeUnit:
    """Return ``time_unit`` if it is one of ns/us/ms/s, else raise ValueError."""
    if time_unit not in MS_PER_UNIT:
        raise ValueError(f"unknown time_unit {time_unit!r}; choose one of {list(MS_PER_UNIT)}")
    return time_unit  # type: ignore[return-value]


def to_ms(timestamp: int | float | np.integer | np.floating, time_unit: TimeUnit) -> int:
    """Convert a timestamp in ``time_unit`` to integer milliseconds, exactly where possible.

    Integers convert exactly; floats convert from their exact binary value, so
    ``0.1`` seconds is 100 ms. Sub-millisecond parts round half to even.

    Raises:
        ValueError: for NaN or infinite timestamps.

    Examples:
        >>> to_ms(1_500_000_000, "ns")
        1500
        >>> to_ms(0.1, "s")
        100
    """
    if isinstance(timestamp, float | np.floating):
        if not np.isfinite(timestamp):
            raise ValueError(f"timestamp {timestamp!r} is not finite")
        # Fraction(0.1) is 0.1000000000000000055...; limit_denominator recovers the decimal
        # the user wrote without changing any value that is already an exact fraction.
        value = Fraction(float(timestamp)).limit_denominator(10**9)
    else:
        value = Fraction(int(timestamp))
    return round(value * MS_PER_UNIT[time_unit])


def step_ms(index: int, fps: float) -> int:
    """Timestamp in ms of step ``index`` at ``fps`` (e.g. 30 Hz: 0, 33, 67, 100)."""
    return round(Fraction(index) * 1000 / Fraction(fps).limit_denominator(10**6))


def resample_grid(start_ms: int, end_ms: int, frequency: float) -> np.ndarray:
    """Regular grid of tick times (float ms) from ``start_ms`` to ``end_ms`` inclusive.

    Examples:
        >>> resample_grid(0, 300, 10.0).tolist()
        [0.0, 100.0, 200.0, 300.0]
    """
    if not frequency > 0:
        raise ValueError(f"desired_frequency must be > 0, got {frequency}")
    period = 1000.0 / frequency
    # The half-millisecond slack keeps the last tick when rounding put the last sample
    # at e.g. 967 ms for a 30 Hz grid whose exact tick is 966.67 ms.
    count = int(np.floor((end_ms - start_ms + 0.5) / period)) + 1 if end_ms >= start_ms else 0
    # k * 1000 / f, not k * (1000 / f): exact for integer rates, so ties stay ties.
    return start_ms + np.arange(count, dtype=np.float64) * 1000.0 / frequency


def nearest_indices(sample_ms: np.ndarray, grid_ms: np.ndarray) -> np.ndarray:
    """For each grid tick, the index of the nearest sample (ties go to the earlier one).

    ``sample_ms`` must be sorted ascending and non-empty.

    Examples:
        >>> nearest_indices(np.array([0, 50, 100, 150]), np.array([0.0, 100.0])).tolist()
        [0, 2]
    """
    right = np.searchsorted(sample_ms, grid_ms, side="left")
    right = np.clip(right, 0, len(sample_ms) - 1)
    left = np.clip(right - 1, 0, len(sample_ms) - 1)
    pick_left = np.abs(grid_ms - sample_ms[left]) <= np.abs(sample_ms[right] - grid_ms)
    return np.where(pick_left, left, right)
