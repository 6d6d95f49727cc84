"""Each choice of the CPU path against its alternative: jaxae's step with one choice undone at a time.

For a model at a batch size, the suite's ``jaxae_step`` runner as jaxae builds it
(``"jaxae"``), then the same step with one choice of :mod:`jaxae.cpu` switched back to
XLA's default, and PyTorch eager when installed, timed in turns
(:func:`benchmarks.throughput.compare_steps`):

* ``"conv xla"``: XLA's own convolutions instead of the ``"auto"`` rule's lowerings
  (models with convolutions);
* ``"no compiler options"``: the step compiled without :data:`jaxae.cpu.COMPILER_OPTIONS`;
* ``"whole batch"``: one gradient over the whole batch instead of the default chunks
  (where the default chunk is smaller than the batch).

``python -m benchmarks cpu-path`` prints it; it is how each choice is rechecked on a new JAX or CPU.
"""

from __future__ import annotations

import dataclasses

from benchmarks.throughput import StepVariant, compare_steps
from jaxae import models
from jaxae.errors import InputError
from jaxae.experiments import recipe_stage
from jaxae.train import Trainer

DEFAULT_RUNS = (("cifar10_cnn", 128), ("cifar10_conv_ae", 128), ("mnist_conv_ae_2d", 32), ("mnist_ae3", 128),
                ("cifar10_fc_conv_ae", 2000))


def measure(model: str, batch_size: int, repeats: int = 7) -> dict[str, int]:
    """Images/s of ``model``'s step at ``batch_size``: as jaxae builds it, with each choice undone, and PyTorch eager."""
    stage = recipe_stage(model)
    if batch_size < 1 or repeats < 1:
        raise InputError("batch size and repeats must be positive")
    config = dataclasses.replace(stage.config, batch_size=batch_size)
    variants = {"jaxae": StepVariant(config)}
    if models.spec(model).has_convolutions:
        xla_convolutions = dataclasses.replace(config, model_args=(*config.model_args, ("conv_lowering", "xla")))
        variants["conv xla"] = StepVariant(xla_convolutions)
    variants["no compiler options"] = StepVariant(config, compiler_options={})
    if Trainer.create(config).microbatch_size < batch_size:
        variants["whole batch"] = StepVariant(dataclasses.replace(config, microbatch_size=batch_size))
    return compare_steps(stage, batch_size, variants, repeats)
