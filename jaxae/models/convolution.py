"""The one place where layers' convolutions meet the backend: which lowering computes them.

:class:`~jaxae.models.layers.Conv2d` and :class:`~jaxae.models.layers.ConvTranspose2d`
call :func:`conv2d` and :func:`conv_transpose2d` with a ``lowering`` name. Every
lowering computes the same function, with PyTorch's padding semantics in
Flax's NHWC layout:

* ``"xla"``: XLA's own convolution (:func:`conv_xla`, :func:`conv_transpose_xla`);
  differentiable in forward and reverse mode.
* ``"gemm"``, ``"columns"``, ``"gemm_input_grad"``, ``"col2im"``: the CPU
  lowerings of :mod:`jaxae.cpu.convolution` (``"columns"``,
  ``"gemm_input_grad"`` and ``"col2im"`` for ``Conv2d`` only, ``"col2im"`` at
  stride 1 only). The custom-VJP ones are reverse-mode only.
* ``"auto"`` (the models' default): on CPU, per layer, what measured fastest
  (:func:`jaxae.cpu.convolution.choose_lowering`); on GPU and TPU, ``"xla"``.
"""

from __future__ import annotations

from typing import Literal

import jax
from jax import lax

from jaxae.cpu import convolution as cpu_convolution
from jaxae.errors import InputError

ConvLowering = Literal["auto", "xla", "gemm", "columns", "gemm_input_grad", "col2im"]


conv_xla = cpu_convolution.conv_xla


def conv_transpose_padding(kernel_size: int, padding: int, output_padding: int = 0):
    """The ``lax.conv_transpose`` padding that reproduces PyTorch's ``ConvTranspose2d``.

    PyTorch's ``padding`` removes rows from the full transposed convolution,
    while ``lax`` pads the dilated input; for dilation 1 the two agree with
    ``low = kernel_size - 1 - padding`` and ``high = low + output_padding``:

    >>> conv_transpose_padding(kernel_size=4, padding=1)
    (2, 2)
    >>> conv_transpose_padding(kernel_size=3, padding=1, output_padding=1)
    (1, 2)
    """
    low = kernel_size - 1 - padding
    return low, low + output_padding


def conv_transpose_xla(x, kernel, stride: int, padding: int, output_padding: int = 0):
    """``ConvTranspose2d`` by XLA's transposed convolution; ``kernel`` is ``(k, k, out, in)``."""
    pad = conv_transpose_padding(kernel.shape[0], padding, output_padding)
    return lax.conv_transpose(x, kernel, strides=(stride, stride), padding=(pad, pad),
                              dimension_numbers=cpu_convolution.NHWC, transpose_kernel=True)


CONV2D_LOWERINGS = {"xla": conv_xla, **cpu_convolution.CONV2D_LOWERINGS}
CONV_TRANSPOSE2D_LOWERINGS = {"xla": conv_transpose_xla, **cpu_convolution.CONV_TRANSPOSE2D_LOWERINGS}
CONV_LOWERINGS = ("auto", *CONV2D_LOWERINGS)


def check_lowering(lowering: str) -> None:
    """A ``ValueError`` unless ``lowering`` is one of :data:`CONV_LOWERINGS`."""
    if lowering not in CONV_LOWERINGS:
        raise InputError(f"conv_lowering must be one of {CONV_LOWERINGS}, got {lowering!r}")


def resolve_lowering(lowering: str, channels: int, features: int, stride: int, transposed: bool) -> str:
    """The lowering a layer of ``channels`` inputs and ``features`` outputs runs on the default backend.

    ``lowering`` itself, checked against the layer, unless it is ``"auto"``.

    >>> resolve_lowering("gemm", channels=64, features=128, stride=2, transposed=True)
    'gemm'
    """
    check_lowering(lowering)
    if transposed and lowering != "auto" and lowering not in CONV_TRANSPOSE2D_LOWERINGS:
        raise InputError(
            f"conv_lowering={lowering!r} is for Conv2d; ConvTranspose2d takes {('auto', *CONV_TRANSPOSE2D_LOWERINGS)}"
        )
    if lowering == "col2im" and stride != 1:
        raise InputError(f"conv_lowering='col2im' is for stride 1, got stride {stride}")
    if lowering != "auto":
        return lowering
    if jax.default_backend() != "cpu":
        return "xla"
    return cpu_convolution.choose_lowering(channels, features, stride, transposed)


def conv2d(x, kernel, stride: int, padding: int, lowering: str = "auto"):
    """``Conv2d`` without bias: NHWC ``x``, ``(k, k, in, out)`` kernel, PyTorch's ``stride`` and ``padding``."""
    chosen = resolve_lowering(lowering, x.shape[-1], kernel.shape[-1], stride, transposed=False)
    return CONV2D_LOWERINGS[chosen](x, kernel, stride, padding)


def conv_transpose2d(x, kernel, stride: int, padding: int, output_padding: int = 0, lowering: str = "auto"):
    """``ConvTranspose2d`` without bias: NHWC ``x``, ``(k, k, out, in)`` kernel, PyTorch's arguments."""
    chosen = resolve_lowering(lowering, x.shape[-1], kernel.shape[2], stride, transposed=True)
    return CONV_TRANSPOSE2D_LOWERINGS[chosen](x, kernel, stride, padding, output_padding)
