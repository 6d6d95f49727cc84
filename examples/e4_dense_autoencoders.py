# %% [markdown]
# # E4: MNIST, an autoencoder-based PCA against deeper autoencoders
#
# Assignment 9 compares, at one code size (16), a "PCA" autoencoder (one Linear layer each way)
# with 2- and 3-layer autoencoders that have ReLUs between their layers, on MNIST scaled to
# [−1, 1] with a tanh output. Its optimiser is cut off in the material: jaxae uses Adam at 1e-3
# with PyTorch's coupled weight decay 1e-5, the rate whose curves come closest to the published
# ones (`examples/e4_learning_rate_search.py`). MSE, batch 128, 100 epochs (150 for 3 layers).
#
#     python examples/e4_dense_autoencoders.py [--quick] [--data-dir D] [--workdir W]

# %%
import jax
import numpy as np
from _options import as_run, parse, split

from jaxae import experiments, figures, latent
from jaxae.data import BatchSpec, load_split, make_pipeline, normalize
from jaxae.train import TrainConfig, fit

args = parse("e4", "E4: MNIST autoencoder-based PCA against 2- and 3-layer autoencoders")

# %% [markdown]
# ## The data
# `Normalize(0.5, 0.5)` maps pixels to [−1, 1]. The assignment shuffles the test split too.

# %%
test = make_pipeline("mnist", split("test", args.quick, 100), BatchSpec(128, seed=10_000), transform="normalize",
                     data_dir=args.data_dir)
train_images, train_labels = load_split("mnist", split("train", args.quick), args.data_dir)
test_images = np.asarray(normalize(load_split("mnist", split("test", args.quick, 100), args.data_dir)[0][:49]))

# %% [markdown]
# ## The models
# One class, `DenseAutoencoder`, makes all of them from the encoder's widths; the decoder mirrors them.

# %%
models = {  # name: (registry model, its arguments, epochs)
    "pca": ("mnist_pca_ae", (), 100),
    "ae2": ("mnist_ae2", (), 100),
    "ae2_wide": ("mnist_ae2", (("hidden_sizes", (128, 16)),), 100),
    "ae3": ("mnist_ae3", (), 150),
}
configs = {
    name: as_run(TrainConfig(model, loss="mse", optimizer="adam", learning_rate=1e-3, weight_decay=1e-5,
                             epochs=epochs, batch_size=128, model_args=model_args), args.quick)
    for name, (model, model_args, epochs) in models.items()
}
for name, config in configs.items():
    model = config.create_model()
    variables = jax.eval_shape(model.init, jax.random.key(0), test_images[:1])
    print(f"{name}: {model.hidden_sizes}, {sum(p.size for p in jax.tree.leaves(variables)):,} parameters")

# %% [markdown]
# ## Training
# One `fit` per model, each in its own folder of the work dir (metrics, checkpoints).

# %%
trained = {}
for name, config in configs.items():
    train = make_pipeline("mnist", split("train", args.quick), config.batch_spec(), transform="normalize",
                          data_dir=args.data_dir)
    trained[name] = fit(config, train, args.workdir / name, eval_data=test)

# %% [markdown]
# ## Reconstructions, interpolation and the training curves
# 49 test images and each model's reconstructions; between the first "1" and the first "7" of
# the training set (and a "4" and an "8"), ten steps in pixel space and in the codes of the PCA
# and the 3-layer model.

# %%
rows = {"original": test_images}
for name, (state, _) in trained.items():
    rows[name] = latent.reconstruct(configs[name].create_model(), state.params, test_images)
figures.reconstruction_grid(rows, ncols=10, value_range=(-1, 1)).savefig(args.workdir / "reconstructions.png")
for a, b in ((1, 7), (4, 8)):
    x0, x1 = (np.asarray(normalize(train_images[np.argmax(train_labels == digit)])) for digit in (a, b))
    strips = {"pixels": latent.interpolate_pixels(x0, x1, 10)}
    for name in ("pca", "ae3"):
        strips[name] = latent.interpolate_latent(configs[name].create_model(), trained[name][0].params, x0, x1, 10)
    figures.interpolation_strips(strips, value_range=(-1, 1)).savefig(args.workdir / f"interpolation_{a}_{b}.png")
curves = {name: [record["train_loss"] for record in history] for name, (_, history) in trained.items()}
figures.epoch_curves(curves, "train MSE ([-1, 1] pixels)").savefig(args.workdir / "train_loss.png")

# %% [markdown]
# ## Against the published numbers
# The assignment's test loss sums 79 batch means and divides by 78; the comparable number is
# their mean.

# %%
numbers = {}
for name, (_, history) in trained.items():
    numbers |= {f"{name}/train_loss": history[-1]["train_loss"], f"{name}/test_loss": history[-1]["test_loss_batch_mean"]}
print(experiments.against_published(experiments.get("E4").recipe, numbers))
