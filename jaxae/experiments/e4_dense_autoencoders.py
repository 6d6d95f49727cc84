"""E4: MNIST, an autoencoder-based PCA against 2- and 3-layer autoencoders (Assignment 9).

The material cuts off the optimiser and learning rate. jaxae uses Adam with
coupled L2 ``weight_decay=1e-5`` (as a derivative of the assignment does) and
the learning rate whose PyTorch curve comes closest to the published curves
(``examples/e4_learning_rate_search.py``; the result is in ``results/``).
"""

from __future__ import annotations

import numpy as np

from jaxae import figures, latent
from jaxae.data.batches import PIXEL_TABLES, VALUE_RANGES
from jaxae.experiments._e4_published import TRAIN_LOSS as PUBLISHED_TRAIN_LOSS
from jaxae.experiments.recipe import Recipe, Reference, Stage
from jaxae.experiments.runner import SeedRun, save_figure
from jaxae.train import TrainConfig

LEARNING_RATE = 1e-3
TEST_LOSS_CORRECTION = 78 / 79  # the material divides the sum of 79 batch means by 78


def _stage(name: str, model: str, epochs: int, **model_args) -> Stage:
    config = TrainConfig(
        model, loss="mse", optimizer="adam", learning_rate=LEARNING_RATE, weight_decay=1e-5,
        epochs=epochs, batch_size=128, model_args=tuple(model_args.items()),
    )
    return Stage(name, config, shuffle_test=True)


_PUBLISHED = {  # final train average loss, printed test loss
    "pca": (0.0840, 0.0828),
    "ae2": (0.0690, 0.0680),
    "ae2_wide": (0.0434, 0.0435),
    "ae3": (0.0535, 0.0529),
}
_LABELS = {
    "pca": "PCA autoencoder (16)",
    "ae2": "2-layer [32, 16]",
    "ae2_wide": "2-layer, second run ([128, 16])",
    "ae3": "3-layer [64, 32, 16]",
}


def _references() -> tuple[Reference, ...]:
    references = []
    for name, (train_loss, test_loss) in _PUBLISHED.items():
        references.append(Reference(f"{name}/train_loss", f"{_LABELS[name]}: final train loss", train_loss,
                                    note="mean of the last epoch's batch-mean MSE, [-1, 1] pixels"))
        references.append(Reference(
            f"{name}/test_loss", f"{_LABELS[name]}: test loss", test_loss, round(test_loss * TEST_LOSS_CORRECTION, 5),
            note="printed: sum of 79 batch means ÷ 78; corrected: ÷ 79",
        ))
    return tuple(references)


RECIPE = Recipe(
    name="E4",
    title="MNIST: autoencoder-based PCA vs 2- and 3-layer autoencoders",
    stages=(
        _stage("pca", "mnist_pca_ae", 100),
        _stage("ae2", "mnist_ae2", 100),
        _stage("ae2_wide", "mnist_ae2", 100, hidden_sizes=(128, 16)),
        _stage("ae3", "mnist_ae3", 150),
    ),
    seeds=(0, 1, 2),
    references=_references(),
)

_INTERPOLATION_PAIRS = ((1, 7), (4, 8))


def run(recipe: Recipe, seed_run: SeedRun) -> dict[str, float]:
    """Trains the four models, saves the figures, returns the headline numbers."""
    out, seed = seed_run.folder, seed_run.seed
    data = seed_run.load(recipe.stages[0])
    trained = {}
    for stage in recipe.stages:
        trained[stage.name] = seed_run.train(stage.with_seed(seed), data)

    transform = recipe.stages[0].transform
    pixels, value_range = PIXEL_TABLES[transform], VALUE_RANGES[transform]
    test_images = pixels[data.test[0][:49]]
    reconstructions = {"original": test_images}
    for stage in recipe.stages:
        model = stage.config.create_model()
        reconstructions[_LABELS[stage.name]] = latent.reconstruct(model, trained[stage.name].params, test_images)
    save_figure(figures.reconstruction_grid(reconstructions, ncols=10, value_range=value_range), out / "reconstructions.png")

    train_images, train_labels = data.train
    for a, b in _INTERPOLATION_PAIRS:
        x0, x1 = (pixels[train_images[np.argmax(train_labels == c)]] for c in (a, b))
        strips = {"pixels": latent.interpolate_pixels(x0, x1, 10)}
        for name in ("pca", "ae3"):
            model = recipe.stage(name).config.create_model()
            strips[_LABELS[name]] = latent.interpolate_latent(model, trained[name].params, x0, x1, 10)
        save_figure(figures.interpolation_strips(strips, value_range=value_range), out / f"interpolation_{a}_{b}.png")

    curves = {_LABELS[n]: [r["train_loss"] for r in t.history] for n, t in trained.items()}
    published = {_LABELS[n]: PUBLISHED_TRAIN_LOSS[n][: len(curves[_LABELS[n]])] for n in trained}
    save_figure(figures.epoch_curves(curves, "train MSE ([-1, 1] pixels)", reference=published), out / "train_loss.png")

    headline = {}
    for name, result in trained.items():
        last = result.history[-1]
        headline[f"{name}/train_loss"] = last["train_loss"]
        if "test_loss_batch_mean" in last:
            headline[f"{name}/test_loss"] = last["test_loss_batch_mean"]
        headline[f"{name}/seconds"] = result.seconds
    return headline
