"""Trains a user's own model through ``fit`` in its own process, for the stop-and-resume tests.

    python tests/_own_model_worker.py MODEL WORKDIR [STOP_AT_EPOCH [DATA_DIR [FLAG ...]]]

Trains MODEL (``own_linen_ae`` or ``own_nnx_ae``, from ``_own_models.py``) for 3 epochs
on fixed synthetic data (DATA_DIR ``-``), or on the first 100 MNIST training images of
DATA_DIR (a TFDS data dir). With STOP_AT_EPOCH (0-based, -1 for none) it sends itself SIGINT
before that epoch's third step, and ends as ``fit`` ends it, uncaught: its one line, status
130. FLAGs: ``batch_norm``, the model with batch norm; ``SIGKILL``, killed instead, with a
checkpoint every 2 steps; ``layouts``, once trained, also trained on a 2-device mesh and as
3 seeds together, their batch statistics checked. A run that ends writes the final
params (and batch statistics) to ``WORKDIR/final.npz`` and prints the class of the NNX
module they come back as.
"""

import dataclasses
import os
import signal
import sys

import jax
import numpy as np
from _own_models import register_both
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxae import nnx as jaxae_nnx
from jaxae.data import DeviceResidentPipeline, load_split
from jaxae.train import TrainConfig, fit, fit_seeds


def config(model: str, batch_norm: bool = False) -> TrainConfig:
    return TrainConfig(model, "mse", "adam", 1e-3, epochs=3, batch_size=20, seed=3,
                       model_args=(("batch_norm", True),) if batch_norm else ())


def synthetic_data():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (100, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, 100).astype(np.int32)


class SignallingPipeline(DeviceResidentPipeline):
    epoch_to_signal, signal = -1, signal.SIGINT

    def epoch(self, epoch, start=0):
        for step, batch in enumerate(super().epoch(epoch, start), start):
            if epoch == self.epoch_to_signal and step == 2:
                os.kill(os.getpid(), self.signal)
            yield batch


def main(model, workdir, signal_at_epoch=-1, data_dir="-", *flags):
    register_both()
    data = synthetic_data() if data_dir == "-" else load_split("mnist", "train[:100]", data_dir)
    run = config(model, "batch_norm" in flags)
    pipeline = SignallingPipeline(*data, run.batch_spec(), transform="normalize")
    pipeline.epoch_to_signal = int(signal_at_epoch)
    pipeline.signal = signal.SIGKILL if "SIGKILL" in flags else signal.SIGINT
    state, _ = fit(run, pipeline, workdir, checkpoint_every_steps=2 if "SIGKILL" in flags else None, progress=False)
    np.savez(os.path.join(workdir, "final.npz"), *[np.asarray(x) for x in jax.tree.leaves(state.variables)])
    if "layouts" in flags:
        _train_on_a_mesh_and_as_seeds(run, data, state.collections, os.path.join(workdir, "layouts"))
    print(type(jaxae_nnx.create(model, params=state.variables, **dict(run.model_args))).__name__)


def _train_on_a_mesh_and_as_seeds(run, data, collections, workdir):
    """The same model on a 2-device mesh, and as 3 seeds together: batch statistics moved, and apart per seed."""
    mesh = Mesh(np.array(jax.devices()[:2]), ("batch",))
    sharding = NamedSharding(mesh, PartitionSpec("batch"))
    meshed, _ = fit(run, DeviceResidentPipeline(*data, run.batch_spec(), transform="normalize", sharding=sharding),
                    os.path.join(workdir, "mesh"), mesh=mesh, progress=False)
    seeds = [dataclasses.replace(run, seed=seed) for seed in (3, 4, 5)]
    together = fit_seeds(seeds, [DeviceResidentPipeline(*data, c.batch_spec(), transform="normalize") for c in seeds],
                         [os.path.join(workdir, f"seed{c.seed}") for c in seeds], progress=False)
    for state in (meshed, *(state for state, _ in together)):
        for before, after in zip(jax.tree.leaves(collections), jax.tree.leaves(state.collections), strict=True):
            assert np.all(np.isfinite(after)) and after.shape == before.shape
    first, second = (jax.tree.leaves(state.collections) for state, _ in together[:2])
    assert any(not np.array_equal(a, b) for a, b in zip(first, second))  # each seed its own statistics


if __name__ == "__main__":
    main(*sys.argv[1:])
