"""Training throughput of one model at one batch size, in jaxae and in PyTorch.

Each runner trains the model with its recipe's loss and optimiser on batches
of synthetic images already on the device, and exposes ``run(n)``: ``n``
optimiser steps, blocking until they are done. Building a runner compiles
it and runs it once; that time is its ``compile_seconds``, kept apart from
the timed calls. :func:`time_interleaved` then times the runners in turns.

Runners:
  jaxae_step: the jitted train step (``compile_train_step``), dispatched once per step.
  jaxae_fused: the fused epoch (``compile_train_epoch``): ``lax.scan`` over
    the steps, batches gathered and converted from uint8 inside.
  jaxae_step_bf16, jaxae_fused_bf16: the same with ``compute_dtype="bfloat16"``.
  torch_eager: the seed's PyTorch module (``torch_reference``) in eager mode.
  torch_compile: the same module under ``torch.compile``.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxae import models
from jaxae.data.batches import PIXEL_TABLES
from jaxae.train import TrainConfig, Trainer, compile_train_epoch, compile_train_step

# Distinct batches each runner cycles through, so no step reuses the previous step's input.
POOL_SIZE = 2


@dataclasses.dataclass
class Runner:
    """A way to train: ``run(n)`` does ``n`` steps and waits for them.

    Attributes:
      name: "jaxae_step", "jaxae_fused", "torch_eager" or "torch_compile" (and
        "jaxae_layer" / "torch_layer": one layer's passes, :mod:`jaxae.bench.conv_layers`).
      run: the timed call.
      compile_seconds: building, compiling and the first (warm-up) call.
      memory_bytes: the step's memory: XLA's memory analysis of the compiled
        step (arguments + outputs + temporaries − donated aliases) for jaxae,
        ``torch.cuda.max_memory_allocated`` on CUDA; None where not measured.
      compiled: the XLA executable ``run`` calls (jaxae runners), e.g. for its
        optimized HLO (``compiled.as_text()``); None for PyTorch.
    """

    name: str
    run: Callable[[int], None]
    compile_seconds: float
    memory_bytes: int | None = None
    compiled: Any = None


def synthetic_images(config: TrainConfig, batch_size: int, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` batches of random uint8 images of the model's input shape, and random labels in [0, 10)."""
    rng = np.random.default_rng(seed)
    shape = models.spec(config.model).image_shape
    return rng.integers(0, 256, (count * batch_size, *shape), dtype=np.uint8), rng.integers(0, 10, count * batch_size, dtype=np.int32)


def _xla_memory(compiled) -> int | None:
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    return int(stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes - stats.alias_size_in_bytes)


def build_runner(build: Callable[[], tuple[Callable[[int], None], Any]], name: str, steps: int) -> Runner:
    """Builds a runner, runs it once for ``steps`` steps (warm-up), and times both together."""
    start = time.perf_counter()
    run, compiled = build()
    run(steps)
    seconds = time.perf_counter() - start
    return Runner(name, run, seconds, _xla_memory(compiled) if compiled is not None else None, compiled)


def jaxae_step_runner(config: TrainConfig, transform: str, batch_size: int, steps: int, name: str = "jaxae_step") -> Runner:
    """The jitted train step, one dispatch per step, on batches already converted on the device.

    The config's ``microbatch_size`` (None: the backend's default) is resolved for ``batch_size``.
    """
    trainer = Trainer.create(dataclasses.replace(config, batch_size=batch_size))
    images, labels = synthetic_images(config, batch_size, POOL_SIZE)
    pixels = PIXEL_TABLES[transform][images]
    mask = np.ones(batch_size, bool)
    batches = [
        jax.device_put({"image": pixels[rows], "label": labels[rows], "mask": mask})
        for rows in np.split(np.arange(len(images)), POOL_SIZE)
    ]

    def build():
        state = [trainer.init_state()]
        compiled = compile_train_step(trainer).lower(state[0], batches[0]).compile()

        def run(n: int) -> None:
            for i in range(n):
                state[0], _ = compiled(state[0], batches[i % POOL_SIZE])
            jax.block_until_ready(state[0])

        return run, compiled

    return build_runner(build, name, steps)


def jaxae_fused_runner(config: TrainConfig, transform: str, batch_size: int, steps: int, name: str = "jaxae_fused") -> Runner:
    """The fused epoch of ``steps`` steps (one ``lax.scan``); ``run(n)`` runs ``n / steps`` of them."""
    trainer = Trainer.create(dataclasses.replace(config, batch_size=batch_size, microbatch_size=None))
    images, labels = synthetic_images(config, batch_size, steps)
    images, labels = jax.device_put((images, labels))
    indices = jnp.arange(steps * batch_size, dtype=jnp.int32).reshape(steps, batch_size)
    mask = jnp.ones((steps, batch_size), bool)

    def build():
        state = [trainer.init_state()]
        compiled = compile_train_epoch(trainer, transform).lower(state[0], images, labels, indices, mask).compile()

        def run(n: int) -> None:
            if n % steps:
                raise ValueError(f"a fused epoch of {steps} steps cannot run {n} steps")
            for _ in range(n // steps):
                state[0], _ = compiled(state[0], images, labels, indices, mask)
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
    images, labels = synthetic_images(config, batch_size, POOL_SIZE)
    pixels = np.ascontiguousarray(PIXEL_TABLES[transform][images].transpose(0, 3, 1, 2))
    batches = [
        (torch.from_numpy(pixels[rows]).to(device), torch.from_numpy(labels[rows].astype(np.int64)).to(device))
        for rows in np.split(np.arange(len(images)), POOL_SIZE)
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


def time_interleaved(runners: Mapping[str, Runner], steps: int, repeats: int) -> dict[str, list[float]]:
    """Seconds of ``run(steps)`` per runner, ``repeats`` rounds; within a round the runners take turns.

    Each round starts one runner later than the one before, so that every runner takes every
    place in the order equally often: on two cores, with the order fixed, whichever runner was
    timed right after PyTorch's ran up to 20 % slower (likely PyTorch's OpenMP threads, which
    spin for a while after each call).
    """
    seconds = {name: [] for name in runners}
    names = list(runners)
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            runners[name].run(steps)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def median_images_per_second(seconds: list[float], images: int) -> float:
    return images / statistics.median(seconds)
