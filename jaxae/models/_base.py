"""What every seed model shares: its input spec, its init scheme, its input checks."""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn

from jaxae.errors import InputError
from jaxae.models.convolution import check_lowering
from jaxae.models.layers import INIT_SCHEMES, InitScheme
from jaxae.models.validation import check_batch


class SeedModel(nn.Module):
    """Base class of the seed models.

    Subclasses set ``image_shape`` (NHWC without the batch dimension). Models
    with convolutions also have a ``conv_lowering`` field, how their
    convolutions are computed (see :mod:`jaxae.models.convolution`); params do
    not depend on it. The registry names each model it creates
    (``create("cifar10_cnn").name``), and that name is the one bad-input errors give.
    """

    image_shape: ClassVar[tuple[int, int, int]]
    init_scheme: InitScheme = "pytorch"

    def __post_init__(self):
        if self.init_scheme not in INIT_SCHEMES:
            raise InputError(
                f"{self.model_name}: init_scheme must be one of {INIT_SCHEMES}, got {self.init_scheme!r}"
            )
        try:
            check_lowering(getattr(self, "conv_lowering", "auto"))
        except InputError as error:
            raise InputError(f"{self.model_name}: {error}") from None
        super().__post_init__()

    @property
    def model_name(self) -> str:
        return self.name or type(self).__name__

    def check_images(self, x) -> None:
        check_batch(self.model_name, x, self.image_shape, "images")


class Autoencoder(SeedModel):
    """An encoder and a decoder, usable apart.

    Subclasses build ``self.encoder`` and ``self.decoder`` in ``setup`` and say
    what ``latent_shape`` the encoder produces.
    ``model.apply(variables, x, method="encode")`` gives latent codes of shape
    ``(B, *latent_shape)``; ``method="decode"`` turns codes back into images.
    ``method="code"`` and ``method="reconstruct"`` are the deterministic point
    in latent space and its decoding, the same for every autoencoder (a
    variational one's ``encode`` gives a distribution, its ``code`` the mean).
    """

    @property
    def latent_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def encode(self, x):
        self.check_images(x)
        return self.encoder(x)

    def decode(self, z):
        check_batch(self.model_name, z, self.latent_shape, "latent codes")
        return self.decoder(z)

    def code(self, x):
        """The point in latent space that ``x`` maps to."""
        return self.encode(x)

    def reconstruct(self, x):
        """``x``'s code decoded: the reconstruction, without any sampling."""
        return self.decode(self.code(x))

    def __call__(self, x, train: bool = False):
        """Reconstructs ``x``. ``train`` is accepted for a uniform API; it changes nothing."""
        return self.reconstruct(x)
