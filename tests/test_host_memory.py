"""``retain_freed_memory``'s promise: with it, reusing freed host memory faults few pages, never more than
glibc's defaults do; and nothing but an explicit call changes malloc. How many pages glibc's defaults
fault, on a given kernel and XLA release, is a measurement (docs/performance.md), not asserted here."""

import platform
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import pytest

from jaxae.cpu import host_memory

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

# A reused block of 48 or 72 MiB is 12,288 or 18,432 pages; kept, it faults on none of them. What faults
# besides (Python's and XLA's own small allocations) is a few hundred pages at most.
FEW = 1000


def _page_faults(what: str, malloc: str) -> list[int]:
    worker = Path(__file__).parent / "_page_faults_worker.py"
    done = subprocess.run([sys.executable, str(worker), what, malloc], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [int(count) for count in done.stdout.split()]


@glibc_only
def test_a_freed_block_is_reused_with_few_page_faults():
    (retained,), (default,) = _page_faults("block", "retain"), _page_faults("block", "default")
    assert retained < FEW and retained <= default + FEW


@glibc_only
def test_importing_jaxae_and_compiling_a_step_leave_malloc_alone():
    before, after, retain_called = _page_faults("block", "jaxae-step")
    assert retain_called == 0
    # Had malloc's thresholds been raised, the block that faulted before would no longer fault.
    assert after >= before - FEW


@glibc_only
def test_a_steps_temporaries_over_64_mib_are_reused_with_few_page_faults_on_the_calling_thread():
    # The median of five calls, each malloc'ing and freeing a 72 MiB temporary on the calling thread.
    retained, default = sorted(_page_faults("step", "retain"))[2], sorted(_page_faults("step", "default"))[2]
    assert retained < FEW and retained <= default + FEW


def test_inline_dispatch_is_refused_once_the_cpu_client_exists():
    jnp.zeros(1).block_until_ready()
    assert not host_memory.execute_on_calling_thread()
    assert not host_memory.dispatch_is_inline()
