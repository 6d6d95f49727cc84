import ctypes
import platform
import resource

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
