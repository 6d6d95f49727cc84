"""An NNX module class as a Linen module, so that the trainer applies every model one way.

The trainer's steps are pure functions of a parameter tree
(``model.apply({"params": params}, images, train=..., rngs=...)``): jitted
once, donated, sharded, ``vmap``-ed over seeds, checkpointed as a tree.
:class:`NnxAsLinen` gives a ``flax.nnx.Module`` class that face through
Flax's own bridge (``nnx.bridge.ToLinen``), whose graph traversal runs
once, when a step is traced, not on every step. Its parameters are the NNX
module's own ``nnx.Param`` tree, so :func:`jaxae.nnx.load_params` puts trained
ones back into an NNX module. Dropout draws from the ``dropout`` stream of the
``rngs`` a step is applied with.

>>> import jax, jax.numpy as jnp
>>> from flax import nnx
>>> class Tiny(nnx.Module):
...     def __init__(self, *, rngs):
...         self.linear = nnx.Linear(4, 4, rngs=rngs)
...     def __call__(self, x):
...         return self.linear(x)
>>> model = NnxAsLinen.of(Tiny, {})
>>> variables = model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, jnp.ones((1, 4)))
>>> sorted(variables["params"]["linear"])
['bias', 'kernel']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
from flax import nnx
from flax.core import FrozenDict


def _in_mode(method: str, train: bool):
    """Calls ``module.<method>`` in training or evaluation mode (``deterministic`` set as NNX layers read it)."""

    def run(module, *args):
        module.set_attributes(deterministic=not train, use_running_average=not train, raise_if_not_found=False)
        return getattr(module, method)(*args)

    return run


class NnxAsLinen(nn.Module):
    """A ``flax.nnx.Module`` class, built with ``kwargs`` and ``rngs``, as a Linen module.

    ``__call__(images, train=False)`` runs the NNX module in training or
    evaluation mode; ``encode``, ``decode``, ``code`` and ``reconstruct`` call
    the NNX methods of those names, where the class has them (evaluation mode).
    """

    nnx_class: type
    kwargs: FrozenDict = FrozenDict()

    @classmethod
    def of(cls, nnx_class: type, kwargs: Mapping[str, Any], name: str | None = None) -> NnxAsLinen:
        return cls(nnx_class, FrozenDict(kwargs), name=name)

    def setup(self):
        self.bridge = nnx.bridge.ToLinen(self.nnx_class, kwargs=self.kwargs)
        nn.share_scope(self, self.bridge)  # the NNX module's parameter tree, not nested under "bridge"

    def __call__(self, images, train: bool = False):
        return self.bridge(images, nnx_method=_in_mode("__call__", train))

    def encode(self, images):
        return self.bridge(images, nnx_method=_in_mode("encode", False))

    def decode(self, codes):
        return self.bridge(codes, nnx_method=_in_mode("decode", False))

    def code(self, images):
        method = "code" if hasattr(self.nnx_class, "code") else "encode"
        return self.bridge(images, nnx_method=_in_mode(method, False))

    def reconstruct(self, images):
        if hasattr(self.nnx_class, "reconstruct"):
            return self.bridge(images, nnx_method=_in_mode("reconstruct", False))
        return self(images)
