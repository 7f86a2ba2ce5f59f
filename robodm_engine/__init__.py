"""robodm_engine: robot trajectories as Matroska files, ingestion on Ray, and datasets.

The public API is re-exported here; implementation modules are imported by their own
names (``robodm_engine.trajectory``, ``robodm_engine.ingestion``, ...).
"""

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

__version__ = "0.1.0"

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
    "__version__",
]
