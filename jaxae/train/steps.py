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
from jaxae.models.variational import LATENT_RNG
from jaxae.train.config import TrainConfig, make_optimizer


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
    (:meth:`TrainConfig.resolved`).
    """

    config: TrainConfig
    model: Any
    optimizer: optax.GradientTransformation

    def __post_init__(self):
        object.__setattr__(self, "config", self.config.resolved())

    @classmethod
    def create(cls, config: TrainConfig, learning_rate=None) -> Trainer:
        """The trainer of ``config``; ``learning_rate`` may be an optax schedule replacing the config's."""
        return cls(config, config.create_model(), make_optimizer(config, learning_rate))

    @property
    def is_classifier(self) -> bool:
        return not models.spec(self.config.model).is_autoencoder

    def init_state(self, params=None) -> TrainState:
        """The initial state; the same seed gives the same state. ``params`` replace the seeded init."""
        init_key, train_key = jax.random.split(jax.random.key(self.config.seed))
        if params is None:
            dummy = jnp.zeros((1, *self.model.image_shape), jnp.float32)
            params = jax.jit(self.model.init)(init_key, dummy)["params"]
        else:  # a copy: training donates the state's buffers, and the caller may still hold these
            params = jax.tree.map(jnp.copy, params)
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=self.optimizer.init(params),
            rng=jax.random.key_data(train_key),
        )

    def _sums(self, params, batch, rng, train: bool, per_class: bool = False):
        """Summed per-example loss over the real examples, and summed metrics (per class on request).

        The model runs in ``config.compute_dtype``; its outputs, the loss and the sums are float32.
        """
        images = batch["image"].astype(self.config.compute_dtype)
        rngs = {"dropout": rng, LATENT_RNG: jax.random.fold_in(rng, 1)}  # dropout's masks as without a VAE stream
        outputs = self.model.apply({"params": params}, images, train=train, rngs=rngs)
        outputs = jax.tree.map(lambda output: output.astype(jnp.float32), outputs)
        targets = batch["label"] if self.is_classifier else batch["image"]
        mask = batch["mask"].astype(jnp.float32)
        per_example = losses.per_example[self.config.loss](outputs, targets)
        sums = {"loss": jnp.sum(per_example * mask), "count": jnp.sum(mask)}
        if self.is_classifier:
            hits = (jnp.argmax(outputs, -1) == batch["label"]).astype(jnp.float32) * mask
            sums["correct"] = jnp.sum(hits)
        if self.is_classifier and per_class:
            classes = jax.nn.one_hot(batch["label"], outputs.shape[-1]) * mask[:, None]
            sums["class_correct"] = jnp.sum(classes * hits[:, None], axis=0)
            sums["class_count"] = jnp.sum(classes, axis=0)
        return sums["loss"], sums

    def train_step(self, state: TrainState, batch, axis_name: str | None = None):
        """One optimiser step on ``batch``; with ``axis_name``, the batch is one device's share (pmap)."""
        rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
        if axis_name is not None:  # each device draws its own dropout masks
            rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
        count = jnp.sum(batch["mask"].astype(jnp.float32))
        if axis_name is not None:
            count = jax.lax.psum(count, axis_name)

        grads, sums = self._gradients(state.params, batch, rng, count)
        if axis_name is not None:
            grads, sums = jax.lax.psum((grads, sums), axis_name)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        new_state = state.replace(
            step=state.step + 1, params=optax.apply_updates(state.params, updates), opt_state=opt_state
        )
        return new_state, _step_metrics(sums)

    def _gradients(self, params, batch, rng, count):
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
                total, chunk_sums = self._sums(params, chunk, chunk_rng, train=True)  # noqa: B023 (called at once)
                return total / count, chunk_sums

            result = jax.grad(mean_loss, has_aux=True)(params)
            grads, sums = result if grads is None else jax.tree.map(jnp.add, (grads, sums), result)
        return grads, sums

    def eval_step(self, params, batch, rng=None):
        """Summed metrics of ``batch``; dropout on only with ``config.dropout_at_eval`` (needs ``rng``)."""
        train = self.config.dropout_at_eval
        rng = jax.random.key(0) if rng is None else rng
        return self._sums(params, batch, rng, train=train, per_class=True)[1]

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


def _step_metrics(sums):
    """A step's metrics as the seeds log them: the batch-mean loss (and accuracy)."""
    metrics = {"loss": sums["loss"] / sums["count"], "count": sums["count"]}
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
