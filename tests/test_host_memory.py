import ctypes
import platform
import resource
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import pytest

from jaxae import host_memory

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

_BLOCK = 48 << 20  # over glibc's largest dynamic mmap threshold (32 MiB): mapped afresh by default


def _page_faults_touching_a_reallocated_block() -> int:
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    block = libc.malloc(_BLOCK)
    ctypes.memset(block, 1, _BLOCK)
    libc.free(block)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(_BLOCK)
    ctypes.memset(block, 1, _BLOCK)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    libc.free(block)
    return faults


@glibc_only
def test_freed_blocks_are_reused_without_page_faults():
    assert host_memory.retain_freed_memory()
    # A block mapped afresh faults on each of its 12,288 pages.
    assert _page_faults_touching_a_reallocated_block() < 1000


@glibc_only
def test_opt_out_leaves_malloc_alone(monkeypatch):
    monkeypatch.setenv(host_memory.OPT_OUT, "0")
    host_memory.retain_freed_memory.cache_clear()
    try:
        assert not host_memory.retain_freed_memory()
    finally:
        monkeypatch.delenv(host_memory.OPT_OUT)
        host_memory.retain_freed_memory.cache_clear()


def _faults_of_a_repeated_step(dispatch: str) -> list[int]:
    worker = Path(__file__).parent / "_dispatch_faults_worker.py"
    done = subprocess.run([sys.executable, str(worker), dispatch], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return sorted(int(line) for line in done.stdout.split())


@glibc_only
def test_temporaries_over_64_mib_are_reused_when_computations_run_on_the_calling_thread():
    # Asynchronous dispatch: a worker thread maps the temporary afresh (18,432 pages) on nearly every call
    # (now and then XLA runs a call where its memory is still mapped).
    assert max(_faults_of_a_repeated_step("async")) > 10_000
    assert _faults_of_a_repeated_step("inline")[2] < 1000  # the median call


def test_inline_dispatch_is_refused_once_the_cpu_client_exists():
    jnp.zeros(1).block_until_ready()
    assert not host_memory.execute_on_calling_thread()
    assert not host_memory.dispatch_is_inline()
