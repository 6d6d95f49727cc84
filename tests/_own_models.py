"""Two small autoencoders of a user's own, one in Linen and one in NNX, for the tests of training them."""

import flax.linen as nn
import jax.numpy as jnp
from flax import nnx

from jaxae import models


class LinenAutoencoder(nn.Module):
    """A dense autoencoder with dropout (``train`` switches it on), and batch norm after its hidden layer
    when ``batch_norm``."""

    code: int = 3
    dropout: float = 0.1
    batch_norm: bool = False

    @nn.compact
    def __call__(self, images, train: bool = False):
        hidden = nn.Dense(32)(images.reshape(images.shape[0], -1))
        if self.batch_norm:
            hidden = nn.BatchNorm(use_running_average=not train)(hidden)
        hidden = nn.Dropout(self.dropout, deterministic=not train)(nn.relu(hidden))
        return jnp.tanh(nn.Dense(784)(nn.Dense(self.code, name="code")(hidden))).reshape(images.shape)


class NnxAutoencoder(nnx.Module):
    """The same network in NNX, with ``encode`` and ``decode``."""

    def __init__(self, code: int = 3, batch_norm: bool = False, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(784, 32, rngs=rngs)
        self.norm = nnx.BatchNorm(32, rngs=rngs) if batch_norm else None
        self.dropout = nnx.Dropout(0.1, rngs=rngs)
        self.code = nnx.Linear(32, code, rngs=rngs)
        self.out = nnx.Linear(code, 784, rngs=rngs)

    def encode(self, images):
        hidden = self.hidden(images.reshape(images.shape[0], -1))
        if self.norm is not None:
            hidden = self.norm(hidden)
        return self.code(self.dropout(nnx.relu(hidden)))

    def decode(self, codes):
        return jnp.tanh(self.out(codes)).reshape(-1, 28, 28, 1)

    def __call__(self, images):
        return self.decode(self.encode(images))


def register_both() -> None:
    """Registers both (again, when a test process already did) as ``own_linen_ae`` and ``own_nnx_ae``."""
    models.register("own_linen_ae", LinenAutoencoder, image_shape=(28, 28, 1), transform="normalize", replace=True)
    models.register("own_nnx_ae", NnxAutoencoder, image_shape=(28, 28, 1), transform="normalize", replace=True)
