"""The ``custom`` source format: a user's ingester class named by import path.

``source.ingester: "my_pkg.ingest:PhilipsIngester"`` with ``source.options`` passed to its
constructor as keyword arguments. The class must subclass
:class:`~robodm_engine.ingestion.DataIngestionInterface`; its module must be importable in
the engine image (install it there, or put it on ``PYTHONPATH``).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from typing import Any

from robodm_engine.ingestion import DataIngestionInterface

_IMPORT_PATH = re.compile(r"^(?P<module>[A-Za-z_][\w.]*):(?P<attr>[A-Za-z_][\w.]*)$")


def load_ingester(import_path: str, options: Mapping[str, Any] | None = None) -> (
    DataIngestionInterface
):
    """Import ``module:Class`` and construct it with ``options`` as keyword arguments.

    Raises:
        ValueError: for a malformed path, a missing module or attribute, a class that is not a
            DataIngestionInterface, or a constructor that rejects the options; the message
            says which.

    Examples:
        >>> load_ingester("robodm_engine.sources.files:FileSource",
        ...               {"uri": "/data/raw", "include": ["*.npz"]})  # doctest: +SKIP
    """
    match = _IMPORT_PATH.match(import_path or "")
    if match is None:
        raise ValueError(f"ingester {import_path!r} is not of the form 'package.module:Class'")
    try:
        module = importlib.import_module(match["module"])
    except ImportError as exc:
        raise ValueError(f"cannot import module {match['module']!r} of ingester "
                         f"{import_path!r}: {exc}") from exc
    target: Any = module
    for part in match["attr"].split("."):
        if not hasattr(target, part):
            raise ValueError(f"module {match['module']!r} has no attribute {match['attr']!r}")
        target = getattr(target, part)
    if not (isinstance(target, type) and issubclass(target, DataIngestionInterface)):
        raise ValueError(f"{import_path!r} is not a DataIngestionInterface subclass")
    try:
        return target(**dict(options or {}))
    except TypeError as exc:
        raise ValueError(f"cannot construct {import_path} with options "
                         f"{sorted(options or {})}: {exc}") from exc
