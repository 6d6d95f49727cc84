"""Data: batches and pixel transforms (no TensorFlow), TFDS input pipelines, and the offline import.

Importing :mod:`jaxae.data` or :mod:`jaxae.data.batches` does not import
TensorFlow; the TFDS names below (``make_pipeline``, ``load_split``,
``StreamingPipeline``, ``prepared_builder``, ``import_dataset``, ``from_folder``, ``dataset_info``) import it on
first use, through :func:`jaxae.data._tensorflow.import_tensorflow`: quiet, and with no GPU.
"""

from __future__ import annotations

import importlib

from jaxae.data.arrays import from_arrays
from jaxae.data.batches import (
    PIXEL_TABLES,
    VALUE_RANGES,
    BatchSpec,
    DeviceResidentPipeline,
    gather_batch,
    normalize,
    to_tensor,
)
from jaxae.data.classes import CLASS_NAMES, DATASETS, class_names
from jaxae.data.raw_archives import ArchiveError
from jaxae.errors import DatasetNotAvailableError

_WITH_TENSORFLOW = {
    "load_split": "jaxae.data.input_pipeline",
    "make_pipeline": "jaxae.data.input_pipeline",
    "prepared_builder": "jaxae.data.input_pipeline",
    "StreamingPipeline": "jaxae.data.input_pipeline",
    "import_dataset": "jaxae.data.offline_import",
    "from_folder": "jaxae.data.input_pipeline",
    "dataset_info": "jaxae.data.input_pipeline",
}

__all__ = [  # noqa: PLE0604 -- _WITH_TENSORFLOW's names, loaded on first use
    "ArchiveError",
    "CLASS_NAMES",
    "DATASETS",
    "PIXEL_TABLES",
    "VALUE_RANGES",
    "BatchSpec",
    "DatasetNotAvailableError",
    "DeviceResidentPipeline",
    "class_names",
    "from_arrays",
    "gather_batch",
    "normalize",
    "to_tensor",
    *_WITH_TENSORFLOW,
]


def __getattr__(name: str):
    if name in _WITH_TENSORFLOW:
        return getattr(importlib.import_module(_WITH_TENSORFLOW[name]), name)
    raise AttributeError(f"module 'jaxae.data' has no attribute {name!r}")
