"""Each convolution of a model alone, per lowering and against the same PyTorch layer.

:func:`conv_layers` finds a model's convolutions, each with its input shape, by initialising
the model abstractly (``jax.eval_shape``) under Flax's method interceptor. :func:`compare`
times each one's forward and backward pass: the layer (with its bias), a ReLU, the sum of
squares as the loss, the gradient of its kernel and bias, and of its input for every layer but
the model's first (whose input is the image). jaxae's side is the model's own module, jitted as
the trainer jits (:func:`jaxae.cpu.jit_with_cpu_options`), with the lowering the model runs or
each of the ``lowerings`` asked for (the measurement behind ``conv_lowering="auto"``);
PyTorch's is ``torch.nn.Conv2d`` / ``ConvTranspose2d`` with the same arguments, in eager mode,
when PyTorch is installed. All run on random inputs in turns
(:func:`benchmarks.timing.time_interleaved`), median of ``repeats`` calls of ``steps``
passes after a warm-up. ``python -m benchmarks layers MODEL`` prints :func:`report`.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from benchmarks.throughput import torch_installed
from benchmarks.timing import Runner, build_runner, median_rates, time_interleaved
from jaxae import models
from jaxae.cpu import jit_with_cpu_options
from jaxae.errors import InputError
from jaxae.models.convolution import CONV2D_LOWERINGS, CONV_TRANSPOSE2D_LOWERINGS, resolve_lowering
from jaxae.models.layers import Conv2d, ConvTranspose2d


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

    def with_lowering(self, lowering: str) -> ConvLayer | None:
        """The same layer computed by ``lowering``; None where that lowering does not apply to it."""
        valid = CONV_TRANSPOSE2D_LOWERINGS if self.transposed else CONV2D_LOWERINGS
        if lowering not in valid or (lowering == "col2im" and self.module.stride != 1):
            return None
        return dataclasses.replace(self, module=self.module.clone(lowering=lowering))


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
        jax.eval_shape(model.init, jax.random.key(0), models.example_input(model))
    return found


def _jaxae_runner(layer: ConvLayer, batch_size: int, input_grad: bool, steps: int) -> Runner:
    x = jax.random.normal(jax.random.key(0), (batch_size, *layer.input_shape[1:]))
    params = jax.jit(layer.module.init)(jax.random.key(1), x)["params"]

    def loss(params, x):
        return jnp.sum(jax.nn.relu(layer.module.apply({"params": params}, x)) ** 2)

    gradient = jit_with_cpu_options(jax.grad(loss, argnums=(0, 1) if input_grad else 0))

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


def compare(
    model_name: str, batch_sizes: list[int], lowerings: list[str] | None = None, repeats: int = 15, steps: int = 3
) -> list[dict]:
    """Per convolution of ``model_name``, batch size and lowering: ms per forward and backward pass.

    ``lowerings``: the lowerings to time each layer with (those that apply to it); default the
    one the model runs. Rows: ``layer``, ``kind`` ("Conv2d" or "ConvTranspose2d"), ``input``
    (C×H×W), ``out_channels``, ``kernel_size``, ``stride``, ``lowering``, ``batch_size``,
    ``jaxae_ms`` and, with PyTorch installed, ``torch_ms`` (the same layer in PyTorch, timed in
    the same rounds).
    """
    if not batch_sizes or any(size < 1 for size in batch_sizes) or repeats < 1 or steps < 1:
        raise InputError("batch sizes, repeats and steps must be positive")
    for lowering in lowerings or ():
        if lowering not in CONV2D_LOWERINGS:
            raise InputError(f"unknown lowering {lowering!r}; choose from {sorted(CONV2D_LOWERINGS)}")
    if not models.spec(model_name).has_convolutions:
        raise InputError(f"{model_name} has no convolutions")
    has_torch = torch_installed()
    rows = []
    for index, layer in enumerate(conv_layers(models.create(model_name))):
        _, height, width, channels = layer.input_shape
        variants = [layer] if not lowerings else [layer.with_lowering(name) for name in lowerings]
        variants = [variant for variant in variants if variant is not None]
        for batch_size in batch_sizes:
            runners = {variant.lowering: _jaxae_runner(variant, batch_size, index > 0, steps) for variant in variants}
            if has_torch:
                runners["torch"] = _torch_runner(layer, batch_size, index > 0, steps)
            passes_per_second = median_rates(time_interleaved(runners, steps, repeats), steps)
            ms = {name: 1e3 / rate for name, rate in passes_per_second.items()}
            torch_ms = {"torch_ms": ms["torch"]} if has_torch else {}
            for variant in variants:
                rows.append(
                    {
                        "layer": layer.path,
                        "kind": type(layer.module).__name__,
                        "input": f"{channels}x{height}x{width}",
                        "out_channels": layer.module.features,
                        "kernel_size": layer.module.kernel_size,
                        "stride": layer.module.stride,
                        "lowering": variant.lowering,
                        "batch_size": batch_size,
                        "jaxae_ms": ms[variant.lowering],
                        **torch_ms,
                    }
                )
    return rows


def report(rows: list[dict]) -> str:
    """The rows as a text table, with the sum over layers per batch size and lowering."""

    def line(layer, kind, shape, lowering, batch_size, jaxae_ms, torch_ms):
        compared = f" {torch_ms:>9.2f} {torch_ms / jaxae_ms:>6.2f}" if torch_ms is not None else ""
        return f"{layer:18s} {kind:16s} {shape:>20s} {lowering:16s} {batch_size:>6} {jaxae_ms:>9.2f}" + compared

    header = f"{'layer':18s} {'kind':16s} {'in -> out, k, s':>20s} {'lowering':16s} {'batch':>6s} {'jaxae ms':>9s}"
    has_torch = all("torch_ms" in row for row in rows)
    lines = [header + (f" {'torch ms':>9s} {'ratio':>6s}" if has_torch else "")]
    for row in rows:
        shape = f"{row['input']} -> {row['out_channels']}, {row['kernel_size']}, {row['stride']}"
        times = row["jaxae_ms"], row.get("torch_ms")
        lines.append(line(row["layer"], row["kind"], shape, row["lowering"], row["batch_size"], *times))
    if len({row["lowering"] for row in rows if row["layer"] == rows[0]["layer"]}) == 1:
        for batch_size in sorted({row["batch_size"] for row in rows}):
            same_batch = [row for row in rows if row["batch_size"] == batch_size]
            jaxae_ms = sum(row["jaxae_ms"] for row in same_batch)
            torch_ms = sum(row["torch_ms"] for row in same_batch) if has_torch else None
            lines.append(line("all layers", "", "", "", batch_size, jaxae_ms, torch_ms))
    if has_torch:
        lines.append("ratio: PyTorch's time / jaxae's (above 1: jaxae is faster)")
    return "\n".join(lines)
