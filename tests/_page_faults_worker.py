"""Minor page faults in a fresh process, whose heap no earlier test has shaped (and where JAX reads
the dispatch setting when it creates its CPU client).

    python tests/_page_faults_worker.py block|step retain|default|jaxae-step

``block``: the faults of touching a 48 MiB block malloc'd after freeing one of the same size.
``step``: the faults of five calls of a jitted step run on the calling thread, after three
warm-up calls; its 72 MiB temporary is malloc'd and freed on every call. Both sizes are over
glibc's largest dynamic mmap threshold (32 MiB), so by default (``default``) each is mapped
afresh and faults on every page; ``retain`` calls ``retain_freed_memory`` first; ``jaxae-step``
imports jaxae and compiles and runs one of its train steps first, which must leave malloc alone.
"""

import ctypes
import resource
import sys

import jax
import jax.numpy as jnp

from jaxae.cpu import host_memory


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
    assert host_memory.execute_on_calling_thread() and host_memory.dispatch_is_inline()
    x, w = jnp.ones((16384, 64)), jnp.ones((64, 1152))
    step = jax.jit(lambda x, w: (jnp.tanh(x @ w) @ w.T).sum())  # x @ w is the temporary
    for _ in range(3):
        step(x, w).block_until_ready()
    return [minor_faults(lambda: step(x, w).block_until_ready()) for _ in range(5)]


if sys.argv[2] == "retain":
    assert host_memory.retain_freed_memory()
elif sys.argv[2] == "jaxae-step":
    import jaxae.experiments  # noqa: F401 (everything the CLI imports)
    from jaxae.train import TrainConfig, Trainer, compile_train_step

    trainer = Trainer.create(TrainConfig("mnist_pca_ae", "mse", "adam", 1e-3, epochs=1, batch_size=8))
    batch = {"image": jnp.zeros((8, 28, 28, 1)), "label": jnp.zeros(8, jnp.int32), "mask": jnp.ones(8, bool)}
    jax.block_until_ready(compile_train_step(trainer)(trainer.init_state(), batch))
print(*(block_faults() if sys.argv[1] == "block" else step_faults()))
