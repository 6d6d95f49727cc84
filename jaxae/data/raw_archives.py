"""The publishers' raw archives of MNIST and CIFAR-10: checked, then unpacked for TFDS.

MNIST ships four gzipped IDX files; CIFAR-10's "binary version" is one
``cifar-10-binary.tar.gz`` of fixed-size records. Each is checked before a
byte reaches TFDS: a truncated or corrupt archive, a record count that
differs from the header's or from the full dataset's, or a file of another
dataset is refused with an :class:`ArchiveError` that says what is wrong.
"""

from __future__ import annotations

import gzip
import struct
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np

from jaxae.errors import InputError

RAW_DATA_ENV = "JAXAE_RAW_DATA"
"""The environment variable that names a folder of raw archives (``DIR/mnist``, ``DIR/cifar10``)."""

MNIST_FILES = {
    "train_data": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_data": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
MNIST_COUNTS = {"train": 60_000, "test": 10_000}
_IDX_IMAGES_MAGIC, _IDX_LABELS_MAGIC = 2051, 2049

CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_PREFIX = "cifar-10-batches-bin/"
CIFAR10_TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]
CIFAR10_TEST_FILES = ["test_batch.bin"]
CIFAR10_RECORD_BYTES = 1 + 32 * 32 * 3
CIFAR10_RECORDS_PER_FILE = 10_000


class ArchiveError(InputError):
    """A raw archive that is missing, corrupt, truncated, or of another dataset."""


def _gunzip(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as error:
        raise ArchiveError(f"{path}: not a complete gzip file ({error})") from None


def _require(directory: Path, filename: str) -> Path:
    path = directory / filename
    if not path.is_file():
        present = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
        raise ArchiveError(f"{directory}: no {filename} (found: {present or 'nothing'})")
    return path


def unpack_mnist(source: Path, target: Path, full: bool = True) -> dict[str, tuple[Path, int]]:
    """Checks MNIST's four IDX ``.gz`` files in ``source`` and writes them unzipped to ``target``.

    Args:
      source: the folder that holds the four files, named as the publisher names them.
      target: an empty folder for the unzipped files.
      full: demand the full dataset's counts (60,000 train, 10,000 test);
        ``False`` accepts any consistent subset (for tests and demos).

    Returns:
      ``{"train_data": (path, count), ...}`` for the keys of :data:`MNIST_FILES`.
    """
    unpacked = {}
    for key, filename in MNIST_FILES.items():
        path = _require(source, filename)
        data = _gunzip(path)
        is_images = key.endswith("data")
        header = struct.Struct(">IIII" if is_images else ">II")
        if len(data) < header.size:
            raise ArchiveError(f"{path}: {len(data)} bytes, too short for an IDX header")
        magic, count, *dims = header.unpack_from(data)
        expected_magic = _IDX_IMAGES_MAGIC if is_images else _IDX_LABELS_MAGIC
        if magic != expected_magic:
            kind = "images" if is_images else "labels"
            raise ArchiveError(f"{path}: not an IDX {kind} file (magic {magic}, expected {expected_magic})")
        if is_images and dims != [28, 28]:
            raise ArchiveError(f"{path}: images of {dims[0]}×{dims[1]} pixels, MNIST's are 28×28")
        record = 28 * 28 if is_images else 1
        body = len(data) - header.size
        if body != count * record:
            raise ArchiveError(
                f"{path}: the header announces {count} records of {record} bytes, the file holds {body} bytes"
            )
        if not is_images and count and max(data[header.size :]) > 9:
            raise ArchiveError(f"{path}: labels above 9, not MNIST's digits")
        split = key.split("_")[0]
        if full and count != MNIST_COUNTS[split]:
            raise ArchiveError(f"{path}: {count} records, the full MNIST {split} split has {MNIST_COUNTS[split]}")
        out = target / filename.removesuffix(".gz")
        out.write_bytes(data)
        unpacked[key] = (out, count)
    for split in MNIST_COUNTS:
        (_, images), (_, labels) = unpacked[f"{split}_data"], unpacked[f"{split}_labels"]
        if images != labels:
            raise ArchiveError(f"{source}: {images} {split} images but {labels} {split} labels")
    return unpacked


def unpack_cifar10(source: Path, target: Path, full: bool = True) -> Path:
    """Checks ``cifar-10-binary.tar.gz`` in ``source`` and extracts it into ``target``.

    Args:
      source: the folder that holds the archive.
      target: an empty folder; the archive's ``cifar-10-batches-bin/`` lands in it.
      full: demand 10,000 records in each of the six batch files; ``False``
        accepts any whole number of records (for tests and demos).

    Returns:
      ``target``, as TFDS's CIFAR-10 builder expects the extracted download.
    """
    path = _require(source, CIFAR10_ARCHIVE)
    needed = [CIFAR10_PREFIX + f for f in (*CIFAR10_TRAIN_FILES, *CIFAR10_TEST_FILES, "batches.meta.txt")]
    try:
        with tarfile.open(path, "r:gz") as archive:
            names = set(archive.getnames())
            missing = [n for n in needed if n not in names]
            if missing:
                hint = " (this is CIFAR-100's archive)" if any(n.startswith("cifar-100") for n in names) else ""
                raise ArchiveError(f"{path}: not CIFAR-10's binary archive{hint}: missing {missing}")
            members = [archive.getmember(n) for n in needed]
            if not all(member.isfile() for member in members):  # no links, devices or folders under those names
                raise ArchiveError(f"{path}: not CIFAR-10's binary archive: its batch files are not regular files")
            # Python 3.11.0-3.11.3 lack extraction filters; the checks above are what "data" adds for these names.
            archive.extractall(target, members=members, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise ArchiveError(f"{path}: not a complete tar.gz archive ({error})") from None
    for name in needed[:-1]:
        data = (target / name).read_bytes()
        records, remainder = divmod(len(data), CIFAR10_RECORD_BYTES)
        if remainder or not records:
            raise ArchiveError(f"{path}: {name} holds {len(data)} bytes, not whole records of {CIFAR10_RECORD_BYTES}")
        if full and records != CIFAR10_RECORDS_PER_FILE:
            raise ArchiveError(f"{path}: {name} holds {records} records, CIFAR-10's hold {CIFAR10_RECORDS_PER_FILE}")
        if max(data[::CIFAR10_RECORD_BYTES]) > 9:
            raise ArchiveError(f"{path}: {name} has labels above 9, not CIFAR-10's")
    label_names = (target / needed[-1]).read_text().split()
    if len(label_names) != 10:
        raise ArchiveError(f"{path}: batches.meta.txt names {len(label_names)} classes, CIFAR-10 has 10")
    return target


def read_cifar10(source: Path, full: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """CIFAR-10's splits straight from ``cifar-10-binary.tar.gz`` in ``source``, without TensorFlow.

    Checked as :func:`unpack_cifar10` checks it. Returns ``{"train": (images, labels), "test": ...}``:
    uint8 ``(N, 32, 32, 3)`` images and int32 labels, in the archive's record order (the five
    training batch files one after the other), which is not TFDS's order.
    """
    splits = {"train": CIFAR10_TRAIN_FILES, "test": CIFAR10_TEST_FILES}
    with tempfile.TemporaryDirectory(prefix="jaxae-cifar10-") as scratch:
        unpack_cifar10(Path(source), Path(scratch), full)
        read = {}
        for split, files in splits.items():
            data = b"".join((Path(scratch) / CIFAR10_PREFIX / name).read_bytes() for name in files)
            records = np.frombuffer(data, np.uint8).reshape(-1, CIFAR10_RECORD_BYTES)
            images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            read[split] = (np.ascontiguousarray(images), records[:, 0].astype(np.int32))
    return read
