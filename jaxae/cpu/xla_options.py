"""XLA:CPU compiler options for jaxae's steps, and ``jax.jit`` with them.

Reductions (loss and bias-gradient sums) and matrix products (dense layers,
GEMM-lowered convolutions) compile as YNNPACK kernels instead of XLA's own
and Eigen's: the products made train steps 1.0-1.55x faster (E5's
autoencoder most) and the reductions 1.1-1.35x, and no seed model slowed beyond noise.
YNNPACK's convolutions and elementwise fusions lost, so they stay off
(docs/performance.md). The options change rounding, not results: the
PyTorch parity tests pass with them.

The options are XLA's experimental ones, which a later jaxlib may rename or drop. So the
first step compiled with them checks that this XLA takes them (one scalar program, once
per process); where it does not, steps compile with XLA's defaults, after one warning.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping

import jax
import numpy as np

from jaxae.errors import JaxaeWarning

COMPILER_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE,LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
}
"""What :func:`jit_with_cpu_options` adds to ``jax.jit`` on CPU."""


def jit_with_cpu_options(fun, *, options: Mapping[str, str] | None = None, **jit_kwargs):
    """``jax.jit(fun, **jit_kwargs)``, with ``options`` (default :data:`COMPILER_OPTIONS`) when the default backend is the CPU.

    Every train and evaluation step of :mod:`jaxae.train` compiles through it;
    on GPU and TPU it is ``jax.jit`` itself. ``options={}``: XLA's defaults, e.g. to measure
    what the options are worth (``python -m benchmarks cpu-path``).

    >>> step = jit_with_cpu_options(lambda x: x * 2)
    >>> float(step(1.5))
    3.0
    """
    if jax.default_backend() != "cpu":
        return jax.jit(fun, **jit_kwargs)
    return jax.jit(fun, compiler_options=_default_options() if options is None else dict(options), **jit_kwargs)


@functools.cache
def _default_options() -> dict[str, str]:
    """:data:`COMPILER_OPTIONS` where this XLA:CPU takes them, else ``{}`` (XLA's defaults) and a warning."""
    try:
        jax.jit(lambda x: x + 1, compiler_options=COMPILER_OPTIONS).lower(np.float32(0)).compile()
    except jax.errors.JaxRuntimeError as error:
        warnings.warn(f"this jaxlib's XLA:CPU refuses jaxae's compiler options ({str(error).splitlines()[0]}): "
                      "steps compile with XLA's defaults, which are slower", JaxaeWarning, stacklevel=3)
        return {}
    return dict(COMPILER_OPTIONS)
