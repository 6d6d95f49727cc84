"""A model's example input and the RNG streams of its init, and its params' shapes without computing them.

:mod:`jaxae.models` exports these names, and :mod:`jaxae.cpu` sizes gradient chunks with them;
this module imports nothing of jaxae.

``model.init`` needs an input to trace the network with; any batch of the
model's ``image_shape`` serves, and its values do not matter.

>>> import jax
>>> from jaxae import models
>>> model = models.create("mnist_conv_ae_2d")
>>> example_input(model).shape
(1, 28, 28, 1)
>>> abstract_params(model)["encoder"]["conv1"]["kernel"]
ShapeDtypeStruct(shape=(3, 3, 1, 32), dtype=float32)
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

LATENT_RNG = "latent"
"""The RNG stream a variational autoencoder samples its code from (dropout's is ``"dropout"``)."""


def example_input(model, batch: int = 1, dtype=np.float32, image_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Zeros of shape ``(batch, *model.image_shape)``: an input for ``model.init`` (or ``jax.eval_shape``).

    Args:
      model: a seed model, or anything with an ``image_shape`` (a :class:`~jaxae.models.ModelSpec`).
      batch: the leading dimension.
      dtype: the images' dtype (the models take float32 pixels).
      image_shape: in place of ``model.image_shape``, for a module without one (a
        model of your own: its registered ``models.spec(name).image_shape``).
    """
    return np.zeros((batch, *(image_shape or model.image_shape)), dtype)


def init_rngs(key) -> dict[str, Any]:
    """``key`` for each stream a model may draw from at ``init``: its parameters, and the dropout and latent
    streams that NNX layers take when they are built (Linen's parameters depend on ``params`` alone)."""
    return {"params": key, "dropout": key, LATENT_RNG: key}


def abstract_params(model) -> dict[str, Any]:
    """``model``'s params as ``jax.ShapeDtypeStruct`` leaves, by ``jax.eval_shape`` of its ``init``: no compute, no memory."""
    return jax.eval_shape(model.init, jax.random.key(0), example_input(model))["params"]
