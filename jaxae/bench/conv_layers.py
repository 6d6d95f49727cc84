"""Each convolution of a model alone, against the same PyTorch layer: where the step's gap is, layer by layer.

:func:`conv_layers` finds a model's convolutions, each with its input shape, by initialising
the model abstractly (``jax.eval_shape``) under Flax's method interceptor. :func:`compare`
times each one's forward and backward pass: the layer (with its bias), a ReLU, the sum of
squares as the loss, the gradient of its kernel and bias, and of its input for every layer but
the model's first (whose input is the image). jaxae's side is the model's own module, jitted as
the trainer jits (:func:`jaxae.train.jit`), so it runs the lowering the model runs; PyTorch's is
``torch.nn.Conv2d`` / ``ConvTranspose2d`` with the same arguments, in eager mode. Both run on
random inputs in turns (:func:`jaxae.bench.throughput.time_interleaved`), median of ``repeats``
calls of ``steps`` passes after a warm-up. ``python -m benchmarks.layers_vs_torch`` prints it.
"""

from __future__ import annotations

import dataclasses
import statistics

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxae import models
from jaxae.bench.throughput import Runner, build_runner, time_interleaved
from jaxae.models.layers import Conv2d, ConvTranspose2d, resolve_lowering
from jaxae.train import jit


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """One convolution of a model: its path in the model, its (unbound) module and its NHWC input shape."""

    path: str
    module: Conv2d | ConvTranspose2d
    input_shape: tuple[int, ...]

    @property
    def transposed(self) -> bool:
        return isinstance(self.module, ConvTranspose2d)

    @property
    def lowering(self) -> str:
        """How jaxae computes the layer on the default backend (``auto`` resolved)."""
        module = self.module
        channels = self.input_shape[-1]
        return resolve_lowering(module.lowering, channels, module.features, module.stride, self.transposed)


def conv_layers(model: nn.Module) -> list[ConvLayer]:
    """The model's ``Conv2d`` and ``ConvTranspose2d`` layers in call order, for one input image.

    >>> [(layer.path, layer.input_shape) for layer in conv_layers(models.create("cifar10_cnn"))]
    [('conv1', (1, 32, 32, 3)), ('conv2', (1, 14, 14, 8))]
    """
    found = []

    def record(next_fun, args, kwargs, context):
        module = context.module
        if context.method_name == "__call__" and isinstance(module, (Conv2d, ConvTranspose2d)):
            found.append(ConvLayer("/".join(module.path), module.clone(parent=None), tuple(args[0].shape)))
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, *model.image_shape)))
    return found


def _jaxae_runner(layer: ConvLayer, batch_size: int, input_grad: bool, steps: int) -> Runner:
    x = jax.random.normal(jax.random.key(0), (batch_size, *layer.input_shape[1:]))
    params = jax.jit(layer.module.init)(jax.random.key(1), x)["params"]

    def loss(params, x):
        return jnp.sum(jax.nn.relu(layer.module.apply({"params": params}, x)) ** 2)

    gradient = jit(jax.grad(loss, argnums=(0, 1) if input_grad else 0))

    def build():
        compiled = gradient.lower(params, x).compile()

        def run(n: int) -> None:
            for _ in range(n):
                grads = compiled(params, x)
            jax.block_until_ready(grads)

        return run, compiled

    return build_runner(build, "jaxae_layer", steps)


def _torch_runner(layer: ConvLayer, batch_size: int, input_grad: bool, steps: int) -> Runner:
    import torch

    module, (_, height, width, channels) = layer.module, layer.input_shape
    arguments = (channels, module.features, module.kernel_size, module.stride, module.padding)
    if layer.transposed:
        torch_layer = torch.nn.ConvTranspose2d(*arguments, output_padding=module.output_padding)
    else:
        torch_layer = torch.nn.Conv2d(*arguments)
    x = torch.randn(batch_size, channels, height, width, requires_grad=input_grad)

    def run(n: int) -> None:
        for _ in range(n):
            torch_layer.zero_grad(set_to_none=True)
            x.grad = None
            torch.relu(torch_layer(x)).square().sum().backward()

    return build_runner(lambda: (run, None), "torch_layer", steps)


def compare(model_name: str, batch_sizes: list[int], repeats: int = 15, steps: int = 3) -> list[dict]:
    """Per convolution of ``model_name`` and batch size: ms per forward and backward pass, jaxae and PyTorch.

    Rows: ``layer``, ``kind`` ("Conv2d" or "ConvTranspose2d"), ``input`` (C×H×W), ``out_channels``,
    ``kernel_size``, ``stride``, ``lowering`` (jaxae's), ``batch_size``, ``jaxae_ms``, ``torch_ms``.
    """
    if not batch_sizes or any(size < 1 for size in batch_sizes) or repeats < 1 or steps < 1:
        raise ValueError("batch sizes, repeats and steps must be positive")
    model = models.create(model_name)
    rows = []
    for index, layer in enumerate(conv_layers(model)):
        _, height, width, channels = layer.input_shape
        for batch_size in batch_sizes:
            runners = {
                "jaxae": _jaxae_runner(layer, batch_size, index > 0, steps),
                "torch": _torch_runner(layer, batch_size, index > 0, steps),
            }
            seconds = time_interleaved(runners, steps, repeats)
            rows.append(
                {
                    "layer": layer.path,
                    "kind": type(layer.module).__name__,
                    "input": f"{channels}x{height}x{width}",
                    "out_channels": layer.module.features,
                    "kernel_size": layer.module.kernel_size,
                    "stride": layer.module.stride,
                    "lowering": layer.lowering,
                    "batch_size": batch_size,
                    "jaxae_ms": statistics.median(seconds["jaxae"]) / steps * 1e3,
                    "torch_ms": statistics.median(seconds["torch"]) / steps * 1e3,
                }
            )
    return rows


def report(rows: list[dict]) -> str:
    """The rows as a text table, with the sum over layers per batch size."""

    def line(layer, kind, shape, lowering, batch_size, jaxae_ms, torch_ms):
        return (
            f"{layer:18s} {kind:16s} {shape:>20s} {lowering:16s} {batch_size:>6} "
            f"{jaxae_ms:>9.2f} {torch_ms:>9.2f} {torch_ms / jaxae_ms:>6.2f}"
        )

    header = f"{'layer':18s} {'kind':16s} {'in -> out, k, s':>20s} {'lowering':16s} {'batch':>6s} "
    lines = [header + f"{'jaxae ms':>9s} {'torch ms':>9s} {'ratio':>6s}"]
    for row in rows:
        shape = f"{row['input']} -> {row['out_channels']}, {row['kernel_size']}, {row['stride']}"
        times = row["jaxae_ms"], row["torch_ms"]
        lines.append(line(row["layer"], row["kind"], shape, row["lowering"], row["batch_size"], *times))
    for batch_size in sorted({row["batch_size"] for row in rows}):
        same_batch = [row for row in rows if row["batch_size"] == batch_size]
        jaxae_ms, torch_ms = (sum(row[key] for row in same_batch) for key in ("jaxae_ms", "torch_ms"))
        lines.append(line("all layers", "", "", "", batch_size, jaxae_ms, torch_ms))
    lines.append("ratio: PyTorch's time / jaxae's (above 1: jaxae is faster)")
    return "\n".join(lines)
