"""Models by name: the seeds' and your own, what each takes, and how to build it.

Every model the trainer trains is registered here under a name that a
:class:`~jaxae.train.TrainConfig` gives, so that a config stays plain data a
checkpoint can compare. The seed models are registered when jaxae is imported;
:func:`register` adds a Linen or NNX module class of your own through the same door:

>>> import flax.linen as nn
>>> class TinyAutoencoder(nn.Module):
...     code: int = 3
...     @nn.compact
...     def __call__(self, images, train: bool = False):
...         flat = images.reshape(images.shape[0], -1)
...         return nn.Dense(784)(nn.Dense(self.code)(flat)).reshape(images.shape)
>>> spec = register("tiny_ae", TinyAutoencoder, image_shape=(28, 28, 1))
>>> create("tiny_ae", code=2).code
2
>>> unregister("tiny_ae")
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Mapping
from typing import Any

import flax.linen as nn

from jaxae.data.batches import TRANSFORMS, VALUE_RANGES
from jaxae.errors import InputError
from jaxae.models.classifiers import BasicConvNet, MultilayerPerceptron
from jaxae.models.conv_autoencoders import (
    CifarConvAutoencoder,
    FcConvAutoencoder,
    FcConvClassifier,
    MnistConvAutoencoder,
)
from jaxae.models.dense_autoencoders import DenseAutoencoder
from jaxae.models.variational import CifarConvVae, MnistConvVae, VariationalAutoencoder
from jaxae.registries import same_definition

TASKS = ("autoencoder", "classifier")
"""What a model learns: to give back its input (the loss compares with the images) or to label it."""


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered model: its module class, what it takes and what it learns.

    Attributes:
      name: registry name.
      cls: the Flax module class: a ``flax.linen.Module`` (a seed model's, or
        yours), or a ``flax.nnx.Module`` (trained through
        :class:`~jaxae.models.nnx_adapter.NnxAsLinen`).
      image_shape: one input image, ``(height, width, channels)`` (NHWC).
      task: "autoencoder" (the loss compares outputs with the images) or
        "classifier" (with integer labels; accuracy is logged too).
      transform: how uint8 pixels become its input: "to_tensor" (``ToTensor``,
        [0, 1]) or "normalize" (then ``Normalize(0.5, 0.5)``, [-1, 1]);
        :mod:`jaxae.data`'s ``TRANSFORMS``, and the one source of its :attr:`value_range`.
      defaults: constructor arguments that every :func:`create` starts from.
      experiment: the seed experiment it belongs to (``docs/experiments.md``);
        ``None`` for a model of your own.
      dataset: TFDS name of its data, where it has one.
    """

    name: str
    cls: type
    image_shape: tuple[int, int, int]
    task: str = "autoencoder"
    transform: str = "to_tensor"
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    experiment: str | None = None
    dataset: str | None = None

    @property
    def value_range(self) -> tuple[float, float]:
        """The range of the pixels it sees, from its ``transform``."""
        return VALUE_RANGES[self.transform]

    @property
    def is_autoencoder(self) -> bool:
        return self.task == "autoencoder"

    @property
    def is_nnx(self) -> bool:
        """Whether the module class is an NNX one (not a Linen one)."""
        return not issubclass(self.cls, nn.Module)

    @property
    def is_seed(self) -> bool:
        """Whether it is one of jaxae's own models (the materials' and their VAEs)."""
        return self.experiment is not None

    @property
    def is_variational(self) -> bool:
        """Whether the model is one of the VAEs built on a seed autoencoder (not a seed model itself)."""
        return issubclass(self.cls, VariationalAutoencoder)

    @property
    def has_convolutions(self) -> bool:
        """Whether the model has convolutions, and so a ``conv_lowering`` argument."""
        return "conv_lowering" in self.arguments()

    @property
    def takes_train(self) -> bool:
        """Whether the module's ``__call__`` takes ``train`` (dropout, a VAE's sampling)."""
        return self.is_nnx or "train" in inspect.signature(self.cls.__call__).parameters

    def mode(self, train: bool) -> dict[str, bool]:
        """The keyword arguments that run the module in training or evaluation mode (none if it has no ``train``)."""
        return {"train": train} if self.takes_train else {}

    def arguments(self) -> set[str]:
        """The constructor arguments :func:`create` accepts for this model."""
        if self.is_nnx:
            return set(inspect.signature(self.cls.__init__).parameters) - {"self", "rngs"}
        return {f.name for f in dataclasses.fields(self.cls)} - {"parent", "name"}


_SPECS: dict[str, ModelSpec] = {}


def register(
    name: str,
    cls: type,
    *,
    image_shape: tuple[int, int, int],
    task: str = "autoencoder",
    transform: str = "to_tensor",
    defaults: Mapping[str, Any] | None = None,
    replace: bool = False,
) -> ModelSpec:
    """Registers a module class of your own under ``name``, so that ``TrainConfig(name, ...)`` trains it.

    Args:
      name: the name configs, checkpoints and the command line give; register
        it again (the same call) in any process that resumes one of its runs.
      cls: a ``flax.linen.Module`` or ``flax.nnx.Module`` class. A Linen
        module is called as ``module.apply(variables, images, train=...)``
        (``train`` only if its ``__call__`` takes it); an NNX module is built
        as ``cls(**arguments, rngs=nnx.Rngs(...))`` and called as
        ``module(images)``, in ``module.train()`` or ``module.eval()`` mode.
        The only variables trained are its parameters (no batch statistics).
      image_shape: one input image, ``(height, width, channels)``.
      task: "autoencoder" or "classifier" (see :class:`ModelSpec`).
      transform: the pixels it is fed: "to_tensor" ([0, 1]) or "normalize" ([-1, 1]).
      defaults: constructor arguments that ``TrainConfig.model_args`` override.
      replace: allow replacing a model of your own registered before under
        this name by another class or arguments (the seed models cannot be
        replaced). Registering the same again (a notebook cell run twice) needs
        no ``replace``: it replaces the class, which the cell defined anew.

    Returns:
      The model's :class:`ModelSpec`.
    """
    if not isinstance(name, str) or not name:
        raise InputError(f"a model's name must be a non-empty string, got {name!r}")
    if not _is_module_class(cls):
        raise InputError(f"{name}: register a flax.linen.Module or flax.nnx.Module class, got {cls!r}")
    shape = tuple(image_shape) if isinstance(image_shape, (tuple, list)) else ()
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise InputError(f"{name}: image_shape must be (height, width, channels) of positive ints, got {image_shape!r}")
    if task not in TASKS:
        raise InputError(f"{name}: task must be one of {TASKS}, got {task!r}")
    if transform not in TRANSFORMS:
        raise InputError(f"{name}: transform must be one of {sorted(TRANSFORMS)}, got {transform!r}")
    model_spec = ModelSpec(name, cls, shape, task, transform, dict(defaults or {}))
    _check_arguments(model_spec, model_spec.defaults)
    known = _SPECS.get(name)
    if known is not None and (known.is_seed or not (replace or _same_registration(known, model_spec))):
        what = "a seed model" if known.is_seed else "already registered to another class or arguments (replace=True replaces it)"
        raise InputError(f"model {name!r} is {what}; register yours under another name")
    _SPECS[name] = model_spec
    return model_spec


def _same_registration(known: ModelSpec, new: ModelSpec) -> bool:
    """Whether ``new`` registers what ``known`` did: the same class (:func:`~jaxae.registries.same_definition`)
    with the same arguments."""
    def arguments(spec):
        return spec.image_shape, spec.task, spec.transform, repr(sorted(spec.defaults.items()))

    return same_definition(known.cls, new.cls) and arguments(known) == arguments(new)


def unregister(name: str) -> None:
    """Removes a model of your own from the registry (the seed models stay)."""
    if spec(name).is_seed:
        raise InputError(f"{name} is a seed model: it cannot be unregistered")
    del _SPECS[name]


def names() -> list[str]:
    """Names of the registered models: the seed models in the order of the experiments, then yours."""
    return list(_SPECS)


def spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a model; an ``InputError`` for an unknown name."""
    try:
        return _SPECS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), _SPECS, n=1)
        suggestion = f" Did you mean {close[0]!r}?" if close else ""
        raise InputError(
            f"unknown model {name!r}; known models: {', '.join(_SPECS)}.{suggestion} A model of your own must be "
            "registered with jaxae.models.register(...) in this process, also before resuming its run"
        ) from None


def create(name: str, **overrides):
    """Builds the Flax (Linen) module of a registered model.

    Args:
      name: one of :func:`names`.
      **overrides: constructor arguments that replace the defaults, e.g.
        ``hidden_sizes=(128, 16)`` for ``mnist_ae2``, ``align_corners=True`` for
        ``cifar10_fc_conv_ae`` or ``init_scheme="flax"`` for any seed model.

    An NNX model comes as its Linen face (:class:`~jaxae.models.nnx_adapter.NnxAsLinen`),
    which the trainer and :mod:`jaxae.latent` apply like any Linen module.

    >>> model = create("mnist_ae2", hidden_sizes=(128, 16))
    >>> model.latent_shape
    (16,)
    """
    model_spec = spec(name)
    _check_arguments(model_spec, overrides)
    kwargs = {**model_spec.defaults, **overrides}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    if model_spec.is_nnx:
        from jaxae.models.nnx_adapter import NnxAsLinen

        return NnxAsLinen.of(model_spec.cls, kwargs, name=name)
    return model_spec.cls(**kwargs, name=name)


def _check_arguments(model_spec: ModelSpec, given: Mapping[str, Any]) -> None:
    allowed = model_spec.arguments()
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise InputError(f"{model_spec.name}: unknown argument(s) {unknown}; this model takes {sorted(allowed)}")


def _is_module_class(cls) -> bool:
    if not isinstance(cls, type):
        return False
    if issubclass(cls, nn.Module):
        return True
    from flax import nnx  # imported only for a class that is not a Linen module

    return issubclass(cls, nnx.Module)


def _register_seed(name, cls, experiment, dataset, defaults=None, transform="to_tensor") -> None:
    task = "autoencoder" if hasattr(cls, "encode") else "classifier"
    _SPECS[name] = ModelSpec(name, cls, cls.image_shape, task, transform, defaults or {}, experiment, dataset)


_register_seed("cifar10_mlp", MultilayerPerceptron, "E1", "cifar10")
_register_seed("cifar10_cnn", BasicConvNet, "E1", "cifar10")
_register_seed("cifar10_conv_ae", CifarConvAutoencoder, "E2", "cifar10")
_register_seed("mnist_conv_ae_2d", MnistConvAutoencoder, "E3", "mnist")
_register_seed("mnist_pca_ae", DenseAutoencoder, "E4", "mnist", {"hidden_sizes": (16,)}, "normalize")
_register_seed("mnist_ae2", DenseAutoencoder, "E4", "mnist", {"hidden_sizes": (32, 16)}, "normalize")
_register_seed("mnist_ae3", DenseAutoencoder, "E4", "mnist", {"hidden_sizes": (64, 32, 16)}, "normalize")
_register_seed("cifar10_fc_conv_ae", FcConvAutoencoder, "E5", "cifar10")
_register_seed("cifar10_fc_conv_classifier", FcConvClassifier, "E5", "cifar10")
_register_seed("mnist_conv_vae_2d", MnistConvVae, "E3-VAE", "mnist")
_register_seed("cifar10_conv_vae", CifarConvVae, "E2-VAE", "cifar10")
