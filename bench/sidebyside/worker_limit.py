"""Bare PyAV: the least work any trajectory writer or reader of this content must do.

``write`` encodes each episode's image streams into one Matroska file with robodm-engine's
own codec settings (cameras: libx264 yuv420p crf 23, frame threads; depth: ffv1 gray16le),
with nothing else: no feature bookkeeping, no state or action streams, no fsync or rename.
``read_seq`` demuxes and decodes every image back to an array; ``read_random`` seeks each
image stream to the step's keyframe and decodes up to the step, as an ideal single-step
reader of the same file would. There is no separate shuffled limit: the cheapest shuffle
decodes every frame once, so the sequential figure is its limit (see :mod:`report`).
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import harness
import numpy as np
from harness import Checker, Result, Scenario, measured

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for bench.*

from bench.limits import CodecSettings, configured_threading

MS = Fraction(1, 1000)


def _images(scenario: Scenario, step: dict[str, Any]) -> list[tuple[np.ndarray, str]]:
    observation = step["observation"]
    images = [(observation[c], "rgb24") for c in scenario.cameras]
    if scenario.depth:
        images.append((observation["depth"], "gray16le"))
    return images


def _add_stream(container: Any, image: np.ndarray, in_format: str) -> Any:
    codec = "libx264" if in_format == "rgb24" else "ffv1"
    settings = CodecSettings.default(codec)
    stream = container.add_stream(codec, options=dict(settings.options))
    stream.height, stream.width = image.shape[:2]
    stream.pix_fmt = settings.pix_fmt if in_format == "rgb24" else "gray16le"
    stream.time_base = stream.codec_context.time_base = MS
    configured_threading(codec).apply(stream.codec_context)
    return stream


def write(args: argparse.Namespace, result: Result) -> None:
    scenario = args.scenario
    content = harness.episodes(scenario)
    stamps = harness.timestamps_ms(scenario)
    args.dir.mkdir(parents=True, exist_ok=True)
    with measured(result):
        for index, steps in enumerate(content):
            # Timestamps as given (as robodm-engine writes them), not shifted by B-frame delay.
            with av.open(str(harness.trajectory_path(args.dir, index)), "w",
                         format="matroska",
                         options={"avoid_negative_ts": "disabled"}) as container:
                streams = [_add_stream(container, image, fmt)
                           for image, fmt in _images(scenario, steps[0])]
                for step, stamp in zip(steps, stamps, strict=True):
                    for stream, (image, fmt) in zip(streams, _images(scenario, step),
                                                    strict=True):
                        frame = av.VideoFrame.from_ndarray(image, format=fmt)
                        frame.pts, frame.time_base = stamp, MS
                        container.mux(stream.encode(frame))
                for stream in streams:
                    container.mux(stream.encode(None))
    result.frames = scenario.frames
    result.bytes = harness.dir_bytes(args.dir)


def _to_array(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="gray16le" if frame.format.name.startswith("gray16")
                            else "rgb24")


def read_seq(args: argparse.Namespace, result: Result) -> None:
    scenario = args.scenario
    frames = 0
    with measured(result):
        for index in range(scenario.episodes):
            with av.open(str(harness.trajectory_path(args.dir, index))) as container:
                for stream in container.streams.video:
                    configured_threading("", decode=True).apply(stream.codec_context)
                decoded = 0
                for frame in container.decode(*container.streams.video):
                    _to_array(frame)
                    decoded += 1
                frames += decoded // len(container.streams.video)
    result.frames = frames
    _check(scenario, args.dir, result)


def _check(scenario: Scenario, root: Path, result: Result) -> None:
    """PSNR and depth exactness of the files, decoded again outside the timed block."""
    checker = Checker(scenario)
    for index, steps in enumerate(harness.episodes(scenario)):
        path = str(harness.trajectory_path(root, index))
        with av.open(path) as container:
            count = len(container.streams.video)
        arrays = []
        for stream_index in range(count):  # a fresh demuxer per stream
            with av.open(path) as container:
                arrays.append(np.stack([_to_array(f) for f in
                                        container.decode(video=stream_index)]))
        decoded = dict(zip(scenario.cameras, arrays, strict=False))
        if scenario.depth:
            decoded["depth"] = arrays[len(scenario.cameras)]
        # The limit writes no state or action: compare them with themselves.
        decoded["state"] = np.stack([s["observation"]["state"] for s in steps])
        decoded["action"] = np.stack([s["action"] for s in steps])
        checker.add(index, decoded)
    checker.fill(result)
    result.exact = {k: v for k, v in result.exact.items() if k == "depth"}


def _decode_at(stream: Any, packets: list[av.Packet], target: int) -> bool:
    """Decode ``stream`` from the last keyframe at or before ``target`` up to its frame."""
    at = next(i for i, packet in enumerate(packets) if packet.pts == target)
    start = max(i for i in range(at + 1) if packets[i].is_keyframe)
    context = stream.codec_context
    for packet in [*packets[start:], None]:
        for frame in context.decode(packet):
            if frame.pts == target:
                _to_array(frame)
                return True
    return False


def read_random(args: argparse.Namespace, result: Result) -> None:
    # Demux, then decode from the keyframe, as robodm-engine's reader does: a Matroska
    # container seek to a pts does not land on the exact sample.
    scenario = args.scenario
    stamps = harness.timestamps_ms(scenario)
    frames = 0
    with measured(result):
        for index, step in harness.random_steps(scenario):
            with av.open(str(harness.trajectory_path(args.dir, index))) as container:
                streams = container.streams.video
                packets: dict[int, list[av.Packet]] = {s.index: [] for s in streams}
                for packet in container.demux(*streams):
                    if packet.size:
                        packets[packet.stream.index].append(packet)
                found = [_decode_at(s, packets[s.index], stamps[step]) for s in streams]
            frames += all(found)
    result.frames = frames
    if frames != harness.RANDOM_STEPS:
        result.error = f"{frames} of {harness.RANDOM_STEPS} steps were decoded"


if __name__ == "__main__":
    harness.run_worker({"write": write, "read_seq": read_seq, "read_random": read_random})
