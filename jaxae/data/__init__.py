"""Data: offline import of the raw archives into TFDS, and the input pipelines."""

from jaxae.data.offline_import import DATASETS, import_dataset
from jaxae.data.raw_archives import ArchiveError

__all__ = ["DATASETS", "ArchiveError", "import_dataset"]
