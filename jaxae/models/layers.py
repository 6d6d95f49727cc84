"""Layers with PyTorch's semantics, in Flax's NHWC layout.

Each layer takes PyTorch's constructor arguments (``kernel_size``, ``stride``,
``padding``, ``output_padding``) and computes exactly what the PyTorch layer
of the same name computes, so that a seed model reads like its PyTorch source
and a ported ``state_dict`` gives the same outputs.

Kernels are stored as Flax stores them: ``(in, out)`` for :class:`Linear`,
``(kH, kW, in, out)`` for :class:`Conv2d` and ``(kH, kW, out, in)`` for
:class:`ConvTranspose2d` (Flax's ``transpose_kernel=True`` layout). In every
case the PyTorch fan-in is the product of all kernel dimensions but the last.

``init_scheme="pytorch"`` (the default) draws weights and biases from
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` as PyTorch does; ``init_scheme="flax"`` uses
Flax's defaults (LeCun-normal kernels, zero biases).

How a convolution is computed (its ``lowering``) is not the layer's business:
it passes the name to :mod:`jaxae.models.convolution`.
"""

from __future__ import annotations

import math
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxae.errors import InputError
from jaxae.models.convolution import ConvLowering, conv2d, conv_transpose2d

InitScheme = Literal["pytorch", "flax"]
INIT_SCHEMES = ("pytorch", "flax")


def _uniform(bound: float) -> jax.nn.initializers.Initializer:
    def init(key, shape, dtype=jnp.float32):
        # Drawn flat: XLA:CPU compiles threefry over a flat shape several times faster.
        return jax.random.uniform(key, (math.prod(shape),), dtype, -bound, bound).reshape(shape)

    return init


def _kernel_and_bias(module: nn.Module, kernel_shape: tuple[int, ...], features: int, scheme: str):
    """Declares ``kernel`` and ``bias`` (of size ``features``) params with the requested init scheme."""
    if scheme == "pytorch":
        bound = 1.0 / math.sqrt(math.prod(kernel_shape[:-1]))
        kernel_init = bias_init = _uniform(bound)
    elif scheme == "flax":
        kernel_init, bias_init = nn.initializers.lecun_normal(), nn.initializers.zeros
    else:
        raise InputError(f"init_scheme must be one of {INIT_SCHEMES}, got {scheme!r}")
    kernel = module.param("kernel", kernel_init, kernel_shape)
    bias = module.param("bias", bias_init, (features,))
    return kernel, bias


class Linear(nn.Module):
    """``torch.nn.Linear(in, features)``, the input size taken from ``x``."""

    features: int
    init_scheme: InitScheme = "pytorch"

    @nn.compact
    def __call__(self, x):
        kernel, bias = _kernel_and_bias(self, (x.shape[-1], self.features), self.features, self.init_scheme)
        return x @ kernel.astype(x.dtype) + bias.astype(x.dtype)


class Conv2d(nn.Module):
    """``torch.nn.Conv2d(in, features, kernel_size, stride, padding)`` on NHWC."""

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    init_scheme: InitScheme = "pytorch"
    lowering: ConvLowering = "auto"

    @nn.compact
    def __call__(self, x):
        k = self.kernel_size
        kernel, bias = _kernel_and_bias(self, (k, k, x.shape[-1], self.features), self.features, self.init_scheme)
        y = conv2d(x, kernel.astype(x.dtype), self.stride, self.padding, self.lowering)
        return y + bias.astype(x.dtype)


class ConvTranspose2d(nn.Module):
    """``torch.nn.ConvTranspose2d(in, features, kernel_size, stride, padding, output_padding)``.

    Output size ``(H - 1) * stride - 2 * padding + kernel_size + output_padding``,
    as PyTorch. The kernel is ``(kH, kW, features, in)``, so PyTorch's fan-in
    ``features * k * k`` is again the product of all dimensions but the last.
    """

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    output_padding: int = 0
    init_scheme: InitScheme = "pytorch"
    lowering: ConvLowering = "auto"

    @nn.compact
    def __call__(self, x):
        k = self.kernel_size
        kernel, bias = _kernel_and_bias(self, (k, k, self.features, x.shape[-1]), self.features, self.init_scheme)
        y = conv_transpose2d(x, kernel.astype(x.dtype), self.stride, self.padding, self.output_padding, self.lowering)
        return y + bias.astype(x.dtype)


class BatchNorm(nn.Module):
    """``torch.nn.BatchNorm1d`` / ``BatchNorm2d(features, eps, momentum)`` on the last (feature) axis.

    In training (``train=True``) it normalises with the batch's statistics over every axis
    but the last (the biased variance, as PyTorch) and updates the running ones in the
    ``batch_stats`` collection as PyTorch does: ``running = (1 - momentum) * running +
    momentum * batch``, the variance's unbiased (times n / (n - 1)). Flax's ``nn.BatchNorm``
    differs in two ways: its ``momentum`` is the weight of the running value (PyTorch's 0.1 is
    its 0.9), and it keeps the biased variance. In evaluation it normalises with the running
    statistics. ``scale`` starts at 1 and ``bias`` at 0, PyTorch's ``weight`` and ``bias``.

    Statistics are over the rows the layer sees: under a mesh the global batch, inside a
    gradient chunk the chunk's (a model with batch statistics trains on whole batches by
    default), and with a padded last batch its padding rows too (``drop_remainder=True``
    leaves them out, as PyTorch's ``drop_last``).
    """

    momentum: float = 0.1
    eps: float = 1e-5

    @nn.compact
    def __call__(self, x, train: bool = False):
        features = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (features,))
        bias = self.param("bias", nn.initializers.zeros, (features,))
        mean = self.variable("batch_stats", "mean", jnp.zeros, (features,), jnp.float32)
        var = self.variable("batch_stats", "var", jnp.ones, (features,), jnp.float32)
        if train:
            axes = tuple(range(x.ndim - 1))
            rows = math.prod(x.shape[:-1])
            batch_mean = jnp.mean(x.astype(jnp.float32), axes)
            batch_var = jnp.mean(jnp.square(x.astype(jnp.float32) - batch_mean), axes)
            if not self.is_initializing():
                mean.value = (1 - self.momentum) * mean.value + self.momentum * batch_mean
                var.value = (1 - self.momentum) * var.value + self.momentum * batch_var * (rows / max(rows - 1, 1))
        else:
            batch_mean, batch_var = mean.value, var.value
        inverse = lax.rsqrt(batch_var + self.eps) * scale
        return ((x - batch_mean.astype(x.dtype)) * inverse.astype(x.dtype) + bias.astype(x.dtype)).astype(x.dtype)


def _first_max(x, axis: int):
    """Max over ``axis`` as PyTorch's max-pool takes it: ties (and the gradient) go to the first index, NaN wins."""
    best, *rest = (lax.index_in_dim(x, i, axis, keepdims=False) for i in range(x.shape[axis]))
    for candidate in rest:
        best = jnp.where((best >= candidate) | jnp.isnan(best), best, candidate)
    return best


def max_pool2d(x, window: int = 2):
    """``torch.nn.MaxPool2d(window, window)``: odd sizes round down.

    Each window's maximum and its gradient go to its first maximum in
    row-major order, as in PyTorch, and NaN propagates. Computed as pairwise
    selects over the reshaped windows rather than ``reduce_window``, whose
    select-and-scatter gradient is 3-4x slower on XLA:CPU (docs/performance.md).

    >>> x = jnp.array([[1., 3.], [3., 2.]]).reshape(1, 2, 2, 1)
    >>> jax.grad(lambda x: max_pool2d(x).sum())(x)[0, :, :, 0]
    Array([[0., 1.],
           [0., 0.]], dtype=float32)
    """
    batch, height, width, channels = x.shape
    height, width = height // window, width // window
    x = x[:, : height * window, : width * window].reshape(batch, height * window, width, window, channels)
    x = _first_max(x, axis=3).reshape(batch, height, window, width, channels)
    return _first_max(x, axis=2)


def _bilinear_matrix(size_in: int, size_out: int, align_corners: bool, dtype):
    """The ``(size_out, size_in)`` matrix of PyTorch's 1-D linear interpolation."""
    out = jnp.arange(size_out, dtype=dtype)
    if align_corners:
        scale = (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
        source = out * scale
    else:
        source = jnp.maximum((out + 0.5) * (size_in / size_out) - 0.5, 0.0)
    lower = jnp.floor(source).astype(jnp.int32)
    upper = jnp.minimum(lower + 1, size_in - 1)
    weight_upper = (source - lower).astype(dtype)
    rows = jnp.arange(size_out)
    matrix = jnp.zeros((size_out, size_in), dtype)
    matrix = matrix.at[rows, lower].add(1 - weight_upper)
    return matrix.at[rows, upper].add(weight_upper)


def upsample_bilinear(x, scale: int = 2, align_corners: bool = False):
    """``torch.nn.Upsample(scale_factor=scale, mode='bilinear', align_corners=...)`` on NHWC.

    ``align_corners=False`` is PyTorch >= 0.4's behaviour (and the default);
    ``align_corners=True`` is how PyTorch <= 0.3 upsampled.
    """
    _, height, width, _ = x.shape
    rows = _bilinear_matrix(height, height * scale, align_corners, x.dtype)
    cols = _bilinear_matrix(width, width * scale, align_corners, x.dtype)
    return jnp.einsum("oh,bhwc,pw->bopc", rows, x, cols)


def trim(x, height: int, width: int):
    """Keeps the top-left ``height x width`` pixels (Raschka's ``Trim`` module)."""
    return x[:, :height, :width, :]
