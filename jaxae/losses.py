"""The seeds' losses, per example; their mean over a batch is PyTorch's reduction.

Each function maps ``(outputs, targets)`` to a ``(B,)`` array. The trainer
sums them over the real (unmasked) examples of a batch, and over devices,
and divides by the number of real examples: the mean PyTorch computes on the
unpadded batch (``nn.CrossEntropyLoss()``, ``nn.MSELoss()``, and E2's
``nn.MSELoss(reduction='sum') / batch_size``). A variational autoencoder's
outputs are a :class:`~jaxae.models.VaeOutput`, its loss :func:`sse_plus_kl`, registered
as the two terms of :func:`elbo_terms`. A config names its loss; :func:`register` adds yours.

>>> import jax.numpy as jnp
>>> y, t = jnp.ones((2, 2, 2, 1)), jnp.zeros((2, 2, 2, 1))
>>> mse(y, t).tolist(), sum_squared_error(y, t).tolist()
([1.0, 1.0], [4.0, 4.0])
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import optax

from jaxae.errors import InputError
from jaxae.registries import Registry, same_definition


def cross_entropy(logits, labels):
    """Softmax cross-entropy of each example's logits with its integer label."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def mse(predictions, targets):
    """Each example's squared error, averaged over its elements (its mean is ``nn.MSELoss()``)."""
    return jnp.mean((predictions - targets) ** 2, axis=tuple(range(1, predictions.ndim)))


def sum_squared_error(predictions, targets):
    """Each example's squared error, summed over its elements (E2's loss per image)."""
    return jnp.sum((predictions - targets) ** 2, axis=tuple(range(1, predictions.ndim)))


def binary_cross_entropy(probabilities, targets):
    """Each example's binary cross-entropy of its probabilities with targets in [0, 1], averaged over its
    elements: its mean is PyTorch's ``nn.BCELoss()`` (each log clamped at -100, as PyTorch clamps it) and
    Keras's ``binary_crossentropy`` on a sigmoid output, the loss of most autoencoder tutorials.

    >>> [round(v, 4) for v in binary_cross_entropy(jnp.array([[0.5, 1.0]]), jnp.array([[1.0, 1.0]])).tolist()]
    [0.3466]
    """
    log_p, log_not_p = _clamped_log(jnp.log, probabilities, 0.0), _clamped_log(jnp.log1p, -probabilities, -1.0)
    elementwise = -(targets * log_p + (1 - targets) * log_not_p)
    return jnp.mean(elementwise, axis=tuple(range(1, elementwise.ndim)))


def _clamped_log(log, x, edge: float):
    """``max(log(x), -100)``, as PyTorch clamps it, and -100 at ``x == edge`` where ``log`` is -inf, with a
    finite gradient there too: the inner ``where`` keeps the log's infinite derivative out of the backward pass."""
    inside = x > edge
    return jnp.where(inside, jnp.maximum(log(jnp.where(inside, x, edge + 1)), -100.0), -100.0)


def binary_cross_entropy_with_logits(logits, targets):
    """:func:`binary_cross_entropy` of ``sigmoid(logits)``, computed stably from the logits
    (PyTorch's ``nn.BCEWithLogitsLoss()``).

    >>> [round(v, 4) for v in binary_cross_entropy_with_logits(jnp.array([[0.0, 100.0]]), jnp.array([[1.0, 1.0]])).tolist()]
    [0.3466]
    """
    elementwise = optax.sigmoid_binary_cross_entropy(logits, targets)
    return jnp.mean(elementwise, axis=tuple(range(1, elementwise.ndim)))


def kl_from_standard_normal(mean, log_var):
    """Each example's KL divergence of N(mean, exp(log_var)) from N(0, I), summed over its dimensions.

    >>> kl_from_standard_normal(jnp.zeros((1, 2)), jnp.zeros((1, 2))).tolist()
    [0.0]
    """
    kl = -0.5 * (1 + log_var - mean**2 - jnp.exp(log_var))
    return jnp.sum(kl, axis=tuple(range(1, kl.ndim)))


def elbo_terms(outputs, targets) -> dict:
    """A VAE's two loss terms per example: ``"reconstruction"`` (summed squared error) and ``"kl"``.

    ``outputs`` is ``(reconstruction, mean, log_var)``.
    """
    reconstruction, mean, log_var = outputs
    return {"reconstruction": sum_squared_error(reconstruction, targets), "kl": kl_from_standard_normal(mean, log_var)}


def sse_plus_kl(outputs, targets):
    """A VAE's loss per example: the summed squared error of its reconstruction plus the code's KL term.

    ``outputs`` is ``(reconstruction, mean, log_var)``. Averaged over a batch
    this is the usual formulation: the negative evidence lower bound of a
    Gaussian decoder of variance ½, up to a constant.
    """
    terms = elbo_terms(outputs, targets)
    return terms["reconstruction"] + terms["kl"]


@dataclasses.dataclass(frozen=True)
class Loss:
    """A registered loss: ``fn(outputs, targets)`` per example, or a sum of named terms.

    With ``terms``, ``fn`` returns a dict of those terms, each of shape ``(B,)``:
    the loss is their sum, each term times its weight (a config's ``kl_weight``
    weights the term ``"kl"``), and the trainer logs every term beside the loss.
    Without, ``fn`` returns the ``(B,)`` loss itself.
    """

    name: str
    fn: Callable
    terms: tuple[str, ...] = ()

    def term_values(self, outputs, targets) -> dict:
        """Each term's value per example (``{}`` for a loss without terms)."""
        return dict(self.fn(outputs, targets)) if self.terms else {}

    def __call__(self, outputs, targets, weights: Mapping[str, Any] | None = None):
        """The loss per example, ``(B,)``: the sum of its terms, each times ``weights.get(term, 1)``."""
        if not self.terms:
            return self.fn(outputs, targets)
        values, weights = self.term_values(outputs, targets), weights or {}
        return functools.reduce(jnp.add, (weights.get(name, 1) * values[name] for name in self.terms))


_LOSSES = Registry("loss", "jaxae.losses.register(name, fn)")


def register(name: str, loss: Callable, *, terms: Sequence[str] = (), replace: bool = False) -> Loss:
    """Makes ``loss(outputs, targets)`` a loss that ``TrainConfig(loss=name)`` trains with.

    ``outputs`` is what the model returns, ``targets`` the images (an
    autoencoder) or the integer labels (a classifier). It gives one value
    per example, or with ``terms`` a dict of named per-example terms whose sum
    is the loss (a VAE's ``("reconstruction", "kl")``: logged apart, and
    ``kl_weight`` weights ``"kl"``). The trainer sums the loss over the real
    examples of a batch and divides by their number. Register it again in any
    process that resumes a run of it; registering it again as a notebook cell run twice
    replaces it (:func:`jaxae.registries.same_definition`); another function needs ``replace=True``.

    >>> _ = register("mae", lambda y, t: jnp.mean(jnp.abs(y - t), axis=(1, 2, 3)))
    >>> get("mae")(jnp.ones((2, 2, 2, 1)), jnp.zeros((2, 2, 2, 1))).tolist()
    [1.0, 1.0]
    >>> unregister("mae")
    """
    if not isinstance(name, str) or not name or not callable(loss):
        raise InputError(f"register a loss as a name and a function, got {name!r} and {loss!r}")
    if isinstance(terms, str) or not all(isinstance(term, str) and term for term in terms):
        raise InputError(f"loss {name!r}: terms are a sequence of names, got {terms!r}")
    entry = Loss(name, loss, tuple(terms))
    _LOSSES.register(name, entry, replace=replace,
                     same=lambda old, new: same_definition(old.fn, new.fn) and old.terms == new.terms)
    return entry


def unregister(name: str) -> None:
    """Removes a loss of your own (the seeds' stay)."""
    _LOSSES.unregister(name)


def get(name: str) -> Loss:
    """The registered loss ``name``; an ``InputError`` naming the known ones otherwise."""
    return _LOSSES.get(name)


def names() -> list[str]:
    """The registered losses: the seeds', then yours."""
    return _LOSSES.names()


register("cross_entropy", cross_entropy)
register("mse", mse)
register("sum_squared_error", sum_squared_error)
register("binary_cross_entropy", binary_cross_entropy)
register("binary_cross_entropy_with_logits", binary_cross_entropy_with_logits)
register("sse_plus_kl", elbo_terms, terms=("reconstruction", "kl"))
_LOSSES.seal()
