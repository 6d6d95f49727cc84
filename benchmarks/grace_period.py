"""How long a run takes to stop on SIGTERM mid-epoch: the grace period a preemptible machine must give.

    python -m benchmarks.grace_period [--models cifar10_conv_ae mnist_conv_ae_2d cifar10_fc_conv_ae] [--repeats 3]

Each model trains with ``fit`` in a process of its own, on synthetic images at its recipe's
batch size; some steps into its second epoch the process gets SIGTERM, and the time from
the signal to the process's exit is measured: the step in flight finishes, the state is
saved to ``step_checkpoints/``, and Python exits. Printed as JSON, medians over ``--repeats``
processes, with the save's own share, each model's parameter count and the size of the
checkpoint written. E2's
autoencoder (``cifar10_conv_ae``, 21 k parameters), E3's (``mnist_conv_ae_2d``, 9.4× as many)
and E5's (``cifar10_fc_conv_ae``, 219×) are the defaults.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.environment import describe

_READY, _SAVED = "training", "saved"
_BATCH_SIZES = {"cifar10_conv_ae": 32, "mnist_conv_ae_2d": 32, "cifar10_fc_conv_ae": 32}


def child(model: str, workdir: str) -> None:
    """Trains ``model`` until stopped, printing ``_READY`` once the second epoch has run a few steps."""
    from jaxae import models
    from jaxae.data import DeviceResidentPipeline
    from jaxae.train import TrainConfig, checkpoint, fit

    save = checkpoint.Checkpoints.save

    def timed_save(self, *args, **kwargs):  # the save's own share of the grace period, reported to the parent
        started = time.perf_counter()
        save(self, *args, **kwargs)
        print(f"{_SAVED} {time.perf_counter() - started}", flush=True)

    checkpoint.Checkpoints.save = timed_save

    class Announcing(DeviceResidentPipeline):
        def epoch(self, epoch, start=0):
            for step, batch in enumerate(super().epoch(epoch, start), start):
                if (epoch, step) == (1, 5):
                    print(_READY, flush=True)
                yield batch

    spec = models.spec(model)
    config = TrainConfig(model, "mse", "adam", 1e-3, epochs=1000, batch_size=_BATCH_SIZES.get(model, 32))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64 * config.batch_size, *spec.image_shape), dtype=np.uint8)
    data = Announcing(images, np.zeros(len(images), np.int32), config.batch_spec(), transform=spec.transform)
    fit(config, data, workdir, fused=False, progress=False)


def _one_stop(model: str) -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen([sys.executable, "-m", "benchmarks.grace_period", "--child", model, workdir],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while (line := process.stdout.readline()) and line.strip() != _READY:
            pass  # the first epoch's checkpoint
        if not line:
            raise RuntimeError(f"{model}'s run ended before training: {process.communicate()[1][-2000:]}")
        signalled = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate()
        seconds = time.perf_counter() - signalled
        if process.returncode != 143:
            raise RuntimeError(f"{model}'s run exited with {process.returncode}: {stderr[-2000:]}")
        saved = Path(workdir) / "step_checkpoints"
        size = sum(f.stat().st_size for f in saved.rglob("*") if f.is_file())
        save_seconds = float(stdout.split()[-1])  # the last save: the one the signal asked for
        return {"seconds": seconds, "save_seconds": save_seconds, "checkpoint_bytes": size, "line": stderr.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(_BATCH_SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "WORKDIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    import jax

    from jaxae import models

    results = {}
    for model in args.models:
        stops = [_one_stop(model) for _ in range(args.repeats)]
        results[model] = {
            "params": sum(leaf.size for leaf in jax.tree.leaves(models.abstract_params(models.create(model)))),
            "batch_size": _BATCH_SIZES.get(model, 32),
            "sigterm_to_exit_seconds": statistics.median(s["seconds"] for s in stops),
            "each_seconds": [round(s["seconds"], 3) for s in stops],
            "save_seconds": statistics.median(s["save_seconds"] for s in stops),
            "checkpoint_bytes": stops[-1]["checkpoint_bytes"],
            "line": stops[-1]["line"],
        }
    print(json.dumps({"environment": describe(), "results": results}, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
