"""Reading trajectory datasets for training: :class:`VLADataset` on Ray Data.

A dataset is a set of trajectory files (``.mkv``), usually published by the ingestion engine
with a ``manifest.json`` (:mod:`robodm_engine.manifest`), on a local disk or in S3.
:class:`VLADataset` streams them as rows of steps or of whole trajectories, splits them by
trajectory, and computes statistics, with decoding spread over Ray tasks.

The implementation is private: ``_sources`` resolves what the user passes into files,
``_read`` decodes them inside Ray tasks, ``_stats`` computes statistics, ``_vla`` is the facade.
"""

from robodm_engine.dataset._read import METADATA_COLUMNS
from robodm_engine.dataset._stats import DatasetStats, FeatureStats, LengthStats
from robodm_engine.dataset._vla import VLADataset

__all__ = ["METADATA_COLUMNS", "DatasetStats", "FeatureStats", "LengthStats", "VLADataset"]
