"""Deterministic, video-like synthetic robot episodes: for demos, tests and benchmarks.

Codec benchmarks are only meaningful on content that behaves like camera footage: random
noise is incompressible and a constant frame compresses to nothing, and both make encoders
look faster or slower than they are on real data. The frames here are a textured tabletop
seen by a slowly panning camera, with two objects moving over it and mild per-frame sensor
noise, so inter prediction, rate control and PSNR respond as they do on real recordings.

Generation is cheap by construction (one precomputed canvas per camera; each frame is a crop,
two small stamps and a noise add, all in uint8 without temporaries) so that it does not
dominate the timings it feeds. Everything depends only on the arguments: the same call gives
the same bytes on every machine.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

STATE_DIM = 14  # two 7-DoF arms
ACTION_DIM = 7  # 6 joint velocities + gripper command

# Sensor noise: a clipped Gaussian with this sigma (in 8-bit levels). Real CMOS noise at good
# light is 1-3 levels; it is what keeps crf-23 H.264 near the ~38 dB seen on camera data.
_NOISE_SIGMA = 2.0
_NOISE_CLIP = 6  # noise lies in [-6, 6]; the canvas is kept in [6, 249] so uint8 never wraps
_NOISE_BANK = 16  # distinct noise fields, picked at random per frame
_PAN_MARGIN = 0.25  # the canvas is this fraction of each side larger, for the camera to pan


def make_episode(
    steps: int = 100,
    height: int = 224,
    width: int = 224,
    seed: int = 0,
    cameras: Sequence[str] = ("image",),
    depth: bool = False,
    fps: float = 10.0,
) -> list[dict[str, Any]]:
    """Build one episode as a list of nested step dicts.

    Each step is ``{"observation": {<camera>: uint8 (H, W, 3), ..., "state": float32 (14,)},
    "action": float32 (7,)}``, plus ``observation["depth"]``, uint16 (H, W) millimetres seen
    from the first camera, when ``depth`` is true. Every array is freshly allocated, so a
    writer may keep references to them.

    ``fps`` sets how far the scene moves between steps: motion is defined in seconds, so a
    higher frame rate gives smaller, more predictable frame-to-frame changes, as in reality.

    Raises:
        ValueError: for a non-positive size, step count or frame rate, or no camera.
    """
    if steps <= 0 or height <= 0 or width <= 0 or fps <= 0:
        raise ValueError(
            f"steps, height, width and fps must be positive: {steps=} {height=} {width=} {fps=}"
        )
    if not cameras and not depth:
        raise ValueError("at least one camera or depth is needed")
    rng = np.random.default_rng(seed)
    times = np.arange(steps, dtype=np.float64) / fps
    renderers = [
        _CameraRenderer(height, width, seed * 1009 + index) for index in range(len(cameras))
    ]
    depth_renderer = _DepthRenderer(height, width, seed * 1009) if depth else None
    state, action = _proprioception(times, rng)

    episode: list[dict[str, Any]] = []
    for i, t in enumerate(times):
        observation: dict[str, Any] = {
            name: renderer.frame(t, rng) for name, renderer in zip(cameras, renderers, strict=True)
        }
        if depth_renderer is not None:
            observation["depth"] = depth_renderer.frame(t, rng)
        observation["state"] = state[i].copy()
        episode.append({"observation": observation, "action": action[i].copy()})
    return episode


def episode_npz(
    steps: int = 100, height: int = 224, width: int = 224, seed: int = 0, fps: float = 10.0
) -> bytes:
    """One episode as raw ``.npz`` bytes, the way a teleoperation logger might record it.

    Arrays ``observation/image``, ``observation/state`` and ``action`` with a leading time
    axis, plus ``timestamp`` (int64 milliseconds): the input the ``files`` source reads.

    Examples:
        >>> import io, numpy as np
        >>> sorted(np.load(io.BytesIO(episode_npz(steps=3, height=16, width=16))).files)
        ['action', 'observation/image', 'observation/state', 'timestamp']
    """
    episode = make_episode(steps=steps, height=height, width=width, seed=seed, fps=fps)
    buffer = io.BytesIO()
    np.savez(buffer, **{
        "observation/image": np.stack([s["observation"]["image"] for s in episode]),
        "observation/state": np.stack([s["observation"]["state"] for s in episode]),
        "action": np.stack([s["action"] for s in episode]),
        "timestamp": np.asarray(timestamps_ms(steps, fps), dtype=np.int64),
    })
    return buffer.getvalue()


def timestamps_ms(steps: int, fps: float = 10.0) -> list[int]:
    """Millisecond timestamps of ``steps`` samples at ``fps``, starting at 0."""
    return [round(i * 1000.0 / fps) for i in range(steps)]


def raw_bytes_per_step(step: Mapping[str, Any]) -> int:
    """Uncompressed size of one (nested) step: the sum of its arrays' ``nbytes``.

    Strings count their UTF-8 length; this is the "raw" baseline compression ratios use.
    """
    total = 0
    for value in step.values():
        if isinstance(value, Mapping):
            total += raw_bytes_per_step(value)
        elif isinstance(value, str):
            total += len(value.encode("utf-8"))
        else:
            total += np.asarray(value).nbytes
    return total


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 arrays in dB; ``inf`` when they are equal.

    Raises:
        ValueError: when shapes differ or either array is not uint8 (PSNR's peak of 255
            assumes 8-bit samples).
    """
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError(f"psnr expects uint8 arrays, got {a.dtype} and {b.dtype}")
    diff = a.astype(np.int16) - b.astype(np.int16)
    mse = float(np.mean(diff.astype(np.float32) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def mean_psnr(original: np.ndarray, decoded: np.ndarray) -> float:
    """Mean of per-frame PSNR over the first axis (``inf`` only if every frame is exact)."""
    if original.shape != decoded.shape:
        raise ValueError(f"shapes differ: {original.shape} vs {decoded.shape}")
    values = [psnr(o, d) for o, d in zip(original, decoded, strict=True)]
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.inf
    # Exact frames would make the mean infinite and hide the lossy ones; cap them at 100 dB,
    # beyond what any 8-bit lossy codec reaches, so they still pull the mean up.
    return float(np.mean([min(v, 100.0) for v in values]))


# --- rendering ----------------------------------------------------------------------------


def _upsample(low: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of ``(h, w, c)`` to ``(height, width, c)`` with separable weights."""

    def weights(n_out: int, n_in: int) -> np.ndarray:
        pos = np.linspace(0.0, n_in - 1.0, n_out)
        lo = np.clip(np.floor(pos).astype(int), 0, n_in - 2) if n_in > 1 else np.zeros(n_out, int)
        frac = pos - lo
        m = np.zeros((n_out, n_in), dtype=np.float32)
        m[np.arange(n_out), lo] = 1.0 - frac
        if n_in > 1:
            m[np.arange(n_out), lo + 1] += frac
        return m

    wy = weights(height, low.shape[0])
    wx = weights(width, low.shape[1])
    return np.einsum("yh,hwc,xw->yxc", wy, low.astype(np.float32), wx, optimize=True)


@lru_cache(maxsize=16)
def _canvas(height: int, width: int, seed: int) -> np.ndarray:
    """A tabletop-like texture larger than the view, in [6, 249] (read-only, cached)."""
    rng = np.random.default_rng(seed)
    ch, cw = height + 2 * _margin(height), width + 2 * _margin(width)
    # Large smooth colour regions (lighting, cloth), medium-scale blotches and a fine grain
    # (wood, fabric): the mix gives the encoder both flat areas and real texture to code.
    broad = _upsample(rng.uniform(0.0, 1.0, (4, 4, 3)), ch, cw)
    blotch = _upsample(rng.uniform(-1.0, 1.0, (max(ch // 24, 2), max(cw // 24, 2), 3)), ch, cw)
    grain = _upsample(rng.uniform(-1.0, 1.0, (max(ch // 4, 2), max(cw // 4, 2), 1)), ch, cw)
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    stripes = np.sin(xx * 0.21 + 3.0 * np.sin(yy * 0.017))[..., None]
    base = np.array([150.0, 120.0, 95.0], dtype=np.float32)  # warm table colour
    canvas = base + 70.0 * (broad - 0.5) + 25.0 * blotch + 10.0 * grain + 6.0 * stripes
    out = np.clip(canvas, _NOISE_CLIP, 255 - _NOISE_CLIP).astype(np.uint8)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=4)
def _noise_bank(height: int, width: int, channels: int) -> np.ndarray:
    """``_NOISE_BANK`` uint8 noise fields, offset by ``_NOISE_CLIP`` so they add without sign."""
    rng = np.random.default_rng(12345)
    noise = rng.normal(0.0, _NOISE_SIGMA, (_NOISE_BANK, height, width, channels))
    out = (np.clip(np.rint(noise), -_NOISE_CLIP, _NOISE_CLIP) + _NOISE_CLIP).astype(np.uint8)
    out.setflags(write=False)
    return out


def _margin(side: int) -> int:
    return max(int(side * _PAN_MARGIN), 2)


def _disk_mask(diameter: int) -> np.ndarray:
    r = diameter / 2.0
    yy, xx = np.mgrid[0:diameter, 0:diameter]
    return (yy + 0.5 - r) ** 2 + (xx + 0.5 - r) ** 2 <= r * r


class _Motion:
    """Smooth, seed-dependent trajectories (in seconds) for the camera pan and two objects."""

    def __init__(self, height: int, width: int, seed: int) -> None:
        rng = np.random.default_rng(seed + 7)
        self.height, self.width = height, width
        self.my, self.mx = _margin(height), _margin(width)
        # Slow pan (0.03-0.08 Hz) over most of the margin: ~1-2 px per step at 10 Hz.
        self.pan = rng.uniform([0.03, 0.03, 0.0, 0.0], [0.08, 0.08, 2 * np.pi, 2 * np.pi])
        self.obj = rng.uniform([0.05, 0.07, 0.0, 0.0], [0.15, 0.2, 2 * np.pi, 2 * np.pi])
        self.size = max(min(height, width) // 6, 2)

    def view(self, t: float) -> tuple[int, int]:
        fy, fx, py, px = self.pan
        y = self.my + 0.9 * self.my * math.sin(2 * math.pi * fy * t + py)
        x = self.mx + 0.9 * self.mx * math.sin(2 * math.pi * fx * t + px)
        return round(y), round(x)

    def objects(self, t: float) -> tuple[tuple[int, int], tuple[int, int]]:
        """Top-left corners (in view coordinates) of the gripper bar and the ball."""
        fy, fx, py, px = self.obj
        s = self.size
        gy = (self.height - 2 * s) * (0.5 + 0.4 * math.sin(2 * math.pi * fy * t + py))
        gx = (self.width - s) * (0.5 + 0.45 * math.sin(2 * math.pi * fx * t + px))
        by = (self.height - s) * (0.5 + 0.35 * math.cos(2 * math.pi * fx * t + py))
        bx = (self.width - s) * (0.5 + 0.35 * math.sin(2 * math.pi * fy * t + 1.3 + px))
        return (round(gy), round(gx)), (round(by), round(bx))


class _CameraRenderer:
    def __init__(self, height: int, width: int, seed: int) -> None:
        self.height, self.width = height, width
        self.canvas = _canvas(height, width, seed)
        self.noise = _noise_bank(height, width, 3)
        self.motion = _Motion(height, width, seed)
        self.ball = _disk_mask(self.motion.size)
        rng = np.random.default_rng(seed + 11)
        self.ball_colour = rng.integers(40, 220, 3).astype(np.uint8)

    def frame(self, t: float, rng: np.random.Generator) -> np.ndarray:
        y, x = self.motion.view(t)
        out = self.canvas[y : y + self.height, x : x + self.width].copy()
        (gy, gx), (by, bx) = self.motion.objects(t)
        s = self.motion.size
        out[gy : gy + 2 * s, gx : gx + s] = (60, 62, 70)  # dark gripper bar
        out[gy : gy + s // 4, gx : gx + s] = (200, 200, 205)  # light stripe on it
        patch = out[by : by + s, bx : bx + s]
        patch[self.ball[: patch.shape[0], : patch.shape[1]]] = self.ball_colour
        # In place, in uint8: shift down by the clip, add the offset noise; cannot wrap since
        # everything drawn above is within [6, 249].
        np.clip(out, _NOISE_CLIP, 255 - _NOISE_CLIP, out=out)
        out -= _NOISE_CLIP
        out += self.noise[rng.integers(_NOISE_BANK)]
        return out


class _DepthRenderer:
    """Depth in millimetres matching the first camera's motion: a tilted table, nearer objects."""

    def __init__(self, height: int, width: int, seed: int) -> None:
        self.height, self.width = height, width
        self.motion = _Motion(height, width, seed)
        ch, cw = height + 2 * self.motion.my, width + 2 * self.motion.mx
        rows = np.linspace(1300.0, 600.0, ch, dtype=np.float32)[:, None]  # far top, near bottom
        cols = np.linspace(-40.0, 40.0, cw, dtype=np.float32)[None, :]
        self.table = np.rint(rows + cols).astype(np.uint16)
        self.ball = _disk_mask(self.motion.size)
        self.noise = (
            np.random.default_rng(seed + 13).integers(-3, 4, (8, height, width)).astype(np.int16)
        )

    def frame(self, t: float, rng: np.random.Generator) -> np.ndarray:
        y, x = self.motion.view(t)
        out = self.table[y : y + self.height, x : x + self.width].copy()
        (gy, gx), (by, bx) = self.motion.objects(t)
        s = self.motion.size
        out[gy : gy + 2 * s, gx : gx + s] = 420  # gripper hovers above the table
        patch = out[by : by + s, bx : bx + s]
        patch[self.ball[: patch.shape[0], : patch.shape[1]]] -= 50  # ball is 5 cm tall
        out += self.noise[rng.integers(len(self.noise))].view(np.uint16)
        return out


def _proprioception(times: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Smooth joint angles for two 7-DoF arms and the matching velocity/gripper actions."""
    freq = rng.uniform(0.05, 0.4, STATE_DIM)
    phase = rng.uniform(0.0, 2 * np.pi, STATE_DIM)
    amp = rng.uniform(0.2, 1.2, STATE_DIM)
    centre = rng.uniform(-1.0, 1.0, STATE_DIM)
    angle = 2 * np.pi * freq[None, :] * times[:, None] + phase[None, :]
    state = centre + amp * np.sin(angle)
    state += rng.normal(0.0, 1e-3, state.shape)  # encoder jitter: floats are never "nice"
    velocity = 2 * np.pi * freq * amp * np.cos(angle)
    gripper = (np.sin(2 * np.pi * 0.1 * times) > 0).astype(np.float64)[:, None]
    action = np.concatenate([velocity[:, : ACTION_DIM - 1], gripper], axis=1)
    return state.astype(np.float32), action.astype(np.float32)
