"""Training: the run's config, train state, jitted and data-parallel steps, fused epochs, ``fit``.

Steps are pure functions, ``train_step(state, batch) -> (state, metrics)``,
compiled with the state donated. Data parallelism comes two ways with the
same numbers: ``jax.jit`` over a device mesh (batch sharded, state
replicated: the default) or ``jax.pmap`` with ``lax.pmean``-style sums. Every
loss is a mean over the real (unmasked) examples of the *global* batch, as
PyTorch computes it on the unpadded batch.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from jaxae import host_memory, losses, models
from jaxae.checkpoint import Checkpoints
from jaxae.data.pipeline import gather_batch

OPTIMIZERS = ("sgd", "adam")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What a training run is: everything a checkpoint must match to resume.

    Attributes:
      model: registry name; ``model_args`` override its arguments.
      loss: a key of :data:`jaxae.losses.per_example` ("cross_entropy",
        "mse", "sum_squared_error"); classifiers compare with labels,
        autoencoders with their input.
      optimizer: "sgd" (``momentum``, ``nesterov``) or "adam"; ``weight_decay``
        is PyTorch's coupled L2 (added to the gradient), not AdamW.
      learning_rate: the constant rate; :func:`fit` and :func:`make_optimizer`
        also take an optax schedule in its place.
      seed: initialisation, dropout and data-order seed.
      dropout_at_eval: evaluate with dropout on, as E1's notebook did.
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

    def __post_init__(self):
        models.spec(self.model)  # a clear error for an unknown name
        if self.loss not in losses.per_example:
            raise ValueError(f"unknown loss {self.loss!r}; choose from {sorted(losses.per_example)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose from {OPTIMIZERS}")

    def create_model(self):
        return models.create(self.model, **dict(self.model_args))

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))


def make_optimizer(config: TrainConfig, learning_rate=None) -> optax.GradientTransformation:
    """The config's optimiser, as PyTorch's ``SGD``/``Adam`` compute it.

    ``learning_rate`` may be an optax schedule; it defaults to the config's.
    """
    lr = config.learning_rate if learning_rate is None else learning_rate
    if config.optimizer == "sgd":
        update = optax.sgd(lr, momentum=config.momentum or None, nesterov=config.nesterov)
    else:
        update = optax.adam(lr)
    if config.weight_decay:
        return optax.chain(optax.add_decayed_weights(config.weight_decay), update)
    return update


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training. ``rng`` is raw key data (checkpointable)."""

    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array


@dataclasses.dataclass(frozen=True)
class Trainer:
    """A config's model, loss and optimiser, and the pure functions that train with them.

    ``microbatch_size``: a step sums the gradients of chunks of about this many examples
    (see :func:`microbatch_count`; the batch size or more: one chunk); ``None`` takes
    :func:`default_microbatch_size` for the model and the batch. The result is the whole
    batch's gradient up to float rounding; with dropout, each chunk draws its own masks.
    """

    config: TrainConfig
    model: Any
    optimizer: optax.GradientTransformation
    microbatch_size: int | None = None

    def __post_init__(self):
        if self.microbatch_size is not None and self.microbatch_size < 1:
            raise ValueError(f"microbatch_size must be a positive number of examples, got {self.microbatch_size}")

    @classmethod
    def create(cls, config: TrainConfig, learning_rate=None, microbatch_size: int | None = None) -> Trainer:
        return cls(config, config.create_model(), make_optimizer(config, learning_rate), microbatch_size)

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
        """Summed per-example loss over the real examples, and summed metrics (per class on request)."""
        outputs = self.model.apply({"params": params}, batch["image"], train=train, rngs={"dropout": rng})
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

        Computed over :func:`microbatch_count` chunks, chunk ``i`` being examples ``i, i + n, i + 2n...``:
        under a mesh each chunk then takes the same rows from every device's contiguous share.
        """
        batch_size = batch["mask"].shape[0]
        size = self.microbatch_size or default_microbatch_size(self.model, batch_size)
        chunks = microbatch_count(batch_size, size)
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

    @functools.cached_property
    def jitted_eval_step(self):
        """:meth:`eval_step`, compiled once per trainer."""
        return jit(self.eval_step)

    def eval_step(self, params, batch, rng=None):
        """Summed metrics of ``batch``; dropout on only with ``config.dropout_at_eval`` (needs ``rng``)."""
        train = self.config.dropout_at_eval
        rng = jax.random.key(0) if rng is None else rng
        return self._sums(params, batch, rng, train=train, per_class=True)[1]

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


# XLA:CPU option of every compiled step: reductions (loss and bias-gradient sums) and matrix products
# (dense layers, GEMM-lowered convolutions) as YNNPACK kernels instead of XLA's own and Eigen's. Products:
# 1.0-1.55x per train step (2-core AVX-512 Xeon; E5's autoencoder most), slower for no seed model;
# reductions: 1.1-1.35x (an earlier 2.5 GHz Xeon, while max_pool2d was still a reduce_window).
# YNNPACK's convolutions and elementwise fusions lost (benchmarks/NOTES.md).
_CPU_COMPILER_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE,LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
}


def jit(fun, **kwargs):
    """``jax.jit`` with this project's XLA options for the default backend (what every step compiles with).

    On CPU it also keeps freed host memory for reuse (:func:`jaxae.host_memory.retain_freed_memory`).
    """
    if jax.default_backend() != "cpu":
        return jax.jit(fun, **kwargs)
    host_memory.retain_freed_memory()
    return jax.jit(fun, compiler_options=_CPU_COMPILER_OPTIONS, **kwargs)


def compile_train_step(trainer: Trainer, mesh: Mesh | None = None):
    """``jax.jit(train_step)`` with the state donated; over ``mesh``, the batch is sharded on its first axis."""
    if mesh is None:
        return jit(trainer.train_step, donate_argnums=0)
    replicated, sharded = NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec(mesh.axis_names))
    return jit(trainer.train_step, in_shardings=(replicated, sharded), out_shardings=replicated, donate_argnums=0)


def compile_pmap_train_step(trainer: Trainer, axis_name: str = "batch"):
    """``jax.pmap(train_step)``: state replicated (see :func:`replicate`), batch split as ``(devices, B/devices, ...)``."""
    if jax.default_backend() == "cpu":
        host_memory.retain_freed_memory()
    return jax.pmap(functools.partial(trainer.train_step, axis_name=axis_name), axis_name=axis_name, donate_argnums=0)


def replicate(tree, num_devices: int | None = None):
    """``tree`` stacked ``num_devices`` (default: all local devices) times on a new leading axis, for pmap."""
    num_devices = num_devices or jax.local_device_count()
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (num_devices, *jnp.shape(x))), tree)


def split_for_pmap(batch, num_devices: int):
    """A global batch reshaped to ``(num_devices, B / num_devices, ...)``."""
    return jax.tree.map(lambda x: x.reshape(num_devices, x.shape[0] // num_devices, *x.shape[1:]), batch)


def compile_train_epoch(trainer: Trainer, transform: str, mesh: Mesh | None = None):
    """The fused epoch, jitted with the state donated."""
    if mesh is None:
        return jit(functools.partial(trainer.train_epoch, transform=transform), donate_argnums=0)
    sharded = NamedSharding(mesh, PartitionSpec(mesh.axis_names))
    epoch = functools.partial(trainer.train_epoch, transform=transform, batch_sharding=sharded)
    return jit(epoch, out_shardings=NamedSharding(mesh, PartitionSpec()), donate_argnums=0)


def default_fused(backend: str | None = None) -> bool:
    """Whether a fused (scanned) epoch is the default: on accelerators, not on CPU.

    Measured on this project's 2-core CPU, a scanned epoch ran several times
    slower per image than dispatching jitted steps (see benchmarks/NOTES.md).
    """
    return (backend or jax.default_backend()) != "cpu"


# Measured on CPU (benchmarks/NOTES.md): a convolutional step at batch 128 runs faster in chunks whose
# activations stay within about one core's L2 cache (2 MiB on the machine measured; cifar10_conv_ae in
# chunks of 32: 1.2x); chunks under 32 or over 128 examples gained nothing, nor did more than 8 chunks of
# a batch of 1024 (while compiling the unrolled step took 1.6x as long).
_CPU_CHUNK_ACTIVATION_BYTES = 2 << 20
_CPU_CHUNK_SIZES = (32, 128)
_CPU_CACHE_CHUNKS = 8


@functools.lru_cache
def activation_bytes_per_example(model) -> int:
    """Bytes of every module's output for one example (nested modules' included), by ``jax.eval_shape``.

    >>> activation_bytes_per_example(models.create("cifar10_conv_ae"))
    65536
    """

    def module_outputs(x):
        variables = model.init(jax.random.key(0), x)
        return model.apply(variables, x, capture_intermediates=True, mutable=["intermediates"])[1]

    example = jax.ShapeDtypeStruct((1, *model.image_shape), jnp.float32)
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(jax.eval_shape(module_outputs, example)))


def default_microbatch_size(model, batch_size: int, backend: str | None = None) -> int | None:
    """Examples per gradient chunk by default: the whole batch (``None``) on accelerators.

    On CPU, as many as keep a chunk's activations (:func:`activation_bytes_per_example`)
    within 2 MiB, but at least 32 and an eighth of the batch, and at most 128: XLA:CPU's
    convolutional steps slow down as their intermediates outgrow the caches. Chunks of 128
    made cifar10_cnn at batch 1024 1.24x and E5's autoencoder at 2000 1.16x faster, chunks
    of 32 cifar10_conv_ae at 128 1.19x; the dense models lose below 128
    (``python -m benchmarks.microbatch``, benchmarks/NOTES.md).

    >>> default_microbatch_size(models.create("cifar10_conv_ae"), 128, "cpu")
    32
    >>> default_microbatch_size(models.create("cifar10_mlp"), 128, "cpu")
    128
    """
    if (backend or jax.default_backend()) != "cpu":
        return None
    smallest, largest = _CPU_CHUNK_SIZES
    fitting = _CPU_CHUNK_ACTIVATION_BYTES // activation_bytes_per_example(model)
    return min(largest, max(smallest, fitting, -(-batch_size // _CPU_CACHE_CHUNKS)))


def microbatch_count(batch_size: int, microbatch_size: int | None) -> int:
    """How many equal chunks a step splits ``batch_size`` examples into: the most, up to
    ``ceil(batch_size / microbatch_size)``, that divide the batch (``None``: one).

    >>> microbatch_count(2000, 128), microbatch_count(1024, 128), microbatch_count(32, 128)
    (16, 8, 1)
    """
    if microbatch_size is None:
        return 1
    most = -(-batch_size // microbatch_size)
    return max(n for n in range(1, most + 1) if batch_size % n == 0)


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite."""


def _finite(value) -> bool:
    return bool(np.isfinite(np.asarray(value)).all())


def evaluate(trainer: Trainer, params, pipeline, epoch: int = 0) -> dict[str, float]:
    """Test metrics over one pass of ``pipeline``: per-image mean loss, seed-style per-batch mean, accuracy."""
    step = trainer.jitted_eval_step
    rng = jax.random.fold_in(jax.random.key(trainer.config.seed), 1_000_003 + epoch)
    totals, batch_means, batches = None, 0.0, 0
    for i, batch in enumerate(pipeline.epoch(epoch)):
        sums = step(params, batch, jax.random.fold_in(rng, i))
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
        batch_means += float(sums["loss"] / sums["count"])
        batches += 1
    count = float(totals["count"])
    result = {"loss": float(totals["loss"]) / count, "loss_batch_mean": batch_means / batches, "count": count}
    if "correct" in totals:
        result["accuracy"] = float(totals["correct"]) / count
        result["class_accuracy"] = (np.asarray(totals["class_correct"]) / np.maximum(np.asarray(totals["class_count"]), 1)).tolist()
    return result


def fit(
    config: TrainConfig,
    train_data,
    workdir: str | Path,
    *,
    eval_data=None,
    eval_every: int = 1,
    fused: bool | None = None,
    microbatch_size: int | None = None,
    mesh: Mesh | None = None,
    checkpoint_every: int = 1,
    keep: int = 3,
    best_metric: str | None = None,
    stop_after_epochs: int | None = None,
    progress: bool = True,
    learning_rate=None,
    initial_params=None,
):
    """Trains ``config`` on ``train_data`` (a pipeline), resuming from ``workdir`` if it holds a checkpoint.

    Each epoch: train (a fused scan or a step loop), evaluate on ``eval_data``
    (every ``eval_every`` epochs and after the last), append the epoch's
    metrics to ``workdir/metrics.jsonl`` and to the returned history, and
    checkpoint every ``checkpoint_every`` epochs and at the end. Each epoch's
    record holds the epoch means, the per-step losses (``train_step_loss``,
    and ``train_step_accuracy`` for classifiers) and the training seconds.
    ``initial_params`` replace the seeded initialisation (E5's classifier
    starts from the trained encoder); a checkpoint in ``workdir`` wins over both.
    A NaN or infinite loss stops training with :class:`TrainingDivergedError`;
    the last good checkpoint stays. ``stop_after_epochs`` ends the call early
    (the run resumes from its checkpoint on the next call). ``fused`` (see
    :func:`default_fused`) and ``microbatch_size`` (see :class:`Trainer`) default
    per backend.

    Returns:
      ``(state, history)``: the final state and one dict of metrics per epoch.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer.create(config, learning_rate, microbatch_size)
    fused = default_fused() if fused is None else fused
    if fused and not hasattr(train_data, "epoch_plan"):
        raise ValueError("a fused epoch needs a device-resident pipeline (mode='device')")
    best_mode = "max" if best_metric and "accuracy" in best_metric else "min"
    checkpoints = Checkpoints(workdir / "checkpoints", keep=keep, best_metric=best_metric, best_mode=best_mode)
    state, history, start = trainer.init_state(initial_params), [], 0
    if checkpoints.latest() is not None:
        state, meta = checkpoints.restore(state, config=config.to_json())
        history, start = meta["history"], meta["epoch"]
    # The log restarts from the checkpoint's history: epochs lost to a crash are not listed twice.
    (workdir / "metrics.jsonl").write_text("".join(json.dumps(record) + "\n" for record in history))
    if mesh is not None:
        state = jax.device_put(state, NamedSharding(mesh, PartitionSpec()))
    step_fn = compile_train_epoch(trainer, train_data.transform, mesh) if fused else compile_train_step(trainer, mesh)
    end = config.epochs if stop_after_epochs is None else min(config.epochs, start + stop_after_epochs)
    try:
        for epoch in range(start, end):
            state, train_metrics = _train_one_epoch(trainer, step_fn, state, train_data, epoch, fused, progress)
            record = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in train_metrics.items()}}
            if eval_data is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == config.epochs):
                evaluation = evaluate(trainer, state.params, eval_data, epoch)
                record.update({f"test_{k}": v for k, v in evaluation.items()})
            history.append(record)
            if progress:
                print(epoch_summary(record, config.epochs))
            with open(workdir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if (epoch + 1) % checkpoint_every == 0 or epoch + 1 == config.epochs:
                scalars = {k: v for k, v in record.items() if isinstance(v, float)}
                meta = {"epoch": epoch + 1, "history": history, "config": config.to_json()}
                checkpoints.save(epoch + 1, state, meta, scalars)
    finally:
        checkpoints.close()
    return state, history


def epoch_summary(record: dict[str, Any], epochs: int) -> str:
    """One line per epoch: its losses, accuracies and time."""
    parts = [f"epoch {record['epoch']}/{epochs}: train loss {record['train_loss']:.4f}"]
    if "train_accuracy" in record:
        parts.append(f"acc {record['train_accuracy']:.4f}")
    if "test_loss" in record:
        parts.append(f"test loss {record['test_loss']:.4f}")
    if "test_accuracy" in record:
        parts.append(f"acc {record['test_accuracy']:.4f}")
    return ", ".join(parts) + f" ({record['train_seconds']:.1f} s)"


def _train_one_epoch(trainer, step_fn, state, train_data, epoch, fused, progress):
    """Trains one epoch; returns the state and the epoch's train metrics (means of the batch means)."""
    start = time.perf_counter()
    description = f"epoch {epoch + 1}/{trainer.config.epochs}"
    if fused:
        indices, mask = train_data.epoch_plan(epoch)
        state, metrics = step_fn(state, train_data.images, train_data.labels, indices, mask)
        metrics = jax.device_get(metrics)
    else:
        state, metrics = _step_loop(step_fn, state, train_data, epoch, description, progress, start)
    losses_ = np.asarray(metrics["loss"], np.float64)
    _check_finite(losses_, description)
    result = {"loss": float(losses_.mean()), "seconds": time.perf_counter() - start, "step_loss": losses_.tolist()}
    if "accuracy" in metrics:
        accuracies = np.asarray(metrics["accuracy"], np.float64)
        result.update(accuracy=float(accuracies.mean()), step_accuracy=accuracies.tolist())
    return state, result


_SYNC_EVERY = 50  # steps between reads of the metrics: reading each step would stall the dispatch queue


def _step_loop(step_fn, state, train_data, epoch, description, progress, start):
    """Dispatches one jitted step per batch; metrics are read every ``_SYNC_EVERY`` steps for the bar and the NaN check."""
    pending, read = [], {}
    bar = tqdm(total=train_data.num_batches, desc=description, disable=not progress, unit="batch", leave=False)
    for step, batch in enumerate(train_data.epoch(epoch)):
        state, metrics = step_fn(state, batch)
        pending.append(metrics)
        if len(pending) == _SYNC_EVERY or step + 1 == train_data.num_batches:
            fetched = jax.device_get(pending)
            pending = []
            for name in fetched[0]:
                read.setdefault(name, []).extend(float(m[name]) for m in fetched)
            _check_finite(np.asarray(read["loss"]), description)
            postfix = {"loss": f"{read['loss'][-1]:.4f}", "img/s": f"{sum(read['count']) / (time.perf_counter() - start):,.0f}"}
            if "accuracy" in read:
                postfix["acc"] = f"{read['accuracy'][-1]:.3f}"
            bar.set_postfix(postfix, refresh=False)
            bar.update(len(fetched))
    bar.close()
    return state, read


def _check_finite(losses_: np.ndarray, description: str) -> None:
    if not _finite(losses_):
        bad = int(np.argmin(np.isfinite(losses_)))
        raise TrainingDivergedError(f"the loss became {losses_[bad]} at {description}, step {bad + 1}")
