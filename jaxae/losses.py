"""The seeds' losses, PyTorch's reductions, and a mask for padded batches.

Every seed loss is a mean over the batch of a per-example loss: ``per_example``
gives that per-example form (what data-parallel steps sum across devices),
and the named functions give the mean. Each takes an optional ``mask`` of
shape ``(B,)``: examples where it is 0 are padding, and the loss is what
PyTorch computes on the unpadded batch.

>>> import jax.numpy as jnp
>>> y, t = jnp.ones((2, 2, 2, 1)), jnp.zeros((2, 2, 2, 1))
>>> float(mse(y, t)), float(sum_squared_error(y, t))
(1.0, 4.0)
"""

from __future__ import annotations

import jax.numpy as jnp
import optax


def _per_example_cross_entropy(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def _per_example_mse(predictions, targets):
    return jnp.mean((predictions - targets) ** 2, axis=tuple(range(1, predictions.ndim)))


def _per_example_sum_squared_error(predictions, targets):
    return jnp.sum((predictions - targets) ** 2, axis=tuple(range(1, predictions.ndim)))


per_example = {
    "cross_entropy": _per_example_cross_entropy,
    "mse": _per_example_mse,
    "sum_squared_error": _per_example_sum_squared_error,
}
"""Per-example losses by name: ``(outputs, targets) -> (B,)``."""


def masked_mean(values, mask=None):
    """Mean of ``values`` over the examples where ``mask`` is true (all when ``mask`` is None)."""
    if mask is None:
        return values.mean()
    mask = mask.astype(values.dtype)
    return (values * mask).sum() / mask.sum()


def cross_entropy(logits, labels, mask=None):
    """``nn.CrossEntropyLoss()``: mean over examples of the softmax cross-entropy."""
    return masked_mean(_per_example_cross_entropy(logits, labels), mask)


def mse(predictions, targets, mask=None):
    """``nn.MSELoss()``: mean over every element of the squared error."""
    return masked_mean(_per_example_mse(predictions, targets), mask)


def sum_squared_error(predictions, targets, mask=None):
    """``nn.MSELoss(reduction='sum') / batch_size``: the squared error summed per image, averaged (E2)."""
    return masked_mean(_per_example_sum_squared_error(predictions, targets), mask)
