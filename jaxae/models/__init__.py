"""The seed models in Flax, with PyTorch's semantics, created by name; and yours, once registered.

>>> import jax, jax.numpy as jnp
>>> from jaxae import models
>>> model = models.create("cifar10_conv_ae")
>>> variables = jax.jit(model.init)(jax.random.key(0), models.example_input(model))
>>> apply = jax.jit(model.apply, static_argnames="method")
>>> apply(variables, jnp.zeros((8, 32, 32, 3)), method="encode").shape
(8, 4, 4, 32)
"""

from jaxae.models._base import Autoencoder, SeedModel, TorchLayer
from jaxae.models.classifiers import BasicConvNet, MultilayerPerceptron
from jaxae.models.conv_autoencoders import (
    CifarConvAutoencoder,
    FcConvAutoencoder,
    FcConvClassifier,
    MnistConvAutoencoder,
    classifier_from_autoencoder,
)
from jaxae.models.dense_autoencoders import DenseAutoencoder
from jaxae.models.registry import TASKS, ModelSpec, create, names, register, spec, unregister
from jaxae.models.variational import CifarConvVae, MnistConvVae, VaeOutput, VariationalAutoencoder
from jaxae.shapes import abstract_params, example_input, init_rngs

__all__ = [
    "TASKS",
    "Autoencoder",
    "BasicConvNet",
    "CifarConvAutoencoder",
    "CifarConvVae",
    "DenseAutoencoder",
    "FcConvAutoencoder",
    "FcConvClassifier",
    "MnistConvAutoencoder",
    "MnistConvVae",
    "ModelSpec",
    "MultilayerPerceptron",
    "SeedModel",
    "TorchLayer",
    "VaeOutput",
    "VariationalAutoencoder",
    "abstract_params",
    "classifier_from_autoencoder",
    "create",
    "example_input",
    "init_rngs",
    "names",
    "register",
    "spec",
    "unregister",
]
