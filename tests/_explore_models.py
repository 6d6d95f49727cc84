"""A user's own autoencoder in a module that registers it when imported, as ``jaxae explore --import`` imports one."""

import flax.linen as nn

from jaxae import models

NAME = "explore_own_ae"


class OwnAutoencoder(nn.Module):
    """A dense autoencoder with batch statistics, whose codes have ``code`` numbers."""

    code: int = 2

    def setup(self):
        self.hidden, self.norm = nn.Dense(32), nn.BatchNorm()
        self.to_code, self.out = nn.Dense(self.code), nn.Dense(784)

    def encode(self, images, train: bool = False):
        x = self.norm(self.hidden(images.reshape(images.shape[0], -1)), use_running_average=not train)
        return self.to_code(nn.relu(x))

    def decode(self, codes):
        return nn.sigmoid(self.out(codes)).reshape(-1, 28, 28, 1)

    def __call__(self, images, train: bool = False):
        return self.decode(self.encode(images, train))


def register() -> None:
    models.register(NAME, OwnAutoencoder, image_shape=(28, 28, 1))


register()
