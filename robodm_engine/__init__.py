"""robodm_engine: robot trajectories as Matroska files, ingestion on Ray, and datasets.

The public API is re-exported here; implementation modules are imported by their own
names (``robodm_engine.trajectory``, ``robodm_engine.ingestion``, ...). Names that need Ray
(:class:`VLADataset`, the ingestion factories) load on first use, so ``import robodm_engine``
stays light, as the operator needs.
"""

from typing import TYPE_CHECKING, Any

from robodm_engine.codecs import FeatureInfo
from robodm_engine.errors import (
    CodecError,
    DatasetError,
    FeatureMismatchError,
    IngestionError,
    PickleNotAllowedError,
    RobodmError,
    SpecError,
    StorageError,
    TimestampError,
    TrajectoryError,
    TrajectoryFormatError,
)
from robodm_engine.trajectory import Trajectory, TrajectorySummary

if TYPE_CHECKING:
    from robodm_engine.dataset import VLADataset
    from robodm_engine.ingestion import create_vla_dataset_from_source

__version__ = "0.1.0"

_LAZY = {
    "VLADataset": "robodm_engine.dataset",
    "create_vla_dataset_from_source": "robodm_engine.ingestion",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'robodm_engine' has no attribute {name!r}")

__all__ = [
    "CodecError",
    "DatasetError",
    "FeatureInfo",
    "FeatureMismatchError",
    "IngestionError",
    "PickleNotAllowedError",
    "RobodmError",
    "SpecError",
    "StorageError",
    "TimestampError",
    "Trajectory",
    "TrajectoryError",
    "TrajectoryFormatError",
    "TrajectorySummary",
    "VLADataset",
    "__version__",
    "create_vla_dataset_from_source",
]
