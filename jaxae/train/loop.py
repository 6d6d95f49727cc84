"""``fit``: the training loop, per-epoch evaluation, the metrics log, checkpoints and progress.

Each epoch trains (:mod:`jaxae.train.engine`: a loop of compiled steps, or one
fused ``lax.scan``), evaluates, appends the epoch's record to
``workdir/metrics.jsonl`` and saves a checkpoint (:mod:`jaxae.train.run_dir`),
and within the epoch on a schedule or a stop signal; a run resumes from its
latest checkpoint, mid-epoch too, so stopping (even with SIGKILL) and starting
again gives the parameters and history of a run that never stopped.
:func:`fit_seeds` trains several seeds of one config as one program (the step
``vmap``-ed over stacked states), each seed with its own work dir, history and
checkpoints, as if trained alone. Both run the one loop, :func:`_train`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from jaxae import compilation_cache as persistent_cache
from jaxae import cpu
from jaxae.cpu import search
from jaxae.errors import InputError, JaxaeWarning, TrainingDivergedError, check_integer
from jaxae.train.checkpoint import Checkpoints
from jaxae.train.checks import check_pipelines, check_trainable
from jaxae.train.config import TrainConfig
from jaxae.train.engine import Engine, EpochProgress, StepCheckpoints, Stopped
from jaxae.train.interrupts import stop_requests
from jaxae.train.metrics import best_mode, means
from jaxae.train.run_dir import RunDir
from jaxae.train.steps import Trainer
from jaxae.train.workdir import exclusive_workdir


def default_fused(backend: str | None = None) -> bool:
    """Whether a fused (scanned) epoch is the default: on accelerators, not on CPU.

    On XLA:CPU a scanned epoch ran the convolutional models 3-20x slower per
    image than a loop of jitted steps, and the dense ones no faster
    (docs/performance.md); on accelerators it saves a dispatch per step.
    """
    return (backend or jax.default_backend()) != "cpu"


def process_settings(retain_host_memory: bool = True, compilation_cache: bool = True) -> None:
    """The process-wide settings training makes, all here; ``fit`` and ``fit_seeds`` call it, the CLI too.

    * ``compilation_cache``: keep compiled steps in JAX's persistent
      compilation cache (:func:`jaxae.compilation_cache.enable`), so that the
      next process reads them back instead of compiling.
    * ``retain_host_memory``: on CPU, keep the host memory XLA frees for reuse
      (:func:`jaxae.cpu.retain_freed_memory`); it does nothing elsewhere.

    Each is idempotent; ``False`` leaves that part of the process alone.
    Compiler options are not process-wide: each step is compiled with them
    (:func:`jaxae.cpu.jit_with_cpu_options`).
    """
    if compilation_cache:
        persistent_cache.enable()
    if retain_host_memory and jax.default_backend() == "cpu":
        cpu.retain_freed_memory()


def evaluate(trainer: Trainer, params, pipeline, epoch: int = 0, seed: int | None = None,
             collections=None) -> dict[str, Any]:
    """Test metrics over one pass of ``pipeline``: per-image means (:func:`jaxae.train.metrics.means`),
    ``loss_batch_mean`` (the seeds' per-batch mean) and ``count``.

    ``collections``: the model's other variables (``state.collections``), if it has any.
    ``seed`` (default the config's) seeds the dropout of an evaluation with ``dropout_at_eval``.
    """
    step, variables = trainer.jitted_eval_step, {"params": params, **(collections or {})}
    rng = jax.random.fold_in(jax.random.key(trainer.config.seed if seed is None else seed), 1_000_003 + epoch)
    totals, batch_means, batches = None, 0.0, 0
    for i, batch in enumerate(pipeline.epoch(epoch)):
        sums = step(variables, batch, jax.random.fold_in(rng, i))
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
        batch_means += float(sums["loss"] / sums["count"])
        batches += 1
    totals = jax.device_get(totals)
    return {**means(totals), "loss_batch_mean": batch_means / batches, "count": float(totals["count"])}


def fit(
    config: TrainConfig,
    train_data,
    workdir: str | Path,
    *,
    eval_data=None,
    eval_every: int = 1,
    mesh: Mesh | None = None,
    fused: bool | None = None,
    pmap: bool = False,
    cpu_path: str | None = None,
    checkpoint_every: int = 1,
    checkpoint_every_steps: int | None = None,
    checkpoint_every_minutes: float | None = None,
    keep: int = 3,
    best_metric: str | None = None,
    stop_after_epochs: int | None = None,
    progress: bool = True,
    learning_rate=None,
    initial_params=None,
    retain_host_memory: bool = True,
    compilation_cache: bool = True,
    tensorboard: bool | str | Path = False,
):
    """Trains ``config`` on ``train_data`` (a pipeline), resuming from ``workdir`` if it holds a checkpoint.

    Each epoch: train, evaluate on ``eval_data`` (every ``eval_every`` epochs
    and after the last), append the epoch's metrics to ``workdir/metrics.jsonl``
    and to the returned history, and checkpoint every ``checkpoint_every``
    epochs and at the end. Each epoch's record holds the epoch means of every
    metric (the loss, a loss's terms, a classifier's accuracy), their values per
    step (``train_step_loss``, ...), and where the time went: ``train_seconds``,
    ``eval_seconds``, ``checkpoint_seconds`` (the save) and, for the first
    epoch this call of a step loop trains, ``train_first_step_seconds`` (its
    first step, compilation included; part of ``train_seconds``) and, where the
    CPU path was searched then, ``train_search_seconds`` (part of the first
    step). A VAE's evaluation also counts its ``test_active_dims``.

    Args:
      config: the run. ``train_data`` must batch as it says: the same batch
        size and, when shuffling, its seed (``config.batch_spec()`` builds it).
      train_data, eval_data: pipelines (:mod:`jaxae.data`).
      workdir: the run's folder, held by this process alone while it trains
        (:class:`~jaxae.errors.WorkdirInUseError` for a second one).
      mesh: train data-parallel over this device mesh (batch sharded over its
        axes, state replicated; default: the default device); the pipeline's
        ``sharding`` should place batches on it.
      fused: one ``lax.scan`` per epoch (needs a device-resident pipeline)
        instead of a loop of jitted steps; default :func:`default_fused` where
        the pipeline allows it.
      pmap: compile the step with ``jax.pmap`` over all local devices instead
        of ``jax.jit`` over ``mesh`` (the batch must divide by their number; a
        step loop). Both give the same parameters.
      cpu_path: how the step compiles on a CPU: ``"search"`` (the default, or
        ``$JAXAE_CPU_PATH``) measures a few compilations of it on the first batch
        (jaxae's compiler options or XLA's, gradient chunks or the whole batch,
        within a few seconds) and keeps the fastest, remembered beside the
        compilation cache for the next run (:mod:`jaxae.cpu.search`);
        ``"fixed"`` compiles by jaxae's rules, ``"xla"`` with XLA's default options.
        A ``config.microbatch_size`` pins the chunks. A speed setting: the choice
        is not part of the run, and a resumed run may choose otherwise.
      checkpoint_every_steps, checkpoint_every_minutes: also save within an
        epoch, after every this many steps of it and/or minutes, into
        ``workdir/step_checkpoints`` (the newest kept; the next epoch checkpoint
        deletes it). A run killed mid-epoch then resumes from there, at the next
        batch of the same data order, and ends as if never stopped. SIGINT or
        SIGTERM save there anyway, after the current step. A fused epoch saves
        (and stops) only between its segments, ``checkpoint_every_steps`` long.
      keep, best_metric: how many recent checkpoints to keep, and also the
        best by this metric (e.g. ``"test_accuracy"``; the direction is the
        metric's own, :func:`jaxae.train.metrics.best_mode`).
      stop_after_epochs: end this call early; the next call resumes.
      learning_rate: an optax schedule in place of ``config.learning_rate``.
      initial_params: replace the seeded initialisation (E5's classifier
        starts from the trained encoder): parameters, or all the model's variables
        (``{"params": ..., "batch_stats": ...}``); a checkpoint in ``workdir`` wins.
      retain_host_memory, compilation_cache: the two process-wide settings
        ``fit`` makes (:func:`process_settings`); ``False`` declines each.
      tensorboard: also write TensorBoard event files (:mod:`jaxae.train.tensorboard`):
        into ``workdir`` (True) or into this folder; the records' numbers, the
        per-step losses, the config, and an autoencoder's test reconstructions
        at each evaluation. Needs tensorboardX (``jaxae[tensorboard]``).

    Returns:
      ``(state, history)``: the final state and one dict of metrics per epoch.

    Raises:
      TrainingDivergedError: the loss became NaN or infinite; the last good
        checkpoint stays in ``workdir``.
      TrainingInterrupted: SIGINT or SIGTERM stopped the run after a step, saved
        there (one line on stderr says where); uncaught, the process exits with
        130 or 143, the shell's codes for those signals.
    """
    check_pipelines(config, train_data, eval_data, outputs=check_trainable(config))
    if fused is None:  # fused where the backend prefers it and the run allows it
        fused = default_fused() and not pmap and hasattr(train_data, "split")
    _check_schedule(best_metric, checkpoint_every_steps, checkpoint_every_minutes, fused)
    process_settings(retain_host_memory, compilation_cache)
    trainer = Trainer.create(config, learning_rate, steps_per_epoch=train_data.num_batches)
    engine = Engine(trainer, train_data, mesh=mesh, fused=fused, pmap=pmap, cpu_path=search.mode(cpu_path))
    ((state, history),) = _train(engine, [trainer], [workdir], [eval_data], [initial_params], eval_every=eval_every,
                                 checkpoint_every=checkpoint_every, checkpoint_every_steps=checkpoint_every_steps,
                                 checkpoint_every_minutes=checkpoint_every_minutes, keep=keep, best_metric=best_metric,
                                 stop_after_epochs=stop_after_epochs, progress=progress, tensorboard=tensorboard,
                                 scheduled=learning_rate is not None)
    return state, history


def fit_seeds(
    configs: Sequence[TrainConfig],
    train_data: Sequence,
    workdirs: Sequence[str | Path],
    *,
    eval_data: Sequence | None = None,
    eval_every: int = 1,
    mesh: Mesh | None = None,
    fused: bool | None = None,
    cpu_path: str | None = None,
    checkpoint_every: int = 1,
    checkpoint_every_steps: int | None = None,
    checkpoint_every_minutes: float | None = None,
    keep: int = 3,
    best_metric: str | None = None,
    progress: bool = True,
    initial_params: Sequence | None = None,
    retain_host_memory: bool = True,
    compilation_cache: bool = True,
    tensorboard: bool = False,
):
    """Trains one config under several seeds as one program: :func:`fit`'s results, seed by seed.

    The train states are stacked on a new leading axis and the jitted step is
    ``jax.vmap``-ed over (state, batch): each seed keeps its initialisation,
    dropout key and data order, and ends with the parameters of its own
    :func:`fit` up to float rounding. Each seed has its own work dir, history,
    metrics log and checkpoints, and resumes from them; all seeds must stand at
    the same epoch. Every step is one dispatch for all seeds, meant for devices
    that one small step leaves idle. On CPU whole runs were slower together
    (docs/performance.md).

    Args:
      configs: one per seed, equal but for ``seed``.
      train_data, eval_data: a pipeline per seed, each built as its config says.
      workdirs: a folder per seed, as for :func:`fit`.
      initial_params: per seed, parameters replacing its seeded initialisation.
      eval_every, mesh, fused, cpu_path, checkpoint_every, checkpoint_every_steps, checkpoint_every_minutes, keep,
        best_metric, progress, retain_host_memory,
        compilation_cache: as for :func:`fit`.
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
    outputs = check_trainable(configs[0])
    for config, data, evaluation in zip(configs, train_data, eval_data or [None] * len(configs)):
        check_pipelines(config, data, evaluation, outputs)
    if fused is None:
        fused = default_fused() and all(hasattr(data, "split") for data in train_data)
    _check_schedule(best_metric, checkpoint_every_steps, checkpoint_every_minutes, fused)
    process_settings(retain_host_memory, compilation_cache)
    trainers = [Trainer.create(config, steps_per_epoch=data.num_batches) for config, data in zip(configs, train_data)]
    engine = Engine(trainers[0], train_data, mesh=mesh, seeds=len(configs), fused=fused, cpu_path=search.mode(cpu_path))
    return _train(engine, trainers, workdirs,
                  [None] * len(configs) if eval_data is None else list(eval_data),
                  [None] * len(configs) if initial_params is None else list(initial_params),
                  eval_every=eval_every, checkpoint_every=checkpoint_every, checkpoint_every_steps=checkpoint_every_steps,
                  checkpoint_every_minutes=checkpoint_every_minutes, keep=keep, best_metric=best_metric,
                  progress=progress, tensorboard=tensorboard)


def _train(engine: Engine, trainers: list[Trainer], workdirs, eval_data: list, initial_params: list, *,
           eval_every: int, checkpoint_every: int, checkpoint_every_steps: int | None,
           checkpoint_every_minutes: float | None, keep: int, best_metric: str | None, progress: bool,
           stop_after_epochs: int | None = None, tensorboard: bool | str | Path = False,
           scheduled: bool = False) -> list[tuple[Any, list[dict]]]:
    """The loop: each run's folder held and resumed, then per epoch train, evaluate, checkpoint, log.

    One trainer, work dir, evaluation pipeline and initial params per seed (one without seeds).
    ``scheduled``: the learning rate is a schedule, which may depend on the run's length.
    """
    seeds, epochs = len(trainers), trainers[0].config.epochs
    with contextlib.ExitStack() as stack:
        folders = [stack.enter_context(exclusive_workdir(workdir)) for workdir in workdirs]
        stop = stack.enter_context(stop_requests())
        def open_runs(within_epoch: bool) -> list[RunDir]:
            opened = []
            try:
                for trainer, folder, params in zip(trainers, folders, initial_params):
                    opened.append(RunDir(trainer, folder, keep, best_metric, params, tensorboard, within_epoch))
            except BaseException:
                for run in opened:
                    run.close()
                raise
            return opened

        runs = open_runs(within_epoch=True)
        if _apart(runs) and any(run.progress[0] for run in runs):  # killed between the seeds' saves
            for run in runs:
                run.close()
            warnings.warn(f"the seeds' step checkpoints stand at different steps ({_places(runs)}): each seed "
                          "resumes from its last epoch checkpoint", JaxaeWarning, stacklevel=3)
            runs = open_runs(within_epoch=False)
        for run in runs:
            stack.callback(run.close)
        if _apart(runs):
            raise InputError(f"the seeds' checkpoints stand at different places ({_places(runs)}): resume them apart")
        start = runs[0].start
        _check_length(runs[0], epochs, scheduled, progress)
        end = epochs if stop_after_epochs is None else min(epochs, start + stop_after_epochs)
        state = engine.place([run.state for run in runs])

        def save_progress(state, at: EpochProgress) -> None:
            for k, run in enumerate(runs):
                run.microbatch_size = engine.trainer.microbatch_size  # the chunks the CPU path chose
                run.save_progress(engine.state_of(state, k), at.epoch, at.of_seed(k), at.seconds)

        saves = StepCheckpoints(save_progress, checkpoint_every_steps, checkpoint_every_minutes)
        resumed = EpochProgress(start, [list(step) for step in zip(*(run.progress[0] for run in runs))],
                                runs[0].progress[1])
        try:
            for epoch in range(start, end):
                at = resumed if epoch == start else EpochProgress(epoch)
                state, train_metrics = engine.train(state, at, stop, saves, progress)
                if engine.searched is not None and epoch == start and progress:
                    print(_search_summary(engine.searched))
                for run in runs:
                    run.microbatch_size = engine.trainer.microbatch_size
                last = epoch + 1 == epochs
                seed_states = [engine.state_of(state, k) for k in range(seeds)]
                evaluations = [None if data is None or ((epoch + 1) % eval_every and not last)
                               else _timed_evaluation(trainers[0], seed_state, data, epoch, run.trainer.config.seed)
                               for run, seed_state, data in zip(runs, seed_states, eval_data)]
                checkpoint = (epoch + 1) % checkpoint_every == 0 or last or bool(stop)  # a stop keeps the epoch
                for run, seed_state, metrics, evaluation, data in zip(runs, seed_states, train_metrics, evaluations,
                                                                      eval_data):
                    run.end_epoch(epoch, seed_state, metrics, evaluation, checkpoint, progress, data)
                if checkpoint:
                    saves.saved()
                if stop and checkpoint:  # a stop that came after the choice stops at the next step, saving there
                    raise Stopped(epoch + 1)
        except TrainingDivergedError as error:
            raise runs[0].diverged(error, seeds) from None
        except Stopped as stopped:
            interrupted = runs[0].interrupted(stop, stopped.epoch, stopped.step, seeds)
            print(f"jaxae: {interrupted}", file=sys.stderr)
            raise interrupted from None
        return [(engine.state_of(state, k), run.history) for k, run in enumerate(runs)]


def _places(runs: list[RunDir]) -> dict[str, str]:
    """Where each run resumes, by work dir: the epochs done, and the steps into the next."""
    return {str(run.workdir): f"{run.start} epochs" + (f" and {len(run.progress[0])} steps" if run.progress[0] else "")
            for run in runs}


def _apart(runs: list[RunDir]) -> bool:
    """Whether the runs resume at different places."""
    return len(set(_places(runs).values())) > 1


def _search_summary(searched: dict) -> str:
    """One line: the CPU path chosen, each candidate's step time, and what the search took."""
    if not searched["step_ms"]:
        return (f"CPU path: {searched['choice']} (a step too long to try others within the search's budget; "
                f"{searched['seconds']:.1f} s)")
    times = ", ".join(f"{choice} {ms:.3g} ms" for choice, ms in searched["step_ms"].items())
    return f"CPU path: {searched['choice']} (a step: {times}; measured in {searched['seconds']:.1f} s)"


def _check_schedule(best_metric: str | None, every_steps: int | None, every_minutes: float | None,
                    fused: bool) -> None:
    """Refuses, before anything is touched, a best metric or a within-epoch schedule that cannot be."""
    if best_metric is not None:
        best_mode(best_metric)
    if every_steps is not None:
        check_integer("checkpoint_every_steps", every_steps)
    if every_minutes is not None and not (isinstance(every_minutes, (int, float)) and every_minutes > 0):
        raise InputError(f"checkpoint_every_minutes must be a positive number, got {every_minutes!r}")
    if every_minutes is not None and fused and every_steps is None:
        raise InputError("a fused epoch can save only between its segments: checkpoint_every_minutes needs "
                         "checkpoint_every_steps too, the segments' length (or fused=False)")


def _check_length(run: RunDir, epochs: int, scheduled: bool, progress: bool) -> None:
    """Refuses a length the run cannot take, in one line; says so when it is already that long."""
    where = run.workdir
    if run.start > epochs:
        raise InputError(f"the run in {where} has trained {run.start} epochs, more than the {epochs} asked: "
                         f"ask for {run.start} or more to go on")
    if scheduled and run.planned is not None and run.planned != epochs:
        raise InputError(f"the run in {where} was trained for {run.planned} epochs with a learning-rate schedule, "
                         f"which may depend on that length: to go on to {epochs}, start a new run")
    if run.start == epochs and progress:
        print(f"the run in {where} has finished its {epochs} epochs: ask for more epochs to go on")


def _timed_evaluation(trainer: Trainer, state, data, epoch: int, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    metrics = evaluate(trainer, state.params, data, epoch, seed=seed, collections=state.collections)
    return {**{f"test_{k}": v for k, v in metrics.items()}, "eval_seconds": time.perf_counter() - started}


def restore_state(config: TrainConfig, workdir: str | Path, epoch: int | None = None):
    """The train state of ``config``'s run in ``workdir``, from checkpoint ``epoch`` (default the latest).

    ``state.params`` (and ``state.collections``, a model's other variables) for
    :func:`jaxae.nnx.load_params`, ``model.apply`` or another run's
    ``initial_params``. The checkpoint must be of ``config`` (as when resuming).
    """
    checkpoints, trainer = Checkpoints(Path(workdir) / "checkpoints"), Trainer.create(config)
    try:
        state, _ = checkpoints.restore(trainer.init_state(), epoch, config=config.identity())
    finally:
        checkpoints.close()
    return state
