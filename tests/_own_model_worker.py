"""Trains a user's own model through ``fit`` in its own process, for the stop-and-resume test.

    python tests/_own_model_worker.py MODEL WORKDIR [SIGNAL_AT_EPOCH [DATA_DIR]]

Trains MODEL (``own_linen_ae`` or ``own_nnx_ae``, from ``_own_models.py``) for 3 epochs
on fixed synthetic data, or on the first 100 MNIST training images of DATA_DIR (a TFDS
data dir); with SIGNAL_AT_EPOCH (0-based, -1 for none) it sends itself SIGINT before that
epoch's third step. A run that ends writes the final params to ``WORKDIR/final.npz`` and
prints the class of the NNX module they come back as; one stopped prints the one-line
message and exits with 130.
"""

import os
import signal
import sys

import jax
import numpy as np
from _own_models import register_both

from jaxae import nnx as jaxae_nnx
from jaxae.data import DeviceResidentPipeline, load_split
from jaxae.train import TrainConfig, TrainingInterrupted, fit


def config(model: str) -> TrainConfig:
    return TrainConfig(model, "mse", "adam", 1e-3, epochs=3, batch_size=20, seed=3)


def synthetic_data():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (100, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, 100).astype(np.int32)


class SignallingPipeline(DeviceResidentPipeline):
    epoch_to_signal = -1

    def epoch(self, epoch, start=0):
        for step, batch in enumerate(super().epoch(epoch, start), start):
            if epoch == self.epoch_to_signal and step == 2:
                os.kill(os.getpid(), signal.SIGINT)
            yield batch


def main(model, workdir, signal_at_epoch=-1, data_dir=None):
    register_both()
    data = synthetic_data() if data_dir is None else load_split("mnist", "train[:100]", data_dir)
    pipeline = SignallingPipeline(*data, config(model).batch_spec(), transform="normalize")
    pipeline.epoch_to_signal = int(signal_at_epoch)
    try:
        state, _ = fit(config(model), pipeline, workdir, progress=False)
    except TrainingInterrupted as error:
        print(error, file=sys.stderr)
        sys.exit(130)
    np.savez(os.path.join(workdir, "final.npz"), *[np.asarray(x) for x in jax.tree.leaves(state.params)])
    print(type(jaxae_nnx.create(model, params=state.params)).__name__)


if __name__ == "__main__":
    main(*sys.argv[1:])
