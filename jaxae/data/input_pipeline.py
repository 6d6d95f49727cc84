"""TensorFlow Datasets input: prepared splits, whole splits in memory, and the streaming pipeline.

This module and the offline import are the only ones of jaxae that use
TensorFlow, both imported through :func:`jaxae.data._tensorflow.import_tensorflow`.
Two pipeline modes, one order:

* ``"device"``: :class:`~jaxae.data.batches.DeviceResidentPipeline` over the
  split loaded whole (:func:`load_split`).
* ``"streaming"``: :class:`StreamingPipeline`, tf.data on the host (read,
  shuffle, batch, prefetch), for data that does not fit; uint8 goes to the
  device, which converts.

Each epoch's order is tf.data's shuffle of the split with a seed drawn from
``(seed, epoch)``; the device mode applies that same shuffle to the indices,
so both modes give identical batches for the same seed.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import jax
import numpy as np

from jaxae.data._tensorflow import import_tensorflow
from jaxae.data.batches import TRANSFORMS, BatchSpec, DeviceResidentPipeline, Pipeline
from jaxae.data.classes import DATASETS, IMPORTABLE
from jaxae.errors import DatasetNotAvailableError, InputError

tf, tfds = import_tensorflow()

_DOWNLOAD_HOSTS = {"mnist": "storage.googleapis.com", "cifar10": "www.cs.toronto.edu"}
MODES = ("device", "streaming")


def _reachable(host: str, timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def prepared_builder(name: str, data_dir: str | Path | None = None):
    """TFDS's builder of ``name``, prepared: already, or (MNIST, CIFAR-10) downloaded now if the network allows.

    Any TFDS image dataset prepared in ``data_dir`` is read (``fashion_mnist``,
    ``kmnist``, ...: ``tfds build NAME --data_dir D`` where the network allows,
    or ``jaxae data import`` from the raw files of the IDX ones).

    Raises:
      DatasetNotAvailableError: within seconds when the dataset is not
        prepared and its download host cannot be reached; the message names
        the offline import command.
    """
    data_dir = None if data_dir is None else str(Path(data_dir).expanduser())
    where = data_dir or "TFDS's default data dir"
    try:
        builder = tfds.builder(name, data_dir=data_dir, try_gcs=False)
    except tfds.core.registered.DatasetNotFoundError:
        raise InputError(f"unknown dataset {name!r}: not a TFDS dataset name (e.g. {', '.join(DATASETS)}, "
                         "fashion_mnist); a folder of images is read with jaxae.data.from_folder") from None
    if builder.is_prepared():
        return builder
    if name not in _DOWNLOAD_HOSTS:
        raise DatasetNotAvailableError(
            f"{name} is not prepared in {where}: prepare it with `tfds build {name}"
            + (f" --data_dir {data_dir}" if data_dir else "") + "` where the network allows"
            + (f", or jaxae data import {name} --from DIR" if name in IMPORTABLE else ""))
    if not _reachable(_DOWNLOAD_HOSTS[name]):
        raise DatasetNotAvailableError(
            f"{name} is not prepared in {where} and {_DOWNLOAD_HOSTS[name]} cannot be reached. "
            f"Import it from the publisher's raw archives: "
            f"jaxae data import {name} --from DIR" + (f" --data-dir {data_dir}" if data_dir else "")
        )
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return builder


def load_split(name: str, split: str, data_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A whole split (TFDS split syntax, e.g. ``"train[:90%]"``) as uint8 images and int32 labels."""
    return _load(prepared_builder(name, data_dir), split, name)


def _load(builder, split: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise InputError(f"{name} is not an image classification dataset (features 'image' and 'label'); "
                         f"it has {sorted(features)}")
    try:
        data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, shuffle_files=False))
    except (tf.errors.OpError, ValueError) as error:  # images of several shapes, an unknown split
        raise InputError(f"{name}: split {split!r} cannot be read as one array: {str(error).splitlines()[0]}") from None
    if data["image"].dtype != np.uint8:
        raise InputError(f"{name}: its images are {data['image'].dtype}, not uint8 pixels")
    return data["image"], data["label"].astype(np.int32)


def dataset_info(name: str, data_dir: str | Path | None = None) -> dict:
    """A prepared TFDS dataset's ``image_shape`` (NHWC, one image), ``classes`` (their names) and
    ``splits`` (their sizes): what registering a model for it takes, e.g. ``(28, 28, 1)`` and ten
    classes for ``"fashion_mnist"``.
    """
    features = prepared_builder(name, data_dir).info
    return {"image_shape": tuple(features.features["image"].shape), "classes": tuple(features.features["label"].names),
            "splits": {split: info.num_examples for split, info in features.splits.items()}}


def from_folder(folder: str | Path, batch_spec: BatchSpec, *, transform: str = "to_tensor", sharding=None):
    """A pipeline over a folder of class subfolders of PNG or JPEG images (torchvision's ``ImageFolder``
    layout: ``folder/<class>/<image>``), read by TFDS's folder builder; labels by the classes' sorted names.

    The folder's siblings are the dataset's other splits (``data/train`` and ``data/test``
    are ``data``'s two splits). Every image must have one shape, that of the model.
    """
    folder = Path(folder).expanduser().absolute()
    images = sorted(p for p in folder.glob("*/*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not images:
        raise InputError(f"{folder} holds no class subfolders of .png or .jpg images (folder/<class>/<image>)")
    shape = tuple(tf.io.decode_image(tf.io.read_file(str(images[0])), expand_animations=False).shape)
    builder = tfds.folder_dataset.ImageFolder(str(folder.parent), shape=shape)
    pixels, labels = _load(builder, folder.name, str(folder))
    return DeviceResidentPipeline(pixels, labels, batch_spec, transform, sharding)


class StreamingPipeline(Pipeline):
    """tf.data on the host: read, shuffle, batch, prefetch; uint8 to the device, converted there.

    Args:
      dataset: the split as a ``tf.data.Dataset`` of ``{"image", "label"}`` in
        the split's order (``builder.as_dataset(split, shuffle_files=False)``).
      num_examples: its length.
      batch_spec, transform, sharding: as for :class:`~jaxae.data.batches.DeviceResidentPipeline`.
    """

    def __init__(self, dataset: tf.data.Dataset, num_examples: int, batch_spec: BatchSpec, transform: str = "to_tensor", sharding=None):
        super().__init__(num_examples, batch_spec, transform, sharding)
        self._dataset = dataset.map(lambda example: (example["image"], tf.cast(example["label"], tf.int32)))
        self.image_shape = tuple(dataset.element_spec["image"].shape)
        self._convert = jax.jit(TRANSFORMS[transform])

    def epoch(self, epoch: int, start: int = 0) -> Iterator[dict[str, jax.Array]]:
        spec = self.batch_spec
        dataset = self._dataset
        if spec.shuffle:
            dataset = spec.shuffled(dataset, self.num_examples, epoch)
        dataset = dataset.batch(spec.batch_size, drop_remainder=spec.drop_remainder).skip(start).prefetch(tf.data.AUTOTUNE)
        for images, labels in tfds.as_numpy(dataset):
            mask = np.ones(spec.batch_size, bool)
            missing = spec.batch_size - len(images)
            if missing:
                mask[len(images) :] = False
                images = np.concatenate([images, np.zeros((missing, *images.shape[1:]), images.dtype)])
                labels = np.concatenate([labels, np.zeros(missing, labels.dtype)])
            images, labels, mask = (_to_devices(a, self.sharding) for a in (images, labels, mask))
            yield {"image": self._convert(images), "label": labels, "mask": mask}


def _to_devices(array: np.ndarray, sharding):
    """This process's rows of a global batch, placed by ``sharding`` (every row when single-process)."""
    if sharding is None:
        return jax.device_put(array)
    rows = len(array) // jax.process_count()
    local = array[jax.process_index() * rows : (jax.process_index() + 1) * rows]
    return jax.make_array_from_process_local_data(sharding, local, array.shape)


def make_pipeline(
    name: str,
    split: str,
    batch_spec: BatchSpec,
    *,
    mode: str = "device",
    transform: str = "to_tensor",
    data_dir: str | Path | None = None,
    sharding=None,
):
    """The pipeline of a TFDS split (``"train"``, ``"test"``, ``"train[:90%]"``...).

    For instance E1's training data, 391 batches of which the last holds 80
    real rows::

        make_pipeline("cifar10", "train", BatchSpec(batch_size=128, seed=0))
    """
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose from {MODES}")
    if mode == "device":
        images, labels = load_split(name, split, data_dir)
        return DeviceResidentPipeline(images, labels, batch_spec, transform, sharding)
    builder = prepared_builder(name, data_dir)
    num_examples = builder.info.splits[split].num_examples
    return StreamingPipeline(builder.as_dataset(split=split, shuffle_files=False), num_examples, batch_spec, transform, sharding)
