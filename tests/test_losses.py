"""The seeds' losses per example; their batch means are PyTorch's reductions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxae import losses


def test_batch_means_follow_pytorchs_reductions():
    predictions = jnp.array([[0.0, 1.0], [2.0, 4.0]]).reshape(2, 2, 1, 1)
    targets = jnp.zeros((2, 2, 1, 1))
    np.testing.assert_allclose(losses.mse(predictions, targets), [0.5, 10.0])
    assert float(losses.mse(predictions, targets).mean()) == pytest.approx((0 + 1 + 4 + 16) / 4)
    assert float(losses.sum_squared_error(predictions, targets).mean()) == pytest.approx((1 + 20) / 2)
    logits = jnp.log(jnp.array([[0.25, 0.75], [0.5, 0.5]]))
    np.testing.assert_allclose(losses.cross_entropy(logits, jnp.array([1, 0])), [-np.log(0.75), -np.log(0.5)], rtol=1e-6)


def test_every_config_loss_name_is_a_per_example_loss():
    assert losses.names() == ["cross_entropy", "mse", "sum_squared_error", "binary_cross_entropy",
                              "binary_cross_entropy_with_logits", "sse_plus_kl"]
    assert losses.get("mse")(jnp.ones((3, 4)), jnp.zeros((3, 4))).shape == (3,)
    assert losses.get("sse_plus_kl").terms == ("reconstruction", "kl")


def test_sse_plus_kl_adds_the_closed_form_kl_to_the_summed_squared_error():
    reconstruction, targets = jnp.full((2, 2, 2, 1), 0.5), jnp.zeros((2, 2, 2, 1))  # SSE 4 × 0.25 = 1
    mean = jnp.array([[0.0, 0.0], [1.0, -2.0]])
    log_var = jnp.array([[0.0, 0.0], [jnp.log(2.0), 0.0]])
    # KL(N(m, s²) || N(0, 1)) = ½ (s² + m² − 1 − log s²) per dimension.
    expected_kl = [0.0, 0.5 * (2 + 1 - 1 - np.log(2)) + 0.5 * 4]
    np.testing.assert_allclose(losses.kl_from_standard_normal(mean, log_var), expected_kl, rtol=1e-6)
    np.testing.assert_allclose(losses.sse_plus_kl((reconstruction, mean, log_var), targets), np.add(1.0, expected_kl), rtol=1e-6)


def test_binary_cross_entropy_is_pytorchs_per_image_mean():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4, 5, 5, 1)).astype(np.float32)
    targets = rng.uniform(0, 1, (4, 5, 5, 1)).astype(np.float32)
    targets[0, 0, 0, 0] = 1.0  # a probability of exactly 0 or 1 below: PyTorch's clamped log
    probabilities = 1 / (1 + np.exp(-logits))
    probabilities[0, 0, 0, 0], probabilities[1, 0, 0, 0] = 0.0, 1.0
    expected = torch.nn.BCELoss()(torch.from_numpy(probabilities), torch.from_numpy(targets)).item()
    assert float(losses.binary_cross_entropy(probabilities, targets).mean()) == pytest.approx(expected, rel=1e-5)
    gradient = jax.grad(lambda p: losses.binary_cross_entropy(p, targets).sum())(probabilities)
    assert np.all(np.isfinite(gradient))  # at probabilities of exactly 0 and 1 too
    expected = torch.nn.BCEWithLogitsLoss()(torch.from_numpy(logits), torch.from_numpy(targets)).item()
    assert float(losses.binary_cross_entropy_with_logits(logits, targets).mean()) == pytest.approx(expected, rel=1e-5)
