"""The seeds' losses, PyTorch's reductions, and a mask for padded batches.

Each loss takes an optional ``mask`` of shape ``(B,)``: examples where it is
0 are padding, and the loss is what PyTorch computes on the unpadded batch.

>>> import jax.numpy as jnp
>>> y, t = jnp.ones((2, 2, 2, 1)), jnp.zeros((2, 2, 2, 1))
>>> float(mse(y, t)), float(sum_squared_error(y, t))
(1.0, 4.0)
"""

from __future__ import annotations

import jax.numpy as jnp
import optax


def _masked_mean(per_example, mask):
    if mask is None:
        return per_example.mean()
    mask = mask.astype(per_example.dtype)
    return (per_example * mask).sum() / mask.sum()


def cross_entropy(logits, labels, mask=None):
    """``nn.CrossEntropyLoss()``: mean over examples of the softmax cross-entropy."""
    return _masked_mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels), mask)


def mse(predictions, targets, mask=None):
    """``nn.MSELoss()``: mean over every element of the squared error."""
    per_example = jnp.mean((predictions - targets) ** 2, axis=tuple(range(1, predictions.ndim)))
    return _masked_mean(per_example, mask)


def sum_squared_error(predictions, targets, mask=None):
    """``nn.MSELoss(reduction='sum') / batch_size``: the squared error summed per image, averaged (E2)."""
    per_example = jnp.sum((predictions - targets) ** 2, axis=tuple(range(1, predictions.ndim)))
    return _masked_mean(per_example, mask)
