"""The seeds' losses, per example; their mean over a batch is PyTorch's reduction.

Each function maps ``(outputs, targets)`` to a ``(B,)`` array. The trainer
sums them over the real (unmasked) examples of a batch, and over devices,
and divides by the number of real examples: the mean PyTorch computes on the
unpadded batch (``nn.CrossEntropyLoss()``, ``nn.MSELoss()``, and E2's
``nn.MSELoss(reduction='sum') / batch_size``). A variational autoencoder's
outputs are a :class:`~jaxae.models.VaeOutput`, its loss :func:`sse_plus_kl`.

>>> import jax.numpy as jnp
>>> y, t = jnp.ones((2, 2, 2, 1)), jnp.zeros((2, 2, 2, 1))
>>> mse(y, t).tolist(), sum_squared_error(y, t).tolist()
([1.0, 1.0], [4.0, 4.0])
"""

from __future__ import annotations

import jax.numpy as jnp
import optax


def cross_entropy(logits, labels):
    """Softmax cross-entropy of each example's logits with its integer label."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def mse(predictions, targets):
    """Each example's squared error, averaged over its elements (its mean is ``nn.MSELoss()``)."""
    return jnp.mean((predictions - targets) ** 2, axis=tuple(range(1, predictions.ndim)))


def sum_squared_error(predictions, targets):
    """Each example's squared error, summed over its elements (E2's loss per image)."""
    return jnp.sum((predictions - targets) ** 2, axis=tuple(range(1, predictions.ndim)))


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


per_example = dict(cross_entropy=cross_entropy, mse=mse, sum_squared_error=sum_squared_error, sse_plus_kl=sse_plus_kl)
"""The losses by the names a :class:`~jaxae.train.TrainConfig` gives: the seeds', then those :func:`register` adds."""

terms = {"sse_plus_kl": elbo_terms}
"""The losses that are a sum of named terms, each term per example: the variational ones, whose
``"kl"`` term a :class:`~jaxae.train.TrainConfig`'s ``kl_weight`` weights."""

_SEED_LOSSES = frozenset(per_example)


def register(name: str, loss, *, replace: bool = False) -> None:
    """Makes ``loss(outputs, targets) -> (B,)`` a loss that ``TrainConfig(loss=name)`` trains with.

    ``outputs`` is what the model returns, ``targets`` the images (an
    autoencoder) or the integer labels (a classifier). It must give one value
    per example: the trainer sums them over the real examples of a batch and
    divides by their number. Register it again in any process that resumes a run of it.

    >>> register("mae", lambda y, t: jnp.mean(jnp.abs(y - t), axis=(1, 2, 3)))
    >>> per_example["mae"](jnp.ones((2, 2, 2, 1)), jnp.zeros((2, 2, 2, 1))).tolist()
    [1.0, 1.0]
    >>> unregister("mae")
    """
    from jaxae.errors import InputError

    if not isinstance(name, str) or not name or not callable(loss):
        raise InputError(f"register a loss as a name and a function, got {name!r} and {loss!r}")
    if name in _SEED_LOSSES or (name in per_example and not replace):
        raise InputError(f"loss {name!r} is already registered; choose another name"
                         + ("" if name in _SEED_LOSSES else " or pass replace=True"))
    per_example[name] = loss


def unregister(name: str) -> None:
    """Removes a loss of your own (the seeds' stay)."""
    if name in per_example and name not in _SEED_LOSSES:
        del per_example[name]
