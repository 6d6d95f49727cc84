"""Images per second that each input pipeline mode delivers, and how long the offline import takes.

The pipelines read CIFAR-10's train split at batch 128 (the E1/E2 recipe) into a jitted
consumer that does nothing but touch the batch; the first epoch (compilation, warm-up) is
reported apart; the median of the other epochs is the throughput. With raw archives given,
their import into a fresh, temporary data dir is timed first. ``python -m benchmarks data`` prints it. Needs
TensorFlow (TFDS), imported when called.
"""

from __future__ import annotations

import tempfile
import time

import jax

from benchmarks.timing import Runner, median_rates, time_interleaved
from jaxae.data.batches import BatchSpec


def pipeline_throughput(data_dir: str, epochs: int = 5, raw_mnist: str | None = None,
                        raw_cifar10: str | None = None) -> dict:
    """Import seconds (for the raw archives given) and, per mode, set-up seconds and median images/s."""
    from jaxae.data import import_dataset, make_pipeline

    results = {"import_seconds": {}, "pipelines": {}}
    for name, source in (("mnist", raw_mnist), ("cifar10", raw_cifar10)):
        if source:
            with tempfile.TemporaryDirectory(prefix="jaxae-bench-") as target:  # a fresh import, not a prepared one
                start = time.perf_counter()
                import_dataset(name, source, target)
                results["import_seconds"][name] = time.perf_counter() - start

    consume = jax.jit(lambda batch: batch["image"].sum())
    for mode in ("device", "streaming"):
        start = time.perf_counter()
        pipeline = make_pipeline("cifar10", "train", BatchSpec(128, seed=0), mode=mode, data_dir=data_dir)
        setup = time.perf_counter() - start
        epoch = iter(range(epochs + 1))

        def run(_, pipeline=pipeline, epoch=epoch):
            for batch in pipeline.epoch(next(epoch)):
                consume(batch).block_until_ready()

        start = time.perf_counter()
        run(1)  # the warm-up epoch
        warmup = time.perf_counter() - start
        seconds = time_interleaved({mode: Runner(mode, run, warmup)}, 1, epochs)
        results["pipelines"][mode] = {
            "setup_seconds": setup,
            "warmup_epoch_images_per_s": pipeline.num_examples / warmup,
            "median_images_per_s": median_rates(seconds, pipeline.num_examples)[mode],
        }
    return results
