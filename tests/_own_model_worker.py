"""Trains a user's own model through ``fit`` in its own process, for the stop-and-resume test.

    python tests/_own_model_worker.py MODEL WORKDIR [SIGNAL_AT_EPOCH]

Trains MODEL (``own_linen_ae`` or ``own_nnx_ae``, from ``_own_models.py``) for 3 epochs
on fixed synthetic data; with SIGNAL_AT_EPOCH (0-based) it sends itself SIGINT before that
epoch's third step. A run that ends writes the final params to ``WORKDIR/final.npz``; one
stopped prints the one-line message and exits with 130.
"""

import os
import signal
import sys

import jax
import numpy as np
from _own_models import register_both

from jaxae.data import DeviceResidentPipeline
from jaxae.train import TrainConfig, TrainingInterrupted, fit


def config(model: str) -> TrainConfig:
    return TrainConfig(model, "mse", "adam", 1e-3, epochs=3, batch_size=20, seed=3)


def synthetic_data():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (100, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, 100).astype(np.int32)


class SignallingPipeline(DeviceResidentPipeline):
    epoch_to_signal = -1

    def epoch(self, epoch):
        for step, batch in enumerate(super().epoch(epoch)):
            if epoch == self.epoch_to_signal and step == 2:
                os.kill(os.getpid(), signal.SIGINT)
            yield batch


def main(model, workdir, signal_at_epoch=-1):
    register_both()
    pipeline = SignallingPipeline(*synthetic_data(), config(model).batch_spec(), transform="normalize")
    pipeline.epoch_to_signal = int(signal_at_epoch)
    try:
        state, _ = fit(config(model), pipeline, workdir, progress=False)
    except TrainingInterrupted as error:
        print(error, file=sys.stderr)
        sys.exit(130)
    np.savez(os.path.join(workdir, "final.npz"), *[np.asarray(x) for x in jax.tree.leaves(state.params)])


if __name__ == "__main__":
    main(*sys.argv[1:])
