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

``lowering`` says how convolutions are computed: ``"xla"`` by XLA's
convolution (see :func:`conv_xla`, :func:`conv_transpose_xla`), ``"gemm"``
as one matrix product plus strided slices (see :func:`conv_gemm`,
:func:`conv_transpose_gemm`), ``"columns"`` as XLA's convolution over groups
of output columns folded into channels (see :func:`conv_columns_to_channels`;
``Conv2d`` only), ``"gemm_input_grad"`` as XLA's convolution whose input
gradient is one matrix product plus col2im (see :func:`conv_gemm_input_grad`;
``Conv2d`` only), ``"col2im"`` as one matrix product to every kernel tap's
outputs summed into place (see :func:`conv_col2im`; ``Conv2d`` at stride 1).
``"auto"`` (the default) picks per layer what measured faster. On CPU, with
at least 32 input and output channels: XLA's convolution at stride 1,
``"gemm_input_grad"`` for strided ones, GEMM for strided transposed ones;
with fewer: GEMM for transposed convolutions and for strided ones from at
most 8 channels to at least 32, col2im for stride-1 convolutions from more
than 8 channels to at most 8, column groups for convolutions of 2-8 input
channels, XLA's convolution otherwise.
On GPU and TPU: XLA's convolution. All compute the same function;
benchmarks/NOTES.md has the measurements.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

InitScheme = Literal["pytorch", "flax"]
INIT_SCHEMES = ("pytorch", "flax")
ConvLowering = Literal["auto", "xla", "gemm", "columns", "gemm_input_grad", "col2im"]
CONV_LOWERINGS = ("auto", "xla", "gemm", "columns", "gemm_input_grad", "col2im")

_NHWC = ("NHWC", "HWIO", "NHWC")


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
        raise ValueError(f"init_scheme must be one of {INIT_SCHEMES}, got {scheme!r}")
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


# Measured on CPU (benchmarks/NOTES.md): once both channel counts reach this, GEMM beats XLA for the
# input gradient of a strided convolution (and for a strided transposed convolution), and XLA's stride-1
# convolutions beat both GEMM lowerings; below it the patch tensor's tiny minor dimension makes im2col slower.
_WIDE_CHANNELS = 32
# Column groups pay while a group's input (columns * stride * channels) stays about this wide.
_GROUPED_CHANNELS = 16
_MAX_GROUPED_COLUMNS = 4
# At stride 1, col2im pays from more input channels than this to at most this many outputs; strided,
# im2col + GEMM pays from at most this many input channels to at least _WIDE_CHANNELS outputs.
_FEW_CHANNELS = 8


def _columns_per_group(channels: int, stride: int) -> int:
    return min(_MAX_GROUPED_COLUMNS, _GROUPED_CHANNELS // (stride * channels))


def resolve_lowering(lowering: str, channels: int, features: int, stride: int, transposed: bool) -> str:
    """The lowering a layer with ``channels`` inputs and ``features`` outputs uses on the default backend.

    ``lowering`` itself unless it is "auto"; "auto" resolves by the rule in this module's docstring.

    >>> resolve_lowering("auto", channels=64, features=128, stride=2, transposed=False)  # on CPU
    'gemm_input_grad'
    """
    if lowering not in CONV_LOWERINGS:
        raise ValueError(f"lowering must be one of {CONV_LOWERINGS}, got {lowering!r}")
    if transposed and lowering != "auto" and lowering not in _CONV_TRANSPOSE_BY_LOWERING:
        raise ValueError(f"lowering={lowering!r} is for Conv2d; ConvTranspose2d takes 'auto', 'xla' or 'gemm'")
    if lowering == "col2im" and stride != 1:
        raise ValueError(f"lowering='col2im' is for stride 1, got stride {stride}")
    if lowering != "auto":
        return lowering
    if jax.default_backend() != "cpu":
        return "xla"
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
    # One input channel: XLA's convolution already won (mnist conv1, benchmarks/NOTES.md).
    return "columns" if channels > 1 and _columns_per_group(channels, stride) > 1 else "xla"


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


def conv_xla(x, kernel, stride: int, padding: int):
    """``Conv2d`` by XLA's convolution: what :class:`Conv2d` computes with ``lowering="xla"``."""
    return lax.conv_general_dilated(
        x, kernel, (stride, stride), ((padding, padding), (padding, padding)), dimension_numbers=_NHWC
    )


def conv_gemm(x, kernel, stride: int, padding: int):
    """``Conv2d`` as one matrix product: what :class:`Conv2d` computes with ``lowering="gemm"``.

    im2col: gather each output pixel's ``k*k*C`` input window, then one GEMM
    with the kernel as a ``(k*k*C, O)`` matrix.

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
    ``columns`` defaults to what "auto" groups for this layer (at least 2).

    >>> x = jax.random.normal(jax.random.key(0), (2, 9, 9, 3))
    >>> kernel = jax.random.normal(jax.random.key(1), (5, 5, 3, 8))
    >>> xla = lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_NHWC)
    >>> bool(jnp.allclose(conv_columns_to_channels(x, kernel, 2, 1, columns=2), xla, atol=1e-5))
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
    y = lax.conv_general_dilated(x, wide_kernel, window_strides=(stride, 1), padding="VALID", dimension_numbers=_NHWC)
    return y.reshape(batch, y.shape[1], groups * columns, features)[:, :, :out_width]


def conv_gemm_input_grad(x, kernel, stride: int, padding: int):
    """``Conv2d`` by XLA's convolution, its input gradient as one matrix product: ``lowering="gemm_input_grad"``.

    The forward pass and the kernel gradient are XLA's. XLA computes the input
    gradient of a strided convolution as a convolution over the output gradient
    dilated with ``stride - 1`` zeros between pixels, which XLA:CPU runs slowly.
    Here it is what differentiating :func:`conv_gemm` gives: one GEMM of the
    output gradient with the transposed kernel matrix, into im2col's patch
    layout, then col2im (the adjoint of im2col). Same values and gradients as
    :func:`conv_xla`; no forward-mode derivative (``jax.jvp``).

    >>> x = jax.random.normal(jax.random.key(0), (2, 8, 8, 4))
    >>> kernel = jax.random.normal(jax.random.key(1), (3, 3, 4, 5))
    >>> def grad_x(conv):
    ...     return jax.grad(lambda x: jnp.sum(conv(x, kernel, 2, 1) ** 2))(x)
    >>> bool(jnp.allclose(grad_x(conv_gemm_input_grad), grad_x(conv_xla), atol=1e-3))
    True
    """
    return _conv_gemm_input_grad(x, kernel, stride, padding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_gemm_input_grad(x, kernel, stride, padding):
    return conv_xla(x, kernel, stride, padding)


def _conv_gemm_input_grad_forward(x, kernel, stride, padding):
    return conv_xla(x, kernel, stride, padding), (x, kernel)


def _conv_gemm_input_grad_backward(stride, padding, residuals, grad):
    x, kernel = residuals
    # Under jit, the forward passes these VJPs trace (im2col, XLA's convolution) are dropped as unused.
    _, input_vjp = jax.vjp(lambda x: conv_gemm(x, kernel, stride, padding), x)
    _, kernel_vjp = jax.vjp(lambda kernel: conv_xla(x, kernel, stride, padding), kernel)
    return input_vjp(grad)[0], kernel_vjp(grad)[0]


_conv_gemm_input_grad.defvjp(_conv_gemm_input_grad_forward, _conv_gemm_input_grad_backward)


def conv_col2im(x, kernel, stride: int, padding: int):
    """``Conv2d`` at stride 1 as one matrix product summed into place: ``lowering="col2im"``.

    A stride-1 convolution is the transposed convolution with the kernel
    flipped and ``kernel_size - 1 - padding`` padding, computed here as
    :func:`conv_transpose_gemm` computes one: a GEMM from the ``C`` input
    channels to all ``k*k*O`` tap outputs, then ``k*k`` shifted adds (col2im);
    both gradients come from the output gradient's patches, ``k*k*O`` wide.
    With many input channels and a few outputs that beats im2col (``k*k*C``
    wide patches) and XLA's kernel gradient, which XLA:CPU runs far below its
    peak when ``O`` is small. Same values and gradients as :func:`conv_xla`;
    no forward-mode derivative (``jax.jvp``).

    >>> x = jax.random.normal(jax.random.key(0), (2, 8, 8, 16))
    >>> kernel = jax.random.normal(jax.random.key(1), (3, 3, 16, 3))
    >>> bool(jnp.allclose(conv_col2im(x, kernel, 1, 1), conv_xla(x, kernel, 1, 1), atol=1e-4))
    True
    """
    if stride != 1:
        raise ValueError(f"conv_col2im is for stride 1, got stride {stride}")
    k = kernel.shape[0]
    # The transposed convolution crops k - 1 - padding; padding beyond k - 1 is added to x first.
    extra = max(0, padding - (k - 1))
    x = jnp.pad(x, ((0, 0), (extra, extra), (extra, extra), (0, 0)))
    flipped = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)
    return conv_transpose_gemm(x, flipped, 1, k - 1 - padding + extra)


def conv_transpose_gemm(x, kernel, stride: int, padding: int, output_padding: int = 0):
    """``ConvTranspose2d`` as one matrix product: what :class:`ConvTranspose2d` computes with ``lowering="gemm"``.

    Kernel tap ``d`` sends input row ``i`` to output row ``stride * i + d``.
    With the kernel zero-padded to ``m * stride`` taps (``m = ceil(k / stride)``),
    tap ``d = stride * t + a`` lands in block ``i + t`` of ``stride`` output rows,
    at phase ``a``: one GEMM gives every input pixel its ``m * m`` blocks of
    ``stride * stride`` output pixels, and ``m * m`` shifted adds put them in
    place (col2im, the adjoint of im2col, would need ``k * k``). The gradient
    is written out instead of differentiated through the adds: the input
    gradient is the convolution with the same kernel (im2col + GEMM, as in
    :func:`conv_gemm`) and the kernel gradient one GEMM of the same patches
    with the input. It has no forward-mode derivative (``jax.jvp``); the
    ``"xla"`` lowering has.

    >>> x, kernel = jnp.ones((1, 2, 2, 1)), jnp.ones((3, 3, 1, 1))
    >>> conv_transpose_gemm(x, kernel, stride=2, padding=1)[0, :, :, 0]
    Array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]], dtype=float32)
    """
    return _conv_transpose_gemm(x, kernel, stride, padding, output_padding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_transpose_gemm(x, kernel, stride, padding, output_padding):
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
    return _conv_transpose_gemm(x, kernel, stride, padding, output_padding), (x, kernel)


def _conv_transpose_gemm_backward(stride, padding, output_padding, residuals, grad):
    x, kernel = residuals
    k, _, features, channels = kernel.shape
    patches = _patches(grad, k, stride, padding)[:, : x.shape[1], : x.shape[2]]
    grad_x = patches @ kernel.reshape(k * k * features, channels)
    grad_kernel = _sum_over_pixels(patches, x).reshape(kernel.shape)
    return grad_x, grad_kernel


_conv_transpose_gemm.defvjp(_conv_transpose_gemm_forward, _conv_transpose_gemm_backward)


_CONV2D_BY_LOWERING = {
    "xla": conv_xla,
    "gemm": conv_gemm,
    "columns": conv_columns_to_channels,
    "gemm_input_grad": conv_gemm_input_grad,
    "col2im": conv_col2im,
}


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
        kernel, bias = _kernel_and_bias(
            self, (k, k, x.shape[-1], self.features), self.features, self.init_scheme
        )
        kernel, p = kernel.astype(x.dtype), self.padding
        lowering = resolve_lowering(self.lowering, x.shape[-1], self.features, self.stride, transposed=False)
        return _CONV2D_BY_LOWERING[lowering](x, kernel, self.stride, p) + bias.astype(x.dtype)


def conv_transpose_padding(kernel_size: int, padding: int, output_padding: int = 0):
    """The ``lax.conv_transpose`` padding that reproduces PyTorch's ``ConvTranspose2d``.

    PyTorch's ``padding`` removes rows from the full transposed convolution,
    while ``lax`` pads the dilated input; for dilation 1 the two agree when

    >>> conv_transpose_padding(kernel_size=4, padding=1)
    (2, 2)
    >>> conv_transpose_padding(kernel_size=3, padding=1, output_padding=1)
    (1, 2)
    """
    low = kernel_size - 1 - padding
    return low, low + output_padding


def conv_transpose_xla(x, kernel, stride: int, padding: int, output_padding: int = 0):
    """``ConvTranspose2d`` by XLA's transposed convolution: what :class:`ConvTranspose2d` computes with ``lowering="xla"``."""
    pad = conv_transpose_padding(kernel.shape[0], padding, output_padding)
    return lax.conv_transpose(
        x, kernel, strides=(stride, stride), padding=(pad, pad), dimension_numbers=_NHWC, transpose_kernel=True
    )


_CONV_TRANSPOSE_BY_LOWERING = {"xla": conv_transpose_xla, "gemm": conv_transpose_gemm}


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
        kernel_shape = (k, k, self.features, x.shape[-1])
        kernel, bias = _kernel_and_bias(self, kernel_shape, self.features, self.init_scheme)
        kernel = kernel.astype(x.dtype)
        lowering = resolve_lowering(self.lowering, x.shape[-1], self.features, self.stride, transposed=True)
        conv_transpose = _CONV_TRANSPOSE_BY_LOWERING[lowering]
        return conv_transpose(x, kernel, self.stride, self.padding, self.output_padding) + bias.astype(x.dtype)


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
    select-and-scatter gradient is 3-4x slower on XLA:CPU (benchmarks/NOTES.md).

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
