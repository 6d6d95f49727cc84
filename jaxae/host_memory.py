"""Keeping the host memory XLA:CPU frees, so that steps do not page-fault it back in.

On every call an XLA:CPU executable ``malloc``s its temporaries (one block,
52 MB for mnist_conv_ae_2d's train step at batch 32) and its outputs, and
frees them when it returns. glibc gives blocks above its mmap threshold
(128 KiB, raised as big blocks are freed, to at most 32 MiB) back to the
kernel with ``munmap``, and trims heap tops above its trim threshold, so the
next call touches fresh pages and faults on each: 12,900 page faults per
mnist_conv_ae_2d step, a quarter to a third of its time on a 2-core CPU
(benchmarks/NOTES.md). :func:`retain_freed_memory` raises both thresholds to
their maximum, so that freed blocks are reused. The price: the process keeps
its peak footprint instead of returning memory to the system.

Not covered: blocks over 64 MiB that a worker thread allocates (glibc's
per-thread heaps stop there and such blocks are always mapped afresh), and
blocks over 2 GiB.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

OPT_OUT = "JAXAE_RETAIN_HOST_MEMORY"
"""Set this environment variable to ``0`` to leave glibc's defaults alone."""

# mallopt(3) parameters from <malloc.h>; mallopt takes an int, hence the largest value.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_LARGEST = 2**31 - 1


@functools.cache
def retain_freed_memory() -> bool:
    """Tells glibc's ``malloc`` to keep freed memory for reuse; whether it did.

    Process-wide and idempotent. :func:`jaxae.train.jit` calls it on CPU, so
    every compiled step runs with it. Does nothing (returns ``False``) where
    the C library is not glibc, or when the environment variable
    ``JAXAE_RETAIN_HOST_MEMORY`` is ``0``.
    """
    if os.environ.get(OPT_OUT) == "0" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)  # the C library this process already runs on
    return all(libc.mallopt(option, _LARGEST) == 1 for option in (_M_MMAP_THRESHOLD, _M_TRIM_THRESHOLD))
