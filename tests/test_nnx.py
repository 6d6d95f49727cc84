"""The NNX face of the models: the Linen model's outputs, weights that move both ways, training alike."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxae import losses, models
from jaxae import nnx as jaxae_nnx
from jaxae.errors import InputError
from jaxae.train import TrainConfig, Trainer, compile_train_step
from jaxae.trees import leaf_shapes

NAMES = models.names()


def _images(name, batch=3, seed=1):
    low, high = models.spec(name).value_range
    return jax.random.uniform(jax.random.key(seed), (batch, *models.spec(name).image_shape), minval=low, maxval=high)


def _assert_close(a, b, tolerance=1e-6):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tolerance, atol=tolerance),
                 a, b)


@pytest.mark.parametrize(("name", "graph_mode"), [*((name, True) for name in NAMES),
                                                 ("mnist_conv_vae_2d", False), ("cifar10_mlp", False)])
def test_an_nnx_model_computes_what_its_linen_twin_computes_with_the_same_weights(name, graph_mode):
    """In Flax's graph mode (its default) for every model, and in its tree mode (``nnx.set_graph_mode(False)``)."""
    with nnx.set_graph_mode(graph_mode):
        _computes_what_its_linen_twin_computes(name)


def _computes_what_its_linen_twin_computes(name):
    model = jaxae_nnx.create(name, rngs=nnx.Rngs(0))
    linen = models.create(name)
    variables = jax.jit(linen.init)(jax.random.key(7), _images(name, 1))
    jaxae_nnx.load_params(model, variables)
    _assert_close(jaxae_nnx.linen_variables(model), variables, 0)
    x = _images(name)
    _assert_close(model(x), linen.apply(variables, x))
    if models.spec(name).is_autoencoder:
        codes = model.code(x)
        _assert_close(codes, linen.apply(variables, x, method="code"))
        _assert_close(model.decode(codes), linen.apply(variables, codes, method="decode"))
    else:
        assert not hasattr(model, "encode")


def test_a_new_model_has_pytorchs_initialisation_and_the_options_of_models_create():
    model = jaxae_nnx.create("mnist_ae2", rngs=nnx.Rngs(0), hidden_sizes=(128, 16))
    params = jaxae_nnx.linen_variables(model)["params"]
    reference = models.abstract_params(models.create("mnist_ae2", hidden_sizes=(128, 16)))
    assert leaf_shapes(params) == leaf_shapes(reference)
    kernels = [np.asarray(leaf) for leaf in jax.tree.leaves(params) if np.ndim(leaf) == 2]
    for kernel in kernels:  # PyTorch's default init: uniform within ±1/sqrt(fan_in), filling it
        assert 0.9 / np.sqrt(kernel.shape[0]) < np.abs(kernel).max() <= 1 / np.sqrt(kernel.shape[0])
    other = jaxae_nnx.create("mnist_ae2", rngs=nnx.Rngs(1), hidden_sizes=(128, 16))
    assert not np.array_equal(jax.tree.leaves(params)[0], jax.tree.leaves(jaxae_nnx.linen_variables(other))[0])


def test_train_and_eval_switch_dropout_and_a_vaes_sampling():
    x = _images("cifar10_mlp")
    mlp = jaxae_nnx.create("cifar10_mlp", rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(mlp(x), mlp(x))
    mlp.train()
    assert not np.array_equal(mlp(x), mlp(x))  # a new dropout mask per call
    mlp.eval()
    np.testing.assert_array_equal(mlp(x), mlp(x))
    vae = jaxae_nnx.create("mnist_conv_vae_2d", rngs=nnx.Rngs(0))
    x = _images("mnist_conv_vae_2d")
    np.testing.assert_array_equal(vae(x).reconstruction, vae.reconstruct(x))
    vae.train()
    assert not np.array_equal(vae(x).reconstruction, vae.reconstruct(x))


def test_weights_of_another_model_are_refused():
    model = jaxae_nnx.create("mnist_ae2", rngs=nnx.Rngs(0))
    other = jaxae_nnx.linen_variables(jaxae_nnx.create("mnist_ae3", rngs=nnx.Rngs(0)))
    with pytest.raises(InputError, match="mnist_ae2: these params are of another model; first difference"):
        jaxae_nnx.load_params(model, other)


@pytest.mark.parametrize("name", ["mnist_conv_ae_2d", "cifar10_cnn", "mnist_pca_ae"])
def test_nnx_optimizer_steps_end_where_the_linen_trainer_ends(name):
    loss = {"mnist_conv_ae_2d": "mse", "cifar10_cnn": "cross_entropy", "mnist_pca_ae": "mse"}[name]
    # The whole batch in one gradient, as the NNX step takes it (no chunks to sum in another order).
    config = TrainConfig(model=name, loss=loss, optimizer="adam", learning_rate=1e-3, epochs=1, batch_size=8,
                         microbatch_size=8)
    trainer = Trainer.create(config)
    state = trainer.init_state()
    model = jaxae_nnx.create(name, rngs=nnx.Rngs(0))
    jaxae_nnx.load_params(model, {"params": state.params})
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)

    @nnx.jit
    def nnx_step(model, optimizer, images, labels):
        def loss_fn(model):
            return losses.get(loss)(model(images), labels if loss == "cross_entropy" else images).mean()

        value, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return value

    linen_step = compile_train_step(trainer)
    for seed in range(3):
        images = _images(name, 8, seed)
        labels = jax.random.randint(jax.random.key(seed), (8,), 0, 10)
        state, sums = linen_step(state, {"image": images, "label": labels, "mask": jnp.ones(8, bool)})
        value = nnx_step(model, optimizer, images, labels)
        np.testing.assert_allclose(value, sums["loss"] / sums["count"], rtol=1e-5)
    _assert_close(jaxae_nnx.linen_variables(model)["params"], state.params, 1e-5)


def test_weights_move_between_nnx_and_pytorch():
    torch = pytest.importorskip("torch")
    from jaxae.torch_port import params_from_torch, params_to_torch, torch_reference

    name = "cifar10_fc_conv_classifier"
    torch.manual_seed(0)
    net = torch_reference(name).eval()
    model = jaxae_nnx.create(name, rngs=nnx.Rngs(0))
    jaxae_nnx.load_params(model, params_from_torch(name, net.state_dict()))
    x = np.asarray(_images(name, 2))
    with torch.no_grad():
        expected = net(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
    np.testing.assert_allclose(model(jnp.asarray(x)), expected, rtol=1e-5, atol=1e-5)
    back = params_to_torch(name, jaxae_nnx.linen_variables(model))
    assert list(back) == list(net.state_dict())
    for key, tensor in net.state_dict().items():
        np.testing.assert_array_equal(np.asarray(back[key]), tensor.numpy())

