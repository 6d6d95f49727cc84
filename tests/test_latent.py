"""jaxae.latent: batched encode/decode against a direct apply, interpolation, latent grids, input checks."""

import jax
import numpy as np
import pytest

from jaxae import latent, models
from jaxae.errors import InputError


def _init(model):
    return jax.jit(model.init)(jax.random.key(0), models.example_input(model))["params"]


@pytest.fixture(scope="module")
def pca():
    model = models.create("mnist_pca_ae")
    return model, _init(model)


@pytest.fixture(scope="module")
def ae_2d():
    model = models.create("mnist_pca_ae", hidden_sizes=(2,))
    return model, _init(model)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(-1, 1, (7, 28, 28, 1)).astype(np.float32)


def test_batched_results_equal_a_direct_apply(pca, images):
    model, params = pca
    variables = {"params": params}
    codes = latent.encode(model, params, images, batch_size=3)  # 3 + 3 + 1 padded
    assert isinstance(codes, np.ndarray) and codes.shape == (7, 16)
    np.testing.assert_allclose(codes, model.apply(variables, images, method="encode"), rtol=1e-6, atol=1e-6)
    decoded = latent.decode(model, params, codes, batch_size=3)
    assert decoded.shape == images.shape
    np.testing.assert_allclose(decoded, model.apply(variables, codes, method="decode"), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        latent.reconstruct(model, params, images, batch_size=4),
        model.apply(variables, images),
        rtol=1e-6,
        atol=1e-6,
    )


def test_one_compilation_serves_every_batch_and_call(images, monkeypatch):
    model = models.create("mnist_pca_ae", hidden_sizes=(3,))  # a model no other test compiles for
    params = _init(model)
    traces = []
    apply = type(model).apply
    monkeypatch.setattr(type(model), "apply", lambda *args, **kwargs: traces.append(1) or apply(*args, **kwargs))
    latent.encode(model, params, images, batch_size=3)
    latent.encode(model, params, images[:5], batch_size=3)  # other N, same padded batch shape
    latent.encode(model, params, images, batch_size=3)
    assert len(traces) == 1  # under jax.jit, apply runs once per trace, never per call


def test_interpolation_weights():
    np.testing.assert_array_equal(latent.interpolation_weights(8), np.linspace(0, 1, 8, dtype=np.float32))
    with pytest.raises(ValueError, match="steps must be an integer >= 2"):
        latent.interpolation_weights(1)


def test_pixel_interpolation_starts_and_ends_at_the_inputs(images):
    strip = latent.interpolate_pixels(images[0], images[1], 5)
    assert strip.shape == (5, 28, 28, 1) and strip.dtype == np.float32
    np.testing.assert_array_equal(strip[0], images[0])
    np.testing.assert_array_equal(strip[-1], images[1])
    np.testing.assert_allclose(strip[2], (images[0] + images[1]) / 2, atol=1e-7)


def test_latent_interpolation_runs_between_the_reconstructions(pca, images):
    model, params = pca
    strip = latent.interpolate_latent(model, params, images[0], images[1], 5)
    assert strip.shape == (5, 28, 28, 1)
    np.testing.assert_allclose(strip[[0, -1]], latent.reconstruct(model, params, images[:2]), atol=1e-6)
    codes = latent.encode(model, params, images[:2])
    middle = latent.decode(model, params, codes.mean(axis=0, keepdims=True))
    np.testing.assert_allclose(strip[2], middle[0], atol=1e-6)


def test_latent_grid_corners_and_order():
    points = latent.latent_grid((-3, -2), (3, 2), 4)
    assert points.shape == (16, 2)
    # row by row from the top (y = high), x rising along each row
    np.testing.assert_array_equal(points[[0, 3, 12, 15]], [[-3, 2], [3, 2], [-3, -2], [3, -2]])
    np.testing.assert_allclose(points[:4, 0], np.linspace(-3, 3, 4))
    np.testing.assert_array_equal(latent.latent_grid(-1, 1, 3), latent.latent_grid((-1, -1), (1, 1), 3))
    with pytest.raises(ValueError, match="num must be an integer >= 2"):
        latent.latent_grid(-1, 1, 1)
    with pytest.raises(ValueError, match=r"low must be a number or an \(x, y\) pair"):
        latent.latent_grid((0, 0, 0), 1, 3)


def test_decode_grid_decodes_the_grid(ae_2d, pca):
    model, params = ae_2d
    grid = latent.decode_grid(model, params, -2, 2, 3)
    assert grid.shape == (9, 28, 28, 1)
    np.testing.assert_allclose(grid, latent.decode(model, params, latent.latent_grid(-2, 2, 3)), atol=1e-6)
    with pytest.raises(ValueError, match=r"needs a 2-D latent space.*\(16,\)"):
        latent.decode_grid(*pca, -2, 2, 3)


def test_bad_inputs_raise_clear_errors(pca, images):
    model, params = pca
    with pytest.raises(ValueError, match="NCHW"):
        latent.encode(model, params, images.transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match="floating"):
        latent.reconstruct(model, params, (images * 255).astype(np.uint8))
    with pytest.raises(ValueError, match=r"latent codes of shape \(batch, 16\)"):
        latent.decode(model, params, np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        latent.encode(model, params, images, batch_size=0)
    with pytest.raises(ValueError, match="empty batch"):
        latent.encode(model, params, images[:0])
    with pytest.raises(ValueError, match="same shape"):
        latent.interpolate_pixels(images[0], images[0, :14], 4)
    with pytest.raises(ValueError, match=r"single images of shape \(H, W, C\)"):
        latent.interpolate_pixels(images[:2], images[2:4], 4)
    with pytest.raises(ValueError, match=r"images of shape \(28, 28, 1\)"):
        latent.interpolate_latent(model, params, images[0, :14], images[1, :14], 4)
    with pytest.raises(InputError, match="not an autoencoder"):
        latent.encode(models.create("cifar10_cnn"), params, images)
