"""The seed models in PyTorch, and weights between PyTorch ``state_dict`` and Flax variables.

Each seed model says what its PyTorch twin is, beside its Flax code:
:meth:`~jaxae.models.SeedModel.torch_twin` builds it from ``jaxae._torch_modules``, and
:meth:`~jaxae.models.SeedModel.torch_layers` pairs its ``state_dict`` keys with the Flax params.

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
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxae import models, trees
from jaxae.errors import InputError
from jaxae.models import TorchLayer

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


def _layout(layer: TorchLayer) -> _Linear:
    """How ``layer``'s PyTorch weight and bias map to its Flax kernel and bias (each seed model lists its
    layers: :meth:`~jaxae.models.SeedModel.torch_layers`)."""
    if layer.kind == "conv":
        return _CONV
    if layer.flattened_input:
        return _LinearAfterFlatten(*layer.flattened_input)
    if layer.reshaped_output:
        return _LinearBeforeReshape(*layer.reshaped_output)
    return _LINEAR


def _seed_model(name: str, overrides: Mapping[str, Any]):
    """``models.create(name, **overrides)``, refused in one line unless it is one of jaxae's own models."""
    if not models.spec(name).is_seed:
        raise InputError(f"{name}: not one of jaxae's own models, so it has no PyTorch twin to convert to or from "
                         f"({', '.join(_seed_names())})")
    return models.create(name, **overrides)


def _require_torch():
    """``torch``, or a one-line refusal where it is not installed."""
    try:
        import torch
    except ModuleNotFoundError:
        raise InputError("PyTorch is not installed: pip install 'jaxae[torch]' to convert to and from it") from None
    return torch


def _seed_names() -> list[str]:
    return [n for n in models.names() if models.spec(n).is_seed]


def torch_reference(name: str, **overrides):
    """The PyTorch model ``name`` as the seed code builds it (PyTorch's default init).

    Takes the same ``overrides`` as :func:`jaxae.models.create`; its
    ``state_dict()`` keys are the seed's own. Inputs are NCHW. The VAEs, which
    have no seed code, are built on their seed autoencoder's modules.
    """
    model = _seed_model(name, overrides)
    _require_torch()
    from jaxae import _torch_modules

    return model.torch_twin(_torch_modules)


def _get(tree: Mapping, path: tuple[str, ...]):
    for key in path:
        tree = tree[key]
    return tree


def _torch_keys(layers: list[TorchLayer]) -> list[str]:
    return [f"{layer.torch_name}.{p}" for layer in layers for p in ("weight", "bias")]


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _check_keys(name: str, given: set[str], layers: list[TorchLayer]) -> None:
    expected = set(_torch_keys(layers))
    if given == expected:
        return
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    message = f"{name}: the state_dict does not fit: missing keys {missing}, unexpected keys {unexpected}"
    matches = [n for n in _seed_names() if set(_torch_keys(models.create(n).torch_layers())) == given]
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
    layers = model.torch_layers()
    state = {key: _to_numpy(value) for key, value in state_dict.items()}
    _check_keys(name, set(state), layers)
    abstract = models.abstract_params(model)
    wrong_shapes = []
    for layer in layers:
        flax_layer = _get(abstract, layer.flax_path)
        expected = {
            "weight": _layout(layer).kernel_to_torch(np.empty(flax_layer["kernel"].shape)).shape,
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
            "kernel": jnp.asarray(_layout(layer).kernel_to_flax(state[f"{layer.torch_name}.weight"])),
            "bias": jnp.asarray(_layout(layer).bias_to_flax(state[f"{layer.torch_name}.bias"])),
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
    model = _seed_model(name, overrides)
    torch = _require_torch()
    params = variables.get("params", variables)
    difference = trees.first_difference(trees.leaf_shapes(models.abstract_params(model)), trees.leaf_shapes(params),
                                        names=("model", "given"))
    if difference:
        raise InputError(f"{name}: the params do not fit the model; first difference {difference}")
    state = OrderedDict()
    for layer in model.torch_layers():
        flax_layer, layout = _get(params, layer.flax_path), _layout(layer)
        kernel = layout.kernel_to_torch(np.asarray(flax_layer["kernel"]))
        bias = layout.bias_to_torch(np.asarray(flax_layer["bias"]))
        state[f"{layer.torch_name}.weight"] = torch.from_numpy(np.array(kernel, order="C"))
        state[f"{layer.torch_name}.bias"] = torch.from_numpy(np.array(bias, order="C"))
    return state
