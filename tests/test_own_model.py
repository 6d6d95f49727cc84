"""A user's own Linen and NNX models through the same door as the seed models: registered, then trained by ``fit``."""

import dataclasses
import sys

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
from jaxae.data import BatchSpec, DeviceResidentPipeline
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


def test_without_pytorch_the_port_refuses_in_one_line(monkeypatch):
    from jaxae import torch_port

    monkeypatch.setitem(sys.modules, "torch", None)  # what an environment without PyTorch imports
    monkeypatch.delitem(sys.modules, "jaxae._torch_modules", raising=False)
    with pytest.raises(InputError, match="no PyTorch twin"):
        torch_port.torch_reference("own_linen_ae")
    for convert in (lambda: torch_port.torch_reference("mnist_conv_ae_2d"),
                    lambda: torch_port.params_to_torch("mnist_pca_ae", models.abstract_params(models.create("mnist_pca_ae")))):
        with pytest.raises(InputError, match=r"PyTorch is not installed: pip install 'jaxae\[torch\]'"):
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


class _LinenBatchNormAe(nn.Module):
    """A user's Linen autoencoder with Flax's BatchNorm, and with jaxae's (PyTorch's conventions)."""

    pytorch_conventions: bool = False

    @nn.compact
    def __call__(self, images, train: bool = False):
        x = nn.Dense(16)(images.reshape(len(images), -1))
        if self.pytorch_conventions:
            from jaxae.models.layers import BatchNorm

            x = BatchNorm()(x, train=train)
        else:
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)
        return jnp.tanh(nn.Dense(784)(nn.relu(x))).reshape(images.shape)


class _NnxBatchNormAe(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.hidden, self.norm, self.out = nnx.Linear(784, 16, rngs=rngs), nnx.BatchNorm(16, rngs=rngs), nnx.Linear(16, 784, rngs=rngs)

    def __call__(self, images):
        return jnp.tanh(self.out(nnx.relu(self.norm(self.hidden(images.reshape(len(images), -1)))))).reshape(images.shape)


@pytest.mark.parametrize(("module", "defaults"), [(_LinenBatchNormAe, {}), (_LinenBatchNormAe, {"pytorch_conventions": True}),
                                                  (_NnxBatchNormAe, {})])
def test_batch_norm_trains_on_one_device_a_mesh_and_seeds_together_alike(tmp_path, module, defaults):
    models.register("own_bn_ae", module, image_shape=(28, 28, 1), transform="normalize", defaults=defaults, replace=True)
    try:
        cfg = TrainConfig("own_bn_ae", "mse", "sgd", 0.05, epochs=2, batch_size=16, seed=3, momentum=0.9)  # Adam turns
        # the rounding of near-zero gradients (sums over devices in another order) into full steps
        assert Trainer.create(cfg).microbatch_size == 16  # batch statistics of the whole batch, not of chunks

        def data(seed=3, **kwargs):
            return DeviceResidentPipeline(*synthetic_data(), BatchSpec(16, seed=seed, drop_remainder=True),
                                          transform="normalize", **kwargs)

        alone, history = fit(cfg, data(), tmp_path / "alone", eval_data=data(), progress=False)
        assert np.isfinite(history[-1]["test_loss"])
        stats = alone.collections["batch_stats"]
        assert any(np.any(np.asarray(leaf) != init) for leaf, init in
                   zip(jax.tree.leaves(stats), jax.tree.leaves(Trainer.create(cfg).init_state().collections["batch_stats"])))
        mesh = Mesh(np.array(jax.devices()[:2]), ("batch",))
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
        meshed, _ = fit(cfg, data(sharding=sharding), tmp_path / "mesh", mesh=mesh, progress=False)
        seeds = [dataclasses.replace(cfg, seed=s) for s in (3, 4, 5)]
        together = fit_seeds(seeds, [data(s.seed) for s in seeds], [tmp_path / f"seed{s.seed}" for s in seeds], progress=False)
        for state in (meshed, together[0][0]):
            allclose(state.collections, alone.collections, rtol=1e-5, atol=1e-6)
            allclose(state.params, alone.params, rtol=1e-5, atol=1e-6)
        # As NNX, with its running statistics: evaluation gives the trainer's outputs.
        images = next(data().epoch(0))["image"]
        as_nnx = jaxae_nnx.create("own_bn_ae", params=alone.variables)
        allclose(as_nnx(images), Trainer.create(cfg).model.apply(alone.variables, images), rtol=1e-5, atol=1e-6)
    finally:
        models.unregister("own_bn_ae")


class _FlaxConvAe(nn.Module):
    @nn.compact
    def __call__(self, images, train: bool = False):
        x = nn.relu(nn.Conv(8, (3, 3), strides=(2, 2))(images))
        x = nn.Dense(4)(x.reshape(len(x), -1))
        x = nn.relu(nn.Dense(14 * 14 * 8)(x)).reshape(-1, 14, 14, 8)
        return nn.ConvTranspose(1, (3, 3), strides=(2, 2))(x)


def test_bfloat16_reaches_every_convolution_and_product_of_flax_layers():
    import re

    models.register("own_flax_conv_ae", _FlaxConvAe, image_shape=(28, 28, 1), transform="normalize", replace=True)
    try:
        cfg = TrainConfig("own_flax_conv_ae", "mse", "adam", 1e-3, epochs=1, batch_size=8, compute_dtype="bfloat16")
        trainer = Trainer.create(cfg)
        state = trainer.init_state()
        batch = next(pipeline(dataclasses.replace(cfg, batch_size=8)).epoch(0))
        text = jax.jit(trainer.train_step).lower(state, batch).as_text()
        ops = [line.rsplit(" : ", 1)[-1] for line in text.splitlines() if re.search(r"stablehlo\.(convolution|dot_general)", line)]
        assert len(ops) == 4 + 4 + 3  # 4 layers' products, their kernels' gradients, their inputs' but the images'
        assert all("bf16" in types and "f32" not in types.split("->")[0] for types in ops), ops
        new_state, _ = jax.jit(trainer.train_step)(state, batch)
        assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(new_state.params))
    finally:
        models.unregister("own_flax_conv_ae")
