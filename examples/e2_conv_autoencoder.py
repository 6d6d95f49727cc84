# %% [markdown]
# # E2: a convolutional autoencoder on CIFAR-10, and interpolation in its latent space
#
# COMP90051 Workshop 8 compresses 32×32×3 images to a 4×4×32 code with three strided
# convolutions and rebuilds them with three transposed ones, then asks what lies *between* two
# images: blending their pixels, or blending their codes and decoding. Adam at 1e-3, the squared
# error summed per image, batch 128, 48 epochs.
#
#     python examples/e2_conv_autoencoder.py [--quick] [--data-dir D] [--workdir W]

# %%
import functools

import jax
import numpy as np
from _options import as_run, parse, split

from jaxae import experiments, figures, latent
from jaxae.data import BatchSpec, make_pipeline
from jaxae.train import TrainConfig, fit

args = parse("e2", "E2: a CIFAR-10 convolutional autoencoder and latent interpolation")

# %% [markdown]
# ## The data
# `ToTensor` pixels in [0, 1]; the autoencoder's target is its input, so labels go unused.

# %%
config = as_run(TrainConfig("cifar10_conv_ae", loss="sum_squared_error", optimizer="adam", learning_rate=1e-3,
                            epochs=48, batch_size=128, seed=0), args.quick)
train = make_pipeline("cifar10", split("train", args.quick), config.batch_spec(), data_dir=args.data_dir)
test = make_pipeline("cifar10", split("test", args.quick, 100), BatchSpec(128, shuffle=False), data_dir=args.data_dir)
images = np.asarray(next(test.epoch(0))["image"][:8])

# %% [markdown]
# ## The model
# The loss `MSELoss(reduction='sum') / batch_size` is `sum_squared_error`: per image, summed over
# its 3,072 values, then averaged over the batch.

# %%
# Shapes and the parameter count by abstract evaluation (`jax.eval_shape`): nothing is computed.
model = config.create_model()
variables = jax.eval_shape(model.init, jax.random.key(0), images)
codes = jax.eval_shape(functools.partial(model.apply, method="encode"), variables, images)
reconstructions = jax.eval_shape(functools.partial(model.apply, method="decode"), variables, codes)
print(f"{sum(p.size for p in jax.tree.leaves(variables)):,} parameters; codes {codes.shape}, "
      f"reconstructions {reconstructions.shape}")

# %% [markdown]
# ## Training
# `fit` runs the jitted step over each epoch, evaluates on the test split, logs
# `metrics.jsonl` and checkpoints every epoch; run it again and it resumes.

# %%
state, history = fit(config, train, args.workdir / "autoencoder", eval_data=test)

# %% [markdown]
# ## Reconstructions and interpolation
# Eight test images over their reconstructions; then between two test images x and x′, eight
# steps α from 0 to 1: in pixel space (1 − α)x + αx′, in latent space g((1 − α)f(x) + αf(x′)).

# %%
rows = {"original": images, "reconstruction": latent.reconstruct(model, state.params, images)}
figures.reconstruction_grid(rows, ncols=8).savefig(args.workdir / "reconstructions.png")
strips = {
    "pixel space": latent.interpolate_pixels(images[0], images[1], 8),
    "latent space": latent.interpolate_latent(model, state.params, images[0], images[1], 8),
}
figures.interpolation_strips(strips).savefig(args.workdir / "interpolation.png")
losses = {"train": [r["train_loss"] for r in history], "test": [r["test_loss"] for r in history]}
figures.epoch_curves(losses, "summed squared error per image").savefig(args.workdir / "loss.png")

# %% [markdown]
# ## Against the published numbers
# The workshop's printed test loss divides by the last *training* batch size (80) instead of
# each test batch's; the comparable number is the true mean per image.

# %%
numbers = {"autoencoder/train_loss@1": history[0]["train_loss"],
           f"autoencoder/train_loss@{len(history)}": history[-1]["train_loss"],
           f"autoencoder/test_loss@{len(history)}": history[-1]["test_loss"]}
print(experiments.against_published(experiments.get("E2").recipe, numbers))
