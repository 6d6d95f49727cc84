"""How many examples each gradient chunk of a CPU train step holds by default.

A train step can sum the gradients of chunks of its batch
(``TrainConfig.microbatch_size``): the same gradient up to float rounding, with
each chunk's intermediates small enough to stay in the CPU's caches. On
XLA:CPU the convolutional steps slow down as their intermediates outgrow the
caches: chunks of 128 made cifar10_cnn at batch 1024 1.24x and E5's
autoencoder at 2000 1.16x faster, chunks of 32 cifar10_conv_ae at 128 1.19x,
while the dense models lose below 128 and more than 8 chunks of a batch only
lengthen compilation (``python -m benchmarks chunks``, docs/performance.md).
On GPU and TPU a step takes its whole batch at once.
"""

from __future__ import annotations

import functools

import jax

from jaxae.shapes import example_input, init_rngs

_CHUNK_ACTIVATION_BYTES = 2 << 20  # about one core's L2 cache on the machines measured
_SMALLEST, _LARGEST = 32, 128
_MOST_CHUNKS = 8


@functools.lru_cache
def activation_bytes_per_example(model, image_shape: tuple[int, ...] | None = None) -> int:
    """Bytes of every module's output for one example (nested modules' included), by ``jax.eval_shape``.

    ``image_shape`` (one example's) defaults to the model's ``image_shape`` attribute.

    >>> from jaxae import models
    >>> activation_bytes_per_example(models.create("cifar10_conv_ae"))
    65536
    """

    def module_outputs(x):
        variables = model.init(init_rngs(jax.random.key(0)), x)
        return model.apply(variables, x, capture_intermediates=True, mutable=["intermediates"])[1]

    outputs = jax.eval_shape(module_outputs, example_input(model, image_shape=image_shape))
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(outputs))


def default_microbatch_size(model, batch_size: int, backend: str | None = None,
                            image_shape: tuple[int, ...] | None = None) -> int:
    """Examples per gradient chunk by default for ``model`` at ``batch_size`` on ``backend``.

    On CPU, as many as keep a chunk's activations (:func:`activation_bytes_per_example`)
    within 2 MiB, but at least 32 and an eighth of the batch, and at most 128
    (or the batch). Elsewhere the whole batch.

    >>> from jaxae import models
    >>> default_microbatch_size(models.create("cifar10_conv_ae"), 128, "cpu")
    32
    >>> default_microbatch_size(models.create("cifar10_mlp"), 128, "cpu")
    128
    >>> default_microbatch_size(models.create("cifar10_mlp"), 128, "gpu")
    128
    """
    if (backend or jax.default_backend()) != "cpu":
        return batch_size
    fitting = _CHUNK_ACTIVATION_BYTES // max(1, activation_bytes_per_example(model, image_shape))
    return min(batch_size, _LARGEST, max(_SMALLEST, fitting, -(-batch_size // _MOST_CHUNKS)))
