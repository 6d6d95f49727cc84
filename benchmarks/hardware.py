"""How much work a train step is, and how fast this device multiplies matrices.

The FLOPs of a step are XLA's cost analysis of the train step with every
convolution lowered as XLA's convolution (``conv_lowering="xla"``): the
model's own multiply-adds, whichever lowering the timed step uses. The peak
is measured, not taken from a data sheet: the median rate of a large float32
matmul at default precision (on recent NVIDIA GPUs JAX's default is TF32, and
so is the train step's).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from benchmarks.timing import build_runner, median_rates, time_interleaved
from jaxae import models
from jaxae.train import TrainConfig, Trainer


def step_flops(config: TrainConfig, batch_size: int) -> float:
    """FLOPs of one train step at ``batch_size``, counted by XLA's cost analysis (no compilation)."""
    model_args = dict(config.model_args)
    if models.spec(config.model).has_convolutions:
        model_args["conv_lowering"] = "xla"
    config = dataclasses.replace(
        config, batch_size=batch_size, model_args=tuple(sorted(model_args.items())), microbatch_size=batch_size
    )
    trainer = Trainer.create(config)
    state = jax.eval_shape(trainer.init_state)
    shape = trainer.model.image_shape
    batch = {
        "image": jax.ShapeDtypeStruct((batch_size, *shape), jnp.float32),
        "label": jax.ShapeDtypeStruct((batch_size,), jnp.int32),
        "mask": jax.ShapeDtypeStruct((batch_size,), jnp.bool_),
    }
    analysis = jax.jit(trainer.train_step).lower(state, batch).cost_analysis()
    return float(analysis["flops"])


def _median_rate(call, per_call: float, repeats: int) -> float:
    """``per_call`` over the median seconds of ``call()``, after a warm-up call (compilation)."""
    runner = build_runner(lambda: (lambda steps: call(), None), "peak", 1)
    return median_rates(time_interleaved({"peak": runner}, 1, repeats), per_call)["peak"]


def jax_matmul_peak(size: int = 4096, repeats: int = 5) -> float:
    """FLOP/s of a ``size``×``size`` float32 matmul through XLA, median of ``repeats``."""
    a, b = jax.random.normal(jax.random.key(0), (2, size, size), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    return _median_rate(lambda: matmul(a, b).block_until_ready(), 2 * size**3, repeats)


def torch_matmul_peak(device, size: int = 4096, repeats: int = 5) -> float:
    """The same measurement in PyTorch on ``device`` (its default float32 matmul precision)."""
    import torch

    a, b = torch.randn(2, size, size, device=device)

    def call():
        torch.matmul(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return _median_rate(call, 2 * size**3, repeats)
