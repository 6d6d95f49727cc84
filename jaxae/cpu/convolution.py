"""Convolutions computed the ways XLA:CPU runs fastest, and the rule that picks one per layer.

XLA:CPU's own convolution kernels run far below the machine's matmul peak on
the narrow layers of the seed models (3 to 64 channels), and some of their
gradients (the input gradient of a strided convolution, the kernel gradient
of a convolution to few channels) slower still. Each function here computes
exactly what XLA's convolution computes, in another way:

* :func:`conv_gemm`: im2col, then one matrix product (GEMM).
* :func:`conv_columns_to_channels`: XLA's convolution over groups of output
  columns folded into channels, for inputs of 2-8 channels.
* :func:`conv_gemm_input_grad`: XLA's convolution, its input gradient as one
  GEMM + col2im, for wide strided layers.
* :func:`conv_col2im`: a stride-1 convolution to few channels as one GEMM to
  every kernel tap's outputs, summed into place.
* :func:`conv_transpose_gemm`: a transposed convolution as one GEMM into the
  output phases, its gradient written out.

Kernel gradients are always formed as 2-D products (pixels flattened), which
XLA:CPU runs 2-4x faster than the same contraction over batch, rows and
columns. :func:`choose_lowering` is the rule ``conv_lowering="auto"`` follows
on CPU; ``docs/performance.md`` has the measurements behind it and the
command that repeats them (``python -m benchmarks layers MODEL --lowerings ...``).

The custom-VJP lowerings (:func:`conv_gemm_input_grad`, :func:`conv_col2im`,
:func:`conv_transpose_gemm`) differentiate in reverse mode only: for
``jax.jvp`` or Hessian-vector products use ``conv_lowering="xla"``.

Models reach these through :mod:`jaxae.models.convolution`, never directly.
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxae.errors import InputError

NHWC = ("NHWC", "HWIO", "NHWC")
"""The dimension numbers of every convolution here: images NHWC, kernels HWIO."""

# Once both channel counts reach this, GEMM beats XLA for the input gradient of a strided convolution
# (and for a strided transposed convolution), and XLA's stride-1 convolutions beat both GEMM lowerings;
# below it the patch tensor's tiny minor dimension makes im2col slower.
_WIDE_CHANNELS = 32
# Column groups pay while a group's input (columns * stride * channels) stays about this wide.
_GROUPED_CHANNELS = 16
_MAX_GROUPED_COLUMNS = 4
# At stride 1, col2im pays from more input channels than this to at most this many outputs; strided,
# im2col + GEMM pays from at most this many input channels to at least _WIDE_CHANNELS outputs.
_FEW_CHANNELS = 8


def choose_lowering(channels: int, features: int, stride: int, transposed: bool) -> str:
    """The lowering that measured fastest on CPU for a layer of ``channels`` inputs and ``features`` outputs.

    With at least 32 input and output channels: XLA's convolution at stride 1,
    ``"gemm_input_grad"`` for strided convolutions, GEMM for strided transposed
    ones. With fewer: GEMM for transposed convolutions and for strided ones from
    at most 8 channels to at least 32, col2im for stride-1 convolutions from
    more than 8 channels to at most 8, column groups for 2-8 input channels,
    XLA's convolution otherwise.

    >>> choose_lowering(channels=64, features=128, stride=2, transposed=False)
    'gemm_input_grad'
    >>> choose_lowering(channels=3, features=8, stride=1, transposed=False)
    'columns'
    """
    if min(channels, features) >= _WIDE_CHANNELS:
        # XLA runs stride-1 convolutions (a transposed one is an ordinary one with the kernel flipped)
        # well on wide channels. A strided convolution's forward and kernel gradient too, but not its input
        # gradient, a convolution over the output gradient dilated with zeros; GEMM wins that one.
        if stride == 1:
            return "xla"
        return "gemm" if transposed else "gemm_input_grad"
    if transposed:
        return "gemm"
    if stride == 1 and features <= _FEW_CHANNELS < channels:
        return "col2im"
    if stride > 1 and channels <= _FEW_CHANNELS and features >= _WIDE_CHANNELS:
        return "gemm"
    # One input channel: XLA's convolution already wins (E3's first layer).
    return "columns" if channels > 1 and _columns_per_group(channels, stride) > 1 else "xla"


def _columns_per_group(channels: int, stride: int) -> int:
    return min(_MAX_GROUPED_COLUMNS, _GROUPED_CHANNELS // (stride * channels))


def conv_xla(x, kernel, stride: int, padding: int):
    """``Conv2d`` by XLA's convolution; ``kernel`` is ``(k, k, in, out)``."""
    return lax.conv_general_dilated(
        x, kernel, (stride, stride), ((padding, padding), (padding, padding)), dimension_numbers=NHWC
    )


def _taps(x, kernel_size: int, stride: int, out_height: int, out_width: int):
    """The ``kernel_size**2`` strided windows of ``x`` that a convolution's taps see, tap-major."""
    rows, cols = stride * (out_height - 1) + 1, stride * (out_width - 1) + 1
    return [
        x[:, i : i + rows : stride, j : j + cols : stride, :]
        for i in range(kernel_size)
        for j in range(kernel_size)
    ]


def _patches(x, kernel_size: int, stride: int, padding: int):
    """im2col: ``(N, Ho, Wo, k*k*C)``, the input window of every output pixel, tap-major then channel."""
    _, height, width, _ = x.shape
    out_height = (height + 2 * padding - kernel_size) // stride + 1
    out_width = (width + 2 * padding - kernel_size) // stride + 1
    x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    return jnp.concatenate(_taps(x, kernel_size, stride, out_height, out_width), axis=-1)


# XLA:CPU contracts over several axes at once (batch, rows, columns: a kernel gradient) 2-4x slower than
# over one, so pixels are flattened into one axis before every product a kernel gradient comes from.
def _pixelwise_matmul(x, matrix):
    """``x @ matrix`` over the last axis, as a 2-D product so that its matrix gradient is one too."""
    return (x.reshape(-1, x.shape[-1]) @ matrix).reshape(*x.shape[:-1], matrix.shape[-1])


def _sum_over_pixels(a, b):
    """``einsum("...p,...c->pc", a, b)`` as a 2-D product: a kernel gradient."""
    return a.reshape(-1, a.shape[-1]).T @ b.reshape(-1, b.shape[-1])


def conv_gemm(x, kernel, stride: int, padding: int):
    """``Conv2d`` as one matrix product: im2col, then one GEMM with the kernel as a ``(k*k*C, O)`` matrix.

    >>> x, kernel = jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 5))
    >>> conv_gemm(x, kernel, stride=1, padding=1)[0, :, :, 0]
    Array([[ 8., 12., 12.,  8.],
           [12., 18., 18., 12.],
           [12., 18., 18., 12.],
           [ 8., 12., 12.,  8.]], dtype=float32)
    """
    k, _, channels, features = kernel.shape
    return _pixelwise_matmul(_patches(x, k, stride, padding), kernel.reshape(k * k * channels, features))


def conv_columns_to_channels(x, kernel, stride: int, padding: int, columns: int | None = None):
    """``Conv2d`` with every ``columns`` adjacent output columns computed as the channels of one.

    XLA:CPU's convolution runs far below its peak when the input has a few
    channels. Here the padded input is reshaped, at no cost, so that each
    ``columns * stride`` adjacent input columns become one column of
    ``columns * stride * C`` channels; the kernel is rearranged (with zeros
    where a tap falls outside an output column's window) to map them to
    ``columns * O`` channels, i.e. ``columns`` output columns side by side.
    One XLA convolution over the wide channels then does the work: 2-3x
    faster on CPU for 2-8 input channels, at the price of some multiplications
    by zero. The result is exact: every output still sums the same products.
    ``columns`` defaults to what :func:`choose_lowering` groups for this layer (at least 2).

    >>> x = jax.random.normal(jax.random.key(0), (2, 9, 9, 3))
    >>> kernel = jax.random.normal(jax.random.key(1), (5, 5, 3, 8))
    >>> bool(jnp.allclose(conv_columns_to_channels(x, kernel, 2, 1, columns=2), conv_xla(x, kernel, 2, 1), atol=1e-5))
    True
    """
    kernel_height, kernel_width, channels, features = kernel.shape
    batch, height, width, _ = x.shape
    columns = columns or max(2, _columns_per_group(channels, stride))
    out_width = (width + 2 * padding - kernel_width) // stride + 1
    groups = -(-out_width // columns)
    group_width = columns * stride
    reach = -(-((columns - 1) * stride + kernel_width) // group_width)  # input groups one output group reads
    padded_width = (groups + reach - 1) * group_width
    right = padded_width - width - padding
    x = jnp.pad(x, ((0, 0), (padding, padding), (padding, max(right, 0)), (0, 0)))[:, :, :padded_width]
    x = x.reshape(batch, height + 2 * padding, groups + reach - 1, group_width * channels)
    # taps[r, j, q, d]: input column j of the r-th group read by output column q is kernel column d.
    taps = np.zeros((reach, group_width, columns, kernel_width))
    for r, j, q in itertools.product(range(reach), range(group_width), range(columns)):
        d = r * group_width + j - q * stride
        if 0 <= d < kernel_width:
            taps[r, j, q, d] = 1
    wide_kernel = jnp.einsum("rjqd,hdco->hrjcqo", jnp.asarray(taps, kernel.dtype), kernel)
    wide_kernel = wide_kernel.reshape(kernel_height, reach, group_width * channels, columns * features)
    y = lax.conv_general_dilated(x, wide_kernel, window_strides=(stride, 1), padding="VALID", dimension_numbers=NHWC)
    return y.reshape(batch, y.shape[1], groups * columns, features)[:, :, :out_width]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_gemm_input_grad(x, kernel, stride: int, padding: int):
    """``Conv2d`` by XLA's convolution, its input gradient as one matrix product.

    The forward pass and the kernel gradient are XLA's. XLA computes the input
    gradient of a strided convolution as a convolution over the output gradient
    dilated with ``stride - 1`` zeros between pixels, which XLA:CPU runs slowly.
    Here it is what differentiating :func:`conv_gemm` gives: one GEMM of the
    output gradient with the transposed kernel matrix, into im2col's patch
    layout, then col2im (the adjoint of im2col). Reverse mode only.

    >>> x = jax.random.normal(jax.random.key(0), (2, 8, 8, 4))
    >>> kernel = jax.random.normal(jax.random.key(1), (3, 3, 4, 5))
    >>> def grad_x(conv):
    ...     return jax.jit(jax.grad(lambda x: jnp.sum(conv(x, kernel, 2, 1) ** 2)))(x)
    >>> bool(jnp.allclose(grad_x(conv_gemm_input_grad), grad_x(conv_xla), atol=1e-3))
    True
    """
    return conv_xla(x, kernel, stride, padding)


def _conv_gemm_input_grad_forward(x, kernel, stride, padding):
    return conv_xla(x, kernel, stride, padding), (x, kernel)


def _conv_gemm_input_grad_backward(stride, padding, residuals, grad):
    x, kernel = residuals
    # Under jit, the forward passes these VJPs trace (im2col, XLA's convolution) are dropped as unused.
    _, input_vjp = jax.vjp(lambda x: conv_gemm(x, kernel, stride, padding), x)
    _, kernel_vjp = jax.vjp(lambda kernel: conv_xla(x, kernel, stride, padding), kernel)
    return input_vjp(grad)[0], kernel_vjp(grad)[0]


conv_gemm_input_grad.defvjp(_conv_gemm_input_grad_forward, _conv_gemm_input_grad_backward)


def conv_col2im(x, kernel, stride: int, padding: int):
    """``Conv2d`` at stride 1 as one matrix product summed into place.

    A stride-1 convolution is the transposed convolution with the kernel
    flipped and ``kernel_size - 1 - padding`` padding, computed here as
    :func:`conv_transpose_gemm` computes one: a GEMM from the ``C`` input
    channels to all ``k*k*O`` tap outputs, then shifted adds (col2im); both
    gradients come from the output gradient's patches, ``k*k*O`` wide. With
    many input channels and a few outputs that beats im2col (``k*k*C`` wide
    patches) and XLA's kernel gradient, which XLA:CPU runs far below its peak
    when ``O`` is small. Reverse mode only.

    >>> x = jax.random.normal(jax.random.key(0), (2, 8, 8, 16))
    >>> kernel = jax.random.normal(jax.random.key(1), (3, 3, 16, 3))
    >>> bool(jnp.allclose(conv_col2im(x, kernel, 1, 1), conv_xla(x, kernel, 1, 1), atol=1e-4))
    True
    """
    if stride != 1:
        raise InputError(f"conv_col2im is for stride 1, got stride {stride}")
    k = kernel.shape[0]
    # The transposed convolution crops k - 1 - padding; padding beyond k - 1 is added to x first.
    extra = max(0, padding - (k - 1))
    x = jnp.pad(x, ((0, 0), (extra, extra), (extra, extra), (0, 0)))
    flipped = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)
    return conv_transpose_gemm(x, flipped, 1, k - 1 - padding + extra)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def conv_transpose_gemm(x, kernel, stride: int, padding: int, output_padding: int = 0):
    """``ConvTranspose2d`` as one matrix product into the output phases; kernel ``(k, k, out, in)``.

    Kernel tap ``d`` sends input row ``i`` to output row ``stride * i + d``.
    With the kernel zero-padded to ``m * stride`` taps (``m = ceil(k / stride)``),
    tap ``d = stride * t + a`` lands in block ``i + t`` of ``stride`` output rows,
    at phase ``a``: one GEMM gives every input pixel its ``m * m`` blocks of
    ``stride * stride`` output pixels, and ``m * m`` shifted adds put them in
    place (col2im, the adjoint of im2col, would need ``k * k``). The gradient
    is written out instead of differentiated through the adds: the input
    gradient is the convolution with the same kernel (im2col + GEMM, as in
    :func:`conv_gemm`) and the kernel gradient one GEMM of the same patches
    with the input. Reverse mode only.

    >>> x, kernel = jnp.ones((1, 2, 2, 1)), jnp.ones((3, 3, 1, 1))
    >>> conv_transpose_gemm(x, kernel, 2, 1)[0, :, :, 0]
    Array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]], dtype=float32)
    """
    k, _, features, channels = kernel.shape
    batch, height, width, _ = x.shape
    m = -(-k // stride)
    kernel = jnp.pad(kernel, ((0, m * stride - k), (0, m * stride - k), (0, 0), (0, 0)))
    blocks = x @ kernel.reshape(-1, channels).T
    blocks = blocks.reshape(batch, height, width, m, stride, m, stride, features)
    full = sum(
        jnp.pad(blocks[:, :, :, t, :, u], ((0, 0), (t, m - 1 - t), (u, m - 1 - u), (0, 0), (0, 0), (0, 0)))
        for t, u in itertools.product(range(m), range(m))
    )
    full = full.transpose(0, 1, 3, 2, 4, 5).reshape(batch, (height + m - 1) * stride, (width + m - 1) * stride, features)
    out_height = (height - 1) * stride - 2 * padding + k + output_padding
    out_width = (width - 1) * stride - 2 * padding + k + output_padding
    # PyTorch's output crops `padding` from the full output and may extend it by `output_padding`.
    missing = (max(0, padding + out_height - full.shape[1]), max(0, padding + out_width - full.shape[2]))
    full = jnp.pad(full, ((0, 0), (0, missing[0]), (0, missing[1]), (0, 0)))
    return full[:, padding : padding + out_height, padding : padding + out_width]


def _conv_transpose_gemm_forward(x, kernel, stride, padding, output_padding):
    return conv_transpose_gemm(x, kernel, stride, padding, output_padding), (x, kernel)


def _conv_transpose_gemm_backward(stride, padding, output_padding, residuals, grad):
    x, kernel = residuals
    k, _, features, channels = kernel.shape
    patches = _patches(grad, k, stride, padding)[:, : x.shape[1], : x.shape[2]]
    grad_x = patches @ kernel.reshape(k * k * features, channels)
    grad_kernel = _sum_over_pixels(patches, x).reshape(kernel.shape)
    return grad_x, grad_kernel


conv_transpose_gemm.defvjp(_conv_transpose_gemm_forward, _conv_transpose_gemm_backward)


CONV2D_LOWERINGS = {
    "gemm": conv_gemm,
    "columns": conv_columns_to_channels,
    "gemm_input_grad": conv_gemm_input_grad,
    "col2im": conv_col2im,
}
"""``Conv2d`` lowerings by name: ``(x, kernel, stride, padding) -> y``, NHWC / HWIO."""

CONV_TRANSPOSE2D_LOWERINGS = {"gemm": conv_transpose_gemm}
"""``ConvTranspose2d`` lowerings by name: ``(x, kernel, stride, padding, output_padding) -> y``."""
