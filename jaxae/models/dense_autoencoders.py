"""The fully-connected MNIST autoencoders of Assignment 9 (experiment E4).

One class covers the three: ``hidden_sizes=(16,)`` is the autoencoder-based
PCA (one Linear each way), ``(32, 16)`` the 2-layer and ``(64, 32, 16)`` the
3-layer autoencoder. ReLU sits between hidden layers, none on the code.
"""

from __future__ import annotations

from typing import Literal

import flax.linen as nn

from jaxae.errors import InputError
from jaxae.models._base import Autoencoder, TorchLayer
from jaxae.models.layers import InitScheme, Linear

OUTPUT_ACTIVATIONS = {"tanh": nn.tanh, "sigmoid": nn.sigmoid, "none": lambda x: x}
"""The choices of ``output_activation``."""


class _DenseStack(nn.Module):
    """Flatten, then Linear layers of the given sizes with ReLU between them.

    The last layer is followed by ``output_activation`` and a reshape to
    ``output_shape`` (per example) when one is given.
    """

    sizes: tuple[int, ...]
    init_scheme: InitScheme
    output_activation: str = "none"
    output_shape: tuple[int, ...] | None = None

    @nn.compact
    def __call__(self, x):
        batch = x.shape[0]
        x = x.reshape(batch, -1)
        for i, size in enumerate(self.sizes):
            if i:
                x = nn.relu(x)
            x = Linear(size, self.init_scheme, name=f"fc{i + 1}")(x)
        x = OUTPUT_ACTIVATIONS[self.output_activation](x)
        return x if self.output_shape is None else x.reshape(batch, *self.output_shape)


class DenseAutoencoder(Autoencoder):
    """784 → ``hidden_sizes`` → mirrored back to 784, on images in [-1, 1].

    Args:
      hidden_sizes: encoder widths; the last is the code size.
      output_activation: "tanh" (the seed's), "sigmoid" or "none".
    """

    image_shape = (28, 28, 1)
    hidden_sizes: tuple[int, ...] = (32, 16)
    output_activation: Literal["tanh", "sigmoid", "none"] = "tanh"

    @property
    def latent_shape(self):
        return (self.hidden_sizes[-1],)

    def __post_init__(self):
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise InputError(
                f"{self.model_name}: output_activation must be one of {sorted(OUTPUT_ACTIVATIONS)}, "
                f"got {self.output_activation!r}"
            )
        super().__post_init__()

    def setup(self):
        height, width, channels = self.image_shape
        decoder_sizes = (*reversed(self.hidden_sizes[:-1]), height * width * channels)
        self.encoder = _DenseStack(tuple(self.hidden_sizes), self.init_scheme)
        self.decoder = _DenseStack(decoder_sizes, self.init_scheme, self.output_activation, self.image_shape)

    def torch_twin(self, torch_modules):
        return torch_modules.DenseAutoencoder(784, self.hidden_sizes, self.output_activation)

    def torch_layers(self):
        return [
            TorchLayer(f"{part}.{2 * i}", (part, f"fc{i + 1}"))
            for part in ("encoder", "decoder")
            for i in range(len(self.hidden_sizes))
        ]
