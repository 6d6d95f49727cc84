"""Each choice of the CPU path against its alternative: jaxae's step with one choice undone at a time.

For a model at a batch size, the suite's ``jaxae_step`` runner as jaxae builds it
(``"jaxae"``), then the same step with one choice of :mod:`jaxae.cpu` switched back to
XLA's default, and PyTorch eager when installed, timed in turns (calls of about 4,000
images, median of ``repeats`` rounds after a warm-up):

* ``"conv xla"``: XLA's own convolutions instead of the ``"auto"`` rule's lowerings
  (models with convolutions);
* ``"no compiler options"``: plain ``jax.jit``, without :data:`jaxae.cpu.COMPILER_OPTIONS`;
* ``"whole batch"``: one gradient over the whole batch instead of the default chunks
  (where the default chunk is smaller than the batch).

``jaxae bench cpu-path`` prints it; it is how each choice is rechecked on a new JAX or CPU.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from unittest import mock

from jaxae import models
from jaxae.bench.suite import recipe_stage
from jaxae.bench.throughput import jaxae_step_runner, median_images_per_second, time_interleaved, torch_runner
from jaxae.cpu import xla_options
from jaxae.errors import InputError

DEFAULT_RUNS = (("cifar10_cnn", 128), ("cifar10_conv_ae", 128), ("mnist_conv_ae_2d", 32), ("mnist_ae3", 128),
                ("cifar10_fc_conv_ae", 2000))


def measure(model: str, batch_size: int, repeats: int = 7) -> dict[str, float]:
    """Images/s of ``model``'s step at ``batch_size``: as jaxae builds it, with each choice undone, and PyTorch eager."""
    stage = recipe_stage(model)
    if batch_size < 1 or repeats < 1:
        raise InputError("batch size and repeats must be positive")
    config = dataclasses.replace(stage.config, batch_size=batch_size)
    steps = max(1, 4000 // batch_size)
    runners = {"jaxae": jaxae_step_runner(config, stage.transform, batch_size, steps)}
    if models.spec(model).has_convolutions:
        xla_convolutions = dataclasses.replace(config, model_args=(*config.model_args, ("conv_lowering", "xla")))
        runners["conv xla"] = jaxae_step_runner(xla_convolutions, stage.transform, batch_size, steps)
    with mock.patch.dict(xla_options.COMPILER_OPTIONS, clear=True):
        runners["no compiler options"] = jaxae_step_runner(config, stage.transform, batch_size, steps)
    if config.resolved().microbatch_size < batch_size:
        whole = dataclasses.replace(config, microbatch_size=batch_size)
        runners["whole batch"] = jaxae_step_runner(whole, stage.transform, batch_size, steps)
    if importlib.util.find_spec("torch") is not None:
        runners["torch_eager"] = torch_runner(stage.config, stage.transform, batch_size, steps)
    seconds = time_interleaved(runners, steps, repeats)
    return {name: round(median_images_per_second(times, steps * batch_size)) for name, times in seconds.items()}
