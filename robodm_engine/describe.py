"""Summaries of a trajectory file or a dataset, for ``robodm-engine inspect`` and notebooks.

Both kinds of summary are plain JSON-able dicts with the same ``features`` shape, so the
CLI renders them alike and scripts can consume ``--json`` output.
"""

from __future__ import annotations

import posixpath
from typing import Any

from robodm_engine.manifest import read_manifest
from robodm_engine.storage import StorageOptions, open_store
from robodm_engine.trajectory import Trajectory


def describe(target: str, options: StorageOptions | None = None) -> dict[str, Any]:
    """Summarize a ``.mkv`` trajectory, a ``manifest.json`` or a dataset root.

    Local paths, ``file://`` and ``s3://`` URIs are accepted; nothing is downloaded whole
    and no sample is decoded.

    Raises:
        TrajectoryFormatError: for an unreadable trajectory file.
        DatasetError: for a dataset without a readable manifest.

    Examples:
        >>> describe("out/example-dataset")["trajectories"]  # doctest: +SKIP
        12
    """
    if target.endswith(".mkv"):
        return _describe_trajectory(target, options)
    return _describe_dataset(target, options)


def _describe_trajectory(target: str, options: StorageOptions | None) -> dict[str, Any]:
    root, key = posixpath.split(target.rstrip("/"))
    store = open_store(root or ".", options)
    with store.open(key) as handle:
        traj = Trajectory(handle)
        summary = traj.summary()
        traj.close()
    return {
        "kind": "trajectory",
        "uri": store.url(key),
        "steps": summary.steps,
        "duration_s": round((summary.end_ms - summary.start_ms) / 1000, 3),
        "bytes": store.size(key),
        "features": {
            name: {"dtype": info.dtype, "shape": list(info.shape), "encoding": info.encoding,
                   "samples": summary.counts[name]}
            for name, info in summary.features.items()
        },
    }


def _describe_dataset(target: str, options: StorageOptions | None) -> dict[str, Any]:
    manifest = read_manifest(target, options)
    records = manifest.trajectories
    steps = [r.steps for r in records]
    return {
        "kind": "dataset",
        "uri": target,
        "created_at": manifest.created_at,
        "trajectories": len(records),
        "steps": sum(steps),
        "steps_per_trajectory": (
            f"min {min(steps)} / mean {sum(steps) / len(steps):.1f} / max {max(steps)}"
            if steps else "n/a"
        ),
        "bytes": sum(r.bytes for r in records),
        "items_failed": len(manifest.failures),
        "counts": manifest.counts,
        "features": {
            name: {"dtype": spec.dtype, "shape": list(spec.shape), "encoding": spec.encoding}
            for name, spec in manifest.features.items()
        },
    }
