"""What a user brings: NumPy arrays, any optimizer, more epochs; each bad input refused in one line, before anything runs."""

import dataclasses

import jax
import numpy as np
import optax
import pytest

from jaxae import losses
from jaxae.data import BatchSpec, from_arrays
from jaxae.errors import InputError
from jaxae.train import TrainConfig, Trainer, fit, optimizers

AE = TrainConfig("mnist_ae2", "mse", "adam", 1e-3, epochs=2, batch_size=16, seed=3)  # registered: "normalize"
CLASSIFIER = TrainConfig("cifar10_mlp", "cross_entropy", "sgd", 1e-2, epochs=1, batch_size=16, momentum=0.9)


def _uint8(n=40, shape=(28, 28, 1), seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def _assert_params_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_float_images_in_a_stated_range_give_the_pixels_of_their_uint8_originals():
    pixels = _uint8()
    as_uint8 = from_arrays(pixels, batch_spec=BatchSpec(16, shuffle=False), transform="normalize")
    for images, value_range in ((pixels / np.float32(255), None), (pixels.astype(np.float32), (0, 255)),
                                (pixels[..., 0] / 255.0, (0, 1))):  # Keras's x / 255, floats of 0-255, no channel axis
        floats = from_arrays(images, batch_spec=BatchSpec(16, shuffle=False), value_range=value_range,
                             transform="normalize")
        for a, b in zip(floats.epoch(0), as_uint8.epoch(0)):
            np.testing.assert_allclose(a["image"], b["image"], atol=1e-6)
    assert not floats.has_labels and floats.image_shape == (28, 28, 1)


@pytest.mark.parametrize(("images", "labels", "kwargs", "message"), [
    (np.zeros((4, 1, 28, 28), np.float32), None, {}, r"look like PyTorch's NCHW layout: use images\.transpose\(0, 2, 3, 1\)"),
    (np.zeros((4, 784), np.float32), None, {}, r"images must be \(N, height, width, channels\)"),
    (np.full((4, 28, 28, 1), 3.0, np.float32), None, {}, r"range over \[3, 3\], outside value_range \(0, 1\)"),
    (np.full((4, 28, 28, 1), np.nan, np.float32), None, {}, "NaN or infinite"),
    (np.zeros((4, 28, 28, 1), np.int64), None, {}, "uint8 pixels or floats, got dtype int64"),
    (np.zeros((4, 28, 28, 1), np.uint8), np.zeros(3, np.int32), {}, r"one per image, shape \(4,\), got \(3,\)"),
    (np.zeros((4, 28, 28, 1), np.uint8), np.zeros(4, np.float32), {}, "whole numbers >= 0"),
    (np.zeros((4, 28, 28, 1), np.uint8), -np.ones(4, np.int32), {}, "minimum -1"),
    (np.zeros((4, 28, 28, 1), np.float32), None, {"value_range": (1, 0)}, "low < high"),
])
def test_bad_arrays_are_refused_in_one_line(images, labels, kwargs, message):
    with pytest.raises(InputError, match=message) as raised:
        from_arrays(images, labels, batch_spec=BatchSpec(2), name="x_train", **kwargs)
    assert str(raised.value).startswith("x_train: ") and "\n" not in str(raised.value)


def _pipeline(config, images=None, labels=None, **kwargs):
    images = _uint8() if images is None else images
    return from_arrays(images, labels, batch_spec=config.batch_spec(), transform="normalize", **kwargs)


@pytest.mark.parametrize(("train", "evaluation", "message"), [
    (lambda: from_arrays(_uint8(), batch_spec=AE.batch_spec()), None,
     (r"mnist_ae2: the training pipeline gives pixels in \[0\.0, 1\.0\] \(transform 'to_tensor'\), the model is "
      r"registered to take \[-1\.0, 1\.0\]: build the pipeline with transform='normalize'")),
    (lambda: _pipeline(AE), lambda: _pipeline(AE, _uint8(shape=(32, 32, 1))),
     r"mnist_ae2: the evaluation pipeline gives images of shape \(32, 32, 1\), the model takes \(28, 28, 1\)"),
    (lambda: from_arrays(_uint8(shape=(32, 32, 3)), batch_spec=CLASSIFIER.batch_spec()), None,
     "cifar10_mlp: the training pipeline has no labels"),
    (lambda: from_arrays(_uint8(shape=(32, 32, 3)), np.full(40, 10), batch_spec=CLASSIFIER.batch_spec()), None,
     r"cifar10_mlp: the training pipeline has label 10, the model gives 10 classes"),
])
def test_both_pipelines_are_checked_before_anything_is_written(tmp_path, train, evaluation, message):
    config = CLASSIFIER if "cifar10" in message else AE
    with pytest.raises(InputError, match=message):
        fit(config, train(), tmp_path / "run", eval_data=None if evaluation is None else evaluation(), progress=False)
    assert not (tmp_path / "run").exists()


def test_float_arrays_without_labels_train_an_autoencoder(tmp_path):
    images = _uint8() / np.float32(255)
    _, history = fit(AE, _pipeline(AE, images), tmp_path, eval_data=_pipeline(AE, images[:20]), progress=False)
    assert history[-1]["train_loss"] < history[0]["train_loss"] and history[-1]["test_loss"] < 0.5


def test_a_finished_run_asked_for_more_epochs_goes_on_to_where_the_longer_run_ends(tmp_path, capsys):
    fit(AE, _pipeline(AE), tmp_path / "continued", progress=False)
    fit(AE, _pipeline(AE), tmp_path / "continued", progress=True)
    assert "has finished its 2 epochs: ask for more epochs to go on" in capsys.readouterr().out
    longer = dataclasses.replace(AE, epochs=4)
    continued, history = fit(longer, _pipeline(longer), tmp_path / "continued", progress=False)
    straight, _ = fit(longer, _pipeline(longer), tmp_path / "straight", progress=False)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    _assert_params_equal(continued, straight)
    with pytest.raises(InputError, match="has trained 4 epochs, more than the 3 asked"):
        fit(dataclasses.replace(AE, epochs=3), _pipeline(AE), tmp_path / "continued", progress=False)
    schedule = optax.cosine_decay_schedule(1e-3, 12)
    fit(AE, _pipeline(AE), tmp_path / "scheduled", learning_rate=schedule, progress=False)
    with pytest.raises(InputError, match="trained for 2 epochs with a learning-rate schedule, which may depend"):
        fit(longer, _pipeline(AE), tmp_path / "scheduled", learning_rate=schedule, progress=False)


@pytest.mark.parametrize(("optimizer", "args"), [("adamw", (("weight_decay", 1e-2),)), ("adadelta", (("rho", 0.95),)),
                                                 ("adam", (("eps", 1e-7),)), ("rmsprop", ())])
def test_optax_optimizers_train_by_name_with_their_arguments(tmp_path, optimizer, args):
    learning_rate = 1.0 if optimizer == "adadelta" else 1e-3
    config = dataclasses.replace(AE, optimizer=optimizer, optimizer_args=args, learning_rate=learning_rate)
    state, history = fit(config, _pipeline(config), tmp_path, progress=False)
    initial = Trainer.create(config).init_state().params
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(state.params))
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(initial)))
    if optimizer != "adadelta":  # Adadelta's first steps are tiny (its updates start at sqrt(eps))
        assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_optimizer_mistakes_are_refused_in_one_line(tmp_path):
    with pytest.raises(InputError, match=r"unknown optimizer 'adamm'; choose from \['sgd', 'adam'"):
        dataclasses.replace(AE, optimizer="adamm")
    with pytest.raises(InputError, match=r"optimizer 'adam' takes no argument\(s\) \['epsilon'\]; it takes \["):
        dataclasses.replace(AE, optimizer_args=(("epsilon", 1e-7),))
    with pytest.raises(InputError, match="momentum and nesterov are SGD's"):
        dataclasses.replace(AE, momentum=0.9)
    with pytest.raises(InputError, match="learning_rate takes a number or an optax schedule, got GradientTransformation"):
        fit(AE, _pipeline(AE), tmp_path, learning_rate=optax.adam(1e-3), progress=False)
    optimizers.register("my_sgd", lambda learning_rate, momentum=0.5: optax.sgd(learning_rate, momentum))
    try:
        dataclasses.replace(AE, optimizer="my_sgd", optimizer_args=(("momentum", 0.8),))
    finally:
        optimizers.unregister("my_sgd")


def test_binary_cross_entropy_trains_a_sigmoid_autoencoder(tmp_path):
    config = TrainConfig("mnist_conv_ae_2d", "binary_cross_entropy", "adam", 1e-3, epochs=1, batch_size=16)
    images = _uint8()
    assert "binary_cross_entropy" in losses.names()
    _, history = fit(config, from_arrays(images, batch_spec=config.batch_spec()), tmp_path, progress=False)
    assert 0 < history[0]["train_loss"] < 1


def test_a_denoising_step_feeds_the_corrupted_images_and_scores_against_the_clean_ones():
    images = from_arrays(_uint8(8), batch_spec=BatchSpec(8, shuffle=False), transform="normalize")
    batch = next(images.epoch(0))
    masked = Trainer.create(dataclasses.replace(AE, corruption="mask", corruption_level=1.0))  # every pixel masked
    params = masked.init_state().params
    outputs = masked.model.apply({"params": params}, np.full((8, 28, 28, 1), -1.0, np.float32))
    expected = losses.mse(outputs, batch["image"]).sum()
    assert float(masked.eval_step({"params": params}, batch)["loss"]) == pytest.approx(float(expected), rel=1e-6)
    noisy = Trainer.create(dataclasses.replace(AE, corruption="gaussian", corruption_level=0.1))
    clean = Trainer.create(AE)
    assert float(noisy.eval_step({"params": params}, batch)["loss"]) != float(clean.eval_step({"params": params}, batch)["loss"])
    for kwargs, message in (({"corruption": "salt"}, "unknown corruption 'salt'"),
                            ({"corruption": "mask", "corruption_level": 2.0}, r"must be in \(0, 1\]"),
                            ({"corruption_level": 0.5}, "give corruption='gaussian' or 'mask'")):
        with pytest.raises(InputError, match=message):
            dataclasses.replace(AE, **kwargs)
    with pytest.raises(InputError, match="cifar10_mlp: a corruption trains a denoising autoencoder"):
        dataclasses.replace(CLASSIFIER, corruption="mask", corruption_level=0.5)


def test_a_tfds_dataset_other_than_the_seeds_trains_by_name(tmp_path):
    from conftest import RAW_DATA

    from jaxae.data import dataset_info, import_dataset, make_pipeline
    from jaxae.errors import DatasetNotAvailableError

    import_dataset("fashion_mnist", RAW_DATA / "mnist", tmp_path / "tfds", full=False)  # MNIST's files as Fashion-MNIST's
    info = dataset_info("fashion_mnist", tmp_path / "tfds")
    assert info["image_shape"] == (28, 28, 1) and info["classes"][0] == "T-shirt/top" and len(info["classes"]) == 10
    train = make_pipeline("fashion_mnist", "train", AE.batch_spec(), transform="normalize", data_dir=tmp_path / "tfds")
    _, history = fit(dataclasses.replace(AE, epochs=1), train, tmp_path / "run", progress=False)
    assert np.isfinite(history[0]["train_loss"])
    with pytest.raises(DatasetNotAvailableError, match=r"kmnist is not prepared in .*: prepare it with `tfds build kmnist"):
        make_pipeline("kmnist", "train", AE.batch_spec(), data_dir=tmp_path / "tfds")
    with pytest.raises(InputError, match="unknown dataset 'fashoin_mnist': not a TFDS dataset name"):
        make_pipeline("fashoin_mnist", "train", AE.batch_spec(), data_dir=tmp_path / "tfds")


def test_a_folder_of_class_subfolders_of_pngs_is_a_pipeline(tmp_path):
    from PIL import Image

    from jaxae.data import from_folder

    pixels = _uint8(12)
    for index, image in enumerate(pixels):
        folder = tmp_path / "photos" / "train" / ("cat" if index % 3 else "ant")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0]).save(folder / f"{index:02}.png")
    pipeline = from_folder(tmp_path / "photos" / "train", BatchSpec(12, shuffle=False), transform="normalize")
    batch = next(pipeline.epoch(0))
    assert pipeline.image_shape == (28, 28, 1) and pipeline.num_examples == 12
    by_label = {int(label): np.asarray(image) for image, label in zip(batch["image"], batch["label"])}
    assert sorted(by_label) == [0, 1]  # "ant" 0, "cat" 1: the classes' sorted names
    as_arrays = from_arrays(pixels, batch_spec=BatchSpec(12, shuffle=False), transform="normalize")
    written = {tuple(np.asarray(image).ravel()[:20]) for image in next(as_arrays.epoch(0))["image"]}
    assert {tuple(np.asarray(image).ravel()[:20]) for image in batch["image"]} == written
    with pytest.raises(InputError, match=r"holds no class subfolders of \.png or \.jpg images"):
        from_folder(tmp_path, BatchSpec(4))


def test_paired_arrays_train_against_their_targets_in_both_epoch_kinds(tmp_path):
    clean = _uint8(48)
    noisy = np.clip(clean.astype(np.int16) + np.random.default_rng(1).integers(-40, 40, clean.shape), 0, 255).astype(np.uint8)
    pipeline = _pipeline(AE, noisy, targets=clean)
    batch = next(pipeline.epoch(0))
    assert not np.array_equal(batch["image"], batch["target"])
    looped, _ = fit(AE, pipeline, tmp_path / "loop", fused=False, progress=False)
    fused, _ = fit(AE, _pipeline(AE, noisy, targets=clean), tmp_path / "fused", fused=True, progress=False)
    unpaired, _ = fit(AE, _pipeline(AE, noisy), tmp_path / "unpaired", fused=False, progress=False)
    for a, b in zip(jax.tree.leaves(fused.params), jax.tree.leaves(looped.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(looped.params), jax.tree.leaves(unpaired.params)))
    with pytest.raises(InputError, match=r"targets must be as the images, uint8 \(48, 28, 28, 1\)"):
        _pipeline(AE, noisy, targets=clean[:10])
