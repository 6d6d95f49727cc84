# %% [markdown]
# # E3 the NNX way: a model that owns its weights
#
# The same experiment as `e3_latent_2d.py` (an MNIST convolutional autoencoder with a code of
# two numbers; Adam at 5e-4, MSE, batch 32, 20 epochs, seed 123), written with Flax NNX, the API
# Flax's documentation leads with: the model is an object holding its weights, called as
# `model(images)` like a PyTorch module; `nnx.Optimizer` updates it in place; the training step
# is compiled once, as fast as `jaxae.train.fit`'s; Orbax saves `nnx.state(model)`.
#
#     python examples/e3_nnx.py [--quick] [--epochs N] [--data-dir D] [--workdir W]

# %%
import time

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
from _options import as_run, parse, split
from flax import nnx

from jaxae import cpu, experiments, figures, latent, losses, models
from jaxae import nnx as jaxae_nnx
from jaxae.data import BatchSpec, DeviceResidentPipeline, class_names, load_split, to_tensor
from jaxae.train import TrainConfig, process_settings

args = parse("e3_nnx", "E3 in Flax NNX: an MNIST convolutional autoencoder with a 2-D latent space", epochs=20)
# E3's recipe, as the Linen example declares it; this loop reads its numbers from it (--epochs shortens it).
config = as_run(TrainConfig("mnist_conv_ae_2d", loss="mse", optimizer="adam", learning_rate=5e-4,
                            epochs=20, batch_size=32, seed=123), args.quick)
epochs, batch_size, seed = args.epochs, config.batch_size, config.seed

# %% [markdown]
# ## The data
# `ToTensor` pixels in [0, 1]. The batches are the Linen example's: the same shuffled order
# (tf.data's, for seed 123), gathered on the device from the uint8 split by a jitted gather.

# %%
images, labels = load_split("mnist", split("train", args.quick), args.data_dir)
batches = DeviceResidentPipeline(images, labels, BatchSpec(batch_size, seed=seed, drop_remainder=True))

# %% [markdown]
# ## The model
# `jaxae.nnx.create` builds E3's network as an `nnx.Module`, initialised at once with PyTorch's
# default initialisation. Its layers are the Linen model's, through Flax's bridge: one
# definition, tested against PyTorch. (`jaxae.train.fit` trains NNX models too:
# `your_own_model.py`.)

# %%
model = jaxae_nnx.create("mnist_conv_ae_2d", rngs=nnx.Rngs(seed))
print(f"{sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param))):,} parameters")
optimizer = nnx.Optimizer(model, optax.adam(config.learning_rate), wrt=nnx.Param)

# %% [markdown]
# ## Training
# The step reads like PyTorch's loop body: the loss of the model's output, its gradient with
# respect to the model's parameters, and an optimiser update of the model in place.
#
# Two habits make it as fast as `fit`'s compiled step (docs/performance.md measures both):
# - **Split once, merge inside.** `nnx.jit` walks the model's object graph on every call to find
#   its state, a cost comparable to a small model's whole step. Instead, `nnx.split` the model and
#   optimiser once into a static graph and a pytree of arrays, jit a pure function of the arrays
#   that `nnx.merge`s them inside, and donate the old arrays to the new ones.
# - **Never wait for a loss.** `float(loss)` on every step makes Python wait for the device before
#   dispatching the next step; keep the loss arrays and read them once an epoch.
#
# `jaxae.cpu.jit_with_cpu_options` is `jax.jit` with the XLA:CPU options jaxae's steps compile
# with (on GPU and TPU, `jax.jit` itself), and `jaxae.train.process_settings()` makes the
# process-wide settings `fit` makes: the persistent compilation cache, and on CPU keeping the host
# memory XLA frees for reuse instead of faulting it in again on every step (1.5× on this step).

# %%
process_settings()
graphdef, state = nnx.split((model, optimizer))


def train_step(state, batch):
    model, optimizer = nnx.merge(graphdef, state)

    def loss_fn(model):
        return losses.mse(model(batch["image"]), batch["image"]).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return nnx.state((model, optimizer)), loss


train_step = cpu.jit_with_cpu_options(train_step, donate_argnums=0)

checkpointer = ocp.StandardCheckpointer()
step_losses = []
for epoch in range(epochs):
    started, epoch_losses = time.perf_counter(), []
    for step, batch in enumerate(batches.epoch(epoch)):
        state, loss = train_step(state, batch)
        epoch_losses.append(loss)
        if step == 0:
            jax.block_until_ready(loss)  # the first step compiles: timed apart
            first_step_done = time.perf_counter()
    step_losses += [float(loss) for loss in jax.device_get(epoch_losses)]
    steady = (time.perf_counter() - first_step_done) / max(1, len(epoch_losses) - 1)
    print(f"epoch {epoch + 1}/{epochs}: mean batch loss {np.mean(step_losses[-len(epoch_losses):]):.4f}, "
          f"{steady * 1e3:.1f} ms/step after the first (which compiled in {first_step_done - started:.1f} s)")
    nnx.update(model, state[0])  # the trained arrays back into the model object
    checkpointer.save(args.workdir / "checkpoints" / f"epoch{epoch + 1}", nnx.state(model, nnx.Param), force=True)
checkpointer.wait_until_finished()

# %% [markdown]
# ## Restoring
# A fresh model, its shapes by abstract evaluation (nothing computed), gets the saved weights.

# %%
restored = jaxae_nnx.create("mnist_conv_ae_2d", rngs=nnx.Rngs(0))
abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, nnx.state(restored, nnx.Param))
nnx.update(restored, checkpointer.restore(args.workdir / "checkpoints" / f"epoch{epochs}", abstract))
pixels = np.asarray(to_tensor(images))
assert np.array_equal(restored.reconstruct(pixels[:8]), model.reconstruct(pixels[:8]))

# %% [markdown]
# ## The latent space
# The same figures as the Linen example: the training set's codes by digit, a decoded grid,
# the point (2.5, −2.5), reconstructions and the loss. Codes come from the NNX model's own
# `code`, jitted; the grid and batch helpers of `jaxae.latent` take the Linen form of the same
# weights (`jaxae.nnx.linen_variables`).

# %%
code = nnx.jit(lambda model, x: model.code(x))
codes = np.concatenate([code(model, pixels[i:i + 1000]) for i in range(0, len(pixels), 1000)])
figures.latent_scatter(codes, labels, class_names("mnist")).savefig(args.workdir / "latent_scatter.png")
linen_model, params = models.create("mnist_conv_ae_2d"), jaxae_nnx.linen_variables(model)["params"]
low, high = np.percentile(codes, 1), np.percentile(codes, 99)
grid = latent.decode_grid(linen_model, params, low, high, 10)
figures.image_grid(grid, ncols=10, title=f"decoded over [{low:.1f}, {high:.1f}]²").savefig(args.workdir / "latent_grid.png")
chosen = np.asarray(model.decode(np.array([[2.5, -2.5]], np.float32)))
figures.image_grid(chosen, ncols=1, title="decoded (2.5, -2.5)").savefig(args.workdir / "chosen_point.png")
rows = {"original": pixels[:10], "reconstruction": np.asarray(model.reconstruct(pixels[:10]))}
figures.reconstruction_grid(rows, ncols=10).savefig(args.workdir / "reconstructions.png")
figures.training_curves({"train": step_losses}, "MSE").savefig(args.workdir / "train_loss.png")

# %% [markdown]
# ## Against the published numbers
# As in the Linen example: the means of the losses the notebook logs (every 250th batch).

# %%
steps_per_epoch = len(step_losses) // epochs
numbers = {f"autoencoder/logged_loss@{epoch + 1}": float(np.mean(step_losses[epoch * steps_per_epoch:][:steps_per_epoch:250]))
           for epoch in range(epochs)}
print(experiments.against_published(experiments.get("E3").recipe, numbers))
