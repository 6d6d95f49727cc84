"""Minor page faults in a fresh process, whose heap no earlier test has shaped (and where JAX reads
the dispatch setting when it creates its CPU client).

    python tests/_page_faults_worker.py block|step retain|default|jaxae-step

``block``: the faults of touching a 48 MiB block malloc'd after freeing one of the same size.
``step``: the faults of five calls of a jitted step run on the calling thread, after three
warm-up calls; its 72 MiB temporary is malloc'd and freed on every call. Both sizes are over
glibc's largest dynamic mmap threshold (32 MiB), so glibc's defaults (``default``) may map
each afresh, faulting on every page; ``retain`` calls ``retain_freed_memory`` first.
``jaxae-step`` (with ``block``) prints the block's faults twice: before and after importing
jaxae and compiling and running one of its train steps, which must leave malloc alone, and
whether jaxae called ``retain_freed_memory`` on its own (1) or not (0).
"""

import ctypes
import resource
import sys

import jax
import jax.numpy as jnp


def minor_faults(action) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    action()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def block_faults() -> list[int]:
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size = 48 << 20

    def touch_a_fresh_block():
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.free(block)

    touch_a_fresh_block()
    return [minor_faults(touch_a_fresh_block)]


def step_faults() -> list[int]:
    from jaxae.cpu import host_memory

    assert host_memory.execute_on_calling_thread() and host_memory.dispatch_is_inline()
    x, w = jnp.ones((16384, 64)), jnp.ones((64, 1152))
    step = jax.jit(lambda x, w: (jnp.tanh(x @ w) @ w.T).sum())  # x @ w is the temporary
    for _ in range(3):
        step(x, w).block_until_ready()
    return [minor_faults(lambda: step(x, w).block_until_ready()) for _ in range(5)]


def faults_around_a_jaxae_step() -> list[int]:
    before = block_faults()
    import jaxae.experiments  # noqa: F401 (everything the CLI imports)
    from jaxae.cpu import host_memory
    from jaxae.train import TrainConfig, Trainer, compile_train_step

    trainer = Trainer.create(TrainConfig("mnist_pca_ae", "mse", "adam", 1e-3, epochs=1, batch_size=8))
    batch = {"image": jnp.zeros((8, 28, 28, 1)), "label": jnp.zeros(8, jnp.int32), "mask": jnp.ones(8, bool)}
    jax.block_until_ready(compile_train_step(trainer)(trainer.init_state(), batch))
    return [*before, *block_faults(), host_memory.retain_freed_memory.cache_info().currsize]


if sys.argv[2] == "retain":
    from jaxae.cpu import host_memory

    assert host_memory.retain_freed_memory()
if sys.argv[2] == "jaxae-step":
    print(*faults_around_a_jaxae_step())
else:
    print(*(block_faults() if sys.argv[1] == "block" else step_faults()))
