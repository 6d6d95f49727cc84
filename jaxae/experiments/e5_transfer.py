"""E5: a CIFAR-10 conv autoencoder for representation learning, then transfer (IIT Kharagpur Lecture 32).

The autoencoder trains 5 epochs (Adam 1e-3, MSE, batch 2000, pixels in
[0, 1]); then a classifier made of its trained encoder and a fresh linear
head is fine-tuned for 5 epochs with a fresh Adam. The lecture divides its
printed train losses by 30 (MNIST's 60000 / 2000) where CIFAR-10 has 25
batches: the comparable true means are the printed values × 1.2.

The lecture's code upsamples with ``align_corners`` unset, which PyTorch >= 0.4
reads as False (:data:`RECIPE`); the lecture itself ran PyTorch <= 0.3, whose
bilinear upsampling behaved as ``align_corners=True`` (:data:`ALIGN_CORNERS_RECIPE`,
experiment "E5-align-corners").
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from jaxae import figures
from jaxae.data import class_names
from jaxae.experiments.recipe import Recipe, Reference, Stage
from jaxae.experiments.runner import SeedRun, at_epochs, save_figure
from jaxae.models import classifier_from_autoencoder
from jaxae.train import TrainConfig, Trainer

PRINTED_LOSS_CORRECTION = 30 / 25
PUBLISHED_CLASS_ACCURACY = (0.660, 0.681, 0.413, 0.324, 0.318, 0.580, 0.728, 0.693, 0.633, 0.622)  # another run

_ADAM = dict(optimizer="adam", learning_rate=1e-3, epochs=5, batch_size=2000)


def _references() -> tuple[Reference, ...]:
    references = []
    for epoch, printed in enumerate((0.148075, 0.052894, 0.038849), 1):
        references.append(Reference(
            f"autoencoder/train_loss@{epoch}", f"autoencoder train loss, epoch {epoch}", printed,
            round(printed * PRINTED_LOSS_CORRECTION, 4), note="printed: sum of 25 batch means ÷ 30; corrected ×1.2",
        ))
    for epoch, accuracy in enumerate((0.3823, 0.4576, 0.5010, 0.5213, 0.5572), 1):
        references.append(Reference(f"classifier/test_accuracy@{epoch}", f"classifier test accuracy, epoch {epoch}",
                                    accuracy, kind="accuracy", note="over 10,000 test images"))
    for epoch, printed in enumerate((1.6655, 1.3517, 1.2068, 1.1138, 1.0426), 1):
        references.append(Reference(
            f"classifier/train_loss@{epoch}", f"classifier train loss, epoch {epoch}", printed,
            round(printed * PRINTED_LOSS_CORRECTION, 4), note="printed: ÷ 30; corrected ×1.2",
        ))
    for name, accuracy in zip(class_names("cifar10"), PUBLISHED_CLASS_ACCURACY):
        references.append(Reference(f"classifier/class_accuracy/{name}", f"classifier test accuracy, {name}s", accuracy,
                                    kind="accuracy", note="another run of the lecture (56.52 % overall)"))
    return tuple(references)


RECIPE = Recipe(
    name="E5",
    title="CIFAR-10 conv autoencoder for representation learning, then transfer",
    stages=(
        Stage("autoencoder", TrainConfig("cifar10_fc_conv_ae", loss="mse", **_ADAM)),  # test MSE per epoch
        Stage("classifier", TrainConfig("cifar10_fc_conv_classifier", loss="cross_entropy", **_ADAM),
              starts_from="autoencoder"),
    ),
    seeds=(0, 1, 2),
    references=_references(),
)

ALIGN_CORNERS_RECIPE = Recipe(
    name="E5-align-corners",
    title="E5 with the autoencoder upsampling as PyTorch <= 0.3 did (align_corners=True)",
    stages=(
        dataclasses.replace(RECIPE.stages[0], config=dataclasses.replace(
            RECIPE.stages[0].config, model_args=(("align_corners", True),)
        )),
        RECIPE.stages[1],
    ),
    seeds=(0,),
    references=RECIPE.references,
)


def _first_layer(params) -> np.ndarray:
    return np.asarray(params["encoder"]["conv1"]["kernel"])


def run(recipe: Recipe, seed_run: SeedRun) -> dict[str, float]:
    """Pretrains the autoencoder, fine-tunes the classifier, saves the figures, returns the headline numbers."""
    out, seed = seed_run.folder, seed_run.seed
    pretrain, finetune = (stage.with_seed(seed) for stage in recipe.stages)
    data = seed_run.load(finetune)
    initial = Trainer.create(pretrain.config).init_state().params
    autoencoder = seed_run.train(pretrain, data)
    head_key = jax.random.fold_in(jax.random.key(seed), 1)
    start = classifier_from_autoencoder({"params": autoencoder.params}, head_key, finetune.config.create_model())
    classifier = seed_run.train(finetune, data, initial_params=start["params"])

    save_figure(figures.epoch_curves({
        "autoencoder (MSE)": [r["train_loss"] for r in autoencoder.history],
        "classifier (cross-entropy)": [r["train_loss"] for r in classifier.history],
    }, "train loss"), out / "train_loss.png")
    accuracy = [r["test_accuracy"] for r in classifier.history]
    published = [ref.published for ref in recipe.references if ref.key.startswith("classifier/test_accuracy")]
    save_figure(figures.epoch_curves({"classifier": accuracy}, "test accuracy", reference={"classifier": published}),
                out / "test_accuracy.png")
    k_init, k_ae, k_clf = _first_layer(initial), _first_layer(autoencoder.params), _first_layer(classifier.params)
    save_figure(figures.kernel_grid({"initial": k_init, "after autoencoder": k_ae, "difference": k_ae - k_init}),
                out / "kernels_autoencoder.png")
    save_figure(figures.kernel_grid({"after autoencoder": k_ae, "after fine-tuning": k_clf, "difference": k_clf - k_ae}),
                out / "kernels_classifier.png")
    names = class_names("cifar10")
    per_class = {"this run": classifier.history[-1]["test_class_accuracy"], "published (another run)": PUBLISHED_CLASS_ACCURACY}
    save_figure(figures.class_accuracy_bars(per_class, names), out / "class_accuracy.png")
    (out / "class_accuracy.md").write_text(figures.class_accuracy_table(per_class, names) + "\n")

    headline = {
        **at_epochs(pretrain.name, autoencoder.history, "train_loss", range(1, 6)),
        **at_epochs(finetune.name, classifier.history, "train_loss", range(1, 6)),
        **at_epochs(finetune.name, classifier.history, "test_accuracy", range(1, 6)),
        f"{pretrain.name}/seconds": autoencoder.seconds,
        f"{finetune.name}/seconds": classifier.seconds,
    }
    headline.update({f"classifier/class_accuracy/{n}": a for n, a in zip(names, classifier.history[-1]["test_class_accuracy"])})
    return headline
