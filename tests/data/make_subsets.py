"""Writes the tiny raw-format subsets under tests/data/ from the full raw archives.

    python tests/data/make_subsets.py --mnist DIR_WITH_MNIST_IDX_FILES --cifar10 DIR_WITH_cifar-10-binary.tar.gz

MNIST: the first 300 train and 100 test images, as the four IDX
``.gz`` files. CIFAR-10: the first 60 records of each train batch file and the
first 100 of the test batch, as ``cifar-10-binary.tar.gz``. Deterministic.
"""

import argparse
import gzip
import io
import struct
import tarfile
from pathlib import Path

HERE = Path(__file__).parent
MNIST = {  # file: records kept
    "train-images-idx3-ubyte.gz": 300,
    "train-labels-idx1-ubyte.gz": 300,
    "t10k-images-idx3-ubyte.gz": 100,
    "t10k-labels-idx1-ubyte.gz": 100,
}
CIFAR_PREFIX = "cifar-10-batches-bin/"
CIFAR_RECORD = 3073


def _gzip(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as f:
        f.write(data)
    return out.getvalue()


def mnist_subset(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name, keep in MNIST.items():
        data = gzip.decompress((source / name).read_bytes())
        is_images = "images" in name
        header_size, record = (16, 784) if is_images else (8, 1)
        header = bytearray(data[:header_size])
        struct.pack_into(">I", header, 4, keep)
        (target / name).write_bytes(_gzip(bytes(header) + data[header_size : header_size + keep * record]))


def cifar10_subset(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    keep = {f"data_batch_{i}.bin": 60 for i in range(1, 6)} | {"test_batch.bin": 100, "batches.meta.txt": None}
    out = io.BytesIO()
    with tarfile.open(source / "cifar-10-binary.tar.gz", "r:gz") as archive, tarfile.open(fileobj=out, mode="w") as subset:
        for name, records in keep.items():
            data = archive.extractfile(CIFAR_PREFIX + name).read()
            if records is not None:
                data = data[: records * CIFAR_RECORD]
            info = tarfile.TarInfo(CIFAR_PREFIX + name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            subset.addfile(info, io.BytesIO(data))
    (target / "cifar-10-binary.tar.gz").write_bytes(_gzip(out.getvalue()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", type=Path, required=True, help="folder of MNIST's four IDX .gz files")
    parser.add_argument("--cifar10", type=Path, required=True, help="folder of cifar-10-binary.tar.gz")
    args = parser.parse_args()
    mnist_subset(args.mnist, HERE / "mnist")
    cifar10_subset(args.cifar10, HERE / "cifar10")
