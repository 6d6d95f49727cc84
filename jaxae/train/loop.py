"""``fit``: the training loop, per-epoch evaluation, the metrics log, checkpoints and progress.

Each epoch trains (a loop of jitted steps, or one fused ``lax.scan``),
evaluates, appends the epoch's record to ``workdir/metrics.jsonl`` and
saves a checkpoint; a run resumes from its latest checkpoint, so stopping
(even with SIGKILL) and starting again gives the parameters and history of
a run that never stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from jaxae import cpu
from jaxae.errors import InputError, TrainingDivergedError
from jaxae.train.checkpoint import Checkpoints
from jaxae.train.config import TrainConfig
from jaxae.train.steps import (
    Trainer,
    compile_pmap_train_step,
    compile_train_epoch,
    compile_train_step,
    replicate,
    split_for_pmap,
    unreplicate,
)
from jaxae.train.workdir import exclusive_workdir

PARALLEL = ("jit", "pmap")


def default_fused(backend: str | None = None) -> bool:
    """Whether a fused (scanned) epoch is the default: on accelerators, not on CPU.

    On XLA:CPU a scanned epoch ran the convolutional models 2.6-26x slower per
    image than a loop of jitted steps, and the dense ones no faster
    (docs/performance.md); on accelerators it saves a dispatch per step.
    """
    return (backend or jax.default_backend()) != "cpu"


def evaluate(trainer: Trainer, params, pipeline, epoch: int = 0) -> dict[str, Any]:
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
        class_count = np.maximum(np.asarray(totals["class_count"]), 1)
        result["class_accuracy"] = (np.asarray(totals["class_correct"]) / class_count).tolist()
    return result


def fit(
    config: TrainConfig,
    train_data,
    workdir: str | Path,
    *,
    eval_data=None,
    eval_every: int = 1,
    fused: bool | None = None,
    mesh: Mesh | None = None,
    parallel: str = "jit",
    checkpoint_every: int = 1,
    keep: int = 3,
    best_metric: str | None = None,
    stop_after_epochs: int | None = None,
    progress: bool = True,
    learning_rate=None,
    initial_params=None,
    retain_host_memory: bool = True,
):
    """Trains ``config`` on ``train_data`` (a pipeline), resuming from ``workdir`` if it holds a checkpoint.

    Each epoch: train, evaluate on ``eval_data`` (every ``eval_every`` epochs
    and after the last), append the epoch's metrics to ``workdir/metrics.jsonl``
    and to the returned history, and checkpoint every ``checkpoint_every``
    epochs and at the end. Each epoch's record holds the epoch means, the
    per-step losses (``train_step_loss``, and ``train_step_accuracy`` for
    classifiers) and where the time went: ``train_seconds``, ``eval_seconds``,
    ``checkpoint_seconds`` (starting the asynchronous save) and, for the first
    epoch of a step loop, ``train_first_step_seconds`` (its first step,
    compilation included; part of ``train_seconds``).

    Args:
      config: the run. ``train_data`` must batch as it says: the same batch
        size and, when shuffling, its seed (``config.batch_spec()`` builds it).
      train_data, eval_data: pipelines (:mod:`jaxae.data`).
      workdir: the run's folder, held by this process alone while it trains
        (:class:`~jaxae.errors.WorkdirInUseError` for a second one).
      fused: one ``lax.scan`` per epoch (needs a device-resident pipeline)
        instead of a loop of jitted steps; default :func:`default_fused`.
      mesh: train data-parallel over this device mesh (batch sharded on its
        first axis, state replicated); the pipeline's ``sharding`` should
        place batches on it.
      parallel: ``"jit"`` (the step jitted, over ``mesh`` when given) or
        ``"pmap"`` (``jax.pmap`` over all local devices; the batch must divide
        by their number; a step loop). Both give the same parameters.
      keep, best_metric: how many recent checkpoints to keep, and also the
        best by this metric (e.g. ``"test_accuracy"``).
      stop_after_epochs: end this call early; the next call resumes.
      learning_rate: an optax schedule in place of ``config.learning_rate``.
      initial_params: replace the seeded initialisation (E5's classifier
        starts from the trained encoder); a checkpoint in ``workdir`` wins.
      retain_host_memory: on CPU, keep the host memory XLA frees for reuse
        (:func:`jaxae.cpu.retain_freed_memory`, process-wide).

    Returns:
      ``(state, history)``: the final state and one dict of metrics per epoch.

    Raises:
      TrainingDivergedError: the loss became NaN or infinite; the last good
        checkpoint stays in ``workdir``.
    """
    if parallel not in PARALLEL:
        raise InputError(f"parallel must be one of {PARALLEL}, got {parallel!r}")
    spec = train_data.batch_spec
    if spec.batch_size != config.batch_size:
        raise InputError(
            f"the training pipeline makes batches of {spec.batch_size} but config.batch_size is "
            f"{config.batch_size}: build its BatchSpec with config.batch_spec()"
        )
    if spec.shuffle and spec.seed != config.seed:
        raise InputError(
            f"the training pipeline shuffles with seed {spec.seed} but config.seed is {config.seed}: "
            "build its BatchSpec with config.batch_spec()"
        )
    fused = default_fused() if fused is None else fused
    if fused and not hasattr(train_data, "epoch_plan"):
        raise InputError("a fused epoch needs a device-resident pipeline (mode='device')")
    if parallel == "pmap" and (fused or mesh is not None):
        raise InputError("parallel='pmap' runs a step loop over all local devices: no fused epochs, no mesh")
    devices = jax.local_device_count()
    if parallel == "pmap" and config.batch_size % devices:
        raise InputError(f"batch_size {config.batch_size} does not split over {devices} devices for pmap")
    if retain_host_memory and jax.default_backend() == "cpu":
        cpu.retain_freed_memory()

    with exclusive_workdir(workdir) as workdir:
        trainer = Trainer.create(config, learning_rate)
        best_mode = "max" if best_metric and "accuracy" in best_metric else "min"
        checkpoints = Checkpoints(workdir / "checkpoints", keep=keep, best_metric=best_metric, best_mode=best_mode)
        state, history, start = trainer.init_state(initial_params), [], 0
        if checkpoints.latest() is not None:
            state, meta = checkpoints.restore(state, config=trainer.config.to_json())
            history, start = meta["history"], meta["epoch"]
        # The log restarts from the checkpoint's history: epochs lost to a crash are not listed twice.
        (workdir / "metrics.jsonl").write_text("".join(json.dumps(record) + "\n" for record in history))
        epoch_runner = _EpochRunner(trainer, train_data, fused, mesh, parallel, progress)
        state = epoch_runner.place(state)
        end = config.epochs if stop_after_epochs is None else min(config.epochs, start + stop_after_epochs)
        try:
            for epoch in range(start, end):
                state, train_metrics = epoch_runner.train(state, epoch)
                record = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in train_metrics.items()}}
                if eval_data is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == config.epochs):
                    started = time.perf_counter()
                    evaluation = evaluate(trainer, epoch_runner.single(state).params, eval_data, epoch)
                    record.update({f"test_{k}": v for k, v in evaluation.items()})
                    record["eval_seconds"] = time.perf_counter() - started
                if (epoch + 1) % checkpoint_every == 0 or epoch + 1 == config.epochs:
                    started = time.perf_counter()
                    scalars = {k: v for k, v in record.items() if isinstance(v, float)}
                    meta = {"epoch": epoch + 1, "history": [*history, record], "config": trainer.config.to_json()}
                    checkpoints.save(epoch + 1, epoch_runner.single(state), meta, scalars)
                    record["checkpoint_seconds"] = time.perf_counter() - started
                history.append(record)
                if progress:
                    print(epoch_summary(record, config.epochs))
                with open(workdir / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
        except TrainingDivergedError as error:
            last = checkpoints.latest()
            kept = f"checkpoint {last} in {workdir / 'checkpoints'} is the last good state" if last else "no checkpoint yet"
            raise TrainingDivergedError(f"{error}; {kept}") from None
        finally:
            checkpoints.close()
    return epoch_runner.single(state), history


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


_SYNC_EVERY = 50  # steps between reads of the metrics: reading each step would stall the dispatch queue


class _EpochRunner:
    """Trains one epoch the chosen way: a fused scan, or a loop of jitted (or pmapped) steps."""

    def __init__(self, trainer: Trainer, train_data, fused: bool, mesh: Mesh | None, parallel: str, progress: bool):
        self.trainer, self.data, self.fused, self.mesh, self.progress = trainer, train_data, fused, mesh, progress
        self.pmap = parallel == "pmap"
        self.compiled = False  # whether a step has run yet: the first one compiles
        if fused:
            self.step = compile_train_epoch(trainer, train_data.transform, mesh)
        elif self.pmap:
            self.step = compile_pmap_train_step(trainer)
        else:
            self.step = compile_train_step(trainer, mesh)

    def place(self, state):
        """The state where the steps want it: replicated over the mesh or the pmap devices."""
        if self.pmap:
            return replicate(state)
        if self.mesh is not None:
            return jax.device_put(state, NamedSharding(self.mesh, PartitionSpec()))
        return state

    def single(self, state):
        """One copy of the state (for evaluation and checkpoints)."""
        return unreplicate(state) if self.pmap else state

    def train(self, state, epoch: int):
        """Trains epoch ``epoch``; returns the state and its train metrics (means of the batch means)."""
        start = time.perf_counter()
        description = f"epoch {epoch + 1}/{self.trainer.config.epochs}"
        if self.fused:
            indices, mask = self.data.epoch_plan(epoch)
            state, metrics = self.step(state, self.data.images, self.data.labels, indices, mask)
            metrics = jax.device_get(metrics)
        else:
            state, metrics = self._step_loop(state, epoch, description, start)
        step_losses = np.asarray(metrics["loss"], np.float64)
        _check_finite(step_losses, description)
        result = {"loss": float(step_losses.mean()), "seconds": time.perf_counter() - start, "step_loss": step_losses.tolist()}
        if "first_step_seconds" in metrics:
            result["first_step_seconds"] = metrics["first_step_seconds"]
        if "accuracy" in metrics:
            accuracies = np.asarray(metrics["accuracy"], np.float64)
            result.update(accuracy=float(accuracies.mean()), step_accuracy=accuracies.tolist())
        return state, result

    def _step_loop(self, state, epoch, description, start):
        """One dispatch per batch; metrics are read every ``_SYNC_EVERY`` steps for the bar and the NaN check."""
        pending, read, first_step_seconds = [], {}, None
        num_batches = self.data.num_batches
        devices = jax.local_device_count()
        bar = tqdm(total=num_batches, desc=description, disable=not self.progress, unit="batch", leave=False)
        for step, batch in enumerate(self.data.epoch(epoch)):
            if self.pmap:
                state, metrics = self.step(state, split_for_pmap(batch, devices))
                metrics = unreplicate(metrics)
            else:
                state, metrics = self.step(state, batch)
            if not self.compiled:
                jax.block_until_ready(metrics)
                first_step_seconds = time.perf_counter() - start
                self.compiled = True
            pending.append(metrics)
            if len(pending) == _SYNC_EVERY or step + 1 == num_batches:
                fetched = jax.device_get(pending)
                pending = []
                for name in fetched[0]:
                    read.setdefault(name, []).extend(float(m[name]) for m in fetched)
                _check_finite(np.asarray(read["loss"]), description)
                seconds = time.perf_counter() - start
                postfix = {"loss": f"{read['loss'][-1]:.4f}", "img/s": f"{sum(read['count']) / seconds:,.0f}"}
                if "accuracy" in read:
                    postfix["acc"] = f"{read['accuracy'][-1]:.3f}"
                bar.set_postfix(postfix, refresh=False)
                bar.update(len(fetched))
        bar.close()
        if first_step_seconds is not None:
            read["first_step_seconds"] = first_step_seconds
        return state, read


def _check_finite(step_losses: np.ndarray, description: str) -> None:
    if not np.isfinite(step_losses).all():
        bad = int(np.argmin(np.isfinite(step_losses)))
        raise TrainingDivergedError(f"the loss became {step_losses[bad]} at {description}, step {bad + 1}")
