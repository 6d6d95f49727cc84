"""A training run in its own process, for the kill-, signal- and fault-and-resume tests.

    python tests/_train_worker.py WORKDIR EPOCHS [MODE EPOCH [SIGNAL [LAYOUT [EVERY_STEPS]]]]

Trains ``mnist_ae2`` on fixed synthetic data. Modes, at the given epoch (0-based):
``kill_mid_epoch`` kills the process (SIGKILL) at its third step, ``kill_during_save``
while Orbax writes its checkpoint (its arrays written, its folder not yet renamed);
``signal_mid_epoch`` and ``signal_during_save`` send SIGNAL (``SIGINT`` or ``SIGTERM``)
to it at its third step or as its save begins, ``signal_twice`` sends SIGINT twice at the
third step. LAYOUT: ``one`` device (the default), a 2-device ``mesh``, or 3 ``seeds``
together (``fit_seeds``, each in ``WORKDIR/seed<N>``). EVERY_STEPS: also checkpoint every
this many steps. A run that ends writes the final params to ``WORKDIR/final.npz`` (every
seed's, in turn) and its histories to ``WORKDIR/history.json``; one stopped by a signal
ends as ``fit`` ends it, uncaught: its one line, and the shell's code for that signal
(130, 143).
"""

import dataclasses
import json
import os
import signal
import sys
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxae.data import DeviceResidentPipeline
from jaxae.train import TrainConfig, checkpoint, fit, fit_seeds

CONFIG = TrainConfig(model="mnist_ae2", loss="mse", optimizer="adam", learning_rate=1e-3, epochs=4, batch_size=32, seed=5)


def synthetic_data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (100, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, 100).astype(np.int32)


class SignallingPipeline(DeviceResidentPipeline):
    """Sends ``signals`` to its own process before the third batch of ``epoch``."""

    epoch_to_signal, signals = -1, ()

    def epoch(self, epoch, start=0):
        for step, batch in enumerate(super().epoch(epoch, start), start):
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


def main(workdir, epochs, mode=None, at_epoch=-1, signal_name="SIGINT", layout="one", every_steps="0"):
    seeds = (5, 6, 7) if layout == "seeds" else (CONFIG.seed,)
    sharding = None
    if layout == "mesh":
        sharding = jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(jax.devices()[:2]), ("batch",)),
                                              jax.sharding.PartitionSpec("batch"))
    configs = [dataclasses.replace(CONFIG, seed=seed) for seed in seeds]
    pipelines = [SignallingPipeline(*synthetic_data(), config.batch_spec(), transform="normalize", sharding=sharding)
                 for config in configs]
    number = signal.SIGKILL if mode and mode.startswith("kill") else signal.Signals[signal_name]
    if mode in ("kill_mid_epoch", "signal_mid_epoch", "signal_twice"):
        pipelines[0].epoch_to_signal = int(at_epoch)
        pipelines[0].signals = (signal.SIGINT, signal.SIGINT) if mode == "signal_twice" else (number,)
    if mode == "kill_during_save":
        _kill_while_orbax_writes(int(at_epoch) + 1)
    if mode == "signal_during_save":
        save = checkpoint.Checkpoints.save

        def save_and_signal(self, epoch, *args, **kwargs):
            if epoch == int(at_epoch) + 1:
                os.kill(os.getpid(), number)  # arrives while the checkpoint is written
            save(self, epoch, *args, **kwargs)

        checkpoint.Checkpoints.save = save_and_signal
    options = dict(fused=False, progress=False, checkpoint_every_steps=int(every_steps) or None)
    if layout == "seeds":
        runs = fit_seeds(configs, pipelines, [os.path.join(workdir, f"seed{seed}") for seed in seeds], **options)
    else:
        mesh = None if sharding is None else sharding.mesh
        runs = [fit(CONFIG, pipelines[0], workdir, mesh=mesh, stop_after_epochs=int(epochs), **options)]
    leaves = [leaf for state, _ in runs for leaf in jax.tree.leaves(state.params)]
    np.savez(os.path.join(workdir, "final.npz"), *[np.asarray(x) for x in leaves])
    with open(os.path.join(workdir, "history.json"), "w") as f:
        json.dump([history for _, history in runs], f)


if __name__ == "__main__":
    main(*sys.argv[1:])
