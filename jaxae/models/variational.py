"""Variational versions of E3's and E2's autoencoders: the same networks, a Gaussian code.

The encoder gives a mean and a log-variance per latent dimension (two heads
where the autoencoder has one), training decodes a sample
``mean + exp(log_var / 2) * noise`` with ``noise ~ N(0, I)`` (the
reparameterisation), and the loss adds the KL divergence from N(0, I) to the
reconstruction error (:func:`jaxae.losses.sse_plus_kl`).

The noise comes from the ``"latent"`` RNG stream when ``train=True``; a given
``noise`` array is used as is (parity tests feed both frameworks the same
draw); otherwise (evaluation) the mean is decoded, so evaluating is deterministic.

>>> import jax, jax.numpy as jnp
>>> model = MnistConvVae()
>>> x = jnp.zeros((2, 28, 28, 1))
>>> variables = jax.jit(model.init)(jax.random.key(0), x)
>>> apply = jax.jit(model.apply, static_argnames="train")
>>> out = apply(variables, x, train=True, rngs={"latent": jax.random.key(1)})
>>> out.reconstruction.shape, out.mean.shape, out.log_var.shape
((2, 28, 28, 1), (2, 2), (2, 2))
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxae.errors import InputError
from jaxae.models._base import Autoencoder, TorchLayer
from jaxae.models.conv_autoencoders import (
    CifarConvAutoencoder,
    MnistConvAutoencoder,
    _CifarConvDecoder,
    _CifarConvEncoder,
    _MnistConvDecoder,
    _MnistConvEncoder,
)
from jaxae.shapes import LATENT_RNG

_HEADS = ("mean", "log_var")


class VaeOutput(NamedTuple):
    """What a variational autoencoder returns: the decoded sample and the code's distribution."""

    reconstruction: jax.Array
    mean: jax.Array
    log_var: jax.Array


class VariationalAutoencoder(Autoencoder):
    """An :class:`Autoencoder` whose ``encode`` gives ``(mean, log_var)``, each of ``latent_shape``.

    ``code`` is the mean; ``decode`` takes any point of the latent space.
    """

    def code(self, x):
        return self.encode(x)[0]

    def __call__(self, x, train: bool = False, noise=None) -> VaeOutput:
        """Decodes a sample of ``x``'s code (``train`` or ``noise``) or its mean (neither)."""
        mean, log_var = self.encode(x)
        if noise is None and train:
            noise = jax.random.normal(self.make_rng(LATENT_RNG), mean.shape, mean.dtype)
        if noise is None:
            z = mean
        elif jnp.shape(noise) != mean.shape:
            raise InputError(f"{self.model_name}: noise must have the codes' shape {mean.shape}, got {jnp.shape(noise)}")
        else:
            z = mean + jnp.exp(0.5 * log_var) * jnp.asarray(noise, mean.dtype)
        return VaeOutput(self.decoder(z), mean, log_var)


class MnistConvVae(VariationalAutoencoder, MnistConvAutoencoder):
    """E3's autoencoder with two ``Linear(3136, latent_dim)`` heads: mean and log-variance."""

    def setup(self):
        self.encoder = _MnistConvEncoder(
            self.latent_dim, self.negative_slope, self.init_scheme, self.conv_lowering, heads=_HEADS
        )
        self.decoder = _MnistConvDecoder(self.negative_slope, self.init_scheme, self.conv_lowering)

    def torch_twin(self, torch_modules):
        return torch_modules.RaschkaVariationalAutoEncoder(self.latent_dim, self.negative_slope)

    def torch_layers(self):
        convs = [layer for layer in super().torch_layers() if layer.flax_path != ("encoder", "fc")]
        heads = [TorchLayer(f"z_{head}", ("encoder", head), flattened_input=(64, 7, 7)) for head in _HEADS]
        return [*convs[:4], *heads, *convs[4:]]


class CifarConvVae(VariationalAutoencoder, CifarConvAutoencoder):
    """E2's autoencoder whose last convolution is two heads: mean and log-variance maps, 4×4×32 each.

    Convolutional heads keep E2's code (a 4×4 map of 32 channels, 512 numbers)
    and its parameter count but for one more 16→32 convolution; flattened
    Linear 512→512 heads would add 262,656 weights each and lose the map's layout.
    """

    def setup(self):
        self.encoder = _CifarConvEncoder(
            self.out_c1, self.out_c2, self.embedding_dim, self.init_scheme, self.conv_lowering, heads=_HEADS
        )
        self.decoder = _CifarConvDecoder(self.out_c1, self.out_c2, self.init_scheme, self.conv_lowering)

    def torch_twin(self, torch_modules):
        return torch_modules.ConvVariationalAutoencoder(self.out_c1, self.out_c2, self.embedding_dim)

    def torch_layers(self):
        encoder = [TorchLayer(f"encoder.{name}", ("encoder", name), "conv") for name in ("conv1", "conv2")]
        heads = [TorchLayer(f"encoder.conv_{head}", ("encoder", head), "conv") for head in _HEADS]
        return [*encoder, *heads, *super().torch_layers()[3:]]
