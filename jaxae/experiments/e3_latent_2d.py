"""E3: an MNIST convolutional autoencoder with a 2-D latent space (Raschka, STAT 453 L16.4), and its VAE.

Adam 5e-4, MSE, 20 epochs, batch 32 with ``drop_last`` (1,875 batches),
seed 123, pixels in [0, 1], no test evaluation. The notebook logs the batch
loss every 250 batches: 8 values per epoch.

"E3-VAE" (:data:`VAE_RECIPE`) trains the variational version
(``mnist_conv_vae_2d``) with the same optimiser, learning rate, batches,
epochs and seeds, so that the two latent planes differ only by the model and
its loss: per-image summed squared error plus the KL term, averaged over the
batch. It also evaluates on the test split each epoch (decoding the means).
No material publishes its numbers: the PyTorch rerun is the reference.
"""

from __future__ import annotations

import numpy as np

from jaxae import figures, latent
from jaxae.data import class_names
from jaxae.data.batches import PIXEL_TABLES
from jaxae.experiments.recipe import VAE_LOSS, Recipe, Reference, Stage, variational
from jaxae.experiments.runner import (
    SeedRun,
    at_epochs,
    save_elbo_terms,
    save_figure,
    save_prior_samples,
)
from jaxae.models import VariationalAutoencoder
from jaxae.train import TrainConfig

LOG_EVERY = 250
CHOSEN_POINT = (2.5, -2.5)  # decodes to a "9" in the notebook

RECIPE = Recipe(
    name="E3",
    title="MNIST convolutional autoencoder with a 2-D latent",
    stages=(
        Stage("autoencoder", TrainConfig(
            "mnist_conv_ae_2d", loss="mse", optimizer="adam", learning_rate=5e-4, epochs=20, batch_size=32
        ), test_split=None, drop_remainder=True),
    ),
    seeds=(123, 124, 125),
    references=(
        *(Reference(f"autoencoder/logged_loss@{e}", f"mean of the 8 logged batch losses, epoch {e}", value,
                    note="batches 0, 250, …, 1750; MSE per pixel")
          for e, value in ((1, 0.0822), (2, 0.0456), (10, 0.0418), (20, 0.0391))),
        Reference("autoencoder/batch_1750_loss@20", "batch 1750's train MSE, epoch 20", 0.0379,
                  note="a single batch of 32"),
    ),
)


def logged_losses(history) -> dict[int, list[float]]:
    """Per epoch, the batch losses the notebook prints: every ``LOG_EVERY``-th batch."""
    return {record["epoch"]: record["train_step_loss"][::LOG_EVERY] for record in history}


_VAE_EPOCHS = (1, 2, 10, 20)

VAE_RECIPE = variational(
    RECIPE, name="E3-VAE", title="E3's network as a variational autoencoder (2-D Gaussian code)",
    model="mnist_conv_vae_2d", train_epochs=_VAE_EPOCHS, test_split="test",
)


def run(recipe: Recipe, seed_run: SeedRun) -> dict[str, float]:
    """Trains the autoencoder (E3) or its VAE (E3-VAE), saves the figures, returns the headline numbers."""
    out, seed = seed_run.folder, seed_run.seed
    stage = recipe.stage("autoencoder").with_seed(seed)
    data = seed_run.load(stage)
    trained = seed_run.train(stage, data)

    model, params = stage.config.create_model(), trained.params
    images, labels = data.train
    pixels = PIXEL_TABLES[stage.transform][images]
    rows = {"original": pixels[:10], "reconstruction": latent.reconstruct(model, params, pixels[:10])}
    save_figure(figures.reconstruction_grid(rows, ncols=10), out / "reconstructions.png")
    codes = latent.encode(model, params, pixels)
    save_figure(figures.latent_scatter(codes, labels, class_names("mnist")), out / "latent_scatter.png")
    low, high = np.percentile(codes, 1, axis=0).min(), np.percentile(codes, 99, axis=0).max()
    grid = latent.decode_grid(model, params, low, high, 10)
    save_figure(figures.image_grid(grid, ncols=10, title=f"decoded grid over [{low:.1f}, {high:.1f}]²"),
                out / "latent_grid.png")
    variational = isinstance(model, VariationalAutoencoder)
    steps = [v for r in trained.history for v in r["train_step_loss"]]
    save_figure(figures.training_curves({"train": steps}, VAE_LOSS if variational else "MSE"), out / "train_loss.png")

    headline = {f"{stage.name}/seconds": trained.seconds}
    if variational:
        save_prior_samples(model, params, seed, out)
        save_elbo_terms(trained.history, out)
        last = trained.history[-1]["epoch"]
        headline.update(at_epochs(stage.name, trained.history, "train_loss", (*_VAE_EPOCHS, last)))
        headline.update(at_epochs(stage.name, trained.history, "test_loss", (20, last)))
        return headline
    chosen = latent.decode(model, params, np.array([CHOSEN_POINT], np.float32))
    save_figure(figures.image_grid(chosen, ncols=1, title=f"decoded {CHOSEN_POINT}"), out / "chosen_point.png")
    for epoch, logged in logged_losses(trained.history).items():
        headline[f"{stage.name}/logged_loss@{epoch}"] = float(np.mean(logged))
        if len(logged) > 1750 // LOG_EVERY:
            headline[f"{stage.name}/batch_1750_loss@{epoch}"] = logged[1750 // LOG_EVERY]
    return headline
