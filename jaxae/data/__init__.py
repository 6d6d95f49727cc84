"""Data: offline import of the raw archives into TFDS, and the input pipelines."""

from jaxae.data.classes import CLASS_NAMES, class_names
from jaxae.data.offline_import import DATASETS, import_dataset
from jaxae.data.pipeline import (
    BatchSpec,
    DatasetNotAvailableError,
    DeviceResidentPipeline,
    StreamingPipeline,
    gather_batch,
    load_split,
    make_pipeline,
)
from jaxae.data.raw_archives import ArchiveError

__all__ = [
    "CLASS_NAMES",
    "DATASETS",
    "ArchiveError",
    "BatchSpec",
    "DatasetNotAvailableError",
    "DeviceResidentPipeline",
    "StreamingPipeline",
    "class_names",
    "gather_batch",
    "import_dataset",
    "load_split",
    "make_pipeline",
]
