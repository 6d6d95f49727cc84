"""Every registered model as a Flax NNX module: an object that owns its weights, called as ``model(images)``.

>>> from flax import nnx
>>> from jaxae import nnx as jaxae_nnx
>>> model = jaxae_nnx.create("mnist_conv_ae_2d", rngs=nnx.Rngs(0))   # E3, PyTorch's default init
>>> model.encode(jnp.zeros((4, 28, 28, 1))).shape
(4, 2)

A model registered as a Linen module (the seeds', or yours) comes wrapped with
Flax's own bridge (``flax.nnx.bridge.ToNNX``) instead of re-declared as NNX
layers: the Linen layers are the ones tested against PyTorch (initialisation,
padding, the CPU convolution lowerings), and one definition of each network
cannot drift from a second. A model you registered as an NNX class comes as
that class. Either way the weights are ``nnx.Param`` under the names of the
trainer's parameter tree, so :func:`linen_variables` and :func:`load_params`
move them between an NNX module and :func:`jaxae.train.fit`'s states and
checkpoints, and :mod:`jaxae.torch_port` on to PyTorch.

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

__all__ = ["AutoencoderModule", "SeedModule", "create", "linen_variables", "load_params"]


class SeedModule(nnx.Module):
    """A model registered as a Linen module, as an ``nnx.Module``; build it with :func:`create`.

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
        self.network.lazy_init(models.example_input(linen_model, image_shape=models.spec(name).image_shape))

    def __call__(self, images):
        if self.deterministic or not models.spec(self.model_name).takes_train:
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


def create(name: str, *, rngs: nnx.Rngs | None = None, params=None, **options: Any) -> nnx.Module:
    """The registered model ``name`` as an NNX module, initialised at once.

    ``options`` are :func:`jaxae.models.create`'s (``hidden_sizes``,
    ``align_corners``, ``init_scheme``, ``conv_lowering``, ...; a model of your
    own takes its constructor's). ``rngs`` seeds the weights (its ``params``
    stream) and, in training mode, dropout and a VAE's sampling (its
    ``dropout`` and ``latent`` streams; each falls back to ``default``).
    ``params``, a parameter tree of the trainer (``state.params`` from
    :func:`jaxae.train.fit`, or :func:`jaxae.train.restore_state`), or its
    variables (``state.variables``, BatchNorm's statistics too), replace the
    initial ones: a trained model comes back as an NNX module.

    >>> from jaxae.train import Trainer, TrainConfig
    >>> config = TrainConfig("mnist_pca_ae", "mse", "adam", 1e-3, epochs=1, batch_size=8)
    >>> state = Trainer.create(config).init_state()
    >>> model = create("mnist_pca_ae", params=state.params)
    >>> same = jax.tree.map(jnp.array_equal, linen_variables(model)["params"], state.params)
    >>> all(jax.tree.leaves(same))
    True
    """
    rngs = nnx.Rngs(0) if rngs is None else rngs
    spec = models.spec(name)
    if spec.is_nnx:
        models.create(name, **options)  # checks the options against the constructor's arguments
        model = spec.cls(**{**spec.defaults, **options}, rngs=rngs)
        model.eval()
    else:
        module = AutoencoderModule if spec.is_autoencoder else SeedModule
        model = module(name, rngs, **options)
    if params is not None:
        load_params(model, params)
    return model


def _params_state(model: nnx.Module):
    """The ``nnx.Param`` state holding the trainer's parameter tree: the bridged network's, or the module's own."""
    return nnx.state(model.network if isinstance(model, SeedModule) else model, nnx.Param)


def _model_name(model: nnx.Module) -> str:
    return getattr(model, "model_name", type(model).__name__)


def linen_variables(model: nnx.Module) -> dict[str, Any]:
    """A copy of the model's weights as the trainer's variables, ``{"params": ...}``: for
    ``apply``, :class:`jaxae.train.Trainer`, ``fit(initial_params=...)`` or
    :func:`jaxae.torch_port.params_to_torch`."""
    return {"params": jax.tree.map(jnp.array, nnx.to_pure_dict(_params_state(model)))}


def load_params(model: nnx.Module, params) -> None:
    """Puts a parameter tree of the same model into ``model``, in place: the params alone, or variables
    ``{"params": ..., ...}`` (``state.variables``), whose ``batch_stats`` go into the model's ``nnx.BatchStat``s.

    Raises:
      InputError: the parameters are of another model (the message names the first difference).
    """
    variables = params if isinstance(params, dict) and "params" in params else {"params": params}
    network = model.network if isinstance(model, SeedModule) else model
    for collection, kind in (("params", nnx.Param), ("batch_stats", nnx.BatchStat)):
        if collection not in variables:
            continue
        state = nnx.state(network, kind)
        difference = trees.first_difference(trees.leaf_shapes(nnx.to_pure_dict(state)),
                                            trees.leaf_shapes(variables[collection]), names=("model", "given"))
        if difference:
            raise InputError(f"{_model_name(model)}: these {collection} are of another model; first difference {difference}")
        # Copies: a jitted Linen step donates its state's buffers, and the caller may go on with them.
        nnx.replace_by_pure_dict(state, jax.tree.map(jnp.array, variables[collection]))
        nnx.update(network, state)
