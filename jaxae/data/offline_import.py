"""Builds TFDS's prepared ``mnist``, ``fashion_mnist``, ``kmnist`` and ``cifar10`` from the publishers' raw archives, offline.

TFDS's own builders do the work (features, example generation, file layout,
``dataset_info.json``); only their download step is replaced by the checked
local files of :mod:`jaxae.data.raw_archives`. Afterwards
``tfds.load("mnist", data_dir=D, download=False)`` works with no network.
TFDS writes into a temporary folder and renames it when complete, so a
failed or interrupted import leaves nothing behind and can be rerun.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

from jaxae.data._tensorflow import import_tensorflow
from jaxae.data.classes import IDX_DATASETS, IMPORTABLE
from jaxae.data.raw_archives import CIFAR10_ARCHIVE, MNIST_FILES, unpack_cifar10, unpack_mnist
from jaxae.errors import InputError

_, tfds = import_tensorflow()


class _LocalFiles:
    """Stands in for TFDS's ``DownloadManager``: each URL's file is already unpacked locally."""

    downloaded_size = 0

    def __init__(self, paths_by_filename: dict[str, Path]):
        self._paths = paths_by_filename

    def download_and_extract(self, url_or_urls):
        if isinstance(url_or_urls, dict):
            return {key: self.download_and_extract(url) for key, url in url_or_urls.items()}
        return self._paths[url_or_urls.rsplit("/", 1)[-1]]


def _from_local_files(name: str):
    """TFDS's builder class of ``name``, fed by :class:`_LocalFiles`."""
    base = tfds.builder_cls(name)

    class FromLocalFiles(base, skip_registration=True):
        name = base.name

        def __init__(self, local_files: _LocalFiles, **kwargs):
            self._local_files = local_files
            super().__init__(**kwargs)

        def _make_download_manager(self, download_dir, download_config):
            return self._local_files

        # TFDS announces a download of "Unknown size" and its end; there is no download, and the
        # caller reports the import.
        def _log_download_bytes(self):
            pass

        def _log_download_done(self):
            pass

    return FromLocalFiles


def _idx_builder(dataset: str):
    class IdxFromLocalFiles(_from_local_files(dataset), skip_registration=True):
        """TFDS's builder of an IDX dataset (MNIST's format), with the record counts read from the files
        (subsets allowed)."""

        name = dataset

        def _split_generators(self, dl_manager):
            files = dl_manager.download_and_extract(dict(MNIST_FILES))
            return [
                tfds.core.SplitGenerator(
                    name=split,
                    gen_kwargs=dict(
                        num_examples=_idx_count(files[f"{split}_data"]),
                        data_path=files[f"{split}_data"],
                        label_path=files[f"{split}_labels"],
                    ),
                )
                for split in ("train", "test")
            ]

    return IdxFromLocalFiles


def _idx_count(path: Path) -> int:
    with open(path, "rb") as f:
        return struct.unpack(">II", f.read(8))[1]


def import_dataset(name: str, source: str | Path, data_dir: str | Path | None = None, full: bool = True) -> Path:
    """Prepares TFDS dataset ``name`` in ``data_dir`` from the raw archives in ``source``.

    Args:
      name: "mnist", "fashion_mnist" or "kmnist" (``source`` holds the four IDX
        ``.gz`` files, named as MNIST's) or "cifar10" (``source`` holds
        ``cifar-10-binary.tar.gz``).
      source: folder of the publisher's raw files.
      data_dir: the TFDS data dir (default: TFDS's, ``~/tensorflow_datasets``).
      full: demand the full dataset's record counts; ``False`` accepts a
        consistent subset (tests, demos).

    Returns:
      The prepared dataset's folder, ``data_dir/name/version``.

    Raises:
      InputError: an unknown name.
      ArchiveError: a missing, corrupt, truncated or wrong archive.
    """
    if name not in IMPORTABLE:
        raise InputError(f"no offline import for dataset {name!r}; available: {', '.join(IMPORTABLE)}")
    source = Path(source).expanduser()
    with tempfile.TemporaryDirectory(prefix=f"jaxae-{name}-") as scratch:
        scratch = Path(scratch)
        if name in IDX_DATASETS:
            unpacked = unpack_mnist(source, scratch, full)
            local = _LocalFiles({filename: unpacked[key][0] for key, filename in MNIST_FILES.items()})
            builder_cls = _idx_builder(name)
        else:
            local = _LocalFiles({CIFAR10_ARCHIVE: unpack_cifar10(source, scratch, full)})
            builder_cls = _from_local_files(name)
        builder = builder_cls(local, data_dir=None if data_dir is None else str(Path(data_dir).expanduser()))
        config = tfds.download.DownloadConfig(try_download_gcs=False)
        tfds.display_progress_bar(False)  # TFDS's own bars for each generation phase, nested and noisy
        try:
            builder.download_and_prepare(download_dir=str(scratch / "downloads"), download_config=config)
        finally:
            tfds.display_progress_bar(True)
    return Path(builder.data_dir)

