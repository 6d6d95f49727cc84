"""The jitted train step with its gradient summed over chunks of the batch, per chunk size.

For each model at each batch size, jaxae's step (the suite's ``jaxae_step`` runner:
synthetic data on the device) with each ``microbatch_size`` asked for, the library's
default among them, and PyTorch eager when installed, timed in turns
(:func:`benchmarks.throughput.compare_steps`). This is the measurement behind
:func:`jaxae.cpu.default_microbatch_size`; ``python -m benchmarks chunks`` prints it.
"""

from __future__ import annotations

import dataclasses

from benchmarks.throughput import StepVariant, compare_steps
from jaxae.errors import InputError
from jaxae.experiments import recipe_stage
from jaxae.train import Trainer

DEFAULT_RUNS = (("cifar10_cnn", 1024), ("cifar10_conv_ae", 1024), ("cifar10_mlp", 1024), ("cifar10_fc_conv_ae", 2000))
WHOLE_BATCH = 0
"""A chunk size that stands for the whole batch in one gradient."""


def measure(model: str, batch_size: int, sizes: list[int | None], repeats: int = 7) -> dict[str, int]:
    """Images/s of ``model``'s step at ``batch_size`` per chunk size (None: the default; 0: the whole batch).

    Keys: ``"microbatch whole"``, ``"microbatch 32"``, ``"microbatch default (32)"``, ...,
    and ``"torch_eager"``.
    """
    stage = recipe_stage(model)
    if batch_size < 1 or repeats < 1 or any(size is not None and size < 0 for size in sizes):
        raise InputError("batch size and repeats must be positive, chunk sizes >= 0")
    variants = {}
    for size in sizes:
        config = dataclasses.replace(stage.config, microbatch_size=batch_size if size == WHOLE_BATCH else size)
        resolved = Trainer.create(dataclasses.replace(config, batch_size=batch_size)).microbatch_size
        variants[_label(size, resolved)] = StepVariant(config)
    return compare_steps(stage, batch_size, variants, repeats)


def _label(size: int | None, resolved: int) -> str:
    if size is None:
        return f"microbatch default ({resolved})"
    return f"microbatch {size or 'whole'}"
