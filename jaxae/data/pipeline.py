"""Input pipelines over TFDS splits: device-resident or streamed, with the same batches.

Batches are dicts ``{"image": float32 (B, H, W, C), "label": int32 (B,),
"mask": bool (B,)}`` of fixed shape. When the split does not divide into
batches, the last one is either dropped (``drop_remainder=True``, E3) or
padded and masked (E1, E2): ``mask`` is False on padding rows, and
:mod:`jaxae.losses` ignores them, so one compiled step serves every batch.

Two modes, one order:

* ``"device"``: the whole split sits on the device(s) once as uint8; each
  epoch's order is a small index array, and batches are gathered there.
  :meth:`DeviceResidentPipeline.epoch_plan` and :func:`gather_batch` let a
  jitted step (or a ``lax.scan`` over an epoch) do the gathering itself.
* ``"streaming"``: tf.data reads, shuffles, batches and prefetches on the
  host, for data that does not fit; uint8 goes to the device, which converts.

Each epoch's order is tf.data's shuffle of the split with a seed drawn from
``(seed, epoch)``; the device mode applies that same shuffle to the indices,
so both modes give identical batches for the same seed.
"""

from __future__ import annotations

import dataclasses
import math
import socket
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxae.data.offline_import import DATASETS

try:  # TensorFlow feeds data only: it must never claim a GPU that JAX needs.
    tf.config.set_visible_devices([], "GPU")
except RuntimeError:  # already initialised by the caller; their choice stands
    pass

_DOWNLOAD_HOSTS = {"mnist": "storage.googleapis.com", "cifar10": "www.cs.toronto.edu"}
MODES = ("device", "streaming")


# Lookup tables, so that each uint8 value maps to exactly the float32 PyTorch computes
# (XLA turns x / 255 into x * (1 / 255), which rounds 255 to 1.0000001).
_TO_TENSOR = np.arange(256, dtype=np.float32) / np.float32(255)
_NORMALIZE = (_TO_TENSOR - np.float32(0.5)) / np.float32(0.5)


def to_tensor(images):
    """``transforms.ToTensor()``: uint8 pixels to float32 in [0, 1]."""
    return jnp.asarray(_TO_TENSOR)[images]


def normalize(images):
    """``ToTensor()`` then ``Normalize(0.5, 0.5)``: float32 in [-1, 1]."""
    return jnp.asarray(_NORMALIZE)[images]


TRANSFORMS = {"to_tensor": to_tensor, "normalize": normalize}
PIXEL_TABLES = {"to_tensor": _TO_TENSOR, "normalize": _NORMALIZE}
"""Each transform as a 256-entry float32 table: ``PIXEL_TABLES[t][uint8_images]`` on the host."""


class DatasetNotAvailableError(RuntimeError):
    """A dataset that is neither prepared in the data dir nor downloadable."""


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
        raise ValueError(f"unknown dataset {name!r}; jaxae reads {', '.join(DATASETS)}")
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


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint32)[0])


def _shuffled(dataset: tf.data.Dataset, num_examples: int, seed: int, epoch: int, buffer_size: int | None):
    return dataset.shuffle(buffer_size or num_examples, seed=_epoch_seed(seed, epoch), reshuffle_each_iteration=False)


@dataclasses.dataclass(frozen=True)
class BatchSpec:
    """How a split is cut into batches each epoch.

    Attributes:
      batch_size: global batch size.
      shuffle: shuffle each epoch (train) or keep the split's order (test).
      drop_remainder: drop the last partial batch instead of padding it.
      seed: data-order seed; epoch ``e`` uses an order drawn from ``(seed, e)``.
      shuffle_buffer: tf.data's buffer; default the whole split (a uniform shuffle).
    """

    batch_size: int
    shuffle: bool = True
    drop_remainder: bool = False
    seed: int = 0
    shuffle_buffer: int | None = None

    def num_batches(self, num_examples: int) -> int:
        rounding = math.floor if self.drop_remainder else math.ceil
        return rounding(num_examples / self.batch_size)

    def order(self, num_examples: int, epoch: int) -> np.ndarray:
        """The epoch's order of example indices, tf.data's shuffle when shuffling."""
        if not self.shuffle:
            return np.arange(num_examples)
        indices = _shuffled(tf.data.Dataset.range(num_examples), num_examples, self.seed, epoch, self.shuffle_buffer)
        return next(indices.batch(num_examples).as_numpy_iterator())

    def plan(self, num_examples: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, mask)``, both ``(num_batches, batch_size)``; padding rows point at example 0."""
        order = self.order(num_examples, epoch)
        size = self.num_batches(num_examples) * self.batch_size
        order = order[:size]
        mask = np.zeros(size, bool)
        mask[: len(order)] = True
        indices = np.zeros(size, np.int32)
        indices[: len(order)] = order
        shape = (-1, self.batch_size)
        return indices.reshape(shape), mask.reshape(shape)


def gather_batch(images, labels, indices, mask, transform: str = "to_tensor"):
    """The batch at ``indices`` of device-resident uint8 ``images``; jittable (used inside steps).

    Padding rows (``mask`` False) get zero pixels and label 0, as in the streaming mode.
    """
    batch_images = jnp.where(mask[:, None, None, None], images[indices], 0)
    batch_labels = jnp.where(mask, labels[indices], 0)
    return {"image": TRANSFORMS[transform](batch_images), "label": batch_labels, "mask": mask}


def _gather_step(images, labels, indices, mask, step, transform):
    return gather_batch(images, labels, indices[step], mask[step], transform)


class _Pipeline:
    """What both modes share: the batching, the transform, the placement, the length."""

    def __init__(self, num_examples: int, batch_spec: BatchSpec, transform: str, sharding):
        if transform not in TRANSFORMS:
            raise ValueError(f"unknown transform {transform!r}; choose from {sorted(TRANSFORMS)}")
        if batch_spec.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_spec.batch_size}")
        if batch_spec.num_batches(num_examples) == 0:
            raise ValueError(f"{num_examples} examples make no batch of {batch_spec.batch_size} with drop_remainder")
        if sharding is not None and batch_spec.batch_size % sharding.num_devices:
            raise ValueError(f"batch_size {batch_spec.batch_size} does not split over {sharding.num_devices} devices")
        self.num_examples, self.batch_spec, self.transform, self.sharding = num_examples, batch_spec, transform, sharding

    @property
    def num_batches(self) -> int:
        return self.batch_spec.num_batches(self.num_examples)


class DeviceResidentPipeline(_Pipeline):
    """The whole split on the device(s) as uint8; batches gathered there.

    Args:
      images, labels: the split, as :func:`load_split` returns it.
      batch_spec: how to batch it.
      transform: "to_tensor" ([0, 1]) or "normalize" ([-1, 1]).
      sharding: where batches go, e.g. ``NamedSharding(mesh, P("batch"))``;
        the split itself is then replicated over the same devices.
    """

    def __init__(self, images, labels, batch_spec: BatchSpec, transform: str = "to_tensor", sharding=None):
        super().__init__(len(images), batch_spec, transform, sharding)
        replicated = None if sharding is None else jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
        self.images = jax.device_put(np.asarray(images, np.uint8), replicated)
        self.labels = jax.device_put(np.asarray(labels, np.int32), replicated)
        self._gather = jax.jit(partial(_gather_step, transform=transform), out_shardings=sharding)

    def epoch_plan(self, epoch: int) -> tuple[jax.Array, jax.Array]:
        """The epoch's ``(indices, mask)``, ``(num_batches, batch_size)``, on the device(s)."""
        indices, mask = self.batch_spec.plan(self.num_examples, epoch)
        replicated = None if self.sharding is None else self.images.sharding
        return jax.device_put(indices, replicated), jax.device_put(mask, replicated)

    def epoch(self, epoch: int) -> Iterator[dict[str, jax.Array]]:
        indices, mask = self.epoch_plan(epoch)
        for step in range(self.num_batches):
            yield self._gather(self.images, self.labels, indices, mask, np.int32(step))


class StreamingPipeline(_Pipeline):
    """tf.data on the host: read, shuffle, batch, prefetch; uint8 to the device, converted there.

    Args:
      dataset: the split as a ``tf.data.Dataset`` of ``{"image", "label"}`` in
        the split's order (``builder.as_dataset(split, shuffle_files=False)``).
      num_examples: its length.
      batch_spec, transform, sharding: as for :class:`DeviceResidentPipeline`.
    """

    def __init__(self, dataset: tf.data.Dataset, num_examples: int, batch_spec: BatchSpec, transform: str = "to_tensor", sharding=None):
        super().__init__(num_examples, batch_spec, transform, sharding)
        self._dataset = dataset.map(lambda example: (example["image"], tf.cast(example["label"], tf.int32)))
        self._convert = jax.jit(TRANSFORMS[transform])

    def epoch(self, epoch: int) -> Iterator[dict[str, jax.Array]]:
        spec = self.batch_spec
        dataset = self._dataset
        if spec.shuffle:
            dataset = _shuffled(dataset, self.num_examples, spec.seed, epoch, spec.shuffle_buffer)
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
        raise ValueError(f"unknown mode {mode!r}; choose from {MODES}")
    if mode == "device":
        images, labels = load_split(name, split, data_dir)
        return DeviceResidentPipeline(images, labels, batch_spec, transform, sharding)
    builder = prepared_builder(name, data_dir)
    num_examples = builder.info.splits[split].num_examples
    return StreamingPipeline(builder.as_dataset(split=split, shuffle_files=False), num_examples, batch_spec, transform, sharding)
