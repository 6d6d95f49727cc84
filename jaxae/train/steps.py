"""The pure train and evaluation steps, and the two ways they run data-parallel.

``Trainer.train_step(state, batch) -> (state, metrics)`` is a pure function.
:func:`compile_train_step` jits it with the state donated, over a device mesh
when given one (batch sharded on its first axis, state replicated: the
default way to use several devices); :func:`compile_pmap_train_step` is the
``jax.pmap`` form, gradients summed over the devices with ``lax.psum``. Both
give the parameters of single-device training on the same global batches.
Every loss is a mean over the real (unmasked) examples of the *global* batch,
as PyTorch computes it on the unpadded batch.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxae import losses, models
from jaxae.cpu import jit_with_cpu_options
from jaxae.data.batches import gather_batch
from jaxae.errors import InputError, first_line
from jaxae.models.variational import LATENT_RNG
from jaxae.train.config import TrainConfig, make_optimizer

LOSS_TERMS = ("reconstruction", "kl")
"""The terms of a variational loss, logged beside it (:data:`jaxae.losses.terms`)."""


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training. ``rng`` is raw key data (checkpointable)."""

    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array


def microbatch_count(batch_size: int, microbatch_size: int) -> int:
    """How many equal chunks a step splits ``batch_size`` examples into: the most, up to
    ``ceil(batch_size / microbatch_size)``, that divide the batch.

    >>> microbatch_count(2000, 128), microbatch_count(1024, 128), microbatch_count(32, 128)
    (16, 8, 1)
    """
    most = -(-batch_size // microbatch_size)
    return max(n for n in range(1, most + 1) if batch_size % n == 0)


@dataclasses.dataclass(frozen=True)
class Trainer:
    """A config's model, loss and optimiser, and the pure functions that train with them.

    Build it with :meth:`create`. The config's backend defaults are filled in
    (:meth:`TrainConfig.resolved`). ``steps_per_epoch`` times a KL warm-up
    (``config.kl_warmup_epochs``), which needs it.
    """

    config: TrainConfig
    model: Any
    optimizer: optax.GradientTransformation
    steps_per_epoch: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "config", self.config.resolved())

    @classmethod
    def create(cls, config: TrainConfig, learning_rate=None, steps_per_epoch: int | None = None) -> Trainer:
        """The trainer of ``config``; ``learning_rate`` may be an optax schedule replacing the config's."""
        return cls(config, config.create_model(), make_optimizer(config, learning_rate), steps_per_epoch)

    @functools.cached_property
    def spec(self) -> models.ModelSpec:
        """The registered model's spec: its input shape and task."""
        return models.spec(self.config.model)

    @property
    def is_classifier(self) -> bool:
        return not self.spec.is_autoencoder

    def init_state(self, params=None) -> TrainState:
        """The initial state; the same seed gives the same state. ``params`` replace the seeded init."""
        init_key, train_key = jax.random.split(jax.random.key(self.config.seed))
        # A copy of given params: training donates the state's buffers, and the caller may still hold these.
        params = jax.jit(self.init_params)(init_key) if params is None else jax.tree.map(jnp.copy, params)
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=self.optimizer.init(params),
            rng=jax.random.key_data(train_key),
        )

    def init_params(self, key):
        """The model's parameters initialised from ``key`` (its ``params`` stream; dropout's too, for NNX layers)."""
        images = models.example_input(self.model, image_shape=self.spec.image_shape)
        variables = self.model.init(models.init_rngs(key), images, **self.spec.mode(False))
        return variables["params"]

    def _sums(self, params, batch, rng, train: bool, evaluation: bool = False, step=None):
        """Summed per-example loss over the real examples, and summed metrics.

        A variational loss's terms are summed too; ``evaluation`` adds a classifier's
        per-class counts and a VAE's per-dimension sums of its mean code and of its
        square (for the active dimensions). ``step`` (None: after training) sets the
        KL weight. The model runs in ``config.compute_dtype``; its outputs, the loss
        and the sums are float32.
        """
        images = batch["image"].astype(self.config.compute_dtype)
        rngs = {"dropout": rng, LATENT_RNG: jax.random.fold_in(rng, 1)}  # dropout's masks as without a VAE stream
        outputs = self.model.apply({"params": params}, images, rngs=rngs, **self.spec.mode(train))
        outputs = jax.tree.map(lambda output: output.astype(jnp.float32), outputs)
        targets = batch["label"] if self.is_classifier else batch["image"]
        mask = batch["mask"].astype(jnp.float32)
        per_example = self._per_example_loss(outputs, targets, step)
        sums = {"loss": jnp.sum(per_example * mask), "count": jnp.sum(mask)}
        if self.config.loss in losses.terms:
            sums.update(self._term_sums(outputs, targets, mask, evaluation))
        if self.is_classifier:
            hits = (jnp.argmax(outputs, -1) == batch["label"]).astype(jnp.float32) * mask
            sums["correct"] = jnp.sum(hits)
        if self.is_classifier and evaluation:
            classes = jax.nn.one_hot(batch["label"], outputs.shape[-1]) * mask[:, None]
            sums["class_correct"] = jnp.sum(classes * hits[:, None], axis=0)
            sums["class_count"] = jnp.sum(classes, axis=0)
        return sums["loss"], sums

    def _per_example_loss(self, outputs, targets, step):
        """Each example's loss: ``losses.per_example``'s, or a variational loss with its KL term weighted
        by :meth:`TrainConfig.kl_weight_at` ``step`` (None: the full ``kl_weight``)."""
        config = self.config
        if not config.weights_kl:
            return losses.per_example[config.loss](outputs, targets)
        terms = losses.terms[config.loss](outputs, targets)
        if step is None:
            weight = config.kl_weight
        elif config.kl_warmup_epochs and not self.steps_per_epoch:
            raise InputError("a KL warm-up is timed in epochs: Trainer.create(..., steps_per_epoch=...) needs them")
        else:
            weight = config.kl_weight_at(step, self.steps_per_epoch)
        return terms["reconstruction"] + weight * terms["kl"]

    def _term_sums(self, outputs, targets, mask, evaluation: bool):
        """A variational loss's terms (unweighted) summed over the real examples and, for ``evaluation``,
        the per-dimension sums of the mean code and of its square (the active dimensions' variance).

        Computed again from the outputs behind a barrier: fused with the loss's own sum, these sums
        changed its float rounding, and the loss logged with them would differ from the loss without.
        """
        outputs = jax.lax.optimization_barrier(jax.tree.map(jax.lax.stop_gradient, outputs))
        terms = losses.terms[self.config.loss](outputs, targets)
        sums = {name: jnp.sum(values * mask) for name, values in terms.items()}
        if evaluation:
            codes = outputs.mean.reshape(len(mask), -1) * mask[:, None]
            sums["code_sum"], sums["code_square_sum"] = jnp.sum(codes, 0), jnp.sum(codes**2, 0)
        return sums

    def train_step(self, state: TrainState, batch, axis_name: str | None = None):
        """One optimiser step on ``batch``; with ``axis_name``, the batch is one device's share (pmap)."""
        rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
        if axis_name is not None:  # each device draws its own dropout masks
            rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
        count = jnp.sum(batch["mask"].astype(jnp.float32))
        if axis_name is not None:
            count = jax.lax.psum(count, axis_name)

        grads, sums = self._gradients(state.params, batch, rng, count, state.step)
        if axis_name is not None:
            grads, sums = jax.lax.psum((grads, sums), axis_name)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        new_state = state.replace(
            step=state.step + 1, params=optax.apply_updates(state.params, updates), opt_state=opt_state
        )
        return new_state, _step_metrics(sums)

    def _gradients(self, params, batch, rng, count, step):
        """Gradient of the loss summed over ``batch`` and divided by ``count``, and the summed metrics.

        Summed over :func:`microbatch_count` chunks (``config.microbatch_size``), chunk ``i`` being
        examples ``i, i + n, i + 2n...``: under a mesh each chunk then takes the same rows from every
        device's contiguous share.
        """
        batch_size = batch["mask"].shape[0]
        chunks = microbatch_count(batch_size, self.config.microbatch_size)
        grads = sums = None
        for index in range(chunks):
            chunk = jax.tree.map(lambda a: a.reshape(batch_size // chunks, chunks, *a.shape[1:])[:, index], batch)  # noqa: B023
            chunk_rng = rng if index == 0 else jax.random.fold_in(rng, index)

            def mean_loss(params):
                total, chunk_sums = self._sums(params, chunk, chunk_rng, train=True, step=step)  # noqa: B023 (called at once)
                return total / count, chunk_sums

            result = jax.grad(mean_loss, has_aux=True)(params)
            grads, sums = result if grads is None else jax.tree.map(jnp.add, (grads, sums), result)
        return grads, sums

    def eval_step(self, params, batch, rng=None):
        """Summed metrics of ``batch``; dropout on only with ``config.dropout_at_eval`` (needs ``rng``)."""
        train = self.config.dropout_at_eval
        rng = jax.random.key(0) if rng is None else rng
        return self._sums(params, batch, rng, train=train, evaluation=True)[1]

    @functools.cached_property
    def reconstruct(self):
        """``reconstruct(params, images)``, jitted: an autoencoder's reconstructions (a VAE's mean code decoded)."""
        if hasattr(self.model, "reconstruct"):
            return jax.jit(lambda params, images: self.model.apply({"params": params}, images, method="reconstruct"))
        return jax.jit(lambda params, images: self.model.apply({"params": params}, images, **self.spec.mode(False)))

    @functools.cached_property
    def jitted_eval_step(self):
        """:meth:`eval_step`, compiled once per trainer."""
        return jit_with_cpu_options(self.eval_step)

    def train_epoch(self, state: TrainState, images, labels, indices, mask, transform: str, batch_sharding=None):
        """A whole device-resident epoch as one ``lax.scan``; batches gathered inside."""

        def body(state, plan):
            batch = gather_batch(images, labels, *plan, transform)
            if batch_sharding is not None:
                batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
            return self.train_step(state, batch)

        return jax.lax.scan(body, state, (indices, mask))


def check_trainable(config: TrainConfig) -> None:
    """Refuses, in one line, a model and loss that cannot train together: before anything is compiled.

    Abstractly evaluated (nothing computed): the model must take images of its
    registered shape, have parameters as its only variables, and its loss must
    give one value per example of its outputs.
    """
    spec, model = models.spec(config.model), config.create_model()
    name, loss = config.model, config.loss
    images = jax.ShapeDtypeStruct((2, *spec.image_shape), jnp.float32)
    key = jax.random.key(0)
    try:
        variables = jax.eval_shape(
            lambda x: model.init(models.init_rngs(key), x, **spec.mode(False)), images)
    except Exception as error:  # noqa: BLE001 (the user's module failing: said in one line)
        raise InputError(f"{name}: the model fails on images of its registered shape {images.shape}: "
                         f"{first_line(error)}; register it with the image_shape it takes") from None
    extra = sorted(set(variables) - {"params"})
    if extra:
        raise InputError(f"{name}: the trainer trains parameters only, but the model also has {extra} "
                         "(e.g. BatchNorm's batch statistics): use a layer without state")
    targets = images if spec.is_autoencoder else jax.ShapeDtypeStruct((2,), jnp.int32)

    def per_example(params, x, t):
        outputs = model.apply({"params": params}, x, rngs=models.init_rngs(key), **spec.mode(True))
        return losses.per_example[loss](jax.tree.map(lambda o: o.astype(jnp.float32), outputs), t)

    try:
        values = jax.eval_shape(per_example, variables["params"], images, targets)
    except Exception as error:  # noqa: BLE001
        raise InputError(f"{name}: its outputs do not fit loss {loss!r}: {first_line(error)}; "
                         f"choose a loss for a {spec.task}'s outputs") from None
    if getattr(values, "shape", None) != (2,):
        raise InputError(f"{name}: loss {loss!r} gives shape {getattr(values, 'shape', type(values).__name__)} "
                         "for a batch of 2; a loss gives one value per example (shape (batch,)): "
                         "reduce over every axis but the first")


def _step_metrics(sums):
    """A step's metrics as the seeds log them: the batch-mean loss (and its terms, and accuracy)."""
    metrics = {"loss": sums["loss"] / sums["count"], "count": sums["count"]}
    metrics.update({name: sums[name] / sums["count"] for name in LOSS_TERMS if name in sums})
    if "correct" in sums:
        metrics["accuracy"] = sums["correct"] / sums["count"]
    return metrics


def compile_train_step(trainer: Trainer, mesh: Mesh | None = None, *, compiler_options: Mapping[str, str] | None = None):
    """``jax.jit(train_step)`` with the state donated; over ``mesh``, the batch is sharded on its first axis.

    ``compiler_options``: XLA:CPU's (default :data:`jaxae.cpu.COMPILER_OPTIONS`; ``{}``: XLA's defaults).
    """
    if mesh is None:
        return jit_with_cpu_options(trainer.train_step, options=compiler_options, donate_argnums=0)
    replicated, sharded = NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec(mesh.axis_names))
    return jit_with_cpu_options(
        trainer.train_step, options=compiler_options, in_shardings=(replicated, sharded), out_shardings=replicated,
        donate_argnums=0,
    )


def compile_pmap_train_step(trainer: Trainer, axis_name: str = "batch"):
    """``jax.pmap(train_step)``: state replicated (:func:`replicate`), batch split as ``(devices, B/devices, ...)``
    (:func:`split_for_pmap`)."""
    return jax.pmap(functools.partial(trainer.train_step, axis_name=axis_name), axis_name=axis_name, donate_argnums=0)


def compile_train_epoch(trainer: Trainer, transform: str, mesh: Mesh | None = None):
    """The fused epoch (:meth:`Trainer.train_epoch`), jitted with the state donated."""
    if mesh is None:
        return jit_with_cpu_options(functools.partial(trainer.train_epoch, transform=transform), donate_argnums=0)
    sharded = NamedSharding(mesh, PartitionSpec(mesh.axis_names))
    epoch = functools.partial(trainer.train_epoch, transform=transform, batch_sharding=sharded)
    return jit_with_cpu_options(epoch, out_shardings=NamedSharding(mesh, PartitionSpec()), donate_argnums=0)


def compile_seeds_train_step(trainer: Trainer):
    """The train step ``jax.vmap``-ed over seeds (:func:`stack_seeds` of states and of batches), jitted with
    the states donated: several seeds of one config as one program."""
    return jit_with_cpu_options(jax.vmap(trainer.train_step), donate_argnums=0)


def stack_seeds(trees):
    """Pytrees of the same structure (one per seed) stacked on a new leading seed axis."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def replicate(tree, num_devices: int | None = None):
    """``tree`` stacked ``num_devices`` (default: all local devices) times on a new leading axis, for pmap."""
    num_devices = num_devices or jax.local_device_count()
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (num_devices, *jnp.shape(x))), tree)


def unreplicate(tree):
    """The first device's copy of a pmap-replicated ``tree``."""
    return jax.tree.map(lambda x: x[0], tree)


def split_for_pmap(batch, num_devices: int):
    """A global batch reshaped to ``(num_devices, B / num_devices, ...)``."""
    return jax.tree.map(lambda x: x.reshape(num_devices, x.shape[0] // num_devices, *x.shape[1:]), batch)
