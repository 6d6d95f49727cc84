# %% [markdown]
# # Data-parallel training over several devices: jit over a mesh, and pmap
#
# The same train step runs on one device or many. The default way is `jax.jit` over a device
# mesh: each batch is sharded on its first axis, the state replicated, and XLA inserts the
# gradient sums. `jax.pmap` is the explicit way: one copy of the step per device, gradients
# summed with `lax.psum`. Both give the parameters of single-device training on the same global
# batches. On a CPU, ask XLA for several devices:
#
#     XLA_FLAGS=--xla_force_host_platform_device_count=4 python examples/data_parallel.py [--quick] [--data-dir D]

# %%
import jax
import numpy as np
from _options import parse, split
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxae.data import make_pipeline
from jaxae.train import TrainConfig, fit

args = parse("data_parallel", "E1's CNN trained on one device, over a mesh, and with pmap")
print(f"{jax.device_count()} devices: {jax.devices()}")

# %% [markdown]
# ## One recipe, three ways
# E1's CNN, SGD with momentum; the global batch of 128 splits evenly over 1, 2, 4 or 8 devices.

# %%
config = TrainConfig("cifar10_cnn", loss="cross_entropy", optimizer="sgd", learning_rate=1e-2, momentum=0.9,
                     epochs=1 if args.quick else 2, batch_size=128, seed=0)
train_split = split("train", args.quick)

# One device.
single, _ = fit(config, make_pipeline("cifar10", train_split, config.batch_spec(), data_dir=args.data_dir),
                args.workdir / "single", progress=False)

# jit over a mesh: the pipeline places each batch's rows on the devices of the mesh.
mesh = Mesh(np.array(jax.devices()), ("batch",))
sharded = make_pipeline("cifar10", train_split, config.batch_spec(), data_dir=args.data_dir,
                        sharding=NamedSharding(mesh, PartitionSpec("batch")))
meshed, _ = fit(config, sharded, args.workdir / "mesh", mesh=mesh, progress=False)

# pmap: fit splits each global batch into (devices, 128 / devices, ...) and replicates the state.
pmapped, _ = fit(config, make_pipeline("cifar10", train_split, config.batch_spec(), data_dir=args.data_dir),
                 args.workdir / "pmap", pmap=True, progress=False)

# %% [markdown]
# ## The same parameters
# Up to float rounding: the sums over devices add the same numbers in another order.

# %%
for name, state in (("mesh", meshed), ("pmap", pmapped)):
    gaps = [float(np.linalg.norm(a - b) / np.linalg.norm(b))
            for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(single.params))]
    print(f"{name}: {int(state.step)} steps; largest relative difference from one device {max(gaps):.1e}")
