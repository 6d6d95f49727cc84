"""Batches of image splits held in memory: the pixel transforms, the epoch plans, the device-resident pipeline.

Batches are dicts ``{"image": float32 (B, H, W, C), "label": int32 (B,),
"mask": bool (B,)}`` of fixed shape, and ``"target"`` (as ``"image"``) where a
split pairs each input with the image an autoencoder should give back. When the split does not divide into
batches, the last one is either dropped (``drop_remainder=True``, E3) or
padded and masked (E1, E2): ``mask`` is False on padding rows, and the
trainer's losses ignore them, so one compiled step serves every batch.

The device-resident pipeline keeps the whole split on the device(s) once as
uint8; each epoch's order is a small index array, and batches are gathered
there. :attr:`DeviceResidentPipeline.split`, :meth:`DeviceResidentPipeline.epoch_plan`
and :func:`gather_batch` let a jitted step (or a ``lax.scan`` over an epoch) do the
gathering itself.

This module needs no TensorFlow: :meth:`BatchSpec.order` computes tf.data's
shuffle order with NumPy (:mod:`jaxae.data.shuffle_order`), so that the
streaming pipeline of :mod:`jaxae.data.input_pipeline` gives the same batches.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxae.data.shuffle_order import tf_shuffle_order
from jaxae.errors import InputError

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
VALUE_RANGES = {"to_tensor": (0.0, 1.0), "normalize": (-1.0, 1.0)}
"""The range of the floats each transform gives."""


def check_transform(transform: str) -> None:
    if transform not in TRANSFORMS:
        raise InputError(f"unknown transform {transform!r}; choose from {sorted(TRANSFORMS)}")


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of ``epoch`` of a run seeded ``seed``."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint32)[0])


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

    def __post_init__(self):
        if self.batch_size < 1:
            raise InputError(f"batch_size must be positive, got {self.batch_size}")

    def num_batches(self, num_examples: int) -> int:
        rounding = math.floor if self.drop_remainder else math.ceil
        return rounding(num_examples / self.batch_size)

    def shuffled(self, dataset, num_examples: int, epoch: int):
        """``dataset`` (a ``tf.data.Dataset`` of ``num_examples``) in epoch ``epoch``'s shuffled order."""
        buffer = self.shuffle_buffer or num_examples
        return dataset.shuffle(buffer, seed=epoch_seed(self.seed, epoch), reshuffle_each_iteration=False)

    def order(self, num_examples: int, epoch: int) -> np.ndarray:
        """The epoch's order of example indices: :meth:`shuffled`'s order when shuffling, without TensorFlow."""
        if not self.shuffle:
            return np.arange(num_examples)
        return tf_shuffle_order(num_examples, epoch_seed(self.seed, epoch), self.shuffle_buffer)

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


def gather_batch(split, indices, mask, transform: str = "to_tensor"):
    """The batch at ``indices`` of a device-resident ``split`` (``{"image", "label"[, "target"]}``);
    jittable (used inside steps).

    uint8 pixels go through ``transform``; float images are already in its range.
    Padding rows (``mask`` False) get zero pixels and label 0, as in the streaming mode.
    """
    batch = {"label": jnp.where(mask, split["label"][indices], 0), "mask": mask}
    for key in ("image", "target"):
        if key in split:
            rows = split[key][indices]
            if rows.dtype == jnp.uint8:
                rows = TRANSFORMS[transform](rows)
            batch[key] = jnp.where(mask[:, None, None, None], rows, VALUE_RANGES[transform][0])  # a zero pixel's value
    return batch


def _gather_step(split, indices, mask, step, transform):
    return gather_batch(split, indices[step], mask[step], transform)


class Pipeline:
    """What every pipeline shares: the batching, the transform, the placement, the length.

    A pipeline has ``epoch(e, start=0)``, an iterator over epoch ``e``'s batches
    from batch ``start`` on (where a run stopped mid-epoch resumes), and
    the attributes ``batch_spec``, ``transform`` (its pixels' range), ``sharding``,
    ``num_examples``, ``num_batches``, ``image_shape`` (one image, NHWC) and
    ``has_labels`` (False: an autoencoder's images alone, labels 0).
    """

    image_shape: tuple[int, int, int]
    has_labels: bool = True

    def __init__(self, num_examples: int, batch_spec: BatchSpec, transform: str, sharding):
        check_transform(transform)
        if batch_spec.num_batches(num_examples) == 0:
            raise InputError(f"{num_examples} examples make no batch of {batch_spec.batch_size} with drop_remainder")
        if sharding is not None and batch_spec.batch_size % sharding.num_devices:
            raise InputError(f"batch_size {batch_spec.batch_size} does not split over {sharding.num_devices} devices")
        self.num_examples, self.batch_spec, self.transform, self.sharding = num_examples, batch_spec, transform, sharding

    @property
    def num_batches(self) -> int:
        return self.batch_spec.num_batches(self.num_examples)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[dict[str, jax.Array]]:
        raise NotImplementedError


class DeviceResidentPipeline(Pipeline):
    """The whole split on the device(s); batches gathered there.

    Args:
      images, labels: the split, ``(N, H, W, C)`` and int ``(N,)``: uint8 pixels,
        which ``transform`` converts, or float32 already in its range
        (:func:`jaxae.data.from_arrays` makes them from any float range).
      batch_spec: how to batch it.
      transform: "to_tensor" ([0, 1]) or "normalize" ([-1, 1]).
      sharding: where batches go, e.g. ``NamedSharding(mesh, P("batch"))``;
        the split itself is then replicated over the same devices.
      has_labels: whether ``labels`` are the images' classes (False: placeholders).
      targets: for an autoencoder, the image each input should give back (as ``images``,
        e.g. clean images beside noisy ones); None: the inputs themselves.
    """

    def __init__(self, images, labels, batch_spec: BatchSpec, transform: str = "to_tensor", sharding=None, *,
                 has_labels: bool = True, targets=None):
        if len(images) != len(labels):
            raise InputError(f"{len(images)} images but {len(labels)} labels")
        super().__init__(len(images), batch_spec, transform, sharding)
        images = np.asarray(images)
        if images.dtype != np.uint8 and images.dtype != np.float32:
            raise InputError(f"a device-resident split is uint8 pixels or float32 in the transform's range, got "
                             f"{images.dtype}: build float images with jaxae.data.from_arrays")
        self.image_shape, self.has_labels = tuple(images.shape[1:]), has_labels
        replicated = None if sharding is None else jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
        split = {"image": images, "label": np.asarray(labels, np.int32)}
        if targets is not None:
            split["target"] = np.asarray(targets)
            if split["target"].shape != images.shape or split["target"].dtype != images.dtype:
                raise InputError(f"targets must be as the images, {images.dtype} {images.shape}, got "
                                 f"{split['target'].dtype} {split['target'].shape}")
        self.split = jax.device_put(split, replicated)
        """The arrays on the device(s): ``{"image", "label"}``, and ``"target"`` where given."""
        self._gather = jax.jit(partial(_gather_step, transform=transform), out_shardings=sharding)

    @property
    def images(self) -> jax.Array:
        return self.split["image"]

    @property
    def labels(self) -> jax.Array:
        return self.split["label"]

    def epoch_plan(self, epoch: int) -> tuple[jax.Array, jax.Array]:
        """The epoch's ``(indices, mask)``, ``(num_batches, batch_size)``, on the device(s)."""
        indices, mask = self.batch_spec.plan(self.num_examples, epoch)
        replicated = None if self.sharding is None else self.images.sharding
        return jax.device_put(indices, replicated), jax.device_put(mask, replicated)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[dict[str, jax.Array]]:
        indices, mask = self.epoch_plan(epoch)
        for step in range(start, self.num_batches):
            yield self._gather(self.split, indices, mask, np.int32(step))
