"""Orbax checkpoints of a training run: the state, and what is needed to go on exactly.

A checkpoint holds the :class:`~jaxae.train.steps.TrainState` (params, optimiser
state, step, RNG) and, as JSON, the epoch reached, the metrics history and the
run's config. Orbax writes each checkpoint into a temporary folder and renames
it when complete, so a run killed during a save leaves the previous one intact.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxae.errors import InputError


class CheckpointMismatchError(InputError):
    """A checkpoint of another model or config than the one asked to restore into."""


class CorruptCheckpointError(InputError):
    """A checkpoint whose files cannot be read."""


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
        options = ocp.CheckpointManagerOptions(
            preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
            best_fn=best_fn, best_mode=best_mode, create=True,
        )
        self._best_metric = best_metric
        self._manager = ocp.CheckpointManager(Path(directory).absolute(), options=options)

    def save(self, epoch: int, state, meta: dict[str, Any], metrics: dict[str, float] | None = None) -> None:
        """Saves ``state`` and ``meta`` as the checkpoint of ``epoch`` (asynchronously).

        ``meta`` is copied first: it is written later, and the caller may go on
        changing what it holds (a training history grows every epoch).
        """
        meta = {**copy.deepcopy(meta), "state_shapes": _shapes(state)}
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        ranked = metrics is not None and self._best_metric in metrics  # an epoch without the metric competes not
        self._manager.save(epoch, args=args, metrics=metrics if ranked else None)

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
          CheckpointMismatchError: the checkpoint's config differs from ``config`` (settings
            absent from the checkpoint, newer than it, are not compared)
            or its arrays do not fit ``state_like``; the message says which.
          CorruptCheckpointError: its files are damaged or incomplete.
        """
        epoch = self.latest() if epoch is None else epoch
        if epoch is None or epoch not in self.all():
            raise FileNotFoundError(f"no checkpoint {epoch if epoch is not None else ''} in {self._manager.directory}")
        try:
            meta = self._manager.restore(epoch, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as error:  # noqa: BLE001 -- Orbax/TensorStore raise many kinds
            raise CorruptCheckpointError(f"checkpoint {epoch} in {self._manager.directory} cannot be read: {error}") from error
        if not isinstance(meta, dict) or "config" not in meta:
            raise CorruptCheckpointError(f"checkpoint {epoch} in {self._manager.directory} has no run description")
        # A setting the checkpoint predates (absent from its config) cannot disagree with it.
        differing = sorted(k for k in meta["config"] if config is not None and config.get(k) != meta["config"][k])
        if differing:
            raise CheckpointMismatchError(
                f"checkpoint {epoch} in {self._manager.directory} is of another run: "
                + "; ".join(f"{k}: checkpoint {meta['config'].get(k)!r}, asked {config.get(k)!r}" for k in differing)
            )
        expected, stored = _shapes(state_like), meta.get("state_shapes", {})
        if stored != expected:
            differing = sorted(k for k in {*expected, *stored} if expected.get(k) != stored.get(k))
            raise CheckpointMismatchError(
                f"checkpoint {epoch} does not fit this model's state: "
                + "; ".join(f"{k}: checkpoint {stored.get(k)}, model {expected.get(k)}" for k in differing[:5])
            )
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)
        try:
            restored = self._manager.restore(epoch, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
        except Exception as error:  # noqa: BLE001 -- Orbax/TensorStore raise many kinds
            raise CorruptCheckpointError(f"checkpoint {epoch} in {self._manager.directory} cannot be read: {error}") from error
        return restored["state"], meta

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def _shapes(tree) -> dict[str, list[int]]:
    """``{path: shape}`` of a pytree's leaves (as JSON keeps them)."""
    return {jax.tree_util.keystr(path): list(jax.numpy.shape(leaf)) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}
