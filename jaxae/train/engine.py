"""How ``fit`` runs the train step: one loop of one step, compiled for where and how it runs.

The step is :meth:`~jaxae.train.Trainer.train_step`. Three choices, each
independent of the others, say how it is compiled:

* ``mesh``: the devices, one or many, on one host or several. The batch is
  sharded over the mesh's axes, the state replicated: ``jax.jit`` with
  explicit shardings, the state donated. ``None``: the default device, where
  arrays already are (``jax.jit`` without shardings, so that a state or batch
  placed on it by hand calls the same compiled step).
* ``seeds``: several seeds of one config train together: every state and
  batch has a leading seed axis and the step is ``jax.vmap``-ed over it.
* ``fused``: a whole epoch of a device-resident pipeline is the step under
  ``lax.scan``, the batches gathered inside (one dispatch an epoch).

``pmap=True`` compiles the same step with ``jax.pmap`` over the local devices
instead of ``jax.jit`` over a mesh (each device takes its share of a batch);
it goes with neither a mesh nor fused epochs.

:class:`Engine` holds the compiled step and runs an epoch, or the rest of one
(:class:`EpochProgress`), saving within it when :class:`StepCheckpoints` says so or a
stop is requested; ``fit``'s loop (:mod:`jaxae.train.loop`) calls ``place``, ``train``
and ``state_of``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import itertools
import time
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from jaxae.cpu import jit_with_cpu_options, search
from jaxae.data.batches import gather_batch
from jaxae.errors import InputError, TrainingDivergedError
from jaxae.train.interrupts import StopRequest
from jaxae.train.metrics import epoch_means, means
from jaxae.train.steps import Trainer

PMAP_AXIS = "batch"
_SYNC_EVERY = 50  # steps between reads of the metrics: reading each step would stall the dispatch queue
_IN_FLIGHT_ON_CPU = 2
"""On a CPU, the steps dispatched ahead of the one last finished: each step needs the one before, so
more only lengthen the queue that a stop request waits for. Accelerators keep JAX's own queue,
which small steps need to hide their dispatch."""


class Stopped(Exception):
    """A stop request honoured at ``epoch`` (1-based), after ``step`` of it (None: after the whole epoch)."""

    def __init__(self, epoch: int, step: int | None = None):
        super().__init__(epoch, step)
        self.epoch, self.step = epoch, step


@dataclasses.dataclass
class EpochProgress:
    """How far epoch ``epoch`` (0-based) has trained: each step's metrics so far, ``[step][seed]``
    (:func:`~jaxae.train.metrics.means`), and the seconds they took."""

    epoch: int
    metrics: list[list[dict]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def steps(self) -> int:
        """The steps done."""
        return len(self.metrics)

    def of_seed(self, seed: int) -> list[dict]:
        """Seed ``seed``'s metrics of the steps done."""
        return [step[seed] for step in self.metrics]


class StepCheckpoints:
    """When to save within an epoch, and how: after every ``every_steps``-th step of an epoch and every
    ``every_minutes`` minutes (of ``clock``, in seconds), whichever comes first.

    ``save(state, progress)`` is the saving itself; a stop request saves without waiting for either.
    A fused epoch saves only between its segments (:meth:`segments`).
    """

    clock = staticmethod(time.monotonic)
    """The time in seconds; a class attribute, so that a test can make time pass without waiting."""

    def __init__(self, save, every_steps: int | None = None, every_minutes: float | None = None):
        self._save, self.every_steps, self.every_minutes = save, every_steps, every_minutes
        self.last = self.clock()

    def due(self, step: int) -> bool:
        """Whether to save after step ``step`` (1-based) of an epoch."""
        if self.every_steps and step % self.every_steps == 0:
            return True
        return bool(self.every_minutes) and self.clock() - self.last >= 60 * self.every_minutes

    def save(self, state, progress: EpochProgress) -> None:
        self._save(state, progress)
        self.saved()

    def saved(self) -> None:
        """Restarts the clock: a checkpoint was saved (also at an epoch's end)."""
        self.last = self.clock()

    def segments(self, start: int, num_batches: int) -> list[tuple[int, int]]:
        """A fused epoch's ``[a, b)`` runs of steps from step ``start``, ending where ``every_steps`` saves:
        of the same lengths every epoch, so that each length compiles once."""
        every = self.every_steps or num_batches
        bounds = [start, *range((start // every + 1) * every, num_batches, every), num_batches]
        return list(itertools.pairwise(bounds))


def _shardings(mesh: Mesh | None, seeds: bool) -> tuple[NamedSharding | None, NamedSharding | None]:
    """The state's sharding (replicated) and the batch's (its example axis over every mesh axis); None without a mesh."""
    if mesh is None:
        return None, None
    batch = PartitionSpec(None, mesh.axis_names) if seeds else PartitionSpec(mesh.axis_names)
    return NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, batch)


def _seeded(trainer: Trainer, seeds: bool, **step_kwargs):
    step = functools.partial(trainer.train_step, **step_kwargs)
    return jax.vmap(step) if seeds else step


def compile_train_step(trainer: Trainer, mesh: Mesh | None = None, *, seeds: bool = False, pmap: bool = False,
                       compiler_options: Mapping[str, str] | None = None):
    """The train step ``(state, batch) -> (state, sums)``, compiled with the state donated.

    Over ``mesh`` the batch is sharded on its example axis and the state
    replicated (without one, on the default device). ``seeds``: the step ``vmap``-ed over
    a leading seed axis of state and batch (:func:`stack_seeds`). ``pmap``:
    ``jax.pmap`` over all local devices instead, the state replicated
    (:func:`replicate`) and each batch split as ``(devices, B / devices, ...)``
    (:func:`split_for_pmap`). ``compiler_options``: XLA:CPU's (default
    :data:`jaxae.cpu.COMPILER_OPTIONS`; ``{}``: XLA's defaults).
    """
    if pmap:
        if mesh is not None:
            raise InputError("pmap runs over all local devices: it takes no mesh")
        step = _seeded(trainer, seeds, axis_name=PMAP_AXIS)
        return jax.pmap(step, axis_name=PMAP_AXIS, donate_argnums=0)
    replicated, sharded = _shardings(mesh, seeds)
    placed = {} if mesh is None else dict(in_shardings=(replicated, sharded), out_shardings=replicated)
    return jit_with_cpu_options(_seeded(trainer, seeds), options=compiler_options, donate_argnums=0, **placed)


def compile_train_epoch(trainer: Trainer, transform: str, mesh: Mesh | None = None, *, seeds: bool = False,
                        compiler_options: Mapping[str, str] | None = None):
    """A whole device-resident epoch, ``(state, split, indices, mask) -> (state, sums per step)``:
    the step under ``lax.scan``, each batch gathered from ``split`` inside (:func:`jaxae.data.batches.gather_batch`).

    ``mesh`` and ``seeds`` as for :func:`compile_train_step`; with ``seeds``, the
    split and the plan have a leading seed axis too (:class:`StackedPipelines`).
    """
    replicated, sharded = _shardings(mesh, seeds)
    step = _seeded(trainer, seeds)
    gather = functools.partial(gather_batch, transform=transform)
    if seeds:
        gather = jax.vmap(gather)

    def epoch(state, split, indices, mask):
        def body(state, plan):
            batch = gather(split, *plan)
            if sharded is not None:
                batch = jax.lax.with_sharding_constraint(batch, sharded)
            return step(state, batch)

        if seeds:  # the plan's (seeds, steps, batch) scanned over steps
            indices, mask = jnp.swapaxes(indices, 0, 1), jnp.swapaxes(mask, 0, 1)
        return jax.lax.scan(body, state, (indices, mask))

    placed = {} if mesh is None else dict(out_shardings=replicated)
    return jit_with_cpu_options(epoch, options=compiler_options, donate_argnums=0, **placed)


def compile_choice(trainer: Trainer, choice: search.Choice, mesh: Mesh | None = None, *, seeds: bool = False):
    """The train step compiled as a CPU-path choice (:class:`jaxae.cpu.search.Choice`) says: its gradient
    chunks and compiler options; ``mesh`` and ``seeds`` as for :func:`compile_train_step`."""
    chunked = dataclasses.replace(trainer, microbatch_size=choice.microbatch_size)
    return compile_train_step(chunked, mesh, seeds=seeds, compiler_options=choice.compiler_options)


def chunks_may_vary(trainer: Trainer, state) -> bool:
    """Whether the CPU-path search may change the step's chunks: not where the config pins them, nor for a
    model with state (batch statistics are the whole batch's)."""
    return trainer.config.microbatch_size is None and not jax.tree.leaves(state.collections)


class Engine:
    """Trains epochs of ``data`` with the step compiled as the module docstring says.

    Args:
      trainer: whose step it runs.
      data: the pipeline; with ``seeds``, one pipeline per seed.
      mesh, seeds, fused, pmap: see the module docstring. ``seeds`` is the
        number of seeds trained together (0: one run, no seed axis).
      cpu_path: on a CPU, ``"search"`` compiles the step loop's step as
        :func:`jaxae.cpu.search.choose` finds fastest, at its first step; ``"fixed"``
        by jaxae's rules, ``"xla"`` with XLA's default compiler options.
    """

    def __init__(self, trainer: Trainer, data, *, mesh: Mesh | None = None, seeds: int = 0, fused: bool = False,
                 pmap: bool = False, cpu_path: str = "fixed"):
        if pmap and (mesh is not None or fused or seeds):
            raise InputError("pmap runs one run's step loop over all local devices: no mesh, fused epochs or seeds")
        if pmap and trainer.config.batch_size % jax.local_device_count():
            raise InputError(f"batch_size {trainer.config.batch_size} does not split over "
                             f"{jax.local_device_count()} devices for pmap")
        self.trainer, self.seeds, self.fused, self.pmap = trainer, seeds, fused, pmap
        self.data = StackedPipelines(data) if seeds else data
        if fused and not hasattr(self.data, "split"):
            raise InputError("a fused epoch needs a device-resident pipeline (mode='device')")
        self.mesh = mesh
        options = {} if cpu_path == "xla" else None  # {}: XLA's defaults; None: jaxae's options
        if fused:
            self.step = compile_train_epoch(trainer, self.data.transform, self.mesh, seeds=bool(seeds),
                                            compiler_options=options)
        else:
            self.step = compile_train_step(trainer, self.mesh, seeds=bool(seeds), pmap=pmap, compiler_options=options)
        self.compiled = False  # whether a step has run yet: the first one compiles
        self.in_flight = _IN_FLIGHT_ON_CPU if jax.default_backend() == "cpu" else None
        self.search = (cpu_path == "search" and not fused and not pmap and jax.default_backend() == "cpu"
                       and jax.process_count() == 1)  # processes that chose apart would run different programs
        self.searched: dict | None = None
        """What the search measured (:func:`jaxae.cpu.search.fastest`'s report and the choice); None: no search."""

    def place(self, states: Sequence):
        """The runs' initial states (one per seed, one without seeds) as one state where the step wants it."""
        state = stack_seeds(states) if self.seeds else states[0]
        if self.pmap:
            return replicate(state)
        return state if self.mesh is None else jax.device_put(state, NamedSharding(self.mesh, PartitionSpec()))

    def state_of(self, state, seed: int):
        """One run's plain state: seed ``seed``'s, on one device's copy."""
        if self.pmap:
            state = unreplicate(state)
        return jax.tree.map(lambda leaf: leaf[seed], state) if self.seeds else state

    def train(self, state, progress: EpochProgress, stop: StopRequest, saves: StepCheckpoints, show: bool = True):
        """Trains the rest of the epoch ``progress`` stands in: the state, and each run's train metrics
        (a list, one per seed).

        ``saves`` says when to save within the epoch; a stop request saves after the current step
        (a fused epoch: after the current segment) and raises :class:`Stopped`, unless it came in
        the epoch's last step, which ends the epoch first.
        """
        epoch, num_batches = progress.epoch, self.data.num_batches
        began, description = time.perf_counter(), f"epoch {epoch + 1}/{self.trainer.config.epochs}"
        start = began - progress.seconds  # the resumed epoch's time counts the steps before the stop
        bar = tqdm(total=num_batches, initial=progress.steps, desc=description, disable=not show, unit="batch",
                   leave=False)
        first_step_seconds = None

        def done(state, fetched_sums: list) -> None:
            """Records steps' fetched sums; saves or stops where asked after the last of them."""
            fetched = self._means(fetched_sums)
            check_finite(_column(fetched, "loss"), description)
            progress.metrics.extend(fetched)
            progress.seconds = time.perf_counter() - start
            bar.set_postfix(_postfix(progress.metrics, self.trainer.config.batch_size, progress.seconds), refresh=False)
            bar.update(len(fetched))
            if progress.steps < num_batches and (stop or saves.due(progress.steps)):
                saves.save(state, progress)
                if stop:
                    raise Stopped(epoch + 1, progress.steps)

        try:
            if self.fused:
                indices, mask = self.data.epoch_plan(epoch)
                for a, b in saves.segments(progress.steps, num_batches):
                    plan = (x[:, a:b] if self.seeds else x[a:b] for x in (indices, mask))
                    state, sums = self.step(state, self.data.split, *plan)
                    sums = jax.device_get(sums)
                    done(state, [{name: values[i] for name, values in sums.items()} for i in range(b - a)])
            else:
                pending = []
                for step, batch in enumerate(_batches(self.data, epoch, progress.steps), progress.steps):
                    if self.search and not self.compiled:
                        self._choose(state, batch)
                    state, sums = self.step(state, split_for_pmap(batch) if self.pmap else batch)
                    pending.append(unreplicate(sums) if self.pmap else sums)
                    if self.in_flight and len(pending) > self.in_flight:
                        jax.block_until_ready(pending[-self.in_flight - 1]["count"])
                    if not self.compiled:
                        jax.block_until_ready(sums)
                        first_step_seconds, self.compiled = time.perf_counter() - began, True
                    if len(pending) == _SYNC_EVERY or step + 1 == num_batches or stop or saves.due(step + 1):
                        fetched, pending = jax.device_get(pending), []
                        done(state, fetched)
        finally:
            bar.close()
        extra = {} if first_step_seconds is None else {"first_step_seconds": first_step_seconds}
        if self.searched is not None and first_step_seconds is not None:
            extra["search_seconds"] = self.searched["seconds"]
        return state, _records(progress.metrics, time.perf_counter() - start, extra)

    def _choose(self, state, batch) -> None:
        """Compiles the step the fastest way for this CPU (:func:`jaxae.cpu.search.choose`): as remembered,
        or as measured now on ``batch`` (``state`` is left as it is)."""
        compile_step = functools.partial(compile_choice, self.trainer, mesh=self.mesh, seeds=bool(self.seeds))
        chosen, self.step, report = search.choose(
            compile_step, search.Choice("jaxae", self.trainer.microbatch_size), self.trainer.config.batch_size,
            chunks_may_vary(self.trainer, state), state, batch, default_step=self.step)
        if report is not None:
            self.searched = {"choice": str(chosen), **report}
        self.trainer = dataclasses.replace(self.trainer, microbatch_size=chosen.microbatch_size)

    def _means(self, steps: list[dict]) -> list[list[dict]]:
        """Each step's sums as :func:`~jaxae.train.metrics.means`, per seed: ``[step][seed]``."""
        if not self.seeds:
            return [[means(sums)] for sums in steps]
        return [[means({name: value[k] for name, value in sums.items()}) for k in range(self.seeds)] for sums in steps]


def _column(steps: list[list[dict]], name: str) -> np.ndarray:
    """Metric ``name`` of each step and seed, ``(steps, seeds)``."""
    return np.array([[seed[name] for seed in step] for step in steps], np.float64)


def _records(steps: list[list[dict]], seconds: float, extra: dict) -> list[dict]:
    """Each run's train metrics of the epoch (:func:`~jaxae.train.metrics.epoch_means`), its time and ``extra``."""
    return [{**epoch_means([step[k] for step in steps]), "seconds": seconds, **extra} for k in range(len(steps[0]))]


class StackedPipelines:
    """Several seeds' pipelines as one: each batch's arrays stacked on a new leading (seed) axis.

    Device-resident pipelines also stack their splits and epoch plans, for fused epochs.
    """

    def __init__(self, pipelines: Sequence):
        self.pipelines = list(pipelines)
        if len({p.num_batches for p in self.pipelines}) > 1:
            raise InputError("the seeds' pipelines must make the same number of batches")
        self.num_batches, self.transform = self.pipelines[0].num_batches, self.pipelines[0].transform
        if all(hasattr(p, "split") for p in self.pipelines):
            self.split = stack_seeds([p.split for p in self.pipelines])

    def epoch(self, epoch: int, start: int = 0):
        for batches in zip(*(_batches(p, epoch, start) for p in self.pipelines)):
            yield stack_seeds(batches)

    def epoch_plan(self, epoch: int):
        """The seeds' ``(indices, mask)`` stacked: ``(seeds, num_batches, batch_size)`` each."""
        return stack_seeds([p.epoch_plan(epoch) for p in self.pipelines])


def _batches(pipeline, epoch: int, start: int):
    """Epoch ``epoch``'s batches from batch ``start`` on. A pipeline of your own whose ``epoch`` takes
    no ``start`` has its first ``start`` batches drawn and passed over: the same order, more slowly."""
    if not start:
        return pipeline.epoch(epoch)
    if "start" in inspect.signature(pipeline.epoch).parameters:
        return pipeline.epoch(epoch, start)
    return itertools.islice(pipeline.epoch(epoch), start, None)


def check_finite(step_losses, description: str) -> None:
    """A :class:`TrainingDivergedError` naming the first step (and seed) whose loss is not finite."""
    losses = np.asarray(step_losses, np.float64)
    per_seed = losses.reshape(len(losses), -1)
    bad = np.argwhere(~np.isfinite(per_seed))
    if len(bad):
        step, seed = bad[0]
        of_seed = f", seed {seed + 1} of {per_seed.shape[1]}" if per_seed.shape[1] > 1 else ""
        raise TrainingDivergedError(f"the loss became {per_seed[step, seed]} at {description}, step {step + 1}{of_seed}")


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


def split_for_pmap(batch, num_devices: int | None = None):
    """A global batch reshaped to ``(num_devices, B / num_devices, ...)`` (default: all local devices)."""
    num_devices = num_devices or jax.local_device_count()
    return jax.tree.map(lambda x: x.reshape(num_devices, x.shape[0] // num_devices, *x.shape[1:]), batch)


def _postfix(steps: list[list[dict]], batch_size: int, seconds: float) -> dict[str, str]:
    last, images = steps[-1][0], len(steps) * len(steps[0]) * batch_size
    postfix = {"loss": f"{last['loss']:.4f}", "img/s": f"{images / seconds:,.0f}"}
    if "accuracy" in last:
        postfix["acc"] = f"{last['accuracy']:.3f}"
    return postfix
