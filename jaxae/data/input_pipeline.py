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
from jaxae.data.classes import DATASETS
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
    """TFDS's builder of ``name``, prepared: already, or downloaded now if the network allows.

    Raises:
      DatasetNotAvailableError: within seconds when the dataset is not
        prepared and its download host cannot be reached; the message names
        the offline import command.
    """
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; jaxae reads {', '.join(DATASETS)}")
    data_dir = None if data_dir is None else str(Path(data_dir).expanduser())
    builder = tfds.builder(name, data_dir=data_dir, try_gcs=False)
    if builder.is_prepared():
        return builder
    if not _reachable(_DOWNLOAD_HOSTS[name]):
        where = data_dir or "TFDS's default data dir"
        raise DatasetNotAvailableError(
            f"{name} is not prepared in {where} and {_DOWNLOAD_HOSTS[name]} cannot be reached. "
            f"Import it from the publisher's raw archives: "
            f"jaxae data import {name} --from DIR" + (f" --data-dir {data_dir}" if data_dir else "")
        )
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return builder


def load_split(name: str, split: str, data_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A whole split (TFDS split syntax, e.g. ``"train[:90%]"``) as uint8 images and int32 labels."""
    builder = prepared_builder(name, data_dir)
    data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, shuffle_files=False))
    return data["image"], data["label"].astype(np.int32)


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
        self._convert = jax.jit(TRANSFORMS[transform])

    def epoch(self, epoch: int) -> Iterator[dict[str, jax.Array]]:
        spec = self.batch_spec
        dataset = self._dataset
        if spec.shuffle:
            dataset = spec.shuffled(dataset, self.num_examples, epoch)
        dataset = dataset.batch(spec.batch_size, drop_remainder=spec.drop_remainder).prefetch(tf.data.AUTOTUNE)
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
