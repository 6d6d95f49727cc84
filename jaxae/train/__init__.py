"""Training: the run's config, pure steps, data parallelism, the ``fit`` loop, checkpoints.

* :mod:`jaxae.train.config`: :class:`TrainConfig` (what a run is) and its optimiser.
* :mod:`jaxae.train.steps`: :class:`TrainState`, :class:`Trainer` with the pure
  ``train_step`` / ``eval_step``, and their compiled forms: jit (over a device
  mesh) and pmap.
* :mod:`jaxae.train.loop`: :func:`fit` and :func:`fit_seeds` (one loop), :func:`evaluate`,
  :func:`process_settings` (every process-wide setting training makes).
* :mod:`jaxae.train.epochs`: how an epoch trains, one object per kind of step (jit, mesh,
  pmap, seeds, fused).
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
from jaxae.train.checkpoint import (
    CheckpointMismatchError,
    Checkpoints,
    CheckpointSaveError,
    CorruptCheckpointError,
    DamagedCheckpointWarning,
)
from jaxae.train.config import COMPUTE_DTYPES, OPTIMIZERS, TrainConfig, make_optimizer
from jaxae.train.loop import PARALLEL, default_fused, evaluate, fit, fit_seeds, load_params, process_settings
from jaxae.train.run_dir import epoch_summary
from jaxae.train.steps import (
    Trainer,
    TrainState,
    check_trainable,
    compile_pmap_train_step,
    compile_seeds_train_step,
    compile_train_epoch,
    compile_train_step,
    microbatch_count,
    replicate,
    split_for_pmap,
    stack_seeds,
    unreplicate,
)
from jaxae.train.workdir import exclusive_workdir

__all__ = [
    "COMPUTE_DTYPES",
    "OPTIMIZERS",
    "PARALLEL",
    "CheckpointMismatchError",
    "CheckpointSaveError",
    "Checkpoints",
    "CorruptCheckpointError",
    "DamagedCheckpointWarning",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "WorkdirInUseError",
    "check_trainable",
    "compile_pmap_train_step",
    "compile_seeds_train_step",
    "compile_train_epoch",
    "compile_train_step",
    "default_fused",
    "epoch_summary",
    "evaluate",
    "exclusive_workdir",
    "fit",
    "fit_seeds",
    "load_params",
    "make_optimizer",
    "microbatch_count",
    "process_settings",
    "replicate",
    "split_for_pmap",
    "stack_seeds",
    "unreplicate",
]
