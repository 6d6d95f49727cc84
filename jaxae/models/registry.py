"""The seed models by name: what each is, what it takes, how to build it."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from jaxae.data.batches import VALUE_RANGES
from jaxae.errors import InputError
from jaxae.models._base import SeedModel
from jaxae.models.classifiers import BasicConvNet, MultilayerPerceptron
from jaxae.models.conv_autoencoders import (
    CifarConvAutoencoder,
    FcConvAutoencoder,
    FcConvClassifier,
    MnistConvAutoencoder,
)
from jaxae.models.dense_autoencoders import DenseAutoencoder
from jaxae.models.variational import CifarConvVae, MnistConvVae, VariationalAutoencoder


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A seed model: its class, the seed's settings, and what data it expects.

    Attributes:
      name: registry name.
      cls: the Flax module class.
      defaults: constructor arguments that make the seed's model.
      experiment: the experiment it belongs to (``docs/experiments.md``); the
        variational autoencoders belong to the variational versions of E2 and E3.
      dataset: TFDS name of its data.
      transform: how its recipe turns uint8 pixels into its input: "to_tensor"
        (``ToTensor``, [0, 1]) or "normalize" (then ``Normalize(0.5, 0.5)``, [-1, 1]);
        :mod:`jaxae.data`'s ``TRANSFORMS``.
    """

    name: str
    cls: type[SeedModel]
    defaults: dict[str, Any]
    experiment: str
    dataset: str
    transform: str = "to_tensor"

    @property
    def value_range(self) -> tuple[float, float]:
        """The range of the pixels it sees, from its ``transform``."""
        return VALUE_RANGES[self.transform]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.cls.image_shape

    @property
    def is_autoencoder(self) -> bool:
        return hasattr(self.cls, "encode")

    @property
    def is_variational(self) -> bool:
        """Whether the model is one of the VAEs built on a seed autoencoder (not a seed model itself)."""
        return issubclass(self.cls, VariationalAutoencoder)

    @property
    def has_convolutions(self) -> bool:
        """Whether the model has convolutions, and so a ``conv_lowering`` argument."""
        return "conv_lowering" in {f.name for f in dataclasses.fields(self.cls)}


_SPECS = {
    spec.name: spec
    for spec in (
        ModelSpec("cifar10_mlp", MultilayerPerceptron, {}, "E1", "cifar10"),
        ModelSpec("cifar10_cnn", BasicConvNet, {}, "E1", "cifar10"),
        ModelSpec("cifar10_conv_ae", CifarConvAutoencoder, {}, "E2", "cifar10"),
        ModelSpec("mnist_conv_ae_2d", MnistConvAutoencoder, {}, "E3", "mnist"),
        ModelSpec("mnist_pca_ae", DenseAutoencoder, {"hidden_sizes": (16,)}, "E4", "mnist", "normalize"),
        ModelSpec("mnist_ae2", DenseAutoencoder, {"hidden_sizes": (32, 16)}, "E4", "mnist", "normalize"),
        ModelSpec("mnist_ae3", DenseAutoencoder, {"hidden_sizes": (64, 32, 16)}, "E4", "mnist", "normalize"),
        ModelSpec("cifar10_fc_conv_ae", FcConvAutoencoder, {}, "E5", "cifar10"),
        ModelSpec("cifar10_fc_conv_classifier", FcConvClassifier, {}, "E5", "cifar10"),
        ModelSpec("mnist_conv_vae_2d", MnistConvVae, {}, "E3-VAE", "mnist"),
        ModelSpec("cifar10_conv_vae", CifarConvVae, {}, "E2-VAE", "cifar10"),
    )
}


def names() -> list[str]:
    """Names of the seed models, in the order of the experiments."""
    return list(_SPECS)


def spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a model; a ``ValueError`` for an unknown name."""
    try:
        return _SPECS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), _SPECS, n=1)
        suggestion = f" Did you mean {close[0]!r}?" if close else ""
        raise InputError(f"unknown model {name!r}; known models: {', '.join(_SPECS)}.{suggestion}") from None


def create(name: str, **overrides) -> SeedModel:
    """Builds the Flax module of a seed model.

    Args:
      name: one of :func:`names`.
      **overrides: constructor arguments that replace the seed's, e.g.
        ``hidden_sizes=(128, 16)`` for ``mnist_ae2``, ``align_corners=True`` for
        ``cifar10_fc_conv_ae`` or ``init_scheme="flax"`` for any model.

    >>> model = create("mnist_ae2", hidden_sizes=(128, 16))
    >>> model.latent_shape
    (16,)
    """
    model_spec = spec(name)
    allowed = {f.name for f in dataclasses.fields(model_spec.cls)} - {"parent", "name"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise InputError(f"{name}: unknown argument(s) {unknown}; this model takes {sorted(allowed)}")
    kwargs = {**model_spec.defaults, **overrides}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    return model_spec.cls(**kwargs, name=name)
