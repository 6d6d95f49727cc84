"""Keras's own tutorial autoencoders, trained by Keras and by jaxae's ``fit`` on the same arrays.

    python -m benchmarks keras-tutorial [--epochs 4] [--rounds 3] [--output F]

The dense autoencoders of "Building Autoencoders in Keras" (:data:`benchmarks.keras_models.TUTORIAL`),
batch 256, Adam, binary cross-entropy, on 60,000 random binary 28×28 images (MNIST's size;
the work does not depend on the pixels). Per model, in turns, ``--rounds`` times:

* Keras 3 on TensorFlow: ``model.fit(x, x, epochs, batch_size=256, shuffle=True)``, each epoch timed
  by a callback;
* jaxae: ``fit`` of the same model registered as a user's own, on ``from_arrays(x)``, its CPU
  path as ``fit`` chooses it by default; an epoch's time is its ``train_seconds`` and
  ``checkpoint_seconds``, a step's its ``train_seconds`` over the batches;
* the best fixed step: the four compilations of the train step that the CPU-path search
  weighs, each timed alone on one batch (a hand-written ``jax.jit`` loop), the fastest kept.

Epochs after the first are compared (the first compiles); medians over rounds and epochs.
"""

from __future__ import annotations

import statistics
import tempfile
import time

import jax
import numpy as np

from benchmarks.keras_models import TUTORIAL, keras_model, register_tutorial_models
from jaxae.cpu import search
from jaxae.data import from_arrays
from jaxae.train import TrainConfig, Trainer, fit
from jaxae.train.engine import compile_choice

BATCH_SIZE = 256
EXAMPLES = 60_000
STEPS_TIMED = 100


def _config(model: str, epochs: int) -> TrainConfig:
    return TrainConfig(model, "binary_cross_entropy", "adam", 1e-3, epochs=epochs, batch_size=BATCH_SIZE)


def _keras_epochs(model: str, images: np.ndarray, epochs: int) -> list[float]:
    import keras

    seconds = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.started)

    keras_model(_config(model, epochs)).fit(images, images, epochs=epochs, batch_size=BATCH_SIZE, shuffle=True,
                                            verbose=0, callbacks=[Timer()])
    return seconds[1:]


def _jaxae_epochs(model: str, images: np.ndarray, epochs: int) -> tuple[list[float], list[float]]:
    """Each epoch's seconds (training and checkpoint) and each epoch's seconds per step, after the first."""
    config = _config(model, epochs)
    data = from_arrays(images, batch_spec=config.batch_spec())
    with tempfile.TemporaryDirectory() as workdir:
        _, history = fit(config, data, workdir, progress=False)
    later = history[1:]
    return ([r["train_seconds"] + r.get("checkpoint_seconds", 0.0) for r in later],
            [r["train_seconds"] / data.num_batches for r in later])


def _best_fixed_step(model: str, images: np.ndarray, rounds: int) -> dict[str, float]:
    """Seconds per step of each candidate compilation, timed in turns on one batch: the hand-written loop."""
    trainer = Trainer.create(_config(model, 1))
    batch = next(from_arrays(images, batch_spec=trainer.config.batch_spec()).epoch(0))
    steps = {}
    for choice in search.candidates(search.Choice("jaxae", trainer.microbatch_size), BATCH_SIZE, vary_chunks=True):
        step = compile_choice(trainer, choice)
        state, _ = step(trainer.init_state(), batch)
        steps[str(choice)] = [step, jax.block_until_ready(state), []]
    for _ in range(rounds):
        for entry in steps.values():
            step, state, times = entry
            started = time.perf_counter()
            for _ in range(STEPS_TIMED):
                state, _ = step(state, batch)
            entry[1] = jax.block_until_ready(state)
            times.append((time.perf_counter() - started) / STEPS_TIMED)
    return {name: statistics.median(times) for name, (_, _, times) in steps.items()}


def measure(epochs: int = 4, rounds: int = 3) -> dict:
    """Per tutorial model: Keras's and jaxae's median epoch, jaxae's median step, and the best fixed step."""
    register_tutorial_models()
    images = (np.random.default_rng(0).random((EXAMPLES, 28, 28, 1)) < 0.2).astype(np.float32)
    results = {}
    for model in TUTORIAL:
        keras_seconds, jaxae_seconds, jaxae_steps = [], [], []
        for _ in range(rounds):
            keras_seconds += _keras_epochs(model, images, epochs)
            epoch_seconds, step_seconds = _jaxae_epochs(model, images, epochs)
            jaxae_seconds += epoch_seconds
            jaxae_steps += step_seconds
        fixed = _best_fixed_step(model, images, rounds)
        best = min(fixed, key=fixed.get)
        results[model] = {
            "keras_epoch_s": statistics.median(keras_seconds),
            "jaxae_epoch_s": statistics.median(jaxae_seconds),
            "jaxae_fit_step_ms": 1e3 * statistics.median(jaxae_steps),
            "fixed_steps_ms": {name: 1e3 * seconds for name, seconds in fixed.items()},
            "best_fixed": best,
            "fit_over_best_fixed": statistics.median(jaxae_steps) / fixed[best],
            "keras_over_jaxae_epoch": statistics.median(keras_seconds) / statistics.median(jaxae_seconds),
        }
    return results


def report(results: dict) -> str:
    lines = ["| model | Keras epoch | jaxae epoch | Keras / jaxae | fit's step | best fixed step | fit / best |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for model, r in results.items():
        lines.append(f"| `{model}` | {r['keras_epoch_s']:.2f} s | {r['jaxae_epoch_s']:.2f} s | "
                     f"{r['keras_over_jaxae_epoch']:.2f}× | {r['jaxae_fit_step_ms']:.2f} ms | "
                     f"{r['fixed_steps_ms'][r['best_fixed']]:.2f} ms ({r['best_fixed']}) | {r['fit_over_best_fixed']:.2f}× |")
    return "\n".join(lines)
