"""Page faults of a repeated step in a fresh process (JAX reads the dispatch setting when it creates its CPU client).

    python tests/_dispatch_faults_worker.py async|inline

Prints the minor page faults of five calls of a step, after three warm-up calls; the step's
72 MiB temporary is over glibc's 64 MiB per-thread heaps.
"""

import resource
import sys

import jax
import jax.numpy as jnp

from jaxae import host_memory

inline = sys.argv[1] == "inline"
assert host_memory.execute_on_calling_thread() if inline else True
assert host_memory.dispatch_is_inline() == inline
host_memory.retain_freed_memory()
x, w = jnp.ones((16384, 64)), jnp.ones((64, 1152))
step = jax.jit(lambda x, w: (jnp.tanh(x @ w) @ w.T).sum())  # x @ w is the temporary
for _ in range(3):
    step(x, w).block_until_ready()
for _ in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step(x, w).block_until_ready()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
