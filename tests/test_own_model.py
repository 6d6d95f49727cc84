"""A user's own Linen and NNX models through the same door as the seed models: registered, then trained by ``fit``."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _own_model_worker import config, synthetic_data
from _own_models import LinenAutoencoder, NnxAutoencoder, register_both
from flax import nnx
from jax.sharding import Mesh

from jaxae import losses, models
from jaxae import nnx as jaxae_nnx
from jaxae.data import DeviceResidentPipeline
from jaxae.errors import InputError
from jaxae.train import TrainConfig, Trainer, fit, fit_seeds, restore_state

OWN = ["own_linen_ae", "own_nnx_ae"]


@pytest.fixture(autouse=True, scope="module")
def registered():
    """The two models registered for this module's tests only: other modules see the seed models alone."""
    register_both()
    yield
    for name in OWN:
        models.unregister(name)
    for name in {"own_abs", "own_scalar"} & set(losses.names()):  # the losses this worker's tests registered
        losses.unregister(name)


def pipeline(cfg, **kwargs):
    return DeviceResidentPipeline(*synthetic_data(), cfg.batch_spec(), transform="normalize", **kwargs)


def allclose(a, b, **kwargs):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(cls=LinenAutoencoder(), image_shape=(28, 28, 1)), "register a flax.linen.Module or flax.nnx.Module class"),
    (dict(cls=LinenAutoencoder, image_shape=(784,)), "image_shape must be"),
    (dict(cls=LinenAutoencoder, image_shape=(28, 28, 1), task="regression"), "task must be one of"),
    (dict(cls=LinenAutoencoder, image_shape=(28, 28, 1), transform="minmax"), "transform must be one of"),
    (dict(cls=LinenAutoencoder, image_shape=(28, 28, 1), defaults={"width": 3}), r"unknown argument\(s\) \['width'\]"),
])
def test_register_refuses_what_the_trainer_cannot_use_in_one_line(kwargs, message):
    with pytest.raises(InputError, match=f"bad_ae: {message}"):
        models.register("bad_ae", **kwargs)
    assert "bad_ae" not in models.names()


def test_seed_models_and_registered_names_are_not_replaced_unasked():
    with pytest.raises(InputError, match="is a seed model"):
        models.register("mnist_conv_ae_2d", LinenAutoencoder, image_shape=(28, 28, 1))
    with pytest.raises(InputError, match="already registered to another class or arguments"):
        models.register("own_linen_ae", LinenAutoencoder, image_shape=(28, 28, 1))  # registered with "normalize"
    with pytest.raises(InputError, match="already registered to another class or arguments"):
        models.register("own_linen_ae", NnxAutoencoder, image_shape=(28, 28, 1), transform="normalize")


def test_registering_the_same_again_as_a_notebook_cell_run_twice_is_a_no_op():
    models.register("own_linen_ae", LinenAutoencoder, image_shape=(28, 28, 1), transform="normalize")

    class LinenAutoencoder_(LinenAutoencoder):  # the class cell run again: a new class of the same name
        pass

    LinenAutoencoder_.__qualname__ = LinenAutoencoder.__qualname__
    LinenAutoencoder_.__module__ = LinenAutoencoder.__module__
    models.register("own_linen_ae", LinenAutoencoder_, image_shape=(28, 28, 1), transform="normalize")
    assert models.spec("own_linen_ae").cls is LinenAutoencoder_
    register_both()
    with pytest.raises(InputError, match="cannot be unregistered"):
        models.unregister("mnist_conv_ae_2d")


def test_an_unregistered_model_is_refused_with_what_to_do():
    with pytest.raises(InputError, match=r"unknown model 'never_registered'.*jaxae.models.register"):
        TrainConfig("never_registered", "mse", "adam", 1e-3, epochs=1, batch_size=8)


@pytest.mark.parametrize("model", OWN)
def test_own_models_initialise_like_their_modules(model):
    trainer = Trainer.create(config(model))
    params = trainer.init_state().params
    expected = {"own_linen_ae": ["Dense_0", "Dense_1", "code"], "own_nnx_ae": ["code", "hidden", "out"]}[model]
    assert sorted(params) == expected
    assert models.spec(model).takes_train and not models.spec(model).is_seed


@pytest.mark.parametrize("graph_mode", [True, False], ids=["graph", "tree"])
def test_an_nnx_model_trains_through_fit_and_comes_back_as_nnx(tmp_path, graph_mode):
    cfg = config("own_nnx_ae")
    with nnx.set_graph_mode(graph_mode):
        state, history = fit(cfg, pipeline(cfg), tmp_path / "run", stop_after_epochs=1, progress=False)
        trained = jaxae_nnx.create("own_nnx_ae", params=state.params)
        assert isinstance(trained, NnxAutoencoder)
        images = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1), minval=-1)
        linen = models.create("own_nnx_ae")
        np.testing.assert_allclose(trained(images), linen.apply({"params": state.params}, images), atol=1e-6)
        np.testing.assert_allclose(trained.encode(images), linen.apply({"params": state.params}, images,
                                                                       method="encode"), atol=1e-6)
        # The checkpoint restores into a fresh NNX model, and an NNX model's weights start a run.
        restored = jaxae_nnx.create("own_nnx_ae", rngs=nnx.Rngs(7))
        jaxae_nnx.load_params(restored, restore_state(cfg, tmp_path / "run").params)
        np.testing.assert_array_equal(restored(images), trained(images))
        again, _ = fit(cfg, pipeline(cfg), tmp_path / "from_nnx", initial_params=jaxae_nnx.linen_variables(restored)["params"],
                       stop_after_epochs=0, progress=False)
        allclose(again.params, state.params, rtol=0, atol=0)
    assert len(history) == 1 and np.isfinite(history[0]["train_loss"])


def test_dropout_of_an_own_nnx_model_follows_train_and_eval():
    trainer = Trainer.create(config("own_nnx_ae"))
    params = trainer.init_state().params
    images = jnp.ones((4, 28, 28, 1))
    evaluation = trainer.model.apply({"params": params}, images)
    assert jnp.array_equal(evaluation, trainer.model.apply({"params": params}, images))
    trained = trainer.model.apply({"params": params}, images, train=True, rngs={"dropout": jax.random.key(1)})
    assert not jnp.array_equal(evaluation, trained)


def test_the_pytorch_port_refuses_your_own_models_in_one_line():
    from jaxae import torch_port

    for convert in (lambda: torch_port.torch_reference("own_linen_ae"), lambda: torch_port.params_from_torch("own_nnx_ae", {}),
                    lambda: torch_port.params_to_torch("own_linen_ae", {})):
        with pytest.raises(InputError, match=r"not one of jaxae's own models, so it has no PyTorch twin .*mnist_conv_ae_2d"):
            convert()


def test_a_resume_with_another_registered_model_is_refused(tmp_path):
    cfg = config("own_linen_ae")
    fit(cfg, pipeline(cfg), tmp_path, stop_after_epochs=1, progress=False)
    wider = dataclasses.replace(cfg, model_args=(("code", 5),))
    with pytest.raises(InputError, match="model_args"):
        fit(wider, pipeline(wider), tmp_path, progress=False)


def test_own_loss_seeds_in_one_program_and_data_parallel_steps(tmp_path):
    losses.register("own_abs", lambda y, t: jnp.mean(jnp.abs(y - t), axis=(1, 2, 3)), replace=True)
    # No dropout: under pmap each device draws its own masks, so only a deterministic model ends where one device does.
    cfg = dataclasses.replace(config("own_linen_ae"), loss="own_abs", epochs=1, model_args=(("dropout", 0.0),))
    alone = [fit(dataclasses.replace(cfg, seed=s), pipeline(dataclasses.replace(cfg, seed=s)), tmp_path / f"alone{s}",
                 progress=False)[0] for s in (3, 4)]
    together = fit_seeds([dataclasses.replace(cfg, seed=s) for s in (3, 4)],
                         [pipeline(dataclasses.replace(cfg, seed=s)) for s in (3, 4)],
                         [tmp_path / f"together{s}" for s in (3, 4)], progress=False)
    for (state, _), single in zip(together, alone):
        allclose(state.params, single.params, rtol=1e-5, atol=1e-6)
    pmapped, _ = fit(cfg, pipeline(cfg), tmp_path / "pmap", pmap=True, progress=False)
    allclose(pmapped.params, alone[0].params, rtol=1e-5, atol=1e-6)
    meshed, _ = fit(cfg, pipeline(cfg), tmp_path / "mesh", mesh=Mesh(np.array(jax.devices()[:4]), ("batch",)),
                    progress=False)
    allclose(meshed.params, alone[0].params, rtol=1e-5, atol=1e-6)
    half, _ = fit(dataclasses.replace(cfg, compute_dtype="bfloat16"), pipeline(cfg), tmp_path / "bf16", progress=False)
    allclose(half.params, alone[0].params, rtol=0.1, atol=0.02)


class _Logits(nn.Module):
    @nn.compact
    def __call__(self, images):
        return nn.Dense(10)(images.reshape(images.shape[0], -1))


class _Flat(nn.Module):
    @nn.compact
    def __call__(self, images):
        return images @ self.param("kernel", nn.initializers.zeros, (784, 784))


class _AnyShape(nn.Module):
    @nn.compact
    def __call__(self, images):
        return nn.Dense(images.shape[-1])(images)


@pytest.mark.parametrize(("module", "loss", "message"), [
    (_Logits, "mse", r"own_bad: its outputs do not fit loss 'mse'"),
    (_Flat, "mse", r"own_bad: the model fails on images of its registered shape \(2, 28, 28, 1\)"),
    (LinenAutoencoder, "own_scalar", r"own_bad: loss 'own_scalar' gives shape \(\) for a batch of 2"),
])
def test_a_model_and_loss_that_cannot_train_are_refused_before_training(tmp_path, module, loss, message):
    losses.register("own_scalar", lambda y, t: jnp.mean((y - t) ** 2), replace=True)
    models.register("own_bad", module, image_shape=(28, 28, 1), transform="normalize", replace=True)
    cfg = TrainConfig("own_bad", loss, "adam", 1e-3, epochs=1, batch_size=20)
    try:
        with pytest.raises(InputError, match=message) as raised:
            fit(cfg, pipeline(cfg), tmp_path, progress=False)
        assert "\n" not in str(raised.value)
        assert not (tmp_path / "checkpoints").exists()
    finally:
        models.unregister("own_bad")


def test_images_of_another_shape_than_registered_are_refused(tmp_path):
    models.register("own_cifar_shaped", _AnyShape, image_shape=(32, 32, 3), replace=True)
    try:
        cfg = TrainConfig("own_cifar_shaped", "mse", "adam", 1e-3, epochs=1, batch_size=20)
        with pytest.raises(InputError, match=r"own_cifar_shaped: the training pipeline gives images of shape"
                                             r" \(28, 28, 1\), the model takes \(32, 32, 3\)"):
            fit(cfg, pipeline(cfg), tmp_path, progress=False)
    finally:
        models.unregister("own_cifar_shaped")
