import platform
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import pytest

from jaxae.cpu import host_memory

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")


def _page_faults(what: str, malloc: str) -> list[int]:
    worker = Path(__file__).parent / "_page_faults_worker.py"
    done = subprocess.run([sys.executable, str(worker), what, malloc], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return sorted(int(count) for count in done.stdout.split())


@glibc_only
def test_freed_blocks_are_reused_without_page_faults():
    # A 48 MiB block mapped afresh faults on each of its 12,288 pages.
    assert _page_faults("block", "default")[0] > 12_000
    assert _page_faults("block", "retain")[0] < 1000


@glibc_only
def test_importing_jaxae_and_compiling_a_step_leave_malloc_alone():
    assert _page_faults("block", "jaxae-step")[0] > 12_000


@glibc_only
def test_temporaries_over_64_mib_are_reused_when_computations_run_on_the_calling_thread():
    # On the calling thread a step's 72 MiB temporary comes from the main heap: mapped afresh
    # (18,432 pages) on every call by default, kept with retain_freed_memory. (Under asynchronous
    # dispatch XLA's worker threads map it afresh either way, on most calls: docs/performance.md.)
    assert _page_faults("step", "default")[2] > 15_000  # the median call
    assert _page_faults("step", "retain")[2] < 1000


def test_inline_dispatch_is_refused_once_the_cpu_client_exists():
    jnp.zeros(1).block_until_ready()
    assert not host_memory.execute_on_calling_thread()
    assert not host_memory.dispatch_is_inline()
