"""The seed models as Flax NNX modules: objects that own their weights, called as ``model(images)``.

>>> from flax import nnx
>>> from jaxae import nnx as jaxae_nnx
>>> model = jaxae_nnx.create("mnist_conv_ae_2d", rngs=nnx.Rngs(0))   # E3, PyTorch's default init
>>> model.encode(jnp.zeros((4, 28, 28, 1))).shape
(4, 2)

Each NNX model wraps the registry's Linen model with Flax's own bridge
(``flax.nnx.bridge.ToNNX``) instead of re-declaring its layers as NNX layers:
the Linen layers are the ones tested against PyTorch (initialisation, padding,
the CPU convolution lowerings), and one definition of each network cannot drift
from a second. The weights live in the NNX module as ``nnx.Param`` under the
Linen names, so :func:`linen_variables` and :func:`load_linen_variables` move
them between the two faces, and :mod:`jaxae.torch_port` on to PyTorch.

Modes follow NNX: a new model is in evaluation mode (dropout off, a VAE decodes
its mean); ``model.train()`` switches dropout and a VAE's sampling on, drawing
from the ``dropout`` and ``latent`` streams of the ``rngs`` it was created with;
``model.eval()`` switches them off again.

Why the module is named like ``flax.nnx``: jaxae's models follow Flax's two APIs,
and each face is named after the API it follows: :mod:`jaxae.models` holds
``flax.linen`` modules, this module the same models as ``flax.nnx`` modules, with
the same ``create(name, ...)``. A caller of this module also needs Flax's own
(``nnx.Rngs``, ``nnx.Optimizer``), so it is imported under another name
(``from jaxae import nnx as jaxae_nnx``) or used qualified (``jaxae.nnx.create``
after ``import jaxae.nnx``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jaxae import models, trees
from jaxae.errors import InputError
from jaxae.models.variational import LATENT_RNG

__all__ = ["AutoencoderModule", "SeedModule", "create", "linen_variables", "load_linen_variables"]


class SeedModule(nnx.Module):
    """A seed model as an ``nnx.Module``; build it with :func:`create`.

    ``model(images)`` gives what the Linen model's ``apply`` gives: logits, a
    reconstruction, or a VAE's ``VaeOutput``.

    Attributes:
      model_name: the registry name.
      deterministic: evaluation mode (True, the default) or training mode
        (False; ``model.train()`` and ``model.eval()`` set it).
      network: the bridged Linen model, holding the weights.
    """

    def __init__(self, name: str, rngs: nnx.Rngs, **options: Any):
        linen_model = models.create(name, **options)
        self.model_name = name
        self.deterministic = True
        streams = nnx.Rngs(params=rngs.params(), dropout=rngs.dropout(), **{LATENT_RNG: getattr(rngs, LATENT_RNG)()})
        self.network = nnx.bridge.ToNNX(linen_model, rngs=streams)
        self.network.lazy_init(models.example_input(linen_model))

    def __call__(self, images):
        if self.deterministic:
            return self.network(images)
        return self.network(images, train=True)



class AutoencoderModule(SeedModule):
    """An autoencoder as an ``nnx.Module``: ``model(images)`` reconstructs, and its halves work apart.

    ``encode`` gives the latent codes (a VAE's: its ``(mean, log_variance)``),
    ``decode`` turns codes into images, ``code`` and ``reconstruct`` are the
    deterministic point in latent space and its decoding.
    """

    def encode(self, images):
        return self.network.encode(images)

    def decode(self, codes):
        return self.network.decode(codes)

    def code(self, images):
        return self.network.code(images)

    def reconstruct(self, images):
        return self.network.reconstruct(images)


def create(name: str, *, rngs: nnx.Rngs, **options: Any) -> SeedModule:
    """The seed model ``name`` as an NNX module, initialised at once (PyTorch's default init).

    ``options`` are :func:`jaxae.models.create`'s (``hidden_sizes``,
    ``align_corners``, ``init_scheme``, ``conv_lowering``, ...). ``rngs`` seeds the
    weights (its ``params`` stream) and, in training mode, dropout and a VAE's
    sampling (its ``dropout`` and ``latent`` streams; each falls back to ``default``).
    """
    module = AutoencoderModule if models.spec(name).is_autoencoder else SeedModule
    return module(name, rngs, **options)


def linen_variables(model: SeedModule) -> dict[str, Any]:
    """A copy of the model's weights as the Linen model's variables, ``{"params": ...}``: for
    ``apply``, :class:`jaxae.train.Trainer` or :func:`jaxae.torch_port.params_to_torch`."""
    return {"params": jax.tree.map(jnp.array, nnx.to_pure_dict(nnx.state(model.network, nnx.Param)))}


def load_linen_variables(model: SeedModule, variables: dict[str, Any]) -> None:
    """Puts Linen variables (``{"params": ...}``, or the params alone) of the same model into ``model``, in place.

    Raises:
      InputError: the variables are of another model (the message names the first difference).
    """
    state = nnx.state(model.network, nnx.Param)
    params = variables.get("params", variables)
    difference = trees.first_difference(trees.leaf_shapes(nnx.to_pure_dict(state)), trees.leaf_shapes(params),
                                        names=("model", "given"))
    if difference:
        raise InputError(f"{model.model_name}: these variables are of another model; first difference {difference}")
    # Copies: a jitted Linen step donates its state's buffers, and the caller may go on with them.
    nnx.replace_by_pure_dict(state, jax.tree.map(jnp.array, params))
    nnx.update(model.network, state)
