"""Built-in sources, chosen by ``spec.source.format`` in an IngestionJob.

=========  =====================================================  ==========================
format     what                                                   class
=========  =====================================================  ==========================
files      npz, json/jsonl, csv/parquet, videos, image folders    :class:`FileSource`
hdf5       robomimic, ALOHA and plain HDF5 episodes               :class:`HDF5Source`
lerobot    LeRobot v3 datasets (one trajectory per episode)       ``robodm_engine.lerobot``
custom     your DataIngestionInterface by import path             :func:`load_ingester`
=========  =====================================================  ==========================

Each source is a :class:`~robodm_engine.ingestion.DataIngestionInterface` whose items are
episodes and whose ``transform_item`` returns the episode's steps, each carrying its time
under :data:`TIMESTAMP_KEY`.
"""

from robodm_engine.sources._episode import TIMESTAMP_KEY, SourceFormatError
from robodm_engine.sources.custom import load_ingester
from robodm_engine.sources.files import FileSource
from robodm_engine.sources.hdf5 import HDF5Source

__all__ = ["TIMESTAMP_KEY", "FileSource", "HDF5Source", "SourceFormatError", "load_ingester"]
