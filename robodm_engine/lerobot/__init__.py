"""LeRobot datasets for training: typed Observations, format conversion, a Lightning DataModule.

Most of this package needs the optional ``lerobot`` extra (``lerobot[dataset]`` and
``lightning``); using a name that needs them without them raises ``ImportError`` saying what
to install. :class:`LeRobotSource` (import of LeRobot v3 datasets) needs neither.

* :mod:`.converters`: :class:`Observation`, :class:`DataFormat` and the zero-copy
  :class:`FormatConverter` between LeRobot's flat dicts and Observations.
* :mod:`.dataset`: internal map-style datasets serving Observations
  (``_LeRobotDatasetAdapter`` around ``LeRobotDataset``).
* :mod:`.datamodule`: :class:`LeRobotDataModule` and the collate functions.
* :mod:`.source`: :class:`LeRobotSource`, LeRobot v3 datasets as an ingestion source.
* :mod:`.export`: :func:`export_lerobot`, a robodm dataset as a LeRobot v3 dataset.
* :mod:`.robodm_dataset`: :class:`RoboDMLeRobotDataset`, a robodm dataset read as LeRobot items.

Examples:
    >>> from robodm_engine.lerobot import LeRobotDataModule
    >>> dm = LeRobotDataModule(repo_id="lerobot/pusht", data_format="lerobot")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any


def _require_extra() -> None:
    """Raise ImportError naming the pip extra when a dependency of this package is missing.

    Failing here, on first use, gives one actionable message instead of an error deep inside
    a DataLoader worker. Importing ``lerobot.datasets`` also runs LeRobot's own checks for
    its ``dataset`` extra (``datasets``, ``av``).
    """
    import importlib

    for module in ("lerobot.datasets", "lightning"):
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ImportError(
                f"robodm_engine.lerobot needs {error.name or module!r}, which could not be "
                f"imported ({error}). Install it with: pip install 'robodm-operator[lerobot]'"
            ) from error


# Names load on first use: LeRobotSource (shipped to every Ray worker of an import job) needs
# neither lerobot nor lightning, whose imports take tens of seconds.
_EXPORTS = {
    "DataFormat": "converters",
    "FormatConverter": "converters",
    "Observation": "converters",
    "LeRobotDataModule": "datamodule",
    "collate_lerobot": "datamodule",
    "collate_observations": "datamodule",
    "LeRobotSource": "source",
    "export_lerobot": "export",
    "RoboDMLeRobotDataset": "robodm_dataset",
    "EpisodeBlockSampler": "robodm_dataset",
}
# Modules that import lerobot or lightning (directly, or through torch-based LeRobot code).
_NEED_EXTRA = frozenset({"converters", "datamodule", "export", "robodm_dataset"})

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module in _NEED_EXTRA:
        _require_extra()
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
