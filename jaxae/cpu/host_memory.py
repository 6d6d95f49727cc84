"""Keeping the host memory XLA:CPU frees, so that steps do not page-fault it back in.

On every call an XLA:CPU executable ``malloc``s its temporaries (one block,
52 MB for mnist_conv_ae_2d's train step at batch 32) and its outputs, and
frees them when it returns. glibc gives blocks above its mmap threshold
(128 KiB, raised as big blocks are freed, to at most 32 MiB) back to the
kernel with ``munmap``, and trims heap tops above its trim threshold, so the
next call touches fresh pages and faults on each: 12,900 page faults per
mnist_conv_ae_2d step, a quarter to a third of its time on a 2-core CPU
(docs/performance.md). :func:`retain_freed_memory` raises both thresholds to
their maximum, so that freed blocks are reused. The price: the process keeps
its peak footprint instead of returning memory to the system, which is why
it is a choice: :func:`jaxae.train.fit`, the ``jaxae`` command and the
benchmarks turn it on (``retain_host_memory=True``, the default; the CLI's
``--release-host-memory`` leaves malloc alone), and a library user who
compiles steps without ``fit`` calls it once.

JAX runs CPU computations on a worker thread by default (asynchronous
dispatch), and the worker allocates their temporaries; glibc serves a worker
from heaps of at most 64 MiB and maps bigger blocks afresh on every call,
whatever the thresholds. :func:`execute_on_calling_thread` moves the
computations, and so those blocks, to the calling thread, whose heap keeps
them. That wins where a step's temporaries exceed 64 MiB (mnist_conv_ae_2d
at batch 1024: 1.73x, E5's models 1.05-1.22x) and loses where steps are
small, since Python then no longer dispatches the next step while one runs
(the dense autoencoders at batch 128: 0.67-0.73x); so it is not the
default (docs/performance.md). Blocks over 2 GiB are always mapped afresh.
"""

from __future__ import annotations

import ctypes
import functools
import platform

import jax
from jax._src import xla_bridge  # backends_are_initialized has no public alias

# mallopt(3) parameters from <malloc.h>; mallopt takes an int, hence the largest value.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_LARGEST = 2**31 - 1


@functools.cache
def retain_freed_memory() -> bool:
    """Tells glibc's ``malloc`` to keep freed memory for reuse; whether it did.

    Process-wide, idempotent and not undone. Does nothing (returns ``False``)
    where the C library is not glibc.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)  # the C library this process already runs on
    return all(libc.mallopt(option, _LARGEST) == 1 for option in (_M_MMAP_THRESHOLD, _M_TRIM_THRESHOLD))


def execute_on_calling_thread() -> bool:
    """Has XLA:CPU run each computation on the thread that calls it; whether that took effect.

    Sets JAX's ``jax_cpu_enable_async_dispatch`` to False. JAX reads it once,
    when it creates its CPU client (on the first array or computation), so call
    this first thing; afterwards it changes nothing and returns ``False``. JAX applies it to single-device
    computations. See the module docstring for when it pays;
    ``python -m benchmarks --inline-dispatch`` measures it.
    """
    if xla_bridge.backends_are_initialized():
        return False
    jax.config.update("jax_cpu_enable_async_dispatch", False)
    return True


def dispatch_is_inline() -> bool:
    """Whether JAX's CPU computations run on the calling thread (see :func:`execute_on_calling_thread`)."""
    return not jax.config.values["jax_cpu_enable_async_dispatch"]
