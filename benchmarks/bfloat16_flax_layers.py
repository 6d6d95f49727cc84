"""``compute_dtype="bfloat16"`` against float32 for a model of Flax's own layers.

    python -m benchmarks.bfloat16_flax_layers --data-dir D [--rounds 7]

A convolutional autoencoder of strided ``nn.Conv`` and ``nn.ConvTranspose`` layers
(batch 128, Adam, binary cross-entropy), registered as a user's own model: each dtype
trains 2 epochs on the first 6,400 MNIST training digits and is scored on 1,000 test digits;
then the two compiled steps are timed in turns on one batch, 20 steps a turn, and the
median of ``--rounds`` turns is printed per dtype with the test losses, as JSON.
"""

import argparse
import json
import statistics
import tempfile
import time

import flax.linen as nn
import jax

from jaxae import models
from jaxae.data import BatchSpec, from_arrays, load_split
from jaxae.train import TrainConfig, Trainer, compile_train_step, fit


class FlaxConvAutoencoder(nn.Module):
    @nn.compact
    def __call__(self, images, train: bool = False):
        x = nn.relu(nn.Conv(32, (3, 3), strides=(2, 2))(images))
        x = nn.relu(nn.Conv(64, (3, 3), strides=(2, 2))(x))
        x = nn.relu(nn.ConvTranspose(32, (3, 3), strides=(2, 2))(x))
        return nn.sigmoid(nn.ConvTranspose(1, (3, 3), strides=(2, 2))(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="TFDS data dir holding mnist")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    models.register("bench_flax_conv_ae", FlaxConvAutoencoder, image_shape=(28, 28, 1))
    train, _ = load_split("mnist", "train[:6400]", args.data_dir)
    test, _ = load_split("mnist", "test[:1000]", args.data_dir)
    results, steps = {}, {}
    for dtype in ("float32", "bfloat16"):
        config = TrainConfig("bench_flax_conv_ae", "binary_cross_entropy", "adam", 1e-3, epochs=2, batch_size=128,
                             compute_dtype=dtype)
        _, history = fit(config, from_arrays(train, batch_spec=config.batch_spec()), tempfile.mkdtemp(),
                         eval_data=from_arrays(test, batch_spec=BatchSpec(250, shuffle=False)), progress=False)
        results[dtype] = {"test_loss": history[-1]["test_loss"]}
        trainer = Trainer.create(config)
        batch = next(from_arrays(train, batch_spec=config.batch_spec()).epoch(0))
        step, state = compile_train_step(trainer), trainer.init_state()
        state, _ = step(state, batch)
        steps[dtype] = [step, jax.block_until_ready(state), batch, []]
    for _ in range(args.rounds):
        for entry in steps.values():
            step, state, batch, times = entry
            start = time.perf_counter()
            for _ in range(20):
                state, _ = step(state, batch)
            entry[1] = jax.block_until_ready(state)
            times.append((time.perf_counter() - start) / 20 * 1e3)
    for dtype, (_, _, _, times) in steps.items():
        results[dtype]["step_ms"] = statistics.median(times)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
