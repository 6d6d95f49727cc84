"""What an experiment is: its training stages, the seeds it runs and the numbers it is compared on."""

from __future__ import annotations

import dataclasses

from jaxae.data.batches import BatchSpec
from jaxae.errors import InputError
from jaxae.models import spec as model_spec
from jaxae.train import TrainConfig

# The quick variant: a few steps on a few images, for tests and smoke runs.
QUICK_TRAIN_EXAMPLES = 256
QUICK_TEST_EXAMPLES = 100
QUICK_BATCH_SIZE = 64


def quick_config(config: TrainConfig) -> TrainConfig:
    """``config`` shortened for the quick variant: one epoch of batches of at most :data:`QUICK_BATCH_SIZE`."""
    return dataclasses.replace(config, epochs=1, batch_size=min(config.batch_size, QUICK_BATCH_SIZE))


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training run of an experiment: a model, its data and its optimiser.

    Attributes:
      name: the stage's name in the experiment ("mlp", "autoencoder", ...).
      config: model, loss, optimiser, epochs, batch size (its seed is set per run).
      train_split, test_split: TFDS split names; ``test_split=None``: no test
        evaluation (E3).
      shuffle_test: shuffle the test split each evaluation (E4 did).
      drop_remainder: drop the last partial training batch (E3's drop_last).
      starts_from: the stage whose trained weights this one starts from (E5's
        classifier starts from its autoencoder's encoder), if any.
    """

    name: str
    config: TrainConfig
    train_split: str = "train"
    test_split: str | None = "test"
    shuffle_test: bool = False
    drop_remainder: bool = False
    starts_from: str | None = None

    @property
    def dataset(self) -> str:
        """The TFDS name of the data the stage trains on: its model's (:class:`~jaxae.models.ModelSpec`)."""
        return model_spec(self.config.model).dataset

    @property
    def transform(self) -> str:
        """How the stage turns uint8 pixels into its model's input: the model's (:class:`~jaxae.models.ModelSpec`)."""
        return model_spec(self.config.model).transform

    def with_seed(self, seed: int) -> Stage:
        return dataclasses.replace(self, config=dataclasses.replace(self.config, seed=seed))

    def train_batches(self) -> BatchSpec:
        return self.config.batch_spec(drop_remainder=self.drop_remainder)

    def test_batches(self) -> BatchSpec:
        # A different order seed than training's, so a shuffled test split is not in the train order.
        return BatchSpec(self.config.batch_size, shuffle=self.shuffle_test, seed=self.config.seed + 10_000)

    def quick(self) -> Stage:
        """One epoch of small batches on the first images of each split."""
        return dataclasses.replace(
            self,
            config=quick_config(self.config),
            train_split=f"{self.train_split}[:{QUICK_TRAIN_EXAMPLES}]",
            test_split=None if self.test_split is None else f"{self.test_split}[:{QUICK_TEST_EXAMPLES}]",
        )

    def with_config(self, **changes) -> Stage:
        """The stage with these :class:`~jaxae.train.TrainConfig` fields changed."""
        return dataclasses.replace(self, config=dataclasses.replace(self.config, **changes))


@dataclasses.dataclass(frozen=True)
class Reference:
    """A published number and how to read it.

    Attributes:
      key: the name of the matching measured number (see each experiment's ``headline``).
      label: what it is, for the table.
      published: the number as the material prints it.
      comparable: the same quantity as jaxae measures it, after correcting the
        original's bugs (e.g. a wrong divisor); defaults to ``published``.
      note: the exact meaning and the correction, for the table.
      kind: "accuracy" (a fraction), "loss" or "seconds"; sets the agreement tolerance.
    """

    key: str
    label: str
    published: float | None
    comparable: float | None = None
    note: str = ""
    kind: str = "loss"

    @property
    def target(self) -> float | None:
        return self.published if self.comparable is None else self.comparable


@dataclasses.dataclass(frozen=True)
class Recipe:
    """An experiment (``docs/experiments.md``): its stages, seeds and reference numbers."""

    name: str
    title: str
    stages: tuple[Stage, ...]
    seeds: tuple[int, ...]
    references: tuple[Reference, ...]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise InputError(f"{self.name} has no stage {name!r}; its stages: {[s.name for s in self.stages]}")

    def quick(self) -> Recipe:
        return dataclasses.replace(self, stages=tuple(s.quick() for s in self.stages), seeds=self.seeds[:1])

    def with_config(self, **changes) -> Recipe:
        """Every stage with these :class:`~jaxae.train.TrainConfig` fields changed."""
        return dataclasses.replace(self, stages=tuple(s.with_config(**changes) for s in self.stages))

    def with_max_epochs(self, epochs: int) -> Recipe:
        """Every stage cut to at most ``epochs`` (partial runs where full ones cost too much)."""
        return dataclasses.replace(
            self, stages=tuple(s.with_config(epochs=min(epochs, s.config.epochs)) for s in self.stages)
        )


VAE_LOSS = "summed squared error + KL per image"


def variational(recipe: Recipe, *, name: str, title: str, model: str, train_epochs: tuple[int, ...], **stage_changes) -> Recipe:
    """``recipe``'s autoencoder stage with a VAE ``model`` and its loss, nothing else changed but ``stage_changes``.

    No material publishes its numbers: the references are empty, to be filled by the PyTorch
    rerun: the train loss at ``train_epochs`` and the last epoch's test loss.
    """
    stage = recipe.stage("autoencoder")
    stage = dataclasses.replace(stage, config=dataclasses.replace(stage.config, model=model, loss="sse_plus_kl"),
                                **stage_changes)
    last = stage.config.epochs
    references = (
        *(Reference(f"autoencoder/train_loss@{e}", f"train loss, epoch {e}", None, note=f"mean over batches; {VAE_LOSS}")
          for e in train_epochs),
        Reference(f"autoencoder/test_loss@{last}", f"test loss, epoch {last}", None, note=f"means decoded; {VAE_LOSS}"),
    )
    return Recipe(name, title, (stage,), recipe.seeds, references)
