"""One process of a data-parallel run over several processes on this machine (CPU).

    python tests/_multihost_worker.py OUT NUM_PROCESSES PROCESS_ID ADDRESS

ADDRESS is the coordinator's (e.g. ``unix:/tmp/folder/socket``). Each process has
``4 // NUM_PROCESSES`` CPU devices; together they form one mesh of 4 devices. Trains ``mnist_ae2`` (dense: quick to compile) for 6 steps on fixed synthetic
data with the sharded train step (every process feeds its slice of each
global batch) and writes the final params to ``OUT`` (process 0).
"""

import os
import sys

out, num_processes, process_id, address = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={4 // num_processes}"
if num_processes > 1:  # processes that read their programs from the cache wait for each other forever (jax 0.12.1)
    os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

if num_processes > 1:
    jax.distributed.initialize(address, num_processes=num_processes, process_id=process_id, coordinator_bind_address=address)

from jaxae.data import BatchSpec, DeviceResidentPipeline  # noqa: E402
from jaxae.train import TrainConfig, Trainer, compile_train_step  # noqa: E402

config = TrainConfig(model="mnist_ae2", loss="mse", optimizer="adam", learning_rate=1e-3, epochs=1, batch_size=8)
mesh = Mesh(np.array(jax.devices()), ("batch",))
rng = np.random.default_rng(0)
images, labels = rng.integers(0, 256, (44, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, 44).astype(np.int32)
pipeline = DeviceResidentPipeline(images, labels, BatchSpec(8, seed=3), sharding=NamedSharding(mesh, PartitionSpec("batch")))
trainer = Trainer.create(config)
state = jax.device_put(trainer.init_state(), NamedSharding(mesh, PartitionSpec()))
step = compile_train_step(trainer, mesh)
for batch in pipeline.epoch(0):
    state, metrics = step(state, batch)
params = jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), state.params)
if jax.process_index() == 0:
    np.savez(out, *jax.tree.leaves(params))
print(f"process {jax.process_index()} of {jax.process_count()}: {jax.device_count()} devices, {int(state.step.addressable_data(0))} steps")
