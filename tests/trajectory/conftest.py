"""Content factories for trajectory tests: small, deterministic, video-like."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest


def video_like_frames(count: int, height: int = 64, width: int = 64, seed: int = 0) -> np.ndarray:
    """A scene panning over a smooth textured canvas with mild sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : height + 2 * count, 0 : width + 3 * count]
    canvas = np.stack(
        [(xx * 0.9 + yy * 0.3) % 256, (yy * 1.1) % 256, ((xx + yy) * 0.6) % 256], axis=-1
    )
    frames = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        view = canvas[2 * i : 2 * i + height, 3 * i : 3 * i + width]
        noise = rng.integers(-2, 3, view.shape)
        frames[i] = np.clip(view + noise, 0, 255)
    return frames


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture
def frames() -> Callable[..., np.ndarray]:
    return video_like_frames
