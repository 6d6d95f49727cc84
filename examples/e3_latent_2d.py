# %% [markdown]
# # E3: an MNIST convolutional autoencoder with a two-number code
#
# Sebastian Raschka's STAT 453 lecture L16.4 squeezes each 28×28 digit through a code of just
# two numbers, so that the whole latent space can be drawn: the training set becomes a scatter
# of digits, and any point of the plane decodes to an image. Adam at 5e-4, MSE, batch 32 with
# `drop_last`, 20 epochs, seed 123; the notebook logs a batch loss every 250 batches.
#
#     python examples/e3_latent_2d.py [--quick] [--data-dir D] [--workdir W]

# %%
import jax
import jax.numpy as jnp
import numpy as np
from _options import as_run, parse, split

from jaxae import experiments, figures, latent
from jaxae.data import DeviceResidentPipeline, class_names, load_split, to_tensor
from jaxae.train import TrainConfig, fit

args = parse("e3", "E3: an MNIST convolutional autoencoder with a 2-D latent space")

# %% [markdown]
# ## The data
# `ToTensor` pixels in [0, 1]; 60,000 training images make 1,875 batches of 32, and the
# notebook's `drop_last=True` drops nothing here (the quick run's 256 images make 8).

# %%
config = as_run(TrainConfig("mnist_conv_ae_2d", loss="mse", optimizer="adam", learning_rate=5e-4,
                            epochs=20, batch_size=32, seed=123), args.quick)
images, labels = load_split("mnist", split("train", args.quick), args.data_dir)
print(images.shape, images.dtype, labels[:10])

# %% [markdown]
# ## The model
# Four convolutions and a Linear layer down to 2 numbers; a Linear layer and four transposed
# convolutions back up to 29×29, of which the top-left 28×28 are kept before the sigmoid.

# %%
# The parameter count by abstract evaluation (`jax.eval_shape`): nothing is computed.
model = config.create_model()
variables = jax.eval_shape(model.init, jax.random.key(0), jax.ShapeDtypeStruct((1, 28, 28, 1), jnp.float32))
print(f"{sum(p.size for p in jax.tree.leaves(variables)):,} parameters, code shape {model.latent_shape}")

# %% [markdown]
# ## Training
# The device-resident pipeline keeps the uint8 split on the device and gathers each batch there.

# %%
train = DeviceResidentPipeline(images, labels, config.batch_spec(drop_remainder=True), "to_tensor")
state, history = fit(config, train, args.workdir / "autoencoder")
pixels = np.asarray(to_tensor(images))

# %% [markdown]
# ## The latent space
# The codes of every training image, coloured by digit; a grid of codes over the range they
# cover, decoded; and the point (2.5, −2.5), which decodes to a "9" in the notebook (where each
# digit lands differs from run to run).

# %%
codes = latent.encode(model, state.params, pixels)
figures.latent_scatter(codes, labels, class_names("mnist")).savefig(args.workdir / "latent_scatter.png")
low, high = np.percentile(codes, 1), np.percentile(codes, 99)
grid = latent.decode_grid(model, state.params, low, high, 10)
figures.image_grid(grid, ncols=10, title=f"decoded over [{low:.1f}, {high:.1f}]²").savefig(args.workdir / "latent_grid.png")
chosen = latent.decode(model, state.params, np.array([[2.5, -2.5]], np.float32))
figures.image_grid(chosen, ncols=1, title="decoded (2.5, -2.5)").savefig(args.workdir / "chosen_point.png")
rows = {"original": pixels[:10], "reconstruction": latent.reconstruct(model, state.params, pixels[:10])}
figures.reconstruction_grid(rows, ncols=10).savefig(args.workdir / "reconstructions.png")
steps = [loss for record in history for loss in record["train_step_loss"]]
figures.training_curves({"train": steps}, "MSE").savefig(args.workdir / "train_loss.png")

# %% [markdown]
# ## Against the published numbers
# The notebook prints single batch losses (batches 0, 250, …, 1750 of each epoch); the means of
# those eight per epoch, and batch 1750's, compare with ours taken at the same steps.

# %%
numbers = {}
for record in history:
    logged = record["train_step_loss"][::250]
    numbers[f"autoencoder/logged_loss@{record['epoch']}"] = float(np.mean(logged))
    if len(logged) == 8:
        numbers[f"autoencoder/batch_1750_loss@{record['epoch']}"] = logged[7]
print(experiments.against_published(experiments.get("E3").recipe, numbers))
