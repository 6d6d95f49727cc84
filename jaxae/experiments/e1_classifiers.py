"""E1: CIFAR-10, a multilayer perceptron against a small CNN (COMP90051 Workshop 8).

SGD with momentum, cross-entropy, 10 epochs, batch 128, pixels in [0, 1]. The
workshop never calls ``model.eval()``, so its test numbers are taken with
dropout on; the recipe does the same (``dropout_at_eval``).
"""

from __future__ import annotations

from jaxae import figures
from jaxae.data import class_names
from jaxae.data.batches import PIXEL_TABLES
from jaxae.experiments.recipe import Recipe, Reference, Stage
from jaxae.experiments.runner import SeedRun, save_figure
from jaxae.train import TrainConfig

_SGD = dict(loss="cross_entropy", optimizer="sgd", learning_rate=1e-2, momentum=0.9, epochs=10, batch_size=128,
            dropout_at_eval=True)

PUBLISHED_TEST_ACCURACY = {
    "mlp": (0.3288, 0.3601, 0.3795, 0.3903, 0.4097, 0.4221, 0.4266, 0.4276, 0.4185, 0.4305),
    "cnn": (0.3376, 0.4462, 0.4881, 0.5367, 0.5581, 0.5743, 0.5850, 0.5913, 0.6100, 0.6044),
}
_LABELS = {"mlp": "MLP", "cnn": "CNN"}

RECIPE = Recipe(
    name="E1",
    title="CIFAR-10 classifiers: MLP vs small CNN",
    stages=(
        Stage("mlp", TrainConfig("cifar10_mlp", **_SGD)),
        Stage("cnn", TrainConfig("cifar10_cnn", **_SGD)),
    ),
    seeds=(0, 1, 2),
    references=(
        Reference("mlp/test_accuracy", "MLP test accuracy, epoch 10", 0.4305, kind="accuracy",
                  note="exact, over 10,000 test images, dropout on"),
        Reference("cnn/test_accuracy", "CNN test accuracy, epoch 10", 0.6044, kind="accuracy",
                  note="exact, over 10,000 test images (0.6100 after epoch 9)"),
        Reference("mlp/train_loss", "MLP train loss, epoch 10", 1.5600, note="mean of 391 batch-mean CEs"),
        Reference("cnn/train_loss", "CNN train loss, epoch 10", 0.9557, note="mean of 391 batch-mean CEs"),
        Reference("mlp/test_loss", "MLP test loss, epoch 10", 1.5848, note="mean of 79 batch means (the last of 16)"),
        Reference("cnn/test_loss", "CNN test loss, epoch 10", 1.1318, note="mean of 79 batch means (the last of 16)"),
    ),
)


def run(recipe: Recipe, seed_run: SeedRun) -> dict[str, float]:
    """Trains both classifiers, saves the figures, returns the headline numbers."""
    out, seed = seed_run.folder, seed_run.seed
    data = seed_run.load(recipe.stages[0])
    names = class_names("cifar10")
    images, labels = data.train
    save_figure(figures.image_grid(PIXEL_TABLES[recipe.stages[0].transform][images[:32]], labels[:32], names), out / "samples.png")

    trained = {stage.name: seed_run.train(stage.with_seed(seed), data) for stage in recipe.stages}

    for metric, label in (("loss", "train loss"), ("accuracy", "train accuracy")):
        curves = {_LABELS[n]: [v for r in t.history for v in r[f"train_step_{metric}"]] for n, t in trained.items()}
        save_figure(figures.training_curves(curves, label), out / f"train_{metric}.png")
    accuracy = {_LABELS[n]: [r["test_accuracy"] for r in t.history] for n, t in trained.items()}
    published = {_LABELS[n]: PUBLISHED_TEST_ACCURACY[n] for n in trained}
    save_figure(figures.epoch_curves(accuracy, "test accuracy", reference=published), out / "test_accuracy.png")

    headline = {}
    for name, result in trained.items():
        last = result.history[-1]
        headline.update({
            f"{name}/test_accuracy": last["test_accuracy"],
            f"{name}/train_loss": last["train_loss"],
            f"{name}/test_loss": last["test_loss_batch_mean"],
            f"{name}/seconds": result.seconds,
        })
    return headline
