# %% [markdown]
# # E3 the NNX way: a model that owns its weights
#
# The same experiment as `e3_latent_2d.py` (an MNIST convolutional autoencoder with a code of
# two numbers; Adam at 5e-4, MSE, batch 32, 20 epochs, seed 123), written with Flax NNX, the API
# Flax's documentation leads with: the model is an object holding its weights, called as
# `model(images)` like a PyTorch module; `nnx.Optimizer` updates it in place; `nnx.jit` compiles
# a step that takes the model and the optimiser themselves; Orbax saves `nnx.state(model)`.
#
#     python examples/e3_nnx.py [--quick] [--data-dir D] [--workdir W]

# %%
import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
from _options import as_run, parse, split
from flax import nnx

from jaxae import experiments, figures, latent, losses, models
from jaxae import nnx as jaxae_nnx
from jaxae.data import BatchSpec, class_names, gather_batch, load_split, to_tensor
from jaxae.train import TrainConfig

args = parse("e3_nnx", "E3 in Flax NNX: an MNIST convolutional autoencoder with a 2-D latent space")
# E3's recipe, as the Linen example declares it; this loop reads its numbers from it.
config = as_run(TrainConfig("mnist_conv_ae_2d", loss="mse", optimizer="adam", learning_rate=5e-4,
                            epochs=20, batch_size=32, seed=123), args.quick)
epochs, batch_size, seed = config.epochs, config.batch_size, config.seed

# %% [markdown]
# ## The data
# `ToTensor` pixels in [0, 1]. The batches are the Linen example's: the same shuffled order
# (tf.data's, for seed 123), gathered on the device from the uint8 split.

# %%
images, labels = load_split("mnist", split("train", args.quick), args.data_dir)
device_images = jax.device_put(images)
spec = BatchSpec(batch_size, seed=seed, drop_remainder=True)

# %% [markdown]
# ## The model
# `jaxae.nnx.create` builds E3's network as an `nnx.Module`, initialised at once with PyTorch's
# default initialisation. Its layers are the Linen model's, through Flax's bridge: one
# definition, tested against PyTorch.

# %%
model = jaxae_nnx.create("mnist_conv_ae_2d", rngs=nnx.Rngs(seed))
print(f"{sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param))):,} parameters")
optimizer = nnx.Optimizer(model, optax.adam(config.learning_rate), wrt=nnx.Param)

# %% [markdown]
# ## Training
# The step reads like PyTorch's loop body: the loss of the model's output, its gradient with
# respect to the model's parameters, and an optimiser update. `nnx.jit` compiles it once and
# updates `model` and `optimizer` in place.

# %%
@nnx.jit
def train_step(model, optimizer, pixels):
    def loss_fn(model):
        return losses.mse(model(pixels), pixels).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


checkpointer = ocp.StandardCheckpointer()
step_losses = []
for epoch in range(epochs):
    indices, masks = spec.plan(len(images), epoch)
    for rows, mask in zip(indices, masks):
        batch = gather_batch(device_images, labels, rows, mask, transform="to_tensor")
        step_losses.append(float(train_step(model, optimizer, batch["image"])))
    print(f"epoch {epoch + 1}/{epochs}: mean batch loss {np.mean(step_losses[-len(indices):]):.4f}")
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
