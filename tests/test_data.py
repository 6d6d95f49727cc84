"""Offline import through TFDS's builders, archive checks, and the two pipeline modes."""

import gzip
import shutil
import tarfile
from pathlib import Path

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxae import cli
from jaxae.data import (
    ArchiveError,
    BatchSpec,
    DatasetNotAvailableError,
    DeviceResidentPipeline,
    StreamingPipeline,
    gather_batch,
    import_dataset,
    load_split,
    make_pipeline,
    prepared_builder,
)
from jaxae.data.shuffle_order import tf_shuffle_order

RAW = Path(__file__).parent / "data"


def _raw_mnist(split):
    prefix = "train" if split == "train" else "t10k"
    images = gzip.decompress((RAW / "mnist" / f"{prefix}-images-idx3-ubyte.gz").read_bytes())[16:]
    labels = gzip.decompress((RAW / "mnist" / f"{prefix}-labels-idx1-ubyte.gz").read_bytes())[8:]
    return np.frombuffer(images, np.uint8).reshape(-1, 28, 28, 1), np.frombuffer(labels, np.uint8)


def _raw_cifar10(split):
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]
    with tarfile.open(RAW / "cifar10" / "cifar-10-binary.tar.gz") as archive:
        data = b"".join(archive.extractfile(f"cifar-10-batches-bin/{n}").read() for n in names)
    records = np.frombuffer(data, np.uint8).reshape(-1, 3073)
    return records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), records[:, 0]


def _examples(images, labels):
    return sorted((image.tobytes(), int(label)) for image, label in zip(images, labels, strict=True))


@pytest.mark.parametrize("name, raw", [("mnist", _raw_mnist), ("cifar10", _raw_cifar10)])
def test_plain_tfds_load_reads_the_imported_archives_exactly(data_dir, name, raw):
    for split, count in [("train", 300), ("test", 100)]:
        data = tfds.as_numpy(tfds.load(name, split=split, data_dir=data_dir, download=False, batch_size=-1, try_gcs=False))
        assert data["image"].dtype == np.uint8 and len(data["image"]) == count
        # TFDS stores examples in its own (hashed, fixed) order: compare as sets of (pixels, label).
        assert _examples(data["image"], data["label"]) == _examples(*raw(split))
    info = tfds.builder(name, data_dir=data_dir).info
    assert info.features["label"].num_classes == 10
    assert info.splits["train"].num_examples == 300


def test_tfds_split_slicing_works(data_dir):
    images, labels = load_split("mnist", "train[:10%]", data_dir)
    assert images.shape == (30, 28, 28, 1) and labels.dtype == np.int32
    np.testing.assert_array_equal(images, load_split("mnist", "train", data_dir)[0][:30])


def _copy(tmp_path, name):
    target = tmp_path / name
    shutil.copytree(RAW / name, target)
    return target


def _assert_import_refused(name, source, data_dir, message):
    with pytest.raises(ArchiveError, match=message):
        import_dataset(name, source, data_dir, full=False)
    assert not (Path(data_dir) / name).exists() or not any((Path(data_dir) / name).rglob("*.tfrecord*"))


def test_corrupt_mnist_archives_are_refused_and_nothing_is_left(tmp_path):
    data_dir = tmp_path / "tfds"
    source = _copy(tmp_path, "mnist")
    images = source / "train-images-idx3-ubyte.gz"
    good = images.read_bytes()

    images.write_bytes(good[: len(good) // 2])
    _assert_import_refused("mnist", source, data_dir, "train-images-idx3-ubyte.gz: not a complete gzip file")

    images.write_bytes(gzip.compress(gzip.decompress(good)[:-784 * 2]))
    _assert_import_refused("mnist", source, data_dir, "announces 300 records of 784 bytes, the file holds 233632 bytes")

    shutil.copy(source / "train-labels-idx1-ubyte.gz", images)
    _assert_import_refused("mnist", source, data_dir, "not an IDX images file")

    images.unlink()
    _assert_import_refused("mnist", source, data_dir, "no train-images-idx3-ubyte.gz")

    images.write_bytes(good)
    with pytest.raises(ArchiveError, match="300 records, the full MNIST train split has 60000"):
        import_dataset("mnist", source, data_dir)
    assert import_dataset("mnist", source, data_dir, full=False).is_dir()  # a rerun after failures works


def test_corrupt_cifar10_archives_are_refused(tmp_path):
    data_dir = tmp_path / "tfds"
    source = _copy(tmp_path, "cifar10")
    archive = source / "cifar-10-binary.tar.gz"
    good = archive.read_bytes()

    archive.write_bytes(good[: len(good) // 2])
    _assert_import_refused("cifar10", source, data_dir, "not a complete tar.gz archive")

    with tarfile.open(archive, "w:gz") as wrong:
        wrong.add(RAW / "mnist" / "t10k-labels-idx1-ubyte.gz", "cifar-100-binary/test.bin")
    _assert_import_refused("cifar10", source, data_dir, "not CIFAR-10's binary archive \\(this is CIFAR-100's archive\\)")

    archive.write_bytes(good)
    with pytest.raises(ArchiveError, match=r"data_batch_1\.bin holds 60 records, CIFAR-10's hold 10000"):
        import_dataset("cifar10", source, data_dir)


def test_cifar10_unpacks_without_extraction_filters_and_refuses_links(tmp_path, monkeypatch):
    """Python 3.11.0-3.11.3 have no ``extractall(filter=...)``: the import checks the members itself."""
    from jaxae.data.raw_archives import unpack_cifar10

    extractall, real_filters = tarfile.TarFile.extractall, {"filter": "data"} if hasattr(tarfile, "data_filter") else {}

    def without_filters(self, path=".", members=None, *, numeric_owner=False, **filters):
        assert not filters, "extractall(filter=...) does not exist before Python 3.11.4"
        return extractall(self, path, members, numeric_owner=numeric_owner, **real_filters)

    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    monkeypatch.setattr(tarfile.TarFile, "extractall", without_filters)
    unpacked = unpack_cifar10(RAW / "cifar10", tmp_path / "unpacked", full=False) / "cifar-10-batches-bin"
    with tarfile.open(RAW / "cifar10" / "cifar-10-binary.tar.gz") as archive:
        assert (unpacked / "test_batch.bin").read_bytes() == archive.extractfile("cifar-10-batches-bin/test_batch.bin").read()

        (tmp_path / "linked").mkdir()
        with tarfile.open(tmp_path / "linked" / "cifar-10-binary.tar.gz", "w:gz") as linked:
            for member in archive.getmembers():
                if member.name.endswith("data_batch_1.bin"):
                    member = tarfile.TarInfo(member.name)
                    member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
                    linked.addfile(member)
                elif member.isfile():
                    linked.addfile(member, archive.extractfile(member))
    with pytest.raises(ArchiveError, match="its batch files are not regular files"):
        unpack_cifar10(tmp_path / "linked", tmp_path / "refused", full=False)
    assert not (tmp_path / "refused").exists() or not any((tmp_path / "refused").rglob("*.bin"))


def test_a_dataset_neither_prepared_nor_downloadable_names_the_import_command(tmp_path):
    with pytest.raises(DatasetNotAvailableError, match=f"jaxae data import mnist --from DIR --data-dir {tmp_path}"):
        prepared_builder("mnist", tmp_path)


def test_cli_reports_bad_archives_without_a_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["data", "import", "mnist", "--from", str(tmp_path), "--data-dir", str(tmp_path / "tfds")])
    assert exit_info.value.code == 2
    assert "jaxae: error:" in capsys.readouterr().err


def test_unknown_names_are_refused(data_dir):
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        load_split("svhn", "train", data_dir)
    with pytest.raises(ValueError, match="unknown mode"):
        make_pipeline("mnist", "train", BatchSpec(8), mode="gpu", data_dir=data_dir)
    with pytest.raises(ValueError, match="unknown transform"):
        make_pipeline("mnist", "train", BatchSpec(8), transform="standardize", data_dir=data_dir)


# Pipelines.


def _epoch(pipeline, epoch=0):
    return [{k: np.asarray(v) for k, v in batch.items()} for batch in pipeline.epoch(epoch)]


@pytest.mark.parametrize("mode", ["device", "streaming"])
def test_batches_have_the_seeds_shapes_ranges_and_masks(data_dir, mode):
    keep = make_pipeline("cifar10", "train", BatchSpec(128, seed=1), mode=mode, data_dir=data_dir)
    batches = _epoch(keep)
    assert keep.num_batches == len(batches) == 3
    for batch in batches:
        assert batch["image"].shape == (128, 32, 32, 3) and batch["image"].dtype == np.float32
        assert batch["label"].dtype == np.int32 and batch["mask"].dtype == bool
        assert batch["image"].min() >= 0.0 and batch["image"].max() <= 1.0
    assert [b["mask"].sum() for b in batches] == [128, 128, 44]
    assert not batches[-1]["image"][44:].any() and not batches[-1]["label"][44:].any()
    seen = np.concatenate([b["label"][b["mask"]] for b in batches])
    np.testing.assert_array_equal(np.sort(seen), np.sort(_raw_cifar10("train")[1]))

    drop = make_pipeline("mnist", "train", BatchSpec(32, drop_remainder=True), mode=mode, transform="normalize", data_dir=data_dir)
    batches = _epoch(drop)
    assert drop.num_batches == len(batches) == 9 and all(b["mask"].all() for b in batches)
    assert batches[0]["image"].min() == -1.0 and batches[0]["image"].max() == 1.0


def test_the_two_modes_give_identical_batches(data_dir):
    spec = BatchSpec(64, seed=7)
    device = make_pipeline("cifar10", "train", spec, data_dir=data_dir)
    streaming = make_pipeline("cifar10", "train", spec, mode="streaming", data_dir=data_dir)
    for epoch in (0, 1):
        for a, b in zip(_epoch(device, epoch), _epoch(streaming, epoch), strict=True):
            for key in a:
                np.testing.assert_array_equal(a[key], b[key])


def test_shuffling_is_seeded_per_epoch_and_test_order_is_kept(data_dir):
    def labels(seed, epoch, shuffle=True):
        pipeline = make_pipeline("mnist", "train", BatchSpec(100, shuffle=shuffle, seed=seed), data_dir=data_dir)
        return np.concatenate([b["label"] for b in _epoch(pipeline, epoch)])

    np.testing.assert_array_equal(labels(0, 0), labels(0, 0))
    assert not np.array_equal(labels(0, 0), labels(0, 1))
    assert not np.array_equal(labels(0, 0), labels(1, 0))
    np.testing.assert_array_equal(labels(0, 0, shuffle=False), load_split("mnist", "train", data_dir)[1])


@pytest.mark.parametrize(
    "num_examples, seed, buffer_size",
    [(1, 3, None), (5, 0, None), (1000, 2**31 - 1, None), (1000, 2**32 - 1, None), (60000, 12345, None),
     (1000, 7, 1), (1000, 11, 64), (999, 13, 998), (37, 17, 100)],
)
def test_the_numpy_shuffle_order_is_tf_datas(num_examples, seed, buffer_size):
    import tensorflow as tf

    shuffled = tf.data.Dataset.range(num_examples).shuffle(buffer_size or num_examples, seed=seed, reshuffle_each_iteration=False)
    expected = next(shuffled.batch(num_examples).as_numpy_iterator())
    np.testing.assert_array_equal(tf_shuffle_order(num_examples, seed, buffer_size), expected)


def test_batches_can_be_sharded_over_a_mesh(data_dir):
    mesh = Mesh(np.array(jax.devices()[:4]), ("batch",))
    sharding = NamedSharding(mesh, PartitionSpec("batch"))
    spec = BatchSpec(64, seed=2)
    for mode in ("device", "streaming"):
        sharded = next(make_pipeline("cifar10", "test", spec, mode=mode, data_dir=data_dir, sharding=sharding).epoch(0))
        plain = next(make_pipeline("cifar10", "test", spec, mode=mode, data_dir=data_dir).epoch(0))
        assert sharded["image"].sharding.is_equivalent_to(sharding, 4)
        assert len(sharded["image"].addressable_shards) == 4
        np.testing.assert_array_equal(sharded["image"], plain["image"])
    with pytest.raises(ValueError, match="batch_size 66 does not split over 4 devices"):
        make_pipeline("cifar10", "test", BatchSpec(66), data_dir=data_dir, sharding=sharding)


def test_gather_batch_works_inside_a_jitted_scan(data_dir):
    pipeline = make_pipeline("mnist", "test", BatchSpec(32), data_dir=data_dir)
    indices, mask = pipeline.epoch_plan(0)

    @jax.jit
    def label_sums(split, indices, mask):
        def step(carry, plan):
            batch = gather_batch(split, *plan)
            return carry, (batch["label"] * batch["mask"]).sum()

        return jax.lax.scan(step, 0, (indices, mask))[1]

    expected = [b["label"][b["mask"]].sum() for b in _epoch(pipeline)]
    np.testing.assert_array_equal(label_sums(pipeline.split, indices, mask), expected)


def test_many_batches_of_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=1000):
        dataset = tfds.load("cifar10", split="train", data_dir=tmp_path, try_gcs=False)
        streaming = StreamingPipeline(dataset, 1000, BatchSpec(128, drop_remainder=True, seed=4))
        streamed = _epoch(streaming)
    assert len(streamed) == streaming.num_batches == 7
    images = np.concatenate([b["image"] for b in streamed])
    labels = np.concatenate([b["label"] for b in streamed])
    device = DeviceResidentPipeline(np.zeros((1000, 32, 32, 3), np.uint8), np.arange(1000) % 10, BatchSpec(128, seed=4))
    assert device.num_batches == 8 and images.shape == (896, 32, 32, 3) and set(labels) <= set(range(10))
