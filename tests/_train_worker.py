"""A training run in its own process, for the kill-and-resume tests.

    python tests/_train_worker.py WORKDIR EPOCHS [kill_mid_epoch EPOCH | kill_during_save EPOCH]

Trains ``mnist_ae2`` on fixed synthetic data; kills itself (SIGKILL) in the
middle of the given epoch (0-based) or right after asking for that epoch's
save; otherwise writes the final params to ``WORKDIR/final.npz``.
"""

import json
import os
import signal
import sys

import jax
import numpy as np

from jaxae.data import DeviceResidentPipeline
from jaxae.train import TrainConfig, checkpoint, fit

CONFIG = TrainConfig(model="mnist_ae2", loss="mse", optimizer="adam", learning_rate=1e-3, epochs=4, batch_size=32, seed=5)


def synthetic_data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (100, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, 100).astype(np.int32)


class KillingPipeline(DeviceResidentPipeline):
    kill_epoch = -1

    def epoch(self, epoch):
        for step, batch in enumerate(super().epoch(epoch)):
            if epoch == self.kill_epoch and step == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            yield batch


def main(workdir, epochs, mode=None, kill_epoch=-1):
    pipeline = KillingPipeline(*synthetic_data(), CONFIG.batch_spec(), transform="normalize")
    if mode == "kill_mid_epoch":
        pipeline.kill_epoch = int(kill_epoch)
    if mode == "kill_during_save":
        save = checkpoint.Checkpoints.save

        def save_then_die(self, epoch, *args, **kwargs):
            save(self, epoch, *args, **kwargs)
            if epoch == int(kill_epoch) + 1:
                os.kill(os.getpid(), signal.SIGKILL)

        checkpoint.Checkpoints.save = save_then_die
    state, history = fit(CONFIG, pipeline, workdir, fused=False, stop_after_epochs=int(epochs), progress=False)
    leaves = jax.tree.leaves(state.params)
    np.savez(os.path.join(workdir, "final.npz"), *[np.asarray(x) for x in leaves])
    with open(os.path.join(workdir, "history.json"), "w") as f:
        json.dump(history, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
