"""Latent-space tools: encode and decode whole datasets, interpolate, decode a grid of 2-D codes.

Each function takes an autoencoder module and its ``params`` collection (the
model is applied with ``{"params": params}``), takes NumPy or JAX arrays and
returns NumPy arrays. Datasets go through the model in batches of
``batch_size``, the last one padded, so one compiled function serves them all;
:func:`apply_in_batches` does the same for any method of any module, applied
with all its variables (a model with batch statistics, one of your own).

>>> import jax, jax.numpy as jnp
>>> from jaxae import latent, models
>>> model = models.create("mnist_pca_ae")
>>> params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]
>>> images = jnp.zeros((5, 28, 28, 1))
>>> codes = latent.encode(model, params, images, batch_size=2)
>>> codes.shape
(5, 16)
>>> latent.decode(model, params, codes).shape
(5, 28, 28, 1)
>>> latent.interpolate_latent(model, params, images[0], images[1], steps=8).shape
(8, 28, 28, 1)
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from jaxae.errors import InputError, check_integer
from jaxae.models import Autoencoder
from jaxae.models.validation import check_batch

ACTIVE_VARIANCE = 0.01
"""Above this variance of its mean across images, a VAE's code dimension is active (Burda et al., 2016)."""


@functools.partial(jax.jit, static_argnames=("model", "method"))
def _apply(model, variables, x, method):
    return model.apply(variables, x, method=method)


def _check_autoencoder(model) -> None:
    if not isinstance(model, Autoencoder):
        name = getattr(model, "model_name", type(model).__name__)
        raise InputError(
            f"{name} is not an autoencoder: latent-space tools need a model with encode and decode"
        )


def apply_in_batches(model, variables, x, method: str, batch_size: int = 1000) -> np.ndarray:
    """``model.apply(variables, x, method=method)`` in batches of one shape, the last zero-padded, then cut.

    ``variables`` are all of the model's collections, ``{"params": ..., **collections}``
    (``state.variables`` of a run), so that a model with batch statistics applies as it
    evaluates; one compiled function serves any number of rows of ``x``.
    """
    check_integer("batch_size", batch_size)
    x = np.asarray(x)
    n = len(x)
    if n == 0:
        name = getattr(model, "model_name", None) or model.name or type(model).__name__
        raise InputError(f"{name}: got an empty batch of shape {x.shape}; need at least one")
    size = min(batch_size, n)
    outputs = []
    for start in range(0, n, size):
        batch = x[start : start + size]
        if len(batch) < size:
            batch = np.concatenate([batch, np.zeros((size - len(batch), *batch.shape[1:]), batch.dtype)])
        outputs.append(_apply(model, variables, batch, method))
    return np.concatenate(jax.device_get(outputs))[:n]


def encode(model, params, images, batch_size: int = 1000) -> np.ndarray:
    """The latent codes of ``images`` (N, H, W, C), a VAE's means: an array of shape ``(N, *model.latent_shape)``."""
    _check_autoencoder(model)
    images = np.asarray(images)
    model.check_input(images)
    return apply_in_batches(model, {"params": params}, images, "code", batch_size)


def decode(model, params, codes, batch_size: int = 1000) -> np.ndarray:
    """The images decoded from ``codes`` of shape ``(N, *model.latent_shape)``: ``(N, H, W, C)``."""
    _check_autoencoder(model)
    codes = np.asarray(codes)
    check_batch(model.model_name, codes, model.latent_shape, "latent codes")
    return apply_in_batches(model, {"params": params}, codes, "decode", batch_size)


def reconstruct(model, params, images, batch_size: int = 1000) -> np.ndarray:
    """The reconstructions of ``images`` (N, H, W, C): their codes decoded (a VAE's mean codes)."""
    _check_autoencoder(model)
    images = np.asarray(images)
    model.check_input(images)
    return apply_in_batches(model, {"params": params}, images, "reconstruct", batch_size)


def prior_samples(model, params, num: int, seed: int = 0) -> np.ndarray:
    """``num`` images decoded from codes drawn from N(0, I), the prior a variational autoencoder learns to fit."""
    _check_autoencoder(model)
    check_integer("num", num)
    codes = np.random.default_rng(seed).normal(size=(num, *model.latent_shape)).astype(np.float32)
    return decode(model, params, codes)


def active_dimensions(codes, threshold: float = ACTIVE_VARIANCE) -> int:
    """How many dimensions of a VAE's mean codes ``(N, ...)`` have a variance across the N images above ``threshold``.

    The prior's variance is 1; a dimension the KL term has pulled onto the prior
    encodes every image alike, and its variance stays near 0.

    >>> codes = np.stack([np.linspace(-1, 1, 100), np.full(100, 0.3), np.linspace(0, 0.05, 100)], 1)
    >>> active_dimensions(codes)
    1
    """
    codes = np.asarray(codes)
    if codes.ndim < 2 or len(codes) < 2:
        raise InputError(f"codes must be a batch (N, ...) of at least 2, got shape {codes.shape}")
    return int(np.sum(codes.reshape(len(codes), -1).var(0) > threshold))


def active_dimensions_of_sums(code_sum, code_square_sum, count, threshold: float = ACTIVE_VARIANCE) -> int:
    """:func:`active_dimensions` of ``count`` codes given per dimension by their sum and the sum of their squares.

    What an evaluation accumulates batch by batch, without keeping the codes.

    >>> codes = np.stack([np.linspace(-1, 1, 100), np.full(100, 0.3), np.linspace(0, 0.05, 100)], 1)
    >>> active_dimensions_of_sums(codes.sum(0), (codes**2).sum(0), len(codes))
    1
    """
    mean = np.asarray(code_sum, np.float64).reshape(-1) / count
    variance = np.asarray(code_square_sum, np.float64).reshape(-1) / count - mean**2
    return int(np.sum(variance > threshold))


def interpolation_weights(steps: int) -> np.ndarray:
    """The mixing weights α = linspace(0, 1, steps), float32; ``steps`` >= 2.

    >>> interpolation_weights(5)
    array([0.  , 0.25, 0.5 , 0.75, 1.  ], dtype=float32)
    """
    check_integer("steps", steps, low=2, note="the two end points included")
    return np.linspace(0.0, 1.0, steps, dtype=np.float32)


def _check_pair(x0, x1) -> tuple[np.ndarray, np.ndarray]:
    x0, x1 = np.asarray(x0), np.asarray(x1)
    if x0.shape != x1.shape:
        raise InputError(f"x0 and x1 must have the same shape, got {x0.shape} and {x1.shape}")
    if x0.ndim != 3:
        raise InputError(f"x0 and x1 must be single images of shape (H, W, C), got shape {x0.shape}")
    return x0, x1


def interpolate_pixels(x0, x1, steps: int) -> np.ndarray:
    """``(1 - α) x0 + α x1`` for α in :func:`interpolation_weights`: shape ``(steps, H, W, C)``.

    >>> interpolate_pixels(np.zeros((1, 1, 1)), np.ones((1, 1, 1)), 3).ravel()
    array([0. , 0.5, 1. ])
    """
    x0, x1 = _check_pair(x0, x1)
    alpha = interpolation_weights(steps)[:, None, None, None]
    return (1 - alpha) * x0 + alpha * x1


def interpolate_latent(model, params, x0, x1, steps: int) -> np.ndarray:
    """``decode((1 - α) encode(x0) + α encode(x1))`` for α in :func:`interpolation_weights`.

    ``x0`` and ``x1`` are single images of the model's ``image_shape``; the
    result, ``(steps, H, W, C)``, starts and ends at their reconstructions.
    """
    _check_autoencoder(model)
    x0, x1 = _check_pair(x0, x1)
    if x0.shape != model.image_shape:
        raise InputError(
            f"{model.model_name}: x0 and x1 must be images of shape {model.image_shape}, got {x0.shape}"
        )
    z0, z1 = encode(model, params, np.stack([x0, x1]))
    alpha = interpolation_weights(steps).reshape(-1, *[1] * z0.ndim)
    return decode(model, params, (1 - alpha) * z0 + alpha * z1)


def latent_grid(low, high, num: int) -> np.ndarray:
    """A ``num`` × ``num`` grid of 2-D points spanning ``[low, high]``, shape ``(num * num, 2)``.

    ``low`` and ``high`` are numbers or ``(x, y)`` pairs. The points run row by
    row from the top (y = high) down, x rising along each row, so tiling their
    decodings ``num`` per row matches a scatter plot of the latent plane.

    >>> latent_grid(-1, 1, 2)
    array([[-1.,  1.],
           [ 1.,  1.],
           [-1., -1.],
           [ 1., -1.]], dtype=float32)
    """
    check_integer("num", num, low=2)
    bounds = []
    for name, value in (("low", low), ("high", high)):
        value = np.asarray(value, np.float32)
        if value.shape not in ((), (2,)):
            raise InputError(f"{name} must be a number or an (x, y) pair, got shape {value.shape}")
        bounds.append(np.broadcast_to(value, (2,)))
    (x_low, y_low), (x_high, y_high) = bounds
    x, y = np.meshgrid(np.linspace(x_low, x_high, num), np.linspace(y_high, y_low, num))
    return np.stack([x.ravel(), y.ravel()], axis=1).astype(np.float32)


def decode_grid(model, params, low, high, num: int, batch_size: int = 1000) -> np.ndarray:
    """The images decoded from :func:`latent_grid` points, ``(num * num, H, W, C)``; 2-D latents only."""
    _check_autoencoder(model)
    if tuple(model.latent_shape) != (2,):
        raise InputError(
            f"{model.model_name}: decode_grid needs a 2-D latent space, this model's codes have shape "
            f"{tuple(model.latent_shape)}"
        )
    return decode(model, params, latent_grid(low, high, num), batch_size)
