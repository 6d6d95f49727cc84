"""Training: the run's config, the pure step, the engine that runs it, the ``fit`` loop, checkpoints.

* :mod:`jaxae.train.config`: :class:`TrainConfig` (what a run is) and its optimiser.
* :mod:`jaxae.train.optimizers`: optimizers by name, optax's and your own.
* :mod:`jaxae.train.steps`: :class:`TrainState` (parameters and any other Flax
  collections) and :class:`Trainer` with the pure ``train_step`` / ``eval_step``.
* :mod:`jaxae.train.metrics`: metrics as sums, and the one function that makes them means.
* :mod:`jaxae.train.engine`: the step compiled for a mesh, several seeds, a fused
  epoch or ``pmap``, and the loop over an epoch's batches.
* :mod:`jaxae.train.loop`: :func:`fit` and :func:`fit_seeds` (one loop), :func:`evaluate`,
  :func:`restore_state`, :func:`process_settings` (every process-wide setting training makes).
* :mod:`jaxae.train.run_dir`: a run's folder: its history, metrics log and checkpoints.
* :mod:`jaxae.train.checkpoint`: Orbax checkpoints that refuse another run's config.
* :mod:`jaxae.train.workdir`: one process per work dir.

>>> from jaxae.train import TrainConfig, Trainer
>>> trainer = Trainer.create(TrainConfig("mnist_pca_ae", "mse", "adam", 1e-3, epochs=1, batch_size=128))
>>> state = trainer.init_state()
>>> int(state.step), sorted(state.params)
(0, ['decoder', 'encoder'])
"""

from jaxae.errors import TrainingDivergedError, TrainingInterrupted, WorkdirInUseError
from jaxae.train import optimizers
from jaxae.train.checkpoint import (
    CheckpointMismatchError,
    Checkpoints,
    CheckpointSaveError,
    CorruptCheckpointError,
    DamagedCheckpointWarning,
)
from jaxae.train.checks import check_pipelines, check_trainable
from jaxae.train.config import COMPUTE_DTYPES, CORRUPTIONS, SPEED_SETTINGS, TrainConfig, make_optimizer
from jaxae.train.engine import (
    Engine,
    compile_train_epoch,
    compile_train_step,
    replicate,
    split_for_pmap,
    stack_seeds,
    unreplicate,
)
from jaxae.train.loop import default_fused, evaluate, fit, fit_seeds, process_settings, restore_state
from jaxae.train.metrics import means
from jaxae.train.run_dir import epoch_summary
from jaxae.train.steps import Trainer, TrainState, microbatch_count
from jaxae.train.workdir import exclusive_workdir

__all__ = [
    "COMPUTE_DTYPES",
    "CORRUPTIONS",
    "SPEED_SETTINGS",
    "CheckpointMismatchError",
    "CheckpointSaveError",
    "Checkpoints",
    "CorruptCheckpointError",
    "DamagedCheckpointWarning",
    "Engine",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "WorkdirInUseError",
    "check_pipelines",
    "check_trainable",
    "compile_train_epoch",
    "compile_train_step",
    "default_fused",
    "epoch_summary",
    "evaluate",
    "exclusive_workdir",
    "fit",
    "fit_seeds",
    "make_optimizer",
    "means",
    "microbatch_count",
    "optimizers",
    "process_settings",
    "replicate",
    "restore_state",
    "split_for_pmap",
    "stack_seeds",
    "unreplicate",
]
