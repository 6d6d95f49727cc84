"""The seeds' losses, per example; their mean over a batch is PyTorch's reduction.

Each function maps ``(outputs, targets)`` to a ``(B,)`` array. The trainer
sums them over the real (unmasked) examples of a batch, and over devices,
and divides by the number of real examples: the mean PyTorch computes on the
unpadded batch (``nn.CrossEntropyLoss()``, ``nn.MSELoss()``, and E2's
``nn.MSELoss(reduction='sum') / batch_size``).

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


per_example = {"cross_entropy": cross_entropy, "mse": mse, "sum_squared_error": sum_squared_error}
"""The losses by the names a :class:`~jaxae.train.TrainConfig` gives."""
