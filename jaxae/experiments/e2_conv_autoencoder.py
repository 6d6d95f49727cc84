"""E2: a CIFAR-10 convolutional autoencoder, and latent against pixel interpolation (COMP90051 Workshop 8).

Adam 1e-3, summed squared error per image (``MSELoss(reduction='sum') /
batch_size``), 48 epochs, batch 128, pixels in [0, 1].

"E2-VAE" (:data:`VAE_RECIPE`) trains the variational version
(``cifar10_conv_vae``) with the same recipe; its loss adds the KL term to
E2's, on the same scale (per image, averaged over the batch). No material
publishes its numbers: the PyTorch rerun is the reference.
"""

from __future__ import annotations

from jaxae import figures, latent
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

PRINTED_TEST_DIVISOR = 80 * 79  # the workshop divides by the last *training* batch's size, 80, and 79 batches

RECIPE = Recipe(
    name="E2",
    title="CIFAR-10 convolutional autoencoder + latent interpolation",
    stages=(
        Stage("autoencoder", TrainConfig(
            "cifar10_conv_ae", loss="sum_squared_error", optimizer="adam", learning_rate=1e-3, epochs=48, batch_size=128
        )),
    ),
    seeds=(0, 1, 2),
    references=(
        Reference("autoencoder/train_loss@1", "train loss, epoch 1", 77.8003,
                  note="mean over batches of the per-image summed squared error"),
        Reference("autoencoder/train_loss@48", "train loss, epoch 48", 6.9239,
                  note="mean over batches of the per-image summed squared error"),
        Reference("autoencoder/test_loss@48", "test loss, epoch 48", 10.8036, 6.828,
                  note="printed total ÷ (80·79), a bug; true per-image mean = printed × 0.632"),
    ),
)


VAE_RECIPE = variational(
    RECIPE, name="E2-VAE", title="E2's network as a variational autoencoder (4×4×32 Gaussian code)",
    model="cifar10_conv_vae", train_epochs=(1, 48),
)


def run(recipe: Recipe, seed_run: SeedRun) -> dict[str, float]:
    """Trains the autoencoder (E2 or E2-VAE), saves the figures, returns the headline numbers."""
    out, seed = seed_run.folder, seed_run.seed
    stage = recipe.stage("autoencoder").with_seed(seed)
    data = seed_run.load(stage)
    trained = seed_run.train(stage, data)

    model = stage.config.create_model()
    test_images = PIXEL_TABLES[stage.transform][data.test[0][:8]]
    rows = {"original": test_images, "reconstruction": latent.reconstruct(model, trained.params, test_images)}
    save_figure(figures.reconstruction_grid(rows, ncols=8), out / "reconstructions.png")
    x0, x1 = test_images[0], test_images[1]
    strips = {
        "pixel space": latent.interpolate_pixels(x0, x1, 8),
        "latent space": latent.interpolate_latent(model, trained.params, x0, x1, 8),
    }
    save_figure(figures.interpolation_strips(strips), out / "interpolation.png")
    if isinstance(model, VariationalAutoencoder):
        save_prior_samples(model, trained.params, seed, out)
        save_elbo_terms(trained.history, out)
    save_figure(
        figures.epoch_curves({"train": [r["train_loss"] for r in trained.history],
                              "test": [r["test_loss"] for r in trained.history]},
                             VAE_LOSS if isinstance(model, VariationalAutoencoder) else "summed squared error per image"),
        out / "loss.png",
    )

    history, last = trained.history, trained.history[-1]["epoch"]
    return {
        **at_epochs(stage.name, history, "train_loss", (1, 48, last)),
        **at_epochs(stage.name, history, "test_loss", (48, last)),
        f"{stage.name}/seconds": trained.seconds,
    }
