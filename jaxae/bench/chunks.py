"""The jitted train step with its gradient summed over chunks of the batch, per chunk size.

For each model at each batch size, jaxae's step (the suite's ``jaxae_step`` runner:
synthetic data on the device) with each ``microbatch_size`` asked for, the library's
default among them, and PyTorch eager when installed, timed in turns: calls of about 4,000
images, median of ``repeats`` rounds after a warm-up. This is the measurement behind
:func:`jaxae.cpu.default_microbatch_size`; ``jaxae bench chunks`` prints it.
"""

from __future__ import annotations

import dataclasses
import importlib.util

from jaxae.bench.suite import recipe_stage
from jaxae.bench.throughput import jaxae_step_runner, median_images_per_second, time_interleaved, torch_runner
from jaxae.errors import InputError

DEFAULT_RUNS = (("cifar10_cnn", 1024), ("cifar10_conv_ae", 1024), ("cifar10_mlp", 1024), ("cifar10_fc_conv_ae", 2000))
WHOLE_BATCH = 0
"""A chunk size that stands for the whole batch in one gradient."""


def measure(model: str, batch_size: int, sizes: list[int | None], repeats: int = 7) -> dict[str, float]:
    """Images/s of ``model``'s step at ``batch_size`` per chunk size (None: the default; 0: the whole batch).

    Keys: ``"microbatch whole"``, ``"microbatch 32"``, ``"microbatch default (32)"``, ...,
    and ``"torch_eager"``.
    """
    stage = recipe_stage(model)
    if batch_size < 1 or repeats < 1 or any(size is not None and size < 0 for size in sizes):
        raise InputError("batch size and repeats must be positive, chunk sizes >= 0")
    steps = max(1, 4000 // batch_size)
    runners = {}
    for size in sizes:
        config = dataclasses.replace(stage.config, microbatch_size=batch_size if size == WHOLE_BATCH else size)
        runner = jaxae_step_runner(config, stage.transform, batch_size, steps)
        resolved = dataclasses.replace(config, batch_size=batch_size).resolved().microbatch_size
        runners[_label(size, resolved)] = runner
    if importlib.util.find_spec("torch") is not None:
        runners["torch_eager"] = torch_runner(stage.config, stage.transform, batch_size, steps)
    seconds = time_interleaved(runners, steps, repeats)
    return {name: round(median_images_per_second(times, steps * batch_size)) for name, times in seconds.items()}


def _label(size: int | None, resolved: int) -> str:
    if size is None:
        return f"microbatch default ({resolved})"
    return f"microbatch {size or 'whole'}"
