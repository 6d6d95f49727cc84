"""Training throughput of one model at one batch size, in jaxae and in PyTorch.

Each runner (:class:`benchmarks.timing.Runner`) trains the model with its recipe's loss and
optimiser on batches of synthetic images already on the device; :func:`compare_steps` times
variants of jaxae's step against each other and PyTorch eager.

Runners:
  jaxae_step: the jitted train step (``compile_train_step``), dispatched once per step.
  jaxae_search: the same step compiled as ``fit`` compiles it on a CPU by default, the
    fastest of the candidates :mod:`jaxae.cpu.search` measures.
  jaxae_fused: the fused epoch (``compile_train_epoch``): ``lax.scan`` over
    the steps, batches gathered and converted from uint8 inside.
  jaxae_step_bf16, jaxae_fused_bf16: the same with ``compute_dtype="bfloat16"``.
  torch_eager: the seed's PyTorch module (``torch_reference``) in eager mode.
  torch_compile: the same module under ``torch.compile``.
  keras: the model in Keras 3 on TensorFlow, ``train_on_batch`` per step.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.timing import Runner, build_runner, median_rates, time_interleaved
from jaxae import models
from jaxae.cpu import search
from jaxae.data.batches import PIXEL_TABLES
from jaxae.experiments import Stage
from jaxae.train import TrainConfig, Trainer, compile_train_epoch, compile_train_step
from jaxae.train.engine import chunks_may_vary, compile_choice

# Distinct batches each runner cycles through, so no step reuses the previous step's input.
POOL_SIZE = 2
IMAGES_PER_CALL = 4000
"""About how many images one timed call of :func:`compare_steps` trains on."""


def torch_installed() -> bool:
    """Whether PyTorch can be imported: its columns are measured only then."""
    return importlib.util.find_spec("torch") is not None


def synthetic_images(config: TrainConfig, batch_size: int, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` batches of random uint8 images of the model's input shape, and random labels in [0, 10)."""
    rng = np.random.default_rng(seed)
    shape = models.spec(config.model).image_shape
    return rng.integers(0, 256, (count * batch_size, *shape), dtype=np.uint8), rng.integers(0, 10, count * batch_size, dtype=np.int32)


def _pixel_batches(config: TrainConfig, transform: str, batch_size: int, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` batches of :func:`synthetic_images` as the recipe's ``transform`` scales them: (pixels, labels)."""
    images, labels = synthetic_images(config, batch_size, count)
    pixels = PIXEL_TABLES[transform][images]
    return [(pixels[rows], labels[rows]) for rows in np.split(np.arange(len(images)), count)]


def device_batches(config: TrainConfig, transform: str, batch_size: int, count: int) -> list[dict]:
    """``count`` train-step batches (image, label, mask) of synthetic images, on the device."""
    mask = np.ones(batch_size, bool)
    return [jax.device_put({"image": pixels, "label": labels, "mask": mask})
            for pixels, labels in _pixel_batches(config, transform, batch_size, count)]


def jaxae_step_runner(config: TrainConfig, transform: str, batch_size: int, steps: int, name: str = "jaxae_step", *,
                      compiler_options: Mapping[str, str] | None = None) -> Runner:
    """The jitted train step, one dispatch per step, on batches already converted on the device.

    The config's ``microbatch_size`` (None: the backend's default) is resolved for ``batch_size``;
    ``compiler_options``: XLA:CPU's (default: jaxae's, :data:`jaxae.cpu.COMPILER_OPTIONS`).
    """
    trainer = Trainer.create(dataclasses.replace(config, batch_size=batch_size))
    batches = device_batches(config, transform, batch_size, POOL_SIZE)

    def build():
        state = [trainer.init_state()]
        compiled = compile_train_step(trainer, compiler_options=compiler_options).lower(state[0], batches[0]).compile()

        def run(n: int) -> None:
            for i in range(n):
                state[0], _ = compiled(state[0], batches[i % POOL_SIZE])
            jax.block_until_ready(state[0])

        return run, compiled

    return build_runner(build, name, steps)


def jaxae_search_runner(config: TrainConfig, transform: str, batch_size: int, steps: int) -> Runner:
    """The jitted train step compiled as ``fit`` compiles it on a CPU by default: the fastest of the
    candidates that :func:`jaxae.cpu.search.choose` measures (or remembers from an earlier run)."""
    trainer = Trainer.create(dataclasses.replace(config, batch_size=batch_size))
    batches = device_batches(config, transform, batch_size, POOL_SIZE)

    def build():
        state = [trainer.init_state()]
        _, step, _ = search.choose(functools.partial(compile_choice, trainer), search.Choice("jaxae", trainer.microbatch_size),
                                   batch_size, chunks_may_vary(trainer, state[0]), state[0], batches[0])
        compiled = step.lower(state[0], batches[0]).compile()

        def run(n: int) -> None:
            for i in range(n):
                state[0], _ = compiled(state[0], batches[i % POOL_SIZE])
            jax.block_until_ready(state[0])

        return run, compiled

    return build_runner(build, "jaxae_search", steps)


def keras_runner(config: TrainConfig, transform: str, batch_size: int, steps: int) -> Runner:
    """The model in Keras 3 on TensorFlow (:func:`benchmarks.keras_models.keras_model`), ``train_on_batch``
    per step, as a Keras user's own loop would; batches already in TensorFlow tensors."""
    import tensorflow as tf

    from benchmarks.keras_models import keras_model

    is_classifier = not models.spec(config.model).is_autoencoder
    batches = [(tf.constant(pixels), tf.constant(labels if is_classifier else pixels))
               for pixels, labels in _pixel_batches(config, transform, batch_size, POOL_SIZE)]

    def build():
        model = keras_model(config)

        def run(n: int) -> None:
            for i in range(n):
                model.train_on_batch(*batches[i % POOL_SIZE])

        return run, None

    return build_runner(build, "keras", steps)


def keras_installed() -> bool:
    """Whether Keras can be imported: its column is measured only then."""
    return importlib.util.find_spec("keras") is not None


def jaxae_fused_runner(config: TrainConfig, transform: str, batch_size: int, steps: int, name: str = "jaxae_fused") -> Runner:
    """The fused epoch of ``steps`` steps (one ``lax.scan``); ``run(n)`` runs ``n / steps`` of them."""
    trainer = Trainer.create(dataclasses.replace(config, batch_size=batch_size, microbatch_size=None))
    images, labels = synthetic_images(config, batch_size, steps)
    split = jax.device_put({"image": images, "label": labels})
    indices = jnp.arange(steps * batch_size, dtype=jnp.int32).reshape(steps, batch_size)
    mask = jnp.ones((steps, batch_size), bool)

    def build():
        state = [trainer.init_state()]
        compiled = compile_train_epoch(trainer, transform).lower(state[0], split, indices, mask).compile()

        def run(n: int) -> None:
            if n % steps:
                raise ValueError(f"a fused epoch of {steps} steps cannot run {n} steps")
            for _ in range(n // steps):
                state[0], _ = compiled(state[0], split, indices, mask)
            jax.block_until_ready(state[0])

        return run, compiled

    return build_runner(build, name, steps)


def torch_device():
    """The PyTorch device matching JAX's backend: CUDA when JAX runs on a GPU and PyTorch sees one."""
    import torch

    return torch.device("cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu")


def torch_runner(config: TrainConfig, transform: str, batch_size: int, steps: int, *, compiled: bool = False) -> Runner:
    """The seed's PyTorch module, eager or under ``torch.compile``, with the recipe's optimiser."""
    import torch

    from jaxae.experiments.torch_training import make_optimizer, per_example_loss
    from jaxae.torch_port import torch_reference

    device = torch_device()
    batches = [
        (torch.from_numpy(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))).to(device),
         torch.from_numpy(labels.astype(np.int64)).to(device))
        for pixels, labels in _pixel_batches(config, transform, batch_size, POOL_SIZE)
    ]
    is_classifier = not models.spec(config.model).is_autoencoder

    def build():
        model = torch_reference(config.model, **dict(config.model_args)).to(device).train()
        optimizer = make_optimizer(config, model)
        forward = torch.compile(model, dynamic=False) if compiled else model

        def run(n: int) -> None:
            for i in range(n):
                x, y = batches[i % POOL_SIZE]
                loss = per_example_loss(config.loss, forward(x), y if is_classifier else x).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()

        return run, None

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    runner = build_runner(build, "torch_compile" if compiled else "torch_eager", steps)
    if device.type == "cuda":
        runner.memory_bytes = int(torch.cuda.max_memory_allocated())
    return runner


@dataclasses.dataclass(frozen=True)
class StepVariant:
    """A variant of a recipe's train step: its config, and XLA:CPU's compiler options (None: jaxae's)."""

    config: TrainConfig
    compiler_options: Mapping[str, str] | None = None


def compare_steps(stage: Stage, batch_size: int, variants: Mapping[str, StepVariant], repeats: int) -> dict[str, int]:
    """Images/s of each variant of ``stage``'s train step at ``batch_size``, and of PyTorch eager when installed.

    The runners (``"torch_eager"`` last) are timed in turns, calls of about :data:`IMAGES_PER_CALL`
    images, median of ``repeats`` rounds after a warm-up; rates are rounded to whole images/s.
    """
    steps = max(1, IMAGES_PER_CALL // batch_size)
    runners = {name: jaxae_step_runner(variant.config, stage.transform, batch_size, steps,
                                       compiler_options=variant.compiler_options)
               for name, variant in variants.items()}
    if torch_installed():
        runners["torch_eager"] = torch_runner(stage.config, stage.transform, batch_size, steps)
    rates = median_rates(time_interleaved(runners, steps, repeats), steps * batch_size)
    return {name: round(rate) for name, rate in rates.items()}
