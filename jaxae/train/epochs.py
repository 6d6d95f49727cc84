"""How an epoch trains: one object per kind of step, behind one interface that ``fit``'s loop calls.

* :class:`StepLoop`: one jitted dispatch per batch, on one device or over a mesh
  (:func:`single_device`, :func:`over_mesh`), over all local devices with ``jax.pmap``
  (:func:`with_pmap`), or ``vmap``-ed over several seeds' stacked states (:func:`over_seeds`).
* :class:`FusedEpochs`: a whole device-resident epoch as one ``lax.scan`` (:func:`fused`).

Each has ``place(states)`` (the seeds' initial states, one without seeds, put where its
steps want them), ``train(state, epoch, stop)`` (the state and each seed's train metrics),
and ``state_of(state, seed)`` (one seed's plain state, for evaluation and checkpoints). A signal that asked to stop ends an epoch early with
:class:`Stopped`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from jaxae.errors import InputError, TrainingDivergedError
from jaxae.train.interrupts import StopRequest
from jaxae.train.steps import (
    LOSS_TERMS,
    Trainer,
    compile_pmap_train_step,
    compile_seeds_train_step,
    compile_train_epoch,
    compile_train_step,
    replicate,
    split_for_pmap,
    stack_seeds,
    unreplicate,
)

_SYNC_EVERY = 50  # steps between reads of the metrics: reading each step would stall the dispatch queue


class Stopped(Exception):
    """A stop request honoured at ``epoch`` (1-based), after ``step`` of it (None: after the whole epoch)."""

    def __init__(self, epoch: int, step: int | None = None):
        super().__init__(epoch, step)
        self.epoch, self.step = epoch, step


class StepLoop:
    """Trains an epoch as a loop of compiled steps, one dispatch per batch.

    Metrics are read every ``_SYNC_EVERY`` steps, for the progress bar and the NaN check.

    Args:
      trainer: whose config and model the steps train.
      data: the pipeline (for several seeds, :class:`StackedPipelines`).
      step: the compiled ``(state, batch) -> (state, metrics)``.
      place: puts the list of initial states (one per seed) where ``step`` wants them.
      state_of: ``(state, seed) -> that seed's single-device state``.
      split_batch, read_metrics: adapt a batch to ``step`` and its metrics back (pmap's device axis).
    """

    def __init__(self, trainer: Trainer, data, step: Callable, *, place: Callable = lambda states: states[0],
                 state_of: Callable = lambda s, seed: s, split_batch: Callable = lambda b: b,
                 read_metrics: Callable = lambda m: m):
        self.trainer, self.data, self.step = trainer, data, step
        self.place, self.state_of, self.split_batch, self.read_metrics = place, state_of, split_batch, read_metrics
        self.compiled = False  # whether a step has run yet: the first one compiles

    def train(self, state, epoch: int, stop: StopRequest, progress: bool = True):
        """Trains epoch ``epoch``; returns the state and, per seed (one without seeds), its train metrics."""
        start, description = time.perf_counter(), _describe(self.trainer, epoch)
        pending, read, first_step_seconds = [], {}, None
        num_batches = self.data.num_batches
        bar = tqdm(total=num_batches, desc=description, disable=not progress, unit="batch", leave=False)
        try:
            for step, batch in enumerate(self.data.epoch(epoch)):
                if step == 0:
                    check_images(self.trainer, batch["image"])
                state, metrics = self.step(state, self.split_batch(batch))
                metrics = self.read_metrics(metrics)
                if not self.compiled:
                    jax.block_until_ready(metrics)
                    first_step_seconds = time.perf_counter() - start
                    self.compiled = True
                pending.append(metrics)
                if stop and step + 1 < num_batches:  # after the last step, the epoch ends and is checkpointed first
                    raise Stopped(epoch + 1, step + 1)
                if len(pending) == _SYNC_EVERY or step + 1 == num_batches:
                    fetched, pending = jax.device_get(pending), []
                    for name in fetched[0]:
                        read.setdefault(name, []).extend(np.asarray(m[name], np.float64) for m in fetched)
                    check_finite(np.asarray(read["loss"]), description)
                    bar.set_postfix(_postfix(read, time.perf_counter() - start), refresh=False)
                    bar.update(len(fetched))
        finally:
            bar.close()
        if first_step_seconds is not None:
            read["first_step_seconds"] = first_step_seconds
        return state, per_seed_metrics(read, time.perf_counter() - start, description)


class FusedEpochs:
    """Trains each epoch of a device-resident pipeline as one compiled ``lax.scan`` (batches gathered inside)."""

    def __init__(self, trainer: Trainer, data, mesh: Mesh | None = None):
        if not hasattr(data, "epoch_plan"):
            raise InputError("a fused epoch needs a device-resident pipeline (mode='device')")
        self.trainer, self.data = trainer, data
        self.step = compile_train_epoch(trainer, data.transform, mesh)
        self.place = _mesh_placement(mesh)

    def state_of(self, state, seed: int):
        return state

    def train(self, state, epoch: int, stop: StopRequest, progress: bool = True):
        start = time.perf_counter()
        check_images(self.trainer, self.data.images)
        indices, mask = self.data.epoch_plan(epoch)
        state, metrics = self.step(state, self.data.images, self.data.labels, indices, mask)
        metrics = jax.device_get(metrics)
        return state, per_seed_metrics(metrics, time.perf_counter() - start, _describe(self.trainer, epoch))


def single_device(trainer: Trainer, data) -> StepLoop:
    """The step jitted with the state donated, on the default device."""
    return StepLoop(trainer, data, compile_train_step(trainer))


def over_mesh(trainer: Trainer, data, mesh: Mesh) -> StepLoop:
    """The step jitted over ``mesh``: batches sharded on their first axis, the state replicated."""
    return StepLoop(trainer, data, compile_train_step(trainer, mesh), place=_mesh_placement(mesh))


def with_pmap(trainer: Trainer, data) -> StepLoop:
    """The step ``jax.pmap``-ed over all local devices, each taking its share of every batch."""
    devices = jax.local_device_count()
    if trainer.config.batch_size % devices:
        raise InputError(f"batch_size {trainer.config.batch_size} does not split over {devices} devices for pmap")
    return StepLoop(trainer, data, compile_pmap_train_step(trainer), place=lambda states: replicate(states[0]),
                    state_of=lambda state, seed: unreplicate(state),
                    split_batch=lambda batch: split_for_pmap(batch, devices), read_metrics=unreplicate)


def over_seeds(trainer: Trainer, pipelines: Sequence) -> StepLoop:
    """The step ``vmap``-ed over the seeds' stacked states and batches: one dispatch for all seeds."""
    return StepLoop(trainer, StackedPipelines(pipelines), compile_seeds_train_step(trainer), place=stack_seeds,
                    state_of=lambda state, seed: jax.tree.map(lambda leaf: leaf[seed], state))


def fused(trainer: Trainer, data, mesh: Mesh | None = None) -> FusedEpochs:
    """Each epoch one ``lax.scan`` (over ``mesh`` when given)."""
    return FusedEpochs(trainer, data, mesh)


class StackedPipelines:
    """Several seeds' pipelines as one: each batch's arrays stacked on a new leading (seed) axis."""

    def __init__(self, pipelines: Sequence):
        self.pipelines = list(pipelines)
        if len({p.num_batches for p in self.pipelines}) > 1:
            raise InputError("the seeds' pipelines must make the same number of batches")
        self.num_batches = self.pipelines[0].num_batches

    def epoch(self, epoch: int):
        for batches in zip(*(p.epoch(epoch) for p in self.pipelines)):
            yield stack_seeds(batches)


def per_seed_metrics(metrics, seconds: float, description: str) -> list[dict]:
    """Each seed's train metrics of an epoch from its steps' (``(steps,)`` or ``(steps, seeds)`` per name)."""
    columns = {name: np.asarray(metrics[name], np.float64).reshape(len(metrics["loss"]), -1)
               for name in ("loss", *LOSS_TERMS, "accuracy") if name in metrics}
    check_finite(columns["loss"], description)
    results = []
    for k in range(columns["loss"].shape[1]):
        result = {"loss": float(columns["loss"][:, k].mean()),
                  **{name: float(columns[name][:, k].mean()) for name in LOSS_TERMS if name in columns},
                  "seconds": seconds, "step_loss": columns["loss"][:, k].tolist()}
        if "first_step_seconds" in metrics:
            result["first_step_seconds"] = metrics["first_step_seconds"]
        if "accuracy" in columns:
            result.update(accuracy=float(columns["accuracy"][:, k].mean()),
                          step_accuracy=columns["accuracy"][:, k].tolist())
        results.append(result)
    return results


def check_images(trainer: Trainer, images) -> None:
    """Refuses a pipeline whose images are not of the shape the model is registered with."""
    spec = trainer.spec
    if tuple(images.shape[-3:]) != spec.image_shape:
        raise InputError(f"{spec.name}: the training pipeline gives images of shape {tuple(images.shape[-3:])}, "
                         f"the model takes {spec.image_shape}: train it on its dataset or register it with that shape")


def check_finite(step_losses, description: str) -> None:
    """A :class:`TrainingDivergedError` naming the first step (and seed) whose loss is not finite."""
    losses = np.asarray(step_losses, np.float64)
    per_seed = losses.reshape(len(losses), -1)
    bad = np.argwhere(~np.isfinite(per_seed))
    if len(bad):
        step, seed = bad[0]
        of_seed = f", seed {seed + 1} of {per_seed.shape[1]}" if per_seed.shape[1] > 1 else ""
        raise TrainingDivergedError(f"the loss became {per_seed[step, seed]} at {description}, step {step + 1}{of_seed}")


def _mesh_placement(mesh: Mesh | None) -> Callable:
    if mesh is None:
        return lambda states: states[0]
    return lambda states: jax.device_put(states[0], NamedSharding(mesh, PartitionSpec()))


def _describe(trainer: Trainer, epoch: int) -> str:
    return f"epoch {epoch + 1}/{trainer.config.epochs}"


def _postfix(read, seconds: float) -> dict[str, str]:
    postfix = {"loss": f"{np.mean(read['loss'][-1]):.4f}", "img/s": f"{np.sum(read['count']) / seconds:,.0f}"}
    if "accuracy" in read:
        postfix["acc"] = f"{np.mean(read['accuracy'][-1]):.3f}"
    return postfix
