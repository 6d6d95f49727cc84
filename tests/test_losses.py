"""The seeds' losses and their masked (padded-batch) forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxae import losses


def test_values_follow_pytorchs_reductions():
    predictions = jnp.array([[0.0, 1.0], [2.0, 4.0]]).reshape(2, 2, 1, 1)
    targets = jnp.zeros((2, 2, 1, 1))
    assert float(losses.mse(predictions, targets)) == pytest.approx((0 + 1 + 4 + 16) / 4)
    assert float(losses.sum_squared_error(predictions, targets)) == pytest.approx((1 + 20) / 2)
    logits = jnp.log(jnp.array([[0.25, 0.75], [0.5, 0.5]]))
    assert float(losses.cross_entropy(logits, jnp.array([1, 0]))) == pytest.approx(-(np.log(0.75) + np.log(0.5)) / 2)


@pytest.mark.parametrize("loss", [losses.mse, losses.sum_squared_error])
def test_a_masked_padded_batch_gives_the_loss_of_the_real_examples(loss):
    key_a, key_b = jax.random.split(jax.random.key(0))
    predictions = jax.random.uniform(key_a, (5, 4, 4, 3))
    targets = jax.random.uniform(key_b, (5, 4, 4, 3))
    padded = lambda x: jnp.concatenate([x, jnp.full((3, *x.shape[1:]), 7.0)])
    mask = jnp.array([1, 1, 1, 1, 1, 0, 0, 0])
    expected = loss(predictions, targets)
    np.testing.assert_allclose(loss(padded(predictions), padded(targets), mask), expected, rtol=1e-6)


def test_masked_cross_entropy_ignores_padding():
    logits = jax.random.normal(jax.random.key(1), (6, 10))
    labels = jnp.array([1, 2, 3, 4, 0, 0])
    mask = jnp.array([True, True, True, True, False, False])
    np.testing.assert_allclose(losses.cross_entropy(logits, labels, mask), losses.cross_entropy(logits[:4], labels[:4]), rtol=1e-6)
