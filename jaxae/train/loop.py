"""``fit``: the training loop, per-epoch evaluation, the metrics log, checkpoints and progress.

Each epoch trains (a loop of jitted steps, or one fused ``lax.scan``),
evaluates, appends the epoch's record to ``workdir/metrics.jsonl`` and
saves a checkpoint; a run resumes from its latest checkpoint, so stopping
(even with SIGKILL) and starting again gives the parameters and history of
a run that never stopped. :func:`fit_seeds` trains several seeds of one
config as one program (the step ``vmap``-ed over stacked states), each seed
with its own work dir, history and checkpoints, as if trained alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from jaxae import compilation_cache, cpu, latent, models
from jaxae.errors import InputError, TrainingDivergedError
from jaxae.train.checkpoint import Checkpoints
from jaxae.train.config import TrainConfig
from jaxae.train.interrupts import StopRequest, TrainingInterrupted, stop_requests
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
from jaxae.train.workdir import exclusive_workdir

PARALLEL = ("jit", "pmap")


def default_fused(backend: str | None = None) -> bool:
    """Whether a fused (scanned) epoch is the default: on accelerators, not on CPU.

    On XLA:CPU a scanned epoch ran the convolutional models 3-20x slower per
    image than a loop of jitted steps, and the dense ones no faster
    (docs/performance.md); on accelerators it saves a dispatch per step.
    """
    return (backend or jax.default_backend()) != "cpu"


def evaluate(trainer: Trainer, params, pipeline, epoch: int = 0, seed: int | None = None) -> dict[str, Any]:
    """Test metrics over one pass of ``pipeline``: per-image mean loss, seed-style per-batch mean, accuracy.

    A VAE's also hold the loss's terms per image (``reconstruction``, ``kl``) and its
    ``active_dims``, counted as :func:`jaxae.latent.active_dimensions` counts them.
    ``seed`` (default the config's) seeds the dropout of an evaluation with ``dropout_at_eval``.
    """
    step = trainer.jitted_eval_step
    rng = jax.random.fold_in(jax.random.key(trainer.config.seed if seed is None else seed), 1_000_003 + epoch)
    totals, batch_means, batches = None, 0.0, 0
    for i, batch in enumerate(pipeline.epoch(epoch)):
        sums = step(params, batch, jax.random.fold_in(rng, i))
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
        batch_means += float(sums["loss"] / sums["count"])
        batches += 1
    count = float(totals["count"])
    result = {"loss": float(totals["loss"]) / count, "loss_batch_mean": batch_means / batches, "count": count}
    result.update({name: float(totals[name]) / count for name in LOSS_TERMS if name in totals})
    if "code_sum" in totals:
        result["active_dims"] = latent.active_dimensions_of_sums(totals["code_sum"], totals["code_square_sum"], count)
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
    tensorboard: bool | str | Path = False,
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
    compilation included; part of ``train_seconds``). A VAE's records also hold its loss's
    two terms (``train_reconstruction``, ``train_kl``, ``test_...``) and its
    ``test_active_dims``.

    Args:
      config: the run. ``train_data`` must batch as it says: the same batch
        size and, when shuffling, its seed (``config.batch_spec()`` builds it).
      train_data, eval_data: pipelines (:mod:`jaxae.data`).
      workdir: the run's folder, held by this process alone while it trains
        (:class:`~jaxae.errors.WorkdirInUseError` for a second one).
      fused: one ``lax.scan`` per epoch (needs a device-resident pipeline and
        ``parallel="jit"``) instead of a loop of jitted steps; default
        :func:`default_fused` where the pipeline and ``parallel`` allow it.
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
      tensorboard: also write TensorBoard event files (:mod:`jaxae.train.tensorboard`):
        into ``workdir`` (True) or into this folder; the records' numbers, the
        per-step losses, the config, and an autoencoder's test reconstructions
        at each evaluation. Needs tensorboardX (``jaxae[tensorboard]``).

    The compiled steps are kept in JAX's persistent compilation cache
    (:func:`jaxae.compilation_cache.enable`), so the next process reads them back.

    Returns:
      ``(state, history)``: the final state and one dict of metrics per epoch.

    Raises:
      TrainingDivergedError: the loss became NaN or infinite; the last good
        checkpoint stays in ``workdir``.
    """
    if parallel not in PARALLEL:
        raise InputError(f"parallel must be one of {PARALLEL}, got {parallel!r}")
    _check_batching(config, train_data)
    if fused is None:  # fused where the backend prefers it and the run allows it
        fused = default_fused() and parallel == "jit" and hasattr(train_data, "epoch_plan")
    if fused and not hasattr(train_data, "epoch_plan"):
        raise InputError("a fused epoch needs a device-resident pipeline (mode='device')")
    if parallel == "pmap" and (fused or mesh is not None):
        raise InputError("parallel='pmap' runs a step loop over all local devices: no fused epochs, no mesh")
    devices = jax.local_device_count()
    if parallel == "pmap" and config.batch_size % devices:
        raise InputError(f"batch_size {config.batch_size} does not split over {devices} devices for pmap")
    compilation_cache.enable()
    if retain_host_memory and jax.default_backend() == "cpu":
        cpu.retain_freed_memory()

    with exclusive_workdir(workdir) as folder, stop_requests() as stop:
        trainer = Trainer.create(config, learning_rate, steps_per_epoch=train_data.num_batches)
        run = _Run(trainer, folder, keep, best_metric, initial_params, tensorboard)
        epoch_runner = _EpochRunner(trainer, train_data, progress, fused=fused, mesh=mesh, pmap=parallel == "pmap",
                                    stop=stop)
        state = epoch_runner.place(run.state)
        end = config.epochs if stop_after_epochs is None else min(config.epochs, run.start + stop_after_epochs)
        try:
            for epoch in range(run.start, end):
                state, (train_metrics,) = epoch_runner.train(state, epoch)
                run.end_epoch(epoch, epoch_runner.single(state), train_metrics, eval_data, eval_every,
                              checkpoint_every, progress)
                epoch_runner.stop_if_asked(epoch + 1)
        except TrainingDivergedError as error:
            raise run.diverged(error) from None
        except _Stopped as stopped:
            raise run.interrupted(stop, stopped) from None
        finally:
            run.close()
    return epoch_runner.single(state), run.history


def fit_seeds(
    configs: Sequence[TrainConfig],
    train_data: Sequence,
    workdirs: Sequence[str | Path],
    *,
    eval_data: Sequence | None = None,
    eval_every: int = 1,
    checkpoint_every: int = 1,
    keep: int = 3,
    best_metric: str | None = None,
    progress: bool = True,
    initial_params: Sequence | None = None,
    retain_host_memory: bool = True,
    tensorboard: bool = False,
):
    """Trains one config under several seeds as one program: :func:`fit`'s results, seed by seed.

    The train states are stacked on a new leading axis and the jitted step is
    ``jax.vmap``-ed over (state, batch): each seed keeps its initialisation,
    dropout key and data order, and ends with the parameters of its own
    :func:`fit` up to float rounding. Each seed has its own work dir, history,
    metrics log and checkpoints, and resumes from them; all seeds must stand at
    the same epoch. Every step is one dispatch for all seeds (a step loop; no
    mesh, pmap or fused epochs), meant for devices that one small step leaves
    idle. On CPU whole runs were slower together (docs/performance.md).

    Args:
      configs: one per seed, equal but for ``seed``.
      train_data, eval_data: a pipeline per seed, each built as its config says.
      workdirs: a folder per seed, as for :func:`fit`.
      initial_params: per seed, parameters replacing its seeded initialisation.
      eval_every, checkpoint_every, keep, best_metric, progress, retain_host_memory: as for :func:`fit`.
      tensorboard: each seed's TensorBoard log in its work dir (see :func:`fit`).

    Returns:
      ``[(state, history), ...]``, one per seed.
    """
    configs = list(configs)
    if not configs or not len(configs) == len(train_data) == len(workdirs):
        raise InputError("fit_seeds needs one config, one training pipeline and one work dir per seed")
    differing = sorted(k for c in configs[1:] for k, v in dataclasses.asdict(c).items()
                       if k != "seed" and v != getattr(configs[0], k))
    if differing:
        raise InputError(f"fit_seeds trains one config under several seeds; these also differ: {differing}")
    for config, data in zip(configs, train_data):
        _check_batching(config, data)
    eval_data = [None] * len(configs) if eval_data is None else list(eval_data)
    initial_params = [None] * len(configs) if initial_params is None else list(initial_params)
    compilation_cache.enable()
    if retain_host_memory and jax.default_backend() == "cpu":
        cpu.retain_freed_memory()

    with contextlib.ExitStack() as stack:
        folders = [stack.enter_context(exclusive_workdir(workdir)) for workdir in workdirs]
        stop = stack.enter_context(stop_requests())
        trainers = [Trainer.create(config, steps_per_epoch=data.num_batches) for config, data in zip(configs, train_data)]
        runs = [_Run(t, folder, keep, best_metric, p, tensorboard)
                for t, folder, p in zip(trainers, folders, initial_params)]
        for run in runs:
            stack.callback(run.close)
        if len({run.start for run in runs}) > 1:
            epochs = {str(folder): run.start for folder, run in zip(folders, runs)}
            raise InputError(f"the seeds' checkpoints stand at different epochs ({epochs}): resume them apart")
        epoch_runner = _EpochRunner(trainers[0], _StackedPipelines(train_data), progress, seeds=len(configs), stop=stop)
        state = stack_seeds([run.state for run in runs])
        for epoch in range(runs[0].start, configs[0].epochs):
            try:
                state, train_metrics = epoch_runner.train(state, epoch)
                for k, (run, metrics, data) in enumerate(zip(runs, train_metrics, eval_data)):
                    seed_state = jax.tree.map(lambda leaf, k=k: leaf[k], state)
                    run.end_epoch(epoch, seed_state, metrics, data, eval_every, checkpoint_every, progress,
                                  evaluator=trainers[0])
                epoch_runner.stop_if_asked(epoch + 1)
            except TrainingDivergedError as error:
                raise TrainingDivergedError(f"{error}; each seed's last good checkpoint stays in its work dir") from None
            except _Stopped as stopped:
                raise runs[0].interrupted(stop, stopped, seeds=len(runs)) from None
    return [(jax.tree.map(lambda leaf, k=k: leaf[k], state), run.history) for k, run in enumerate(runs)]


def _check_batching(config: TrainConfig, train_data) -> None:
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


def epoch_summary(record: dict[str, Any], epochs: int) -> str:
    """One line per epoch: its losses (a VAE's with their two terms), accuracies, active dimensions and time."""
    parts = []
    for split in ("train", "test"):
        if f"{split}_loss" not in record:
            continue
        loss = f"{split} loss {record[f'{split}_loss']:.4f}"
        if f"{split}_kl" in record:
            loss += f" (reconstruction {record[f'{split}_reconstruction']:.4f}, KL {record[f'{split}_kl']:.4f})"
        parts.append(loss)
        if f"{split}_accuracy" in record:
            parts.append(f"acc {record[f'{split}_accuracy']:.4f}")
    if "test_active_dims" in record:
        parts.append(f"{record['test_active_dims']} active dims")
    return f"epoch {record['epoch']}/{epochs}: " + ", ".join(parts) + f" ({record['train_seconds']:.1f} s)"


class _Run:
    """One run's folder: its state to start from, its history, metrics log and checkpoints."""

    def __init__(self, trainer: Trainer, workdir: Path, keep: int, best_metric: str | None, initial_params,
                 tensorboard: bool | str | Path = False):
        self.trainer, self.workdir = trainer, workdir
        best_mode = "max" if best_metric and "accuracy" in best_metric else "min"
        self.checkpoints = Checkpoints(workdir / "checkpoints", keep=keep, best_metric=best_metric, best_mode=best_mode)
        self.state, self.history, self.start = trainer.init_state(initial_params), [], 0
        restored = self.checkpoints.restore_intact(self.state, config=trainer.config.to_json())
        if restored is not None:
            self.state, meta = restored
            self.history, self.start = meta["history"], meta["epoch"]
        # The log restarts from the checkpoint's history: epochs lost to a crash are not listed twice.
        (workdir / "metrics.jsonl").write_text("".join(json.dumps(record) + "\n" for record in self.history))
        self.events = self.test_images = None
        if tensorboard:
            from jaxae.train import tensorboard as events

            hparams = {**trainer.config.to_json(), "framework": "jax"}
            self.events = events.EventLog(events.log_dir(tensorboard, workdir), hparams, self.history)

    def end_epoch(self, epoch, state, train_metrics, eval_data, eval_every, checkpoint_every, progress,
                  evaluator: Trainer | None = None) -> None:
        """Evaluates, checkpoints and logs epoch ``epoch`` (0-based), trained to ``state``."""
        config = self.trainer.config
        record = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in train_metrics.items()}}
        if eval_data is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == config.epochs):
            started = time.perf_counter()
            evaluation = evaluate(evaluator or self.trainer, state.params, eval_data, epoch, seed=config.seed)
            record.update({f"test_{k}": v for k, v in evaluation.items()})
            record["eval_seconds"] = time.perf_counter() - started
        if (epoch + 1) % checkpoint_every == 0 or epoch + 1 == config.epochs:
            started = time.perf_counter()
            scalars = {k: v for k, v in record.items() if isinstance(v, float)}
            meta = {"epoch": epoch + 1, "history": [*self.history, record], "config": config.to_json()}
            self.checkpoints.save(epoch + 1, state, meta, scalars)
            record["checkpoint_seconds"] = time.perf_counter() - started
        self.history.append(record)
        if progress:
            print(epoch_summary(record, config.epochs))
        with open(self.workdir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.events is not None:
            self.events.epoch(record)
            if "test_loss" in record and models.spec(config.model).is_autoencoder:
                self._log_reconstructions(epoch + 1, state.params, eval_data)

    def _log_reconstructions(self, epoch: int, params, eval_data) -> None:
        """The first test images and their reconstructions, into the TensorBoard log."""
        if self.test_images is None:
            batch = next(iter(eval_data.epoch(0)))
            self.test_images = np.asarray(batch["image"])[np.asarray(batch["mask"], bool)]
        model = self.trainer.model
        self.events.reconstructions(epoch, self.test_images, lambda images: latent.reconstruct(model, params, images),
                                    models.spec(model.model_name).value_range)

    def interrupted(self, stop: StopRequest, stopped: _Stopped, seeds: int = 1) -> TrainingInterrupted:
        """The exception that ends a run stopped by ``stop``'s signal; the message says how to resume."""
        epochs = self.trainer.config.epochs
        where = (f"after epoch {stopped.epoch}/{epochs}" if stopped.step is None
                 else f"at epoch {stopped.epoch}/{epochs}, step {stopped.step}")
        last = self.checkpoints.latest()
        kept = (f"checkpoint {last} in {self.workdir / 'checkpoints'}" + (" (and each seed's)" if seeds > 1 else "")
                + " is intact: the same command resumes from it") if last else "no checkpoint yet: the same command starts again"
        return TrainingInterrupted(f"interrupted by {stop.signal} {where}; {kept}", stop.signal)

    def diverged(self, error: TrainingDivergedError) -> TrainingDivergedError:
        last = self.checkpoints.latest()
        kept = f"checkpoint {last} in {self.workdir / 'checkpoints'} is the last good state" if last else "no checkpoint yet"
        return TrainingDivergedError(f"{error}; {kept}")

    def close(self) -> None:
        self.checkpoints.close()
        if self.events is not None:
            self.events.close()


class _StackedPipelines:
    """Several seeds' pipelines as one: each batch's arrays stacked on a new leading (seed) axis."""

    def __init__(self, pipelines: Sequence):
        self.pipelines = list(pipelines)
        if len({p.num_batches for p in self.pipelines}) > 1:
            raise InputError("the seeds' pipelines must make the same number of batches")
        self.num_batches = self.pipelines[0].num_batches

    def epoch(self, epoch: int):
        for batches in zip(*(p.epoch(epoch) for p in self.pipelines)):
            yield stack_seeds(batches)


class _Stopped(Exception):
    """A stop request honoured at ``epoch`` (1-based), after ``step`` of it (None: after the whole epoch)."""

    def __init__(self, epoch: int, step: int | None = None):
        super().__init__(epoch, step)
        self.epoch, self.step = epoch, step


_SYNC_EVERY = 50  # steps between reads of the metrics: reading each step would stall the dispatch queue


class _EpochRunner:
    """Trains one epoch the chosen way: a fused scan, or a loop of jitted, pmapped or seed-vmapped steps."""

    def __init__(self, trainer: Trainer, train_data, progress: bool, *, fused: bool = False,
                 mesh: Mesh | None = None, pmap: bool = False, seeds: int | None = None, stop: StopRequest | None = None):
        self.trainer, self.data, self.progress = trainer, train_data, progress
        self.fused, self.mesh, self.pmap = fused, mesh, pmap
        self.stop = StopRequest() if stop is None else stop
        self.compiled = False  # whether a step has run yet: the first one compiles
        if seeds is not None:
            self.step = compile_seeds_train_step(trainer)
        elif fused:
            self.step = compile_train_epoch(trainer, train_data.transform, mesh)
        elif pmap:
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

    def stop_if_asked(self, epoch: int, step: int | None = None) -> None:
        """Ends training (:class:`_Stopped`) if a signal asked for it; ``epoch`` is 1-based."""
        if self.stop:
            raise _Stopped(epoch, step)

    def single(self, state):
        """One copy of the state (for evaluation and checkpoints)."""
        return unreplicate(state) if self.pmap else state

    def train(self, state, epoch: int):
        """Trains epoch ``epoch``; returns the state and, per seed (one without seeds), its train metrics."""
        start = time.perf_counter()
        description = f"epoch {epoch + 1}/{self.trainer.config.epochs}"
        if self.fused:
            indices, mask = self.data.epoch_plan(epoch)
            state, metrics = self.step(state, self.data.images, self.data.labels, indices, mask)
            metrics = jax.device_get(metrics)
        else:
            state, metrics = self._step_loop(state, epoch, description, start)
        # Per step, or per step and seed: one column per seed.
        columns = {name: np.asarray(metrics[name], np.float64).reshape(len(metrics["loss"]), -1)
                   for name in ("loss", *LOSS_TERMS, "accuracy") if name in metrics}
        _check_finite(columns["loss"], description)
        seconds = time.perf_counter() - start
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
        return state, results

    def _step_loop(self, state, epoch, description, start):
        """One dispatch per batch; metrics are read every ``_SYNC_EVERY`` steps for the bar and the NaN check."""
        pending, read, first_step_seconds = [], {}, None
        num_batches = self.data.num_batches
        devices = jax.local_device_count()
        bar = tqdm(total=num_batches, desc=description, disable=not self.progress, unit="batch", leave=False)
        try:
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
                if step + 1 < num_batches:  # after the last step, the epoch ends and is checkpointed first
                    self.stop_if_asked(epoch + 1, step + 1)
                if len(pending) == _SYNC_EVERY or step + 1 == num_batches:
                    fetched = jax.device_get(pending)
                    pending = []
                    for name in fetched[0]:
                        read.setdefault(name, []).extend(np.asarray(m[name], np.float64) for m in fetched)
                    _check_finite(np.asarray(read["loss"]), description)
                    seconds = time.perf_counter() - start
                    postfix = {"loss": f"{np.mean(read['loss'][-1]):.4f}",
                               "img/s": f"{np.sum(read['count']) / seconds:,.0f}"}
                    if "accuracy" in read:
                        postfix["acc"] = f"{np.mean(read['accuracy'][-1]):.3f}"
                    bar.set_postfix(postfix, refresh=False)
                    bar.update(len(fetched))
        finally:
            bar.close()
        if first_step_seconds is not None:
            read["first_step_seconds"] = first_step_seconds
        return state, read


def _check_finite(step_losses, description: str) -> None:
    """A :class:`TrainingDivergedError` naming the first step (and seed) whose loss is not finite."""
    losses = np.asarray(step_losses, np.float64)
    per_seed = losses.reshape(len(losses), -1)
    bad = np.argwhere(~np.isfinite(per_seed))
    if len(bad):
        step, seed = bad[0]
        of_seed = f", seed {seed + 1} of {per_seed.shape[1]}" if per_seed.shape[1] > 1 else ""
        raise TrainingDivergedError(f"the loss became {per_seed[step, seed]} at {description}, step {step + 1}{of_seed}")
