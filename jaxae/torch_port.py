"""The seed models in PyTorch, and weights between PyTorch ``state_dict`` and Flax variables.

``torch`` is imported only when a function here needs it (``torch_reference``
and ``params_to_torch``): jaxae works without it.

A checkpoint trained with the original notebooks loads into jaxae and gives
the same outputs (NCHW inputs there, NHWC here)::

    state_dict = torch.load("autoencoder.pt")          # the notebook's model.state_dict()
    variables = params_from_torch("mnist_conv_ae_2d", state_dict)
    model = jaxae.models.create("mnist_conv_ae_2d")
    reconstructions = model.apply(variables, images_nhwc)
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxae import models, trees
from jaxae.errors import InputError
from jaxae.models import (
    BasicConvNet,
    CifarConvAutoencoder,
    CifarConvVae,
    DenseAutoencoder,
    FcConvAutoencoder,
    FcConvClassifier,
    MnistConvAutoencoder,
    MnistConvVae,
    MultilayerPerceptron,
)

__all__ = ["params_from_torch", "params_to_torch", "torch_reference"]


# How one PyTorch layer's (weight, bias) map to one Flax layer's (kernel, bias).


class _Linear:
    """``Linear``: weight ``(out, in)`` ⇄ kernel ``(in, out)``."""

    def kernel_to_flax(self, w):
        return w.T

    def kernel_to_torch(self, k):
        return k.T

    def bias_to_flax(self, b):
        return b

    def bias_to_torch(self, b):
        return b


class _Conv(_Linear):
    """``Conv2d`` ``(O, I, kH, kW)`` ⇄ ``(kH, kW, I, O)``; ``ConvTranspose2d`` ``(I, O, kH, kW)`` ⇄ ``(kH, kW, O, I)``."""

    def kernel_to_flax(self, w):
        return w.transpose(2, 3, 1, 0)

    def kernel_to_torch(self, k):
        return k.transpose(3, 2, 0, 1)


@dataclasses.dataclass(frozen=True)
class _LinearOnFeatureMap(_Linear):
    """A ``Linear`` whose input or output is a ``(C, H, W)`` feature map, NCHW in PyTorch, NHWC here."""

    channels: int
    height: int
    width: int


class _LinearAfterFlatten(_LinearOnFeatureMap):
    """``Linear`` on a feature map flattened in C, H, W order; Flax flattens H, W, C."""

    def kernel_to_flax(self, w):
        c, h, wd = self.channels, self.height, self.width
        return w.reshape(-1, c, h, wd).transpose(2, 3, 1, 0).reshape(h * wd * c, -1)

    def kernel_to_torch(self, k):
        c, h, wd = self.channels, self.height, self.width
        return k.reshape(h, wd, c, -1).transpose(3, 2, 0, 1).reshape(-1, c * h * wd)


class _LinearBeforeReshape(_LinearOnFeatureMap):
    """``Linear`` whose output is viewed as a ``(C, H, W)`` map; Flax reshapes to ``(H, W, C)``."""

    def kernel_to_flax(self, w):
        c, h, wd = self.channels, self.height, self.width
        return w.reshape(c, h, wd, -1).transpose(3, 1, 2, 0).reshape(-1, h * wd * c)

    def kernel_to_torch(self, k):
        c, h, wd = self.channels, self.height, self.width
        return k.reshape(-1, h, wd, c).transpose(3, 1, 2, 0).reshape(c * h * wd, -1)

    def bias_to_flax(self, b):
        return b.reshape(self.channels, self.height, self.width).transpose(1, 2, 0).reshape(-1)

    def bias_to_torch(self, b):
        return b.reshape(self.height, self.width, self.channels).transpose(2, 0, 1).reshape(-1)


_LINEAR, _CONV = _Linear(), _Conv()


@dataclasses.dataclass(frozen=True)
class _Layer:
    torch_name: str
    flax_path: tuple[str, ...]
    layout: _Linear


def _mlp_layers(m: MultilayerPerceptron):
    return [
        _Layer("input_layer", ("input_layer",), _LinearAfterFlatten(3, 32, 32)),
        _Layer("hidden_layer", ("hidden_layer",), _LINEAR),
        _Layer("output_layer", ("output_layer",), _LINEAR),
    ]


def _cnn_layers(m: BasicConvNet):
    return [
        _Layer("conv1", ("conv1",), _CONV),
        _Layer("conv2", ("conv2",), _CONV),
        _Layer("fc1", ("fc1",), _LinearAfterFlatten(m.out_c2, 5, 5)),
        _Layer("logits", ("logits",), _LINEAR),
    ]


def _cifar_conv_ae_layers(m: CifarConvAutoencoder):
    return [_Layer(f"encoder.conv{i}", ("encoder", f"conv{i}"), _CONV) for i in (1, 2, 3)] + [
        _Layer(f"decoder.deconv{i}", ("decoder", f"deconv{i}"), _CONV) for i in (1, 2, 3)
    ]


def _mnist_conv_ae_layers(m: MnistConvAutoencoder):
    encoder = [_Layer(f"encoder.{2 * i}", ("encoder", f"conv{i + 1}"), _CONV) for i in range(4)]
    decoder = [_Layer(f"decoder.{2 * i + 2}", ("decoder", f"deconv{i + 1}"), _CONV) for i in range(4)]
    return [
        *encoder,
        _Layer("encoder.8", ("encoder", "fc"), _LinearAfterFlatten(64, 7, 7)),
        _Layer("decoder.0", ("decoder", "fc"), _LinearBeforeReshape(64, 7, 7)),
        *decoder,
    ]


def _mnist_conv_vae_layers(m: MnistConvVae):
    convs = [layer for layer in _mnist_conv_ae_layers(m) if layer.flax_path != ("encoder", "fc")]
    heads = [_Layer(f"z_{head}", ("encoder", head), _LinearAfterFlatten(64, 7, 7)) for head in ("mean", "log_var")]
    return [*convs[:4], *heads, *convs[4:]]


def _cifar_conv_vae_layers(m: CifarConvVae):
    encoder = [_Layer(f"encoder.{name}", ("encoder", name), _CONV) for name in ("conv1", "conv2")]
    heads = [_Layer(f"encoder.conv_{head}", ("encoder", head), _CONV) for head in ("mean", "log_var")]
    return [*encoder, *heads, *_cifar_conv_ae_layers(m)[3:]]


def _dense_ae_layers(m: DenseAutoencoder):
    return [
        _Layer(f"{part}.{2 * i}", (part, f"fc{i + 1}"), _LINEAR)
        for part in ("encoder", "decoder")
        for i in range(len(m.hidden_sizes))
    ]


def _lecture_encoder_layers(conv_prefix: str, fc_name: str):
    return [_Layer(f"{conv_prefix}.{2 * i}", ("encoder", f"conv{i + 1}"), _CONV) for i in range(3)] + [
        _Layer(fc_name, ("encoder", "fc"), _LinearAfterFlatten(128, 4, 4))
    ]


def _fc_conv_ae_layers(m: FcConvAutoencoder):
    return [
        *_lecture_encoder_layers("conv_encoder", "fc_encoder.0"),
        _Layer("fc_decoder.0", ("decoder", "fc"), _LinearBeforeReshape(128, 4, 4)),
        *[_Layer(f"conv_decoder.{3 * i}", ("decoder", f"conv{i + 1}"), _CONV) for i in range(4)],
    ]


def _fc_conv_classifier_layers(m: FcConvClassifier):
    return [*_lecture_encoder_layers("conv", "fc1.0"), _Layer("fc2.0", ("head",), _LINEAR)]


_LAYERS: dict[type, Callable[[Any], list[_Layer]]] = {
    MultilayerPerceptron: _mlp_layers,
    BasicConvNet: _cnn_layers,
    CifarConvAutoencoder: _cifar_conv_ae_layers,
    MnistConvAutoencoder: _mnist_conv_ae_layers,
    DenseAutoencoder: _dense_ae_layers,
    FcConvAutoencoder: _fc_conv_ae_layers,
    FcConvClassifier: _fc_conv_classifier_layers,
    MnistConvVae: _mnist_conv_vae_layers,
    CifarConvVae: _cifar_conv_vae_layers,
}


_TORCH_MODULES: dict[type, Callable[[Any, Any], Any]] = {  # the seed class of each model, from jaxae._torch_modules
    MultilayerPerceptron: lambda m, tm: tm.MultilayerPerceptronModel(3072, m.num_classes, m.hidden_dim1, m.hidden_dim2,
                                                                     m.dropout_rate),
    BasicConvNet: lambda m, tm: tm.BasicConvNet(m.out_c1, m.out_c2, m.dense_units, m.num_classes),
    CifarConvVae: lambda m, tm: tm.ConvVariationalAutoencoder(m.out_c1, m.out_c2, m.embedding_dim),
    MnistConvVae: lambda m, tm: tm.RaschkaVariationalAutoEncoder(m.latent_dim, m.negative_slope),
    CifarConvAutoencoder: lambda m, tm: tm.ConvAutoencoder(m.out_c1, m.out_c2, m.embedding_dim),
    MnistConvAutoencoder: lambda m, tm: tm.RaschkaAutoEncoder(m.latent_dim, m.negative_slope),
    DenseAutoencoder: lambda m, tm: tm.DenseAutoencoder(784, m.hidden_sizes, m.output_activation),
    FcConvAutoencoder: lambda m, tm: tm.LectureAutoencoder(m.latent_dim, m.negative_slope, m.align_corners),
    FcConvClassifier: lambda m, tm: tm.LectureClassifier(m.latent_dim, m.negative_slope, m.num_classes),
}


def _seed_model(name: str, overrides: Mapping[str, Any]):
    """``models.create(name, **overrides)``, refused in one line unless it is one of jaxae's own models."""
    if not models.spec(name).is_seed:
        raise InputError(f"{name}: not one of jaxae's own models, so it has no PyTorch twin to convert to or from "
                         f"({', '.join(_seed_names())})")
    return models.create(name, **overrides)


def _seed_names() -> list[str]:
    return [n for n in models.names() if models.spec(n).is_seed]


def torch_reference(name: str, **overrides):
    """The PyTorch model ``name`` as the seed code builds it (PyTorch's default init).

    Takes the same ``overrides`` as :func:`jaxae.models.create`; its
    ``state_dict()`` keys are the seed's own. Inputs are NCHW. The VAEs, which
    have no seed code, are built on their seed autoencoder's modules.
    """
    from jaxae import _torch_modules

    model = _seed_model(name, overrides)
    return _TORCH_MODULES[type(model)](model, _torch_modules)


def _get(tree: Mapping, path: tuple[str, ...]):
    for key in path:
        tree = tree[key]
    return tree


def _torch_keys(layers: list[_Layer]) -> list[str]:
    return [f"{layer.torch_name}.{p}" for layer in layers for p in ("weight", "bias")]


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _check_keys(name: str, given: set[str], layers: list[_Layer]) -> None:
    expected = set(_torch_keys(layers))
    if given == expected:
        return
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    message = f"{name}: the state_dict does not fit: missing keys {missing}, unexpected keys {unexpected}"
    matches = [n for n in _seed_names() if set(_torch_keys(_LAYERS[models.spec(n).cls](models.create(n)))) == given]
    if matches:
        message += f"; it looks like a state_dict of {' or '.join(matches)}"
    raise InputError(message)


def params_from_torch(name: str, state_dict: Mapping[str, Any], **overrides) -> dict[str, Any]:
    """Flax variables ``{"params": ...}`` of model ``name`` from a PyTorch ``state_dict``.

    Args:
      name: the model, one of :func:`jaxae.models.names`.
      state_dict: the seed model's ``state_dict()``: torch tensors or arrays.
      **overrides: the model's arguments, as for :func:`jaxae.models.create`.

    Raises:
      ValueError: listing missing or unexpected keys, or keys whose shapes do
        not fit the model.
    """
    model = _seed_model(name, overrides)
    layers = _LAYERS[type(model)](model)
    state = {key: _to_numpy(value) for key, value in state_dict.items()}
    _check_keys(name, set(state), layers)
    abstract = models.abstract_params(model)
    wrong_shapes = []
    for layer in layers:
        flax_layer = _get(abstract, layer.flax_path)
        expected = {
            "weight": layer.layout.kernel_to_torch(np.empty(flax_layer["kernel"].shape)).shape,
            "bias": flax_layer["bias"].shape,
        }
        for param, shape in expected.items():
            key = f"{layer.torch_name}.{param}"
            if state[key].shape != shape:
                wrong_shapes.append(f"{key}: got {tuple(state[key].shape)}, expected {shape}")
    if wrong_shapes:
        raise InputError(f"{name}: state_dict shapes do not fit: " + "; ".join(wrong_shapes))

    params: dict[str, Any] = {}
    for layer in layers:
        *parents, leaf = layer.flax_path
        node = params
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = {
            "kernel": jnp.asarray(layer.layout.kernel_to_flax(state[f"{layer.torch_name}.weight"])),
            "bias": jnp.asarray(layer.layout.bias_to_flax(state[f"{layer.torch_name}.bias"])),
        }
    return {"params": params}


def params_to_torch(name: str, variables: Mapping[str, Any], **overrides) -> OrderedDict[str, Any]:
    """The PyTorch ``state_dict`` (torch tensors, seed keys) of Flax ``variables``.

    ``variables`` is ``{"params": ...}`` as ``model.init`` returns it (a bare
    params tree also works). Any pytree of the params' structure converts the
    same way, gradients for instance.

    Raises:
      InputError: the params are not the model's (the message names the first differing path).
    """
    import torch

    model = _seed_model(name, overrides)
    params = variables.get("params", variables)
    difference = trees.first_difference(trees.leaf_shapes(models.abstract_params(model)), trees.leaf_shapes(params),
                                        names=("model", "given"))
    if difference:
        raise InputError(f"{name}: the params do not fit the model; first difference {difference}")
    state = OrderedDict()
    for layer in _LAYERS[type(model)](model):
        flax_layer = _get(params, layer.flax_path)
        kernel = layer.layout.kernel_to_torch(np.asarray(flax_layer["kernel"]))
        bias = layer.layout.bias_to_torch(np.asarray(flax_layer["bias"]))
        state[f"{layer.torch_name}.weight"] = torch.from_numpy(np.array(kernel, order="C"))
        state[f"{layer.torch_name}.bias"] = torch.from_numpy(np.array(bias, order="C"))
    return state
