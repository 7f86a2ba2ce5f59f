"""Turning what a user passes to :class:`~robodm_engine.dataset.VLADataset` into trajectory files.

Private component of :mod:`robodm_engine.dataset`. Resolution runs on the driver when a dataset
is constructed (listing a directory or reading a manifest is cheap and should fail early, before
any Ray job), and produces :class:`TrajectorySource` values that read tasks can open anywhere:
a local path, or a ``(store root, key)`` pair for objects in S3.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from robodm_engine.errors import DatasetError
from robodm_engine.manifest import (
    MANIFEST_JSON,
    DatasetManifest,
    TrajectoryRecord,
    read_manifest,
    split_manifest_uri,
)

if TYPE_CHECKING:
    from robodm_engine.storage import StorageOptions

TRAJECTORY_SUFFIXES = (".mkv", ".vla")
"""File endings listed as trajectories: ``.mkv`` (ours, robodm ingestion), ``.vla`` (robodm)."""

_GLOB_MAGIC = re.compile(r"[*?\[]")
_REMOTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass(frozen=True)
class TrajectorySource:
    """One trajectory file to read.

    Attributes:
        name: unique name within the dataset (the file's stem, or the manifest's name).
        uri: what users see in errors and ``trajectory_paths``: an absolute path or a URI.
        root: the store root of a remote object, ``""`` for a local file.
        key: the object's key under ``root``, ``""`` for a local file.
        size: the file's size when a manifest recorded it, else ``-1``.
    """

    name: str
    uri: str
    root: str = ""
    key: str = ""
    size: int = -1


def is_remote(location: str) -> bool:
    """Whether ``location`` is a URI served by a remote store (anything but ``file://``)."""
    return bool(_REMOTE.match(location)) and not location.startswith("file://")


def _local(location: str) -> Path:
    return Path(location.removeprefix("file://")).expanduser().absolute()


def _is_trajectory(name: str) -> bool:
    return name.endswith(TRAJECTORY_SUFFIXES)


def resolve(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    options: StorageOptions | None,
) -> tuple[list[TrajectorySource], DatasetManifest | None]:
    """List the trajectories of ``source`` and the manifest, if it was opened from one.

    ``source`` is a trajectory file, a directory or S3 prefix (its ``manifest.json`` when it
    has one, otherwise its ``.mkv``/``.vla`` files, not recursively), a manifest (any
    location ending in ``.json``), a glob, or a sequence of trajectory files.

    Raises:
        DatasetError: nothing matches, a path does not exist, or the manifest is invalid.
    """
    if isinstance(source, str | os.PathLike):
        location = os.fspath(source)
        if location.endswith(".json"):
            return _from_manifest(location, options)
        if _GLOB_MAGIC.search(location):
            return _named(_from_glob(location, options), location), None
        if is_remote(location):
            return _from_remote_location(location, options)
        path = _local(location)
        if path.is_dir():
            if (path / MANIFEST_JSON).is_file():
                return _from_manifest(str(path / MANIFEST_JSON), options)
            files = sorted(str(p) for p in path.iterdir() if _is_trajectory(p.name) and p.is_file())
            return _named([(f, "", "") for f in files], location), None
        if path.is_file():
            return _named([(str(path), "", "")], location), None
        raise DatasetError(f"no such file or directory: {location}")
    if isinstance(source, bytes):
        raise TypeError("source must be a str or os.PathLike path, not bytes")
    entries: list[tuple[str, str, str]] = []
    for item in source:
        location = os.fspath(item)
        if is_remote(location):
            root, _, key = location.rpartition("/")
            entries.append((location, root, key))
            continue
        path = _local(location)
        if not path.is_file():
            raise DatasetError(f"trajectory file not found: {location}")
        entries.append((str(path), "", ""))
    return _named(entries, "the list of paths"), None


def _from_manifest(
    location: str, options: StorageOptions | None
) -> tuple[list[TrajectorySource], DatasetManifest]:
    manifest = read_manifest(location, options)
    root, _ = split_manifest_uri(location)
    return [_from_record(root, record) for record in manifest.trajectories], manifest


def _from_record(root: str, record: TrajectoryRecord) -> TrajectorySource:
    if is_remote(root):
        return TrajectorySource(
            record.name, f"{root}/{record.path}", root, record.path, record.bytes
        )
    return TrajectorySource(
        record.name, str(_local(root).joinpath(*record.path.split("/"))), size=record.bytes
    )


def _from_remote_location(
    location: str, options: StorageOptions | None
) -> tuple[list[TrajectorySource], DatasetManifest | None]:
    from robodm_engine.storage import open_store

    if _is_trajectory(location):
        root, _, key = location.rpartition("/")
        return _named([(location, root, key)], location), None
    store = open_store(location, options)
    if store.exists(MANIFEST_JSON):
        return _from_manifest(store.url(MANIFEST_JSON), options)
    entries = [
        (store.url(info.key), store.uri, info.key)
        for info in store.list()
        if "/" not in info.key and _is_trajectory(info.key)
    ]
    return _named(entries, location), None


def _from_glob(pattern: str, options: StorageOptions | None) -> list[tuple[str, str, str]]:
    if not is_remote(pattern):
        matches = sorted(glob.glob(str(_local(pattern))))
        return [(m, "", "") for m in matches if Path(m).is_file()]
    from robodm_engine.storage import open_store

    # List below the deepest directory without wildcards, then match whole keys segment by
    # segment (fnmatch alone would let '*' match across '/').
    scheme, _, path = pattern.partition("://")
    parts = path.split("/")
    fixed = next(i for i, part in enumerate(parts) if _GLOB_MAGIC.search(part))
    if fixed == 0:
        raise DatasetError(f"{pattern}: wildcards in the bucket name are not supported")
    root = f"{scheme}://{'/'.join(parts[:fixed])}"
    wanted = parts[fixed:]
    store = open_store(root, options)
    entries = []
    for info in store.list():
        segments = info.key.split("/")
        if len(segments) == len(wanted) and all(
            fnmatch.fnmatchcase(s, w) for s, w in zip(segments, wanted, strict=True)
        ):
            entries.append((store.url(info.key), store.uri, info.key))
    return entries


def _named(entries: list[tuple[str, str, str]], described: str) -> list[TrajectorySource]:
    """Name trajectories by file stem; where stems collide, by the path without its suffix."""
    if not entries:
        raise DatasetError(
            f"no trajectories found in {described}: expected files ending in "
            f"{' or '.join(TRAJECTORY_SUFFIXES)} or a {MANIFEST_JSON}"
        )
    stems = [PurePosixPath(uri).stem for uri, _, _ in entries]
    repeated = {stem for stem, n in Counter(stems).items() if n > 1}
    sources = []
    for (uri, root, key), stem in zip(entries, stems, strict=True):
        name = os.path.splitext(uri)[0] if stem in repeated else stem
        sources.append(TrajectorySource(name, uri, root, key))
    duplicates = [uri for uri, n in Counter(uri for uri, _, _ in entries).items() if n > 1]
    if duplicates:
        raise DatasetError(f"trajectory listed more than once: {duplicates[0]}")
    return sources
