"""The pure train and evaluation steps: ``Trainer.train_step(state, batch) -> (state, sums)``.

A step returns its metrics as sums over the batch's real (unmasked) examples,
with their ``count`` (:mod:`jaxae.train.metrics` turns any such sums into
means). Every loss is a mean over the real examples of the *global* batch, as
PyTorch computes it on the unpadded batch. How the step is compiled and run
(one device, a mesh, several seeds, a fused epoch, ``pmap``) is
:mod:`jaxae.train.engine`'s; the step itself is the same pure function in each,
and under ``jax.pmap`` (``axis_name``) sums its gradients over the devices.
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

from jaxae import cpu, losses, models
from jaxae.cpu import jit_with_cpu_options
from jaxae.errors import InputError
from jaxae.models.variational import LATENT_RNG
from jaxae.train.config import TrainConfig, make_optimizer

NOT_STATE = frozenset({"params", "intermediates"})
"""Flax collections that are not state carried between steps: the trained parameters, and values a
module only reports (``self.sow``)."""


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training. ``rng`` is raw key data (checkpointable).

    ``collections`` holds every Flax collection of the model besides its
    parameters (e.g. BatchNorm's ``batch_stats``): updated by each training
    step, read by evaluation, checkpointed with the rest.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array
    collections: Any = flax.struct.field(default_factory=dict)

    @property
    def variables(self) -> dict[str, Any]:
        """The model's variables: ``{"params": ..., **collections}``, what ``model.apply`` takes."""
        return {"params": self.params, **self.collections}


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

    Build it with :meth:`create`. ``microbatch_size`` is how the step chunks its
    batch (a speed setting, not part of the run: see
    :attr:`TrainConfig.microbatch_size`); ``steps_per_epoch`` times a KL warm-up
    (``config.kl_warmup_epochs``), which needs it.
    """

    config: TrainConfig
    model: Any
    optimizer: optax.GradientTransformation
    microbatch_size: int
    steps_per_epoch: int | None = None

    @classmethod
    def create(cls, config: TrainConfig, learning_rate=None, steps_per_epoch: int | None = None) -> Trainer:
        """The trainer of ``config``; ``learning_rate`` may be an optax schedule replacing the config's.

        The gradient chunks are ``config.microbatch_size``, or the backend's
        default (:func:`jaxae.cpu.default_microbatch_size` on CPU, the whole batch elsewhere);
        a model with state (batch statistics) takes whole batches by default, so that its
        statistics are the batch's.
        """
        model, spec = config.create_model(), models.spec(config.model)
        size = config.microbatch_size or cpu.default_microbatch_size(model, config.batch_size,
                                                                      image_shape=spec.image_shape)
        if config.microbatch_size is None and size < config.batch_size and state_collections(model, spec):
            size = config.batch_size
        return cls(config, model, make_optimizer(config, learning_rate), size, steps_per_epoch)

    @functools.cached_property
    def spec(self) -> models.ModelSpec:
        """The registered model's spec: its input shape and task."""
        return models.spec(self.config.model)

    @functools.cached_property
    def loss(self) -> losses.Loss:
        return losses.get(self.config.loss)

    @property
    def is_classifier(self) -> bool:
        return not self.spec.is_autoencoder

    def init_state(self, params=None) -> TrainState:
        """The initial state; the same seed gives the same state.

        ``params`` replace the seeded init: the parameters, or all the model's variables
        (``{"params": ..., "batch_stats": ...}``, as ``state.variables`` or
        :func:`jaxae.torch_graph.from_torch` give them), whose other collections then
        replace the initial ones too (a BatchNorm's running statistics).
        """
        init_key, train_key = jax.random.split(jax.random.key(self.config.seed))
        variables = jax.jit(self.init_variables)(init_key)
        collections = {name: value for name, value in variables.items() if name not in NOT_STATE}
        if params is None:
            params = variables["params"]
        else:  # copied: training donates the state's buffers, and the caller may still hold these
            if _all_variables(params, variables):
                collections.update({name: value for name, value in params.items() if name != "params"})
                params = params["params"]
            params, collections = jax.tree.map(jnp.copy, (params, collections))
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=self.optimizer.init(params),
            rng=jax.random.key_data(train_key),
            collections=collections,
        )

    def init_variables(self, key) -> dict[str, Any]:
        """The model's variables initialised from ``key`` (its ``params`` stream; dropout's too, for NNX layers)."""
        images = models.example_input(self.model, image_shape=self.spec.image_shape)
        return dict(self.model.init(models.init_rngs(key), images, **self.spec.mode(False)))

    def _apply(self, variables, images, rngs, train: bool):
        """The model's outputs on ``images``, and its collections (updated when training)."""
        collections = {name: value for name, value in variables.items() if name != "params"}
        if train and collections:
            return self.model.apply(variables, images, rngs=rngs, mutable=list(collections), **self.spec.mode(train))
        return self.model.apply(variables, images, rngs=rngs, **self.spec.mode(train)), collections

    def _sums(self, variables, batch, rng, train: bool, evaluation: bool = False, step=None):
        """The loss summed over the real examples, and ``(sums, collections)``: every metric summed
        over them with their ``count``, and the model's collections after the batch.

        A loss with terms has each term summed too; ``evaluation`` adds a classifier's
        per-class counts and a VAE's per-dimension sums of its mean code and of its
        square (for the active dimensions). ``step`` (None: after training) sets the
        KL weight. The model runs in ``config.compute_dtype``; its outputs, the loss
        and the sums are float32.
        """
        dtype = self.config.compute_dtype
        images = self.corrupt(batch["image"], jax.random.fold_in(rng, 2)).astype(dtype)
        rngs = {"dropout": rng, LATENT_RNG: jax.random.fold_in(rng, 1)}  # dropout's masks as without a VAE stream
        outputs, collections = self._apply(_params_in(variables, dtype), images, rngs, train)
        outputs = jax.tree.map(lambda output: output.astype(jnp.float32), outputs)
        targets = batch["label"] if self.is_classifier else batch.get("target", batch["image"])
        mask = batch["mask"].astype(jnp.float32)
        per_example = self.loss(outputs, targets, self._term_weights(step))
        sums = {"loss": jnp.sum(per_example * mask), "count": jnp.sum(mask)}
        if self.loss.terms:
            sums.update(self._term_sums(outputs, targets, mask, evaluation))
        if self.is_classifier:
            hits = (jnp.argmax(outputs, -1) == batch["label"]).astype(jnp.float32) * mask
            sums["accuracy"] = jnp.sum(hits)
        if self.is_classifier and evaluation:
            classes = jax.nn.one_hot(batch["label"], outputs.shape[-1]) * mask[:, None]
            sums["class_correct"] = jnp.sum(classes * hits[:, None], axis=0)
            sums["class_count"] = jnp.sum(classes, axis=0)
        return sums["loss"], (sums, collections)

    def corrupt(self, images, rng):
        """A denoising autoencoder's inputs: ``images`` corrupted as ``config.corruption`` says (else as they are)."""
        config = self.config
        if config.corruption is None:
            return images
        low, high = self.spec.value_range
        if config.corruption == "gaussian":
            noise = jax.random.normal(rng, images.shape, images.dtype) * config.corruption_level * (high - low)
            return jnp.clip(images + noise, low, high)
        return jnp.where(jax.random.bernoulli(rng, config.corruption_level, images.shape), low, images)

    def _term_weights(self, step) -> dict[str, Any]:
        """The weights of the loss's terms: the KL term's by :meth:`TrainConfig.kl_weight_at` ``step``
        (None: the full ``kl_weight``); the others 1."""
        config = self.config
        if not config.weights_kl:
            return {}
        if step is None:
            return {"kl": config.kl_weight}
        if config.kl_warmup_epochs and not self.steps_per_epoch:
            raise InputError("a KL warm-up is timed in epochs: Trainer.create(..., steps_per_epoch=...) needs them")
        return {"kl": config.kl_weight_at(step, self.steps_per_epoch)}

    def _term_sums(self, outputs, targets, mask, evaluation: bool):
        """The loss's terms (unweighted) summed over the real examples and, for a VAE's ``evaluation``,
        the per-dimension sums of the mean code and of its square (the active dimensions' variance).

        Computed again from the outputs behind a barrier: fused with the loss's own sum, these sums
        changed its float rounding, and the loss logged with them would differ from the loss without.
        """
        outputs = jax.lax.optimization_barrier(jax.tree.map(jax.lax.stop_gradient, outputs))
        sums = {name: jnp.sum(values * mask) for name, values in self.loss.term_values(outputs, targets).items()}
        if evaluation and isinstance(outputs, models.VaeOutput):
            codes = outputs.mean.reshape(len(mask), -1) * mask[:, None]
            sums["code_sum"], sums["code_square_sum"] = jnp.sum(codes, 0), jnp.sum(codes**2, 0)
        return sums

    def train_step(self, state: TrainState, batch, axis_name: str | None = None):
        """One optimiser step on ``batch``: the new state and the batch's summed metrics.

        With ``axis_name`` (under ``jax.pmap``), ``batch`` is one device's share: each device draws
        its own dropout masks, and the gradients, sums and collections are reduced over the devices.
        """
        devices = _DeviceAxis(axis_name)
        rng = devices.fold_in(jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step))
        count = devices.sum(jnp.sum(batch["mask"].astype(jnp.float32)))
        grads, sums, collections = self._gradients(state, batch, rng, count)
        grads, sums = devices.sum((grads, sums))
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                                  opt_state=opt_state, collections=devices.mean(collections))
        return new_state, sums

    def _gradients(self, state: TrainState, batch, rng, count):
        """Gradient of the loss summed over ``batch`` and divided by ``count``, the summed metrics,
        and the collections after the batch.

        Summed over :func:`microbatch_count` chunks (``microbatch_size``), chunk ``i`` being
        examples ``i, i + n, i + 2n...``: under a mesh each chunk then takes the same rows from every
        device's contiguous share. The collections pass from chunk to chunk.
        """
        batch_size = batch["mask"].shape[0]
        chunks = microbatch_count(batch_size, self.microbatch_size)
        grads = sums = None
        collections = state.collections
        for index in range(chunks):
            chunk = jax.tree.map(lambda a: a.reshape(batch_size // chunks, chunks, *a.shape[1:])[:, index], batch)  # noqa: B023
            chunk_rng = rng if index == 0 else jax.random.fold_in(rng, index)

            def mean_loss(params, collections):
                variables = {"params": params, **collections}
                total, aux = self._sums(variables, chunk, chunk_rng, train=True, step=state.step)  # noqa: B023 (called at once)
                return total / count, aux

            chunk_grads, (chunk_sums, collections) = jax.grad(mean_loss, has_aux=True)(state.params, collections)
            if grads is None:
                grads, sums = chunk_grads, chunk_sums
            else:
                grads, sums = jax.tree.map(jnp.add, (grads, sums), (chunk_grads, chunk_sums))
        return grads, sums, collections

    def eval_step(self, variables, batch, rng=None):
        """Summed metrics of ``batch`` under ``variables`` (``state.variables``); dropout on only with
        ``config.dropout_at_eval`` (needs ``rng``)."""
        train = self.config.dropout_at_eval
        rng = jax.random.key(0) if rng is None else rng
        return self._sums(variables, batch, rng, train=train, evaluation=True)[1][0]

    @functools.cached_property
    def reconstruct(self):
        """``reconstruct(variables, images)``, jitted: an autoencoder's reconstructions (a VAE's mean code decoded)."""
        method = "reconstruct" if hasattr(self.model, "reconstruct") else None
        mode = {} if method else self.spec.mode(False)
        return jax.jit(lambda variables, images: self.model.apply(variables, images, method=method, **mode))

    @functools.cached_property
    def jitted_eval_step(self):
        """:meth:`eval_step`, compiled once per trainer."""
        return jit_with_cpu_options(self.eval_step)


def _all_variables(given, variables) -> bool:
    """Whether ``given`` is a model's variables (``{"params", ...its collections}``), not its parameters alone."""
    return (isinstance(given, Mapping) and "params" in given and "params" not in variables["params"]
            and set(given) <= set(variables) - NOT_STATE | {"params"})


def _params_in(variables, dtype):
    """``variables`` with their float parameters cast to ``dtype`` for a step (the float32 ones stay the master
    copy: gradients flow back through the cast); the other collections as they are."""
    if dtype == "float32":
        return variables
    params = jax.tree.map(lambda p: p.astype(dtype) if jnp.issubdtype(p.dtype, jnp.floating) else p, variables["params"])
    return {**variables, "params": params}


def state_collections(model, spec: models.ModelSpec) -> list[str]:
    """The Flax collections of ``model`` that are state (:data:`NOT_STATE` aside), read off an abstract init."""
    images = jax.ShapeDtypeStruct((1, *spec.image_shape), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(models.init_rngs(jax.random.key(0)), x, **spec.mode(False)), images)
    return [collection for collection in variables if collection not in NOT_STATE]


class _DeviceAxis:
    """The reductions of a step over ``jax.pmap``'s device axis; each is the identity without one."""

    def __init__(self, axis_name: str | None):
        self.axis_name = axis_name

    def fold_in(self, rng):
        return rng if self.axis_name is None else jax.random.fold_in(rng, jax.lax.axis_index(self.axis_name))

    def sum(self, tree):
        return tree if self.axis_name is None else jax.lax.psum(tree, self.axis_name)

    def mean(self, tree):
        """The devices' mean of each float leaf (their other leaves are kept: every device computes the same)."""
        if self.axis_name is None:
            return tree
        return jax.tree.map(
            lambda leaf: jax.lax.pmean(leaf, self.axis_name) if jnp.issubdtype(leaf.dtype, jnp.inexact) else leaf, tree)
