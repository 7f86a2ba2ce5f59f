"""Turn any data source into a VLA trajectory dataset, in parallel on Ray.

The public API of the seed document (``ingestion_api.md``), importable from here::

    from robodm_engine.ingestion import create_vla_dataset_from_source

    vla_dataset = create_vla_dataset_from_source(
        my_dataset, output_directory="./my_trajectories", num_workers=4
    )

Modules: :mod:`~.interface` (the ``DataIngestionInterface`` extension point),
:mod:`~.config` (``IngestionConfig``), :mod:`~.adapters` (built-in ingesters),
:mod:`~.detect` (source detection), :mod:`~.factory` (one-call entry points),
:mod:`~.runner` (``run_ingestion``, the engine), :mod:`~.cluster` (Ray start-up),
:mod:`~.naming` and :mod:`~.progress`; ``_worker`` is what each Ray task runs.
"""

from robodm_engine.ingestion.adapters import (
    CallableAdapter,
    FileListAdapter,
    IteratorAdapter,
    PyTorchDatasetAdapter,
    default_transform,
)
from robodm_engine.ingestion.config import IngestionConfig
from robodm_engine.ingestion.detect import detect_ingester
from robodm_engine.ingestion.factory import (
    create_vla_dataset_from_callable,
    create_vla_dataset_from_file_list,
    create_vla_dataset_from_iterator,
    create_vla_dataset_from_pytorch_dataset,
    create_vla_dataset_from_source,
    default_output_directory,
)
from robodm_engine.ingestion.interface import DataIngestionInterface
from robodm_engine.ingestion.progress import IngestionProgress
from robodm_engine.ingestion.runner import IngestionResult, ItemFailuresError, run_ingestion

__all__ = [
    "CallableAdapter",
    "DataIngestionInterface",
    "FileListAdapter",
    "IngestionConfig",
    "IngestionProgress",
    "IngestionResult",
    "ItemFailuresError",
    "IteratorAdapter",
    "PyTorchDatasetAdapter",
    "create_vla_dataset_from_callable",
    "create_vla_dataset_from_file_list",
    "create_vla_dataset_from_iterator",
    "create_vla_dataset_from_pytorch_dataset",
    "create_vla_dataset_from_source",
    "default_output_directory",
    "default_transform",
    "detect_ingester",
    "run_ingestion",
]
