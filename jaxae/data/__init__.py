"""Data: batches and pixel transforms (no TensorFlow), TFDS input pipelines, and the offline import.

Importing :mod:`jaxae.data` or :mod:`jaxae.data.batches` does not import
TensorFlow; the TFDS names below (``make_pipeline``, ``load_split``,
``StreamingPipeline``, ``prepared_builder``, ``import_dataset``) import it on
first use.

TensorFlow serves the input pipelines only: tf.data reads, shuffles and batches, and no matrix
product or convolution runs in it. Before it is first imported, its start-up lines are turned
off (``TF_CPP_MIN_LOG_LEVEL=2``), and so are oneDNN's custom operations
(``TF_ENABLE_ONEDNN_OPTS=0``), which TensorFlow announces on stderr at import on CPUs with
AVX-512 VNNI whatever the log level; settings the caller made stand.
"""

from __future__ import annotations

import importlib
import os

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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

_WITH_TENSORFLOW = {
    "load_split": "jaxae.data.input_pipeline",
    "make_pipeline": "jaxae.data.input_pipeline",
    "prepared_builder": "jaxae.data.input_pipeline",
    "StreamingPipeline": "jaxae.data.input_pipeline",
    "import_dataset": "jaxae.data.offline_import",
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
    "gather_batch",
    "normalize",
    "to_tensor",
    *_WITH_TENSORFLOW,
]


def __getattr__(name: str):
    if name in _WITH_TENSORFLOW:
        return getattr(importlib.import_module(_WITH_TENSORFLOW[name]), name)
    raise AttributeError(f"module 'jaxae.data' has no attribute {name!r}")
