"""What a training run is (:class:`TrainConfig`) and its optimiser, as PyTorch computes it."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import jax.numpy as jnp
import optax

from jaxae import losses, models
from jaxae.data.batches import BatchSpec
from jaxae.errors import InputError
from jaxae.train import optimizers

COMPUTE_DTYPES = ("float32", "bfloat16")
CORRUPTIONS = ("gaussian", "mask")
"""How a denoising autoencoder's inputs are corrupted (:attr:`TrainConfig.corruption`)."""
SPEED_SETTINGS = frozenset({"microbatch_size"})
"""The settings of a :class:`TrainConfig` that change how fast a run trains, not what it trains."""
LENGTH = frozenset({"epochs"})
"""How long a run trains: a finished run goes on when asked for more epochs (:func:`~jaxae.train.fit`)."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What a training run is: everything a checkpoint must match to resume.

    Attributes:
      model: a registered model's name (:func:`jaxae.models.register` adds
        yours); ``model_args`` override its arguments.
      loss: a registered loss (:func:`jaxae.losses.names`: "cross_entropy",
        "mse", "sum_squared_error", "sse_plus_kl", or one of your own,
        :func:`jaxae.losses.register`); classifiers compare with labels,
        autoencoders with their input.
      optimizer: a registered optimizer (:mod:`jaxae.train.optimizers`): "sgd"
        (PyTorch's, with ``momentum`` and ``nesterov``), optax's "adam", "adamw",
        "adadelta", "rmsprop", ... or your own.
      optimizer_args: its other arguments, e.g. ``(("eps", 1e-7),)`` for Adam or
        ``(("weight_decay", 1e-4),)`` for AdamW (decoupled); compared on resume.
      weight_decay: PyTorch's coupled L2 for any optimizer (added to the gradient before it).
      learning_rate: the constant rate; :func:`~jaxae.train.fit` and
        :func:`make_optimizer` also take an optax schedule in its place.
      epochs, batch_size: the run's length and its global batch size. A finished
        run asked for more epochs goes on from its last checkpoint.
      seed: initialisation, dropout and data-order seed.
      dropout_at_eval: evaluate with dropout on, as E1's notebook did.
      microbatch_size: a step sums the gradients of chunks of about this many
        examples (the most equal chunks up to ``ceil(batch_size / microbatch_size)``
        that divide the batch): the whole batch's gradient up to float rounding,
        with each chunk's intermediates small enough for the CPU's caches; with
        dropout each chunk draws its own masks. ``None``: the backend's default
        (``Trainer.create(config).microbatch_size``). A speed setting, not part of
        the run (:meth:`identity`): a run resumes under other chunks, its numbers
        then equal to float rounding.
      compute_dtype: "float32", or "bfloat16" for mixed precision: the step casts
        the images and the float parameters to bfloat16, so that every layer
        (Flax's too) computes in it, while the parameters (the float32 master
        copy), gradients, optimiser state, batch statistics, the loss and every
        metric stay float32.
      kl_weight: β, the weight of the ``"kl"`` term of a loss with terms (``loss="sse_plus_kl"``,
        or your own, :func:`jaxae.losses.register`): the loss per example is
        reconstruction + β·KL; 1 is the ELBO.
      kl_warmup_epochs: ramp the KL weight linearly from 0 to ``kl_weight`` over
        this many epochs (:meth:`kl_weight_at`); 0: no warm-up.
      corruption, corruption_level: train a denoising autoencoder: each step feeds the
        model its images corrupted, from a random stream of their own, and compares
        its outputs with the clean images (evaluation too). "gaussian": noise of standard
        deviation ``corruption_level`` (in units of the pixel range's width), clipped to
        the range; "mask": each pixel set to the range's low end with probability
        ``corruption_level``. None: no corruption.
    """

    model: str
    loss: str
    optimizer: str
    learning_rate: float
    epochs: int
    batch_size: int
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    seed: int = 0
    dropout_at_eval: bool = False
    model_args: tuple[tuple[str, Any], ...] = ()
    optimizer_args: tuple[tuple[str, Any], ...] = ()
    microbatch_size: int | None = None
    compute_dtype: str = "float32"
    kl_weight: float = 1.0
    kl_warmup_epochs: int = 0
    corruption: str | None = None
    corruption_level: float = 0.0

    def __post_init__(self):
        models.spec(self.model)  # a clear error for an unknown name
        loss = losses.get(self.loss)
        optimizers.check_arguments(self.optimizer, dict(self.optimizer_args))
        if self.optimizer != "sgd" and (self.momentum or self.nesterov):
            raise InputError(f"momentum and nesterov are SGD's; give {self.optimizer}'s own as optimizer_args")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be positive, got {getattr(self, name)}")
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise InputError(f"unknown compute_dtype {self.compute_dtype!r}; choose from {COMPUTE_DTYPES}")
        if self.microbatch_size is not None and self.microbatch_size < 1:
            raise InputError(f"microbatch_size must be a positive number of examples, got {self.microbatch_size}")
        if not (isinstance(self.kl_weight, (int, float)) and math.isfinite(self.kl_weight) and self.kl_weight >= 0):
            raise InputError(f"kl_weight must be a finite number >= 0, got {self.kl_weight!r}")
        if not isinstance(self.kl_warmup_epochs, int) or self.kl_warmup_epochs < 0:
            raise InputError(f"kl_warmup_epochs must be a whole number >= 0, got {self.kl_warmup_epochs!r}")
        if self.corruption is not None:
            if self.corruption not in CORRUPTIONS:
                raise InputError(f"unknown corruption {self.corruption!r}; choose from {CORRUPTIONS}")
            if not models.spec(self.model).is_autoencoder:
                raise InputError(f"{self.model}: a corruption trains a denoising autoencoder; it is a classifier")
            if not (isinstance(self.corruption_level, (int, float)) and 0 < self.corruption_level <= 1):
                raise InputError(f"corruption_level must be in (0, 1], got {self.corruption_level!r}")
        elif self.corruption_level:
            raise InputError("corruption_level is the level of a corruption: give corruption='gaussian' or 'mask'")
        if (self.kl_weight != 1 or self.kl_warmup_epochs) and "kl" not in loss.terms:
            variational = [name for name in losses.names() if "kl" in losses.get(name).terms]
            raise InputError(f"kl_weight and kl_warmup_epochs weight a loss's 'kl' term; "
                             f"loss {self.loss!r} has none (those with one: {variational})")

    @property
    def weights_kl(self) -> bool:
        """Whether the KL term is weighted at all: a β other than 1, or a warm-up."""
        return self.kl_weight != 1 or self.kl_warmup_epochs > 0

    def kl_weight_at(self, step, steps_per_epoch: int):
        """The KL term's weight at optimiser step ``step`` (0-based; a number or a traced array).

        ``kl_weight``, or during a warm-up ``kl_weight · step / (kl_warmup_epochs · steps_per_epoch)``:
        0 at the first step, the full weight from epoch ``kl_warmup_epochs + 1`` on.

        >>> config = TrainConfig("mnist_conv_vae_2d", "sse_plus_kl", "adam", 1e-3, 5, 32, kl_weight=4.0,
        ...                      kl_warmup_epochs=2)
        >>> [float(config.kl_weight_at(step, steps_per_epoch=10)) for step in (0, 5, 10, 20, 45)]
        [0.0, 1.0, 2.0, 4.0, 4.0]
        """
        if not self.kl_warmup_epochs:
            return self.kl_weight
        return self.kl_weight * jnp.minimum(1.0, step / (self.kl_warmup_epochs * steps_per_epoch))

    def create_model(self):
        return models.create(self.model, **dict(self.model_args))

    def batch_spec(self, shuffle: bool = True, drop_remainder: bool = False) -> BatchSpec:
        """The training batches this config takes: its batch size, its seed for the data order."""
        return BatchSpec(self.batch_size, shuffle=shuffle, drop_remainder=drop_remainder, seed=self.seed)

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_json(cls, record: dict[str, Any], **changes) -> TrainConfig:
        """The config :meth:`to_json` (or :meth:`identity`, with the missing settings in ``changes``) wrote.

        Settings this version does not know are left out; ``model_args`` and
        ``optimizer_args`` come back as pairs, their lists as tuples.
        """
        settings = {f.name: record[f.name] for f in dataclasses.fields(cls) if f.name in record}
        for key in ("model_args", "optimizer_args"):
            settings[key] = tuple((name, tuple(value) if isinstance(value, list) else value)
                                  for name, value in settings.get(key, ()))
        return cls(**{**settings, **changes})

    def identity(self) -> dict[str, Any]:
        """What a checkpoint compares to resume: :meth:`to_json` less the speed settings
        (:data:`SPEED_SETTINGS`) and the run's length (:data:`LENGTH`)."""
        return {k: v for k, v in self.to_json().items() if k not in SPEED_SETTINGS | LENGTH}


def make_optimizer(config: TrainConfig, learning_rate=None) -> optax.GradientTransformation:
    """The config's optimiser (:mod:`jaxae.train.optimizers`), with PyTorch's coupled ``weight_decay``.

    ``learning_rate`` may be an optax schedule (a function of the step); it defaults to the config's.
    """
    lr = config.learning_rate if learning_rate is None else learning_rate
    if not isinstance(lr, (int, float)) and (not callable(lr) or hasattr(lr, "update")):
        raise InputError(f"learning_rate takes a number or an optax schedule, got {type(lr).__name__}; an optax "
                         "optimizer is registered by name: jaxae.train.optimizers.register(name, factory)")
    arguments = dict(config.optimizer_args)
    if config.optimizer == "sgd":
        arguments = {"momentum": config.momentum, "nesterov": config.nesterov, **arguments}
    update = optimizers.get(config.optimizer)(lr, **arguments)
    if config.weight_decay:
        return optax.chain(optax.add_decayed_weights(config.weight_decay), update)
    return update
