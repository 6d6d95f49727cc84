"""Fused (scanned) epochs against a loop of jitted steps, per model, on this backend.

    python -m benchmarks.fused_vs_loop [--models cifar10_cnn mnist_ae2] [--images 5120] [--epochs 3]

Synthetic uint8 data held on the device, the recipe's batch size; the first
epoch (compilation) is reported apart, the median of the others is the
throughput. This is the measurement behind ``jaxae.train.default_fused``.
Results go to ``benchmarks/results/fused-vs-loop-<backend>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import jax
import numpy as np

from jaxae.bench.environment import describe
from jaxae import models
from jaxae.data.pipeline import BatchSpec, DeviceResidentPipeline
from jaxae.train import TrainConfig, Trainer, compile_train_epoch, compile_train_step

RECIPES = {  # model: (loss, optimizer, batch size, transform)
    "cifar10_mlp": ("cross_entropy", "sgd", 128, "to_tensor"),
    "cifar10_cnn": ("cross_entropy", "sgd", 128, "to_tensor"),
    "cifar10_conv_ae": ("sum_squared_error", "adam", 128, "to_tensor"),
    "mnist_conv_ae_2d": ("mse", "adam", 32, "to_tensor"),
    "mnist_ae2": ("mse", "adam", 128, "normalize"),
}


def _time_epochs(run_epoch, epochs):
    times = []
    for epoch in range(epochs + 1):
        start = time.perf_counter()
        run_epoch(epoch)
        times.append(time.perf_counter() - start)
    return times[0], times[1:]


def measure(name: str, num_images: int, epochs: int) -> dict:
    loss, optimizer, batch, transform = RECIPES[name]
    config = TrainConfig(model=name, loss=loss, optimizer=optimizer, learning_rate=1e-3, epochs=epochs, batch_size=batch, momentum=0.9 if optimizer == "sgd" else 0.0)
    trainer = Trainer.create(config)
    shape = models.spec(name).image_shape
    rng = np.random.default_rng(0)
    data = DeviceResidentPipeline(rng.integers(0, 256, (num_images, *shape), dtype=np.uint8), rng.integers(0, 10, num_images).astype(np.int32), BatchSpec(batch, drop_remainder=True), transform)
    images = data.num_batches * batch

    step, state = compile_train_step(trainer), [trainer.init_state()]

    def loop_epoch(epoch):
        for b in data.epoch(epoch):
            state[0], metrics = step(state[0], b)
        jax.block_until_ready(state[0])

    fused, fused_state = compile_train_epoch(trainer, transform), [trainer.init_state()]

    def fused_epoch(epoch):
        fused_state[0], _ = fused(fused_state[0], data.images, data.labels, *data.epoch_plan(epoch))
        jax.block_until_ready(fused_state[0])

    result = {"batch_size": batch, "images_per_epoch": images}
    for label, run in (("loop", loop_epoch), ("fused", fused_epoch)):
        first, rest = _time_epochs(run, epochs)
        result[label] = {"first_epoch_seconds": round(first, 2), "median_images_per_s": round(images / statistics.median(rest))}
    result["fused_over_loop"] = round(result["fused"]["median_images_per_s"] / result["loop"]["median_images_per_s"], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--images", type=int, default=5120)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    results = {"environment": describe(), "models": {}}
    for name in args.models:
        results["models"][name] = measure(name, args.images, args.epochs)
        r = results["models"][name]
        print(f"{name}: loop {r['loop']['median_images_per_s']:,} img/s, fused {r['fused']['median_images_per_s']:,} img/s ({r['fused_over_loop']}x)")
    out = Path(__file__).parent / "results" / f"fused-vs-loop-{jax.default_backend()}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
