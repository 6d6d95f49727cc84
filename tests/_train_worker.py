"""A training run in its own process, for the kill-, signal- and fault-and-resume tests.

    python tests/_train_worker.py WORKDIR EPOCHS [MODE EPOCH [SIGNAL]]

Trains ``mnist_ae2`` on fixed synthetic data. Modes, at the given epoch (0-based):
``kill_mid_epoch`` kills the process (SIGKILL) at its third step, ``kill_during_save``
while Orbax writes its checkpoint (its arrays written, its folder not yet renamed);
``signal_mid_epoch`` and ``signal_during_save`` send SIGNAL (``SIGINT`` or ``SIGTERM``)
to it at its third step or as its save begins, ``signal_twice`` sends SIGINT twice at the
third step. A run that ends writes the final params to
``WORKDIR/final.npz``; one stopped by a signal prints the message and exits with
the shell's code for that signal (130, 143), as the ``jaxae`` command does.
"""

import json
import os
import signal
import sys
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxae.data import DeviceResidentPipeline
from jaxae.train import TrainConfig, TrainingInterrupted, checkpoint, fit

CONFIG = TrainConfig(model="mnist_ae2", loss="mse", optimizer="adam", learning_rate=1e-3, epochs=4, batch_size=32, seed=5)


def synthetic_data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (100, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, 100).astype(np.int32)


class SignallingPipeline(DeviceResidentPipeline):
    """Sends ``signals`` to its own process before the third batch of ``epoch``."""

    epoch_to_signal, signals = -1, ()

    def epoch(self, epoch):
        for step, batch in enumerate(super().epoch(epoch)):
            if epoch == self.epoch_to_signal and step == 2:
                for number in self.signals:
                    os.kill(os.getpid(), number)
            yield batch


def _kill_while_orbax_writes(epoch):
    """SIGKILLs the process in the save of checkpoint ``epoch``, once Orbax has written the state's arrays
    into its temporary folder and before it renames that folder into place."""
    save, finalize = checkpoint.Checkpoints.save, ocp.handlers.StandardCheckpointHandler.finalize
    saving = []

    def save_noting_the_epoch(self, saved_epoch, *args, **kwargs):
        saving[:] = [saved_epoch]
        save(self, saved_epoch, *args, **kwargs)

    def finalize_or_kill(self, directory):
        written = [p for p in Path(directory).rglob("*") if p.is_file()]
        if saving == [epoch] and written and ".orbax-checkpoint-tmp" in str(directory):
            os.kill(os.getpid(), signal.SIGKILL)
        finalize(self, directory)

    checkpoint.Checkpoints.save = save_noting_the_epoch
    ocp.handlers.StandardCheckpointHandler.finalize = finalize_or_kill


def main(workdir, epochs, mode=None, at_epoch=-1, signal_name="SIGINT"):
    pipeline = SignallingPipeline(*synthetic_data(), CONFIG.batch_spec(), transform="normalize")
    number = signal.SIGKILL if mode and mode.startswith("kill") else signal.Signals[signal_name]
    if mode in ("kill_mid_epoch", "signal_mid_epoch", "signal_twice"):
        pipeline.epoch_to_signal = int(at_epoch)
        pipeline.signals = (signal.SIGINT, signal.SIGINT) if mode == "signal_twice" else (number,)
    if mode == "kill_during_save":
        _kill_while_orbax_writes(int(at_epoch) + 1)
    if mode == "signal_during_save":
        save = checkpoint.Checkpoints.save

        def save_and_signal(self, epoch, *args, **kwargs):
            if epoch == int(at_epoch) + 1:
                os.kill(os.getpid(), number)  # arrives while the checkpoint is written
            save(self, epoch, *args, **kwargs)

        checkpoint.Checkpoints.save = save_and_signal
    try:
        state, history = fit(CONFIG, pipeline, workdir, fused=False, stop_after_epochs=int(epochs), progress=False)
    except TrainingInterrupted as error:
        print(error, file=sys.stderr)
        sys.exit(130 if error.signal == "SIGINT" else 143)
    leaves = jax.tree.leaves(state.params)
    np.savez(os.path.join(workdir, "final.npz"), *[np.asarray(x) for x in leaves])
    with open(os.path.join(workdir, "history.json"), "w") as f:
        json.dump(history, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
