"""What every seed model shares: its input spec, its init scheme, its input checks, its PyTorch twin."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

import flax.linen as nn

from jaxae.errors import InputError
from jaxae.models.convolution import check_lowering
from jaxae.models.layers import INIT_SCHEMES, InitScheme
from jaxae.models.validation import check_batch


@dataclasses.dataclass(frozen=True)
class TorchLayer:
    """One layer of a seed model's PyTorch twin, and the Flax layer that holds its weights.

    Attributes:
      torch_name: its prefix in the twin's ``state_dict`` (``"<torch_name>.weight"``, ``".bias"``).
      flax_path: the path of its ``{"kernel", "bias"}`` in the Flax params.
      kind: "linear" (``Linear``) or "conv" (``Conv2d`` or ``ConvTranspose2d``).
      flattened_input: for a ``Linear`` on a feature map flattened in PyTorch's order, that map's
        ``(C, H, W)`` (Flax flattens ``(H, W, C)``).
      reshaped_output: for a ``Linear`` whose output is viewed as a ``(C, H, W)`` feature map, that map.
    """

    torch_name: str
    flax_path: tuple[str, ...]
    kind: Literal["linear", "conv"] = "linear"
    flattened_input: tuple[int, int, int] | None = None
    reshaped_output: tuple[int, int, int] | None = None


class SeedModel(nn.Module):
    """Base class of the seed models.

    Subclasses set ``image_shape`` (NHWC without the batch dimension) and say
    what their PyTorch twin is (:meth:`torch_twin`, :meth:`torch_layers`; see
    :mod:`jaxae.torch_port`). Models
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

    def check_input(self, x) -> None:
        """Refuses ``x`` unless it is a floating batch of ``image_shape`` images (before anything is traced)."""
        check_batch(self.model_name, x, self.image_shape, "images")

    def torch_twin(self, torch_modules) -> Any:
        """This model as its seed's PyTorch code builds it, from ``torch_modules`` (``jaxae._torch_modules``)."""
        raise NotImplementedError

    def torch_layers(self) -> list[TorchLayer]:
        """The layers of :meth:`torch_twin`, in its ``state_dict``'s order."""
        raise NotImplementedError


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
        self.check_input(x)
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
