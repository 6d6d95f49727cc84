"""The seed models: registry, parameter counts, shapes, encoder/decoder, input errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxae import models
from jaxae.data import PIXEL_TABLES

NAMES = [
    "cifar10_mlp",
    "cifar10_cnn",
    "cifar10_conv_ae",
    "mnist_conv_ae_2d",
    "mnist_pca_ae",
    "mnist_ae2",
    "mnist_ae3",
    "cifar10_fc_conv_ae",
    "cifar10_fc_conv_classifier",
    "mnist_conv_vae_2d",
    "cifar10_conv_vae",
]
AUTOENCODERS = [n for n in NAMES if "_ae" in n or "_vae" in n]
VAES = ["mnist_conv_vae_2d", "cifar10_conv_vae"]


def _abstract_variables(model, image_shape):
    return jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, *image_shape)))


def _count(variables):
    return sum(leaf.size for leaf in jax.tree.leaves(variables))


def _init(name, **overrides):
    model = models.create(name, **overrides)
    return model, jax.jit(model.init)(jax.random.key(0), models.example_input(model))


def _jit_apply(model):
    return jax.jit(model.apply, static_argnames=("method", "train"))


def test_names_are_the_nine_seed_models_and_the_two_vaes():
    assert models.names() == NAMES


def test_each_model_sees_the_pixel_range_its_transform_gives():
    for name in NAMES:
        spec = models.spec(name)
        table = PIXEL_TABLES[spec.transform]
        assert (float(table.min()), float(table.max())) == spec.value_range, name
    assert {name for name in NAMES if models.spec(name).transform == "normalize"} == {"mnist_pca_ae", "mnist_ae2", "mnist_ae3"}


@pytest.mark.parametrize(
    "name, overrides, expected",
    [
        ("cifar10_mlp", {}, 813_398),
        ("cifar10_cnn", {}, 109_050),
        ("cifar10_conv_ae", {}, 21_331),
        ("mnist_conv_ae_2d", {}, 200_963),
        ("mnist_pca_ae", {}, 25_888),
        ("mnist_ae2", {}, 52_064),
        ("mnist_ae2", {"hidden_sizes": [128, 16]}, 205_856),
        ("mnist_ae3", {}, 106_464),
        ("cifar10_fc_conv_ae", {}, 4_680_643),
        ("cifar10_fc_conv_classifier", {}, 2_331_658),
        ("mnist_conv_vae_2d", {}, 207_237),  # E3's + a second Linear(3136, 2)
        ("cifar10_conv_vae", {}, 29_555),  # E2's + a second Conv2d(16, 32, 4)
    ],
)
def test_parameter_counts_equal_the_spec(name, overrides, expected):
    model = models.create(name, **overrides)
    assert _count(_abstract_variables(model, model.image_shape)) == expected


@pytest.mark.parametrize("name", NAMES)
def test_output_shapes(name):
    model = models.create(name)
    x = jax.ShapeDtypeStruct((5, *model.image_shape), jnp.float32)
    out = jax.eval_shape(model.apply, _abstract_variables(model, model.image_shape), x)
    if name in VAES:
        assert out.mean.shape == out.log_var.shape == (5, *model.latent_shape)
        out = out.reconstruction
    expected = (5, *model.image_shape) if name in AUTOENCODERS else (5, 10)
    assert out.shape == expected and out.dtype == jnp.float32


@pytest.mark.parametrize(
    "name, latent_shape",
    [("cifar10_conv_ae", (4, 4, 32)), ("mnist_conv_ae_2d", (2,)), ("mnist_pca_ae", (16,)), ("mnist_ae3", (16,)),
     ("cifar10_fc_conv_ae", (1024,)), ("mnist_conv_vae_2d", (2,)), ("cifar10_conv_vae", (4, 4, 32))],
)
def test_encoder_and_decoder_work_apart(name, latent_shape):
    model, variables = _init(name)
    assert model.latent_shape == latent_shape
    low, high = models.spec(name).value_range
    x = jax.random.uniform(jax.random.key(1), (3, *model.image_shape), minval=low, maxval=high)
    apply = _jit_apply(model)
    z = apply(variables, x, method="code")
    assert z.shape == (3, *latent_shape)
    decoded = apply(variables, z, method="decode")
    np.testing.assert_allclose(decoded, apply(variables, x, method="reconstruct"), rtol=1e-6, atol=1e-6)
    # The decoder generates from any latent point, e.g. E3's [2.5, -2.5].
    points = jnp.zeros((2, *latent_shape)).at[0].set(2.5)
    generated = apply(variables, points, method="decode")
    assert generated.shape == (2, *model.image_shape)
    assert not np.allclose(generated[0], generated[1])


def test_output_ranges_follow_the_output_activations():
    for name, (low, high) in [("cifar10_conv_ae", (0, 1)), ("mnist_conv_ae_2d", (0, 1)), ("mnist_ae2", (-1, 1))]:
        model, variables = _init(name)
        y = _jit_apply(model)(variables, 10 * jax.random.normal(jax.random.key(2), (4, *model.image_shape)))
        assert low <= float(y.min()) and float(y.max()) <= high, name
    model, variables = _init("cifar10_fc_conv_ae")
    assert float(_jit_apply(model)(variables, jnp.ones((2, 32, 32, 3))).min()) >= 0.0  # final ReLU


def test_pca_output_activation_is_selectable():
    x = jax.random.uniform(jax.random.key(3), (4, 28, 28, 1), minval=-1, maxval=1)
    _, variables = _init("mnist_pca_ae")
    tanh_out = models.create("mnist_pca_ae").apply(variables, x)
    linear_out = models.create("mnist_pca_ae", output_activation="none").apply(variables, x)
    np.testing.assert_allclose(tanh_out, jnp.tanh(linear_out), rtol=1e-5, atol=1e-6)


def test_align_corners_changes_the_e5_decoder():
    model, variables = _init("cifar10_fc_conv_ae")
    x = jax.random.uniform(jax.random.key(4), (2, 32, 32, 3))
    default = _jit_apply(models.create("cifar10_fc_conv_ae"))(variables, x)
    old_pytorch = _jit_apply(models.create("cifar10_fc_conv_ae", align_corners=True))(variables, x)
    assert model.align_corners is False
    assert float(jnp.abs(default - old_pytorch).max()) > 1e-4


def test_mlp_dropout_only_in_training_and_seeded():
    model, variables = _init("cifar10_mlp")
    x = jax.random.uniform(jax.random.key(5), (8, 32, 32, 3))
    apply = _jit_apply(model)
    np.testing.assert_array_equal(apply(variables, x), apply(variables, x))

    def train(seed):
        return apply(variables, x, train=True, rngs={"dropout": jax.random.key(seed)})

    np.testing.assert_array_equal(train(0), train(0))
    assert not np.allclose(train(0), train(1))
    assert not np.allclose(train(0), apply(variables, x))


def test_vae_samples_around_its_mean_with_the_given_or_a_seeded_noise():
    model, variables = _init("cifar10_conv_vae")
    x = jax.random.uniform(jax.random.key(6), (3, *model.image_shape))
    apply = _jit_apply(model)
    mean, log_var = apply(variables, x, method="encode")
    evaluation = apply(variables, x)
    np.testing.assert_array_equal(evaluation.mean, mean)
    np.testing.assert_allclose(evaluation.reconstruction, apply(variables, mean, method="decode"), rtol=1e-6, atol=1e-6)

    noise = jax.random.normal(jax.random.key(7), mean.shape)
    sample = mean + jnp.exp(log_var / 2) * noise
    np.testing.assert_allclose(apply(variables, x, noise=noise).reconstruction, apply(variables, sample, method="decode"),
                               rtol=1e-5, atol=1e-6)

    def train(seed):
        return apply(variables, x, train=True, rngs={"latent": jax.random.key(seed)}).reconstruction

    np.testing.assert_array_equal(train(0), train(0))
    assert not np.allclose(train(0), train(1))
    with pytest.raises(ValueError, match=r"noise must have the codes' shape"):
        model.apply(variables, x, noise=jnp.zeros((3, 5)))


def test_classifier_from_autoencoder_keeps_the_encoder_and_adds_a_fresh_head():
    ae, ae_variables = _init("cifar10_fc_conv_ae")
    classifier = models.create("cifar10_fc_conv_classifier")
    variables = models.classifier_from_autoencoder(ae_variables, jax.random.key(7), classifier)
    jax.tree.map(np.testing.assert_array_equal, variables["params"]["encoder"], ae_variables["params"]["encoder"])
    assert variables["params"]["head"]["kernel"].shape == (1024, 10)
    x = jax.random.uniform(jax.random.key(8), (2, 32, 32, 3))
    features = _jit_apply(ae)(ae_variables, x, method="encode")
    head = variables["params"]["head"]
    logits = _jit_apply(classifier)(variables, x)
    np.testing.assert_allclose(logits, features @ head["kernel"] + head["bias"], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="latent_dim"):
        models.classifier_from_autoencoder(ae_variables, jax.random.key(7), models.create("cifar10_fc_conv_classifier", latent_dim=512))


def test_flax_init_scheme_is_selectable():
    _, variables = _init("cifar10_cnn", init_scheme="flax")
    np.testing.assert_array_equal(variables["params"]["fc1"]["bias"], 0.0)
    _, variables = _init("cifar10_cnn")
    assert float(jnp.abs(variables["params"]["fc1"]["bias"]).max()) > 0


# Bad input: a ValueError naming the model and both shapes, raised in Python before tracing.


@pytest.mark.parametrize(
    "name, bad_shape, hint",
    [
        ("cifar10_cnn", (4, 3, 32, 32), "NCHW"),
        ("cifar10_cnn", (32, 32, 3), "batch dimension is missing"),
        ("cifar10_mlp", (4, 28, 28, 3), ""),
        ("cifar10_conv_ae", (4, 32, 32, 1), ""),
        ("mnist_conv_ae_2d", (4, 28, 28), ""),
        ("mnist_ae2", (4, 784), "flattened"),
        ("cifar10_fc_conv_classifier", (4, 64, 64, 3), ""),
    ],
)
def test_wrong_shapes_are_refused_with_a_clear_message(name, bad_shape, hint):
    model = models.create(name)
    variables = _abstract_variables(model, model.image_shape)
    expected = "(batch, " + ", ".join(map(str, model.image_shape)) + ")"
    with pytest.raises(ValueError) as error:
        model.apply(variables, jnp.zeros(bad_shape))
    message = str(error.value)
    assert name in message and expected in message and str(bad_shape) in message and hint in message


def test_wrong_dtype_is_refused_even_under_jit():
    model = models.create("mnist_conv_ae_2d")
    variables = _abstract_variables(model, model.image_shape)
    with pytest.raises(ValueError, match=r"mnist_conv_ae_2d: expected floating images .* got dtype uint8"):
        jax.jit(model.apply)(variables, jnp.zeros((2, 28, 28, 1), jnp.uint8))


def test_wrong_latent_is_refused():
    model, variables = _init("mnist_conv_ae_2d")
    with pytest.raises(ValueError, match=r"mnist_conv_ae_2d: expected latent codes of shape \(batch, 2\), got \(4, 3\)"):
        model.apply(variables, jnp.zeros((4, 3)), method="decode")


def test_unknown_names_and_arguments_are_refused():
    with pytest.raises(ValueError, match=r"unknown model 'mnist_ae4'.*Did you mean 'mnist_ae"):
        models.create("mnist_ae4")
    with pytest.raises(ValueError, match=r"mnist_ae2: unknown argument\(s\) \['hidden'\]"):
        models.create("mnist_ae2", hidden=(8,))
    with pytest.raises(ValueError, match="output_activation must be one of"):
        models.create("mnist_pca_ae", output_activation="relu")
    with pytest.raises(ValueError, match="init_scheme must be one of"):
        models.create("cifar10_cnn", init_scheme="kaiming")


def test_only_models_with_convolutions_take_a_conv_lowering():
    with_convolutions = [n for n in NAMES if models.spec(n).has_convolutions]
    assert with_convolutions == ["cifar10_cnn", "cifar10_conv_ae", "mnist_conv_ae_2d", "cifar10_fc_conv_ae",
                                 "cifar10_fc_conv_classifier", *VAES]
    with pytest.raises(ValueError, match="unknown argument"):
        models.create("mnist_pca_ae", conv_lowering="xla")


@pytest.mark.parametrize("name", NAMES)
def test_forward_mode_and_hessian_vector_products_work_with_xla_convolutions(name):
    overrides = {"conv_lowering": "xla"} if models.spec(name).has_convolutions else {}
    model, variables = _init(name, **overrides)
    x = jax.random.uniform(jax.random.key(1), (2, *model.image_shape))

    def loss(params):
        return sum(jnp.sum(output**2) for output in jax.tree.leaves(model.apply({"params": params}, x)))

    @jax.jit
    def derivatives(params, tangent):
        directional = jax.jvp(loss, (params,), (tangent,))[1]  # forward mode
        gradient, hvp = jax.jvp(jax.grad(loss), (params,), (tangent,))  # forward over reverse
        return directional, gradient, hvp

    params = variables["params"]
    tangent = jax.tree.map(jnp.ones_like, params)
    directional, gradient, hvp = derivatives(params, tangent)
    gradient_dot = sum(jnp.vdot(g, t) for g, t in zip(jax.tree.leaves(gradient), jax.tree.leaves(tangent)))
    np.testing.assert_allclose(directional, gradient_dot, rtol=2e-3)
    assert jax.tree.structure(hvp) == jax.tree.structure(params)
    assert all(bool(jnp.isfinite(leaf).all()) for leaf in jax.tree.leaves(hvp))
