"""Orbax checkpoints of a training run: the state, and what is needed to go on exactly.

A checkpoint holds the :class:`~jaxae.train.steps.TrainState` (params, optimiser
state, step, RNG) and, as JSON, the epoch reached, the metrics history and the
run's config. Orbax writes each checkpoint into a temporary folder and renames
it when complete, so a run killed during a save leaves the previous one intact.

Faults end in one line each, with the details in a file beside the checkpoints:

* a save that fails (a full disk, a lost mount) raises :class:`CheckpointSaveError`
  in the training thread, naming the epoch, the free space and the last complete
  checkpoint; the half-written folder is removed;
* a checkpoint that cannot be read raises :class:`CorruptCheckpointError`;
  :meth:`Checkpoints.restore_intact` sets such a checkpoint aside (into
  ``<directory>-damaged/``) and resumes from the newest intact one before it.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import gc
import logging
import shutil
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxae.errors import InputError, JaxaeError, JaxaeWarning, first_line
from jaxae.trees import first_difference, leaf_shapes


class CheckpointMismatchError(InputError):
    """A checkpoint of another model or config than the one asked to restore into."""


class CorruptCheckpointError(InputError):
    """A checkpoint whose files cannot be read."""


class CheckpointSaveError(JaxaeError, OSError):
    """A checkpoint could not be written (e.g. the disk is full); the previous ones are intact."""


class Checkpoints:
    """Saving and restoring a run's checkpoints in ``directory``.

    Args:
      directory: where the checkpoints live (one folder per epoch).
      keep: how many recent checkpoints to keep.
      best_metric: keep also the best by this metric (e.g. ``"test_accuracy"``).
      best_mode: ``"max"`` or ``"min"`` for ``best_metric``.
    """

    def __init__(self, directory: str | Path, keep: int = 3, best_metric: str | None = None, best_mode: str = "min"):
        best_fn = (lambda metrics: metrics[best_metric]) if best_metric else None
        policies = [ocp.checkpoint_managers.LatestN(n=keep)]
        if best_fn:
            policies.append(ocp.checkpoint_managers.BestN(
                get_metric_fn=best_fn, reverse=best_mode == "min", n=1, keep_checkpoints_without_metrics=False
            ))
        # Saved in the training thread: a failed save surfaces there, once, instead of in Orbax's
        # background threads; the models' states take milliseconds to write.
        options = ocp.CheckpointManagerOptions(
            preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
            best_fn=best_fn, best_mode=best_mode, create=True, enable_async_checkpointing=False,
        )
        self._best_metric = best_metric
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def save(self, epoch: int, state, meta: dict[str, Any], metrics: dict[str, float] | None = None) -> None:
        """Saves ``state`` and ``meta`` as the checkpoint of ``epoch``.

        Raises:
          CheckpointSaveError: the checkpoint could not be written, or the disk
            has too little room for it (checked first: a write that fails midway
            leaves TensorStore's other writes to fail noisily in the background);
            a partial folder is removed, the previous checkpoints stay, and the
            full error is in ``<directory>-errors.log``.
        """
        free = shutil.disk_usage(self.directory).free
        if free < _bytes_needed(state):
            raise self._no_space(epoch, free)
        meta = {**copy.deepcopy(meta), "state_shapes": leaf_shapes(state)}
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        ranked = metrics is not None and self._best_metric in metrics  # an epoch without the metric competes not
        try:
            with _orbax_quiet():
                self._manager.save(epoch, args=args, metrics=metrics if ranked else None)
                return
        except Exception as error:  # noqa: BLE001 -- Orbax/TensorStore raise many kinds; all are told as one
            failure = self._save_failed(epoch, error)
        # The failed save leaves Orbax's other writes as coroutines that were never finished. Closed now,
        # while the interpreter still runs, they end quietly; at its exit each would print a traceback.
        gc.collect()
        raise failure

    def _save_failed(self, epoch: int, error: BaseException) -> CheckpointSaveError:
        for partial in self.directory.glob(f"{epoch}.orbax-checkpoint-tmp*"):
            shutil.rmtree(partial, ignore_errors=True)
        self._manager.reload()
        log = self._log(f"saving checkpoint {epoch}", error)
        if _is_disk_full(error):
            return self._no_space(epoch, shutil.disk_usage(self.directory).free, log)
        return CheckpointSaveError(f"could not save checkpoint {epoch} to {self.directory}: {first_line(error)}; "
                                   f"{self._last_complete()}: run the same command to resume{log}")

    def _no_space(self, epoch: int, free: int, log: str = "") -> CheckpointSaveError:
        return CheckpointSaveError(
            f"no space left on device while saving checkpoint {epoch} to {self.directory} ({free / 2**20:.1f} MiB "
            f"free); {self._last_complete()}: free some space and run the same command to resume{log}")

    def _last_complete(self) -> str:
        last = self.latest()
        return f"the last complete checkpoint is {last}" if last is not None else "no checkpoint was complete yet"

    def _log(self, doing: str, error: BaseException) -> str:
        """Appends ``error`` in full to ``<directory>-errors.log``; returns " (details: <path>)", or "" if it cannot."""
        path = self.directory.with_name(self.directory.name + "-errors.log")
        try:
            with open(path, "a") as log:
                log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {doing}:\n")
                log.write("".join(traceback.format_exception(error)) + "\n")
        except OSError:  # the disk that failed the save may refuse the log too
            return ""
        return f" (details: {path})"

    def clear(self) -> None:
        """Deletes every checkpoint here."""
        for step in self.all():
            self._manager.delete(step)

    def latest(self) -> int | None:
        return self._manager.latest_step()

    def best(self) -> int | None:
        return self._manager.best_step()

    def all(self) -> list[int]:
        return list(self._manager.all_steps())

    def restore(self, state_like, epoch: int | None = None, config: dict | None = None):
        """``(state, meta)`` of checkpoint ``epoch`` (default the latest), shaped like ``state_like``.

        Raises:
          FileNotFoundError: no such checkpoint.
          CheckpointMismatchError: the checkpoint's config differs from ``config`` (only
            the settings both name are compared)
            or its arrays do not fit ``state_like``; the message says which.
          CorruptCheckpointError: its files are damaged or incomplete.
        """
        epoch = self.latest() if epoch is None else epoch
        meta = self.meta(epoch)
        # Only the settings both name are compared: one the checkpoint predates cannot disagree with it,
        # nor one it records that no longer identifies a run (a speed setting).
        differing = sorted(k for k in meta["config"] if config is not None and k in config and config[k] != meta["config"][k])
        if differing:
            raise CheckpointMismatchError(
                f"checkpoint {epoch} in {self._manager.directory} is of another run: "
                + "; ".join(f"{k}: checkpoint {meta['config'].get(k)!r}, asked {config.get(k)!r}" for k in differing)
            )
        difference = first_difference(leaf_shapes(state_like), meta.get("state_shapes", {}), names=("model", "checkpoint"))
        if difference:
            raise CheckpointMismatchError(f"checkpoint {epoch} does not fit this model's state: {difference}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)
        try:
            with _orbax_quiet():
                restored = self._manager.restore(epoch, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
        except Exception as error:  # noqa: BLE001 -- Orbax/TensorStore raise many kinds
            raise self._unreadable(epoch, error) from None
        return restored["state"], meta

    def meta(self, epoch: int | None = None) -> dict[str, Any]:
        """The run's description that checkpoint ``epoch`` (default the latest) holds: its config, history, ...

        Raises:
          FileNotFoundError: no such checkpoint.
          CorruptCheckpointError: it cannot be read, or holds no description.
        """
        epoch = self.latest() if epoch is None else epoch
        if epoch is None or epoch not in self.all():
            raise FileNotFoundError(f"no checkpoint {epoch if epoch is not None else ''} in {self._manager.directory}")
        try:
            with _orbax_quiet():
                meta = self._manager.restore(epoch, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as error:  # noqa: BLE001 -- Orbax/TensorStore raise many kinds
            raise self._unreadable(epoch, error) from None
        if not isinstance(meta, dict) or "config" not in meta:
            raise CorruptCheckpointError(f"checkpoint {epoch} in {self._manager.directory} has no run description")
        return meta

    def restore_intact(self, state_like, config: dict | None = None, fallback: str | None = None):
        """``(state, meta)`` of the newest checkpoint that can be read; None when there is no checkpoint.

        Damaged checkpoints newer than it are moved to ``<directory>-damaged/``
        (kept, not deleted), each with a one-line :class:`DamagedCheckpointWarning`.
        ``fallback``: what the caller resumes from when none here is intact (e.g.
        "the last epoch checkpoint"); then every damaged one is moved aside so, and
        None returned.

        Raises:
          CorruptCheckpointError: every checkpoint is damaged and there is no ``fallback``
            (then none is moved).
          CheckpointMismatchError: as :meth:`restore`.
        """
        damaged = []
        for epoch in sorted(self.all(), reverse=True):
            try:
                restored = self.restore(state_like, epoch, config)
            except CorruptCheckpointError as error:
                damaged.append((epoch, error))
                continue
            self._set_damaged_aside(damaged, f"checkpoint {epoch}")
            return restored
        if damaged and fallback is None:
            raise CorruptCheckpointError(f"{damaged[0][1]}; no older checkpoint is intact: move {self.directory} "
                                         "aside to train from the start")
        self._set_damaged_aside(damaged, fallback)
        return None

    def _set_damaged_aside(self, damaged: list, resuming_from: str) -> None:
        for epoch, error in damaged:
            aside = self._set_aside(epoch)
            warnings.warn(f"{error}; moved to {aside}, resuming from {resuming_from}", DamagedCheckpointWarning,
                          stacklevel=3)

    def _unreadable(self, epoch: int, error: BaseException) -> CorruptCheckpointError:
        log = self._log(f"reading checkpoint {epoch}", error)
        return CorruptCheckpointError(f"checkpoint {epoch} in {self.directory} cannot be read: {first_line(error)}{log}")

    def _set_aside(self, epoch: int) -> Path:
        aside = self.directory.with_name(self.directory.name + "-damaged") / f"{epoch}-{time.strftime('%Y%m%d-%H%M%S')}"
        aside.parent.mkdir(exist_ok=True)
        shutil.move(self.directory / str(epoch), aside)
        self._manager.reload()
        return aside

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


class DamagedCheckpointWarning(JaxaeWarning):
    """A damaged checkpoint was set aside, and the run resumes from an older one."""


@contextlib.contextmanager
def _orbax_quiet():
    """Orbax logs each failure from every thread it passes through; the error raised here tells it once."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _is_disk_full(error: BaseException | None) -> bool:
    while error is not None:
        if getattr(error, "errno", None) == errno.ENOSPC or "No space left on device" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _bytes_needed(state) -> int:
    """Room to leave for a checkpoint of ``state``: its arrays, and a margin for Orbax's metadata."""
    return int(1.1 * sum(leaf.nbytes for leaf in jax.tree.leaves(state)) + 256 * 1024)
