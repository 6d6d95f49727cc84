"""Your own images as a pipeline: NumPy arrays, as a Keras or PyTorch user holds them.

:func:`from_arrays` checks the arrays in Python, before anything is compiled,
and gives a :class:`~jaxae.data.batches.DeviceResidentPipeline` whose pixels
are in the range of ``transform``: uint8 pixels through the same tables as
the TFDS pipelines, floats mapped linearly from the range they are stated in.

>>> import numpy as np
>>> images = np.random.default_rng(0).random((10, 28, 28), np.float32)   # floats in [0, 1], no channel axis
>>> pipeline = from_arrays(images, batch_spec=BatchSpec(4), transform="normalize")
>>> pipeline.image_shape, pipeline.num_batches, pipeline.has_labels
((28, 28, 1), 3, False)
"""

from __future__ import annotations

import numpy as np

from jaxae.data.batches import VALUE_RANGES, BatchSpec, DeviceResidentPipeline, check_transform
from jaxae.errors import InputError


def from_arrays(images, labels=None, *, batch_spec: BatchSpec, targets=None,
                value_range: tuple[float, float] | None = None, transform: str = "to_tensor", sharding=None,
                name: str = "arrays") -> DeviceResidentPipeline:
    """A pipeline over ``images`` (and ``labels``), its pixels in ``transform``'s range.

    Args:
      images: ``(N, H, W, C)`` NHWC, or ``(N, H, W)`` for one channel: uint8 pixels in
        [0, 255], or floats in ``value_range``.
      labels: ``(N,)`` integers >= 0 for a classifier; None for an autoencoder.
      targets: for an autoencoder, the images it should give back, as ``images`` (the
        clean images of noisy inputs: paired denoising); None: the inputs themselves.
      batch_spec: how to batch them (``config.batch_spec()`` for training).
      value_range: the range float images are in; default (0, 1) (pixels divided by 255).
      transform: the range the model takes, as it is registered: "to_tensor"
        ([0, 1]) or "normalize" ([-1, 1]).
      sharding: where batches go (see :class:`~jaxae.data.batches.DeviceResidentPipeline`).
      name: what the messages call the arrays.

    Raises:
      InputError: in one line, for images of another rank or in PyTorch's NCHW layout,
        floats outside ``value_range`` or not finite, labels of another length or not
        whole numbers >= 0.
    """
    check_transform(transform)
    pixels = _pixels(_nhwc(images, name, "images"), value_range, transform, name)
    if targets is not None:
        targets = _pixels(_nhwc(targets, name, "targets"), value_range, transform, name)
        if targets.shape != pixels.shape or targets.dtype != pixels.dtype:
            raise InputError(f"{name}: targets must be as the images, {pixels.dtype} {pixels.shape}, got "
                             f"{targets.dtype} {targets.shape}")
    return DeviceResidentPipeline(pixels, _labels(labels, len(pixels), name), batch_spec, transform, sharding,
                                  has_labels=labels is not None, targets=targets)


def _nhwc(images, name: str, what: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise InputError(f"{name}: {what} must be (N, height, width, channels) or (N, height, width), "
                         f"got shape {images.shape}")
    if images.shape[1] in (1, 3) and images.shape[3] not in (1, 3):
        raise InputError(f"{name}: {what} of shape {images.shape} look like PyTorch's NCHW layout: "
                         f"use {what}.transpose(0, 2, 3, 1)")
    return images


def _pixels(images: np.ndarray, value_range, transform: str, name: str) -> np.ndarray:
    """uint8 images as they are (the pipeline converts them); floats mapped from ``value_range`` to ``transform``'s."""
    if images.dtype == np.uint8:
        if value_range not in (None, (0, 255)):
            raise InputError(f"{name}: uint8 images are pixels in [0, 255]; value_range is for float images")
        return images
    if not np.issubdtype(images.dtype, np.floating):
        raise InputError(f"{name}: images must be uint8 pixels or floats, got dtype {images.dtype}")
    low, high = (0.0, 1.0) if value_range is None else map(float, value_range)
    if not low < high:
        raise InputError(f"{name}: value_range must be (low, high) with low < high, got {value_range!r}")
    if not np.all(np.isfinite(images)):
        raise InputError(f"{name}: the images hold NaN or infinite values")
    smallest, largest = float(images.min()), float(images.max())
    if smallest < low or largest > high:
        raise InputError(f"{name}: float images range over [{smallest:g}, {largest:g}], outside value_range "
                         f"({low:g}, {high:g}): pass the range they are in, e.g. value_range=(0, 255)")
    target_low, target_high = VALUE_RANGES[transform]
    scaled = (images.astype(np.float64) - low) / (high - low) * (target_high - target_low) + target_low
    return scaled.astype(np.float32)


def _labels(labels, count: int, name: str) -> np.ndarray:
    if labels is None:
        return np.zeros(count, np.int32)
    labels = np.asarray(labels)
    if labels.shape != (count,):
        raise InputError(f"{name}: labels must be one per image, shape ({count},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or (count and labels.min() < 0):
        raise InputError(f"{name}: labels must be whole numbers >= 0 (class indices), got dtype {labels.dtype}"
                         + (f" with minimum {labels.min()}" if np.issubdtype(labels.dtype, np.number) and count else ""))
    return labels.astype(np.int32)
