"""The shipped weights: they load, match their checksums and models, and reproduce their recorded numbers."""

import shutil

import jax
import numpy as np
import pytest

from jaxae import latent, models, pretrained
from jaxae.data.batches import PIXEL_TABLES
from jaxae.data.input_pipeline import load_split
from jaxae.errors import InputError

SHIPPED = ["E1/mlp", "E1/cnn", "E2", "E2-VAE", "E3", "E3-VAE", "E4/pca", "E4/ae2", "E4/ae2_wide", "E4/ae3"]


def test_every_small_model_of_the_reproduction_is_shipped_from_a_full_run():
    assert pretrained.names() == SHIPPED
    for name in SHIPPED:
        entry = pretrained.info(name)
        assert entry["numbers"]["epochs"] == entry["recipe"]["epochs"], name
        assert entry["command"].startswith(f"jaxae reproduce {entry['experiment']} ") and "--quick" not in entry["command"]
        assert entry["seed"] == entry["recipe"]["seed"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_reproduce_their_recorded_numbers_on_the_test_subset(name, data_dir):
    entry = pretrained.info(name)
    images, labels = load_split(models.spec(entry["recipe"]["model"]).dataset, "test", data_dir)
    assert len(images) == 100
    measured = pretrained.evaluate(name, images, labels)
    recorded = entry["subset_numbers"]
    assert measured.keys() == recorded.keys()
    np.testing.assert_allclose(measured["test_loss"], recorded["test_loss"], rtol=1e-4)
    if "test_accuracy" in recorded:
        assert abs(measured["test_accuracy"] - recorded["test_accuracy"]) <= 0.01 + 1e-9
    # Trained, not initial, weights: the subset's loss is near the full test set's.
    assert measured["test_loss"] == pytest.approx(entry["numbers"]["test_loss"], rel=0.35)


def test_the_shipped_codes_are_the_shipped_weights_codes_of_the_whole_mnist_test_set():
    images, labels = pretrained.test_images("mnist")
    assert images.shape == (300, 28, 28, 1) and images.dtype == np.uint8
    for name in ("E3", "E3-VAE"):
        codes, code_labels = pretrained.test_codes(name)
        assert codes.shape == (10_000, 2)
        # MNIST's test set has these many images of each digit.
        assert np.bincount(code_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        np.testing.assert_array_equal(code_labels[: len(labels)], labels)
        encoded = latent.encode(pretrained.model(name), pretrained.load(name), PIXEL_TABLES["to_tensor"][images])
        np.testing.assert_allclose(codes[: len(images)], encoded, rtol=1e-4, atol=1e-5)
    images, labels = pretrained.test_images("cifar10")
    assert images.shape == (200, 32, 32, 3) and set(labels.tolist()) == set(range(10))


def test_a_damaged_weights_file_is_refused_in_one_line(tmp_path, monkeypatch):
    for path in pretrained.FOLDER.iterdir():
        if path.is_file():
            shutil.copy(path, tmp_path / path.name)
    damaged = tmp_path / pretrained.file_name("E4/pca")
    data = bytearray(damaged.read_bytes())
    data[-1] ^= 1
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path)
    pretrained._read.cache_clear()
    try:
        with pytest.raises(InputError, match="does not match its recorded SHA-256; reinstall jaxae"):
            pretrained.load("E4/pca")
        (tmp_path / pretrained.file_name("E4/ae2")).unlink()
        with pytest.raises(InputError, match="is missing"):
            pretrained.load("E4/ae2")
    finally:
        pretrained._read.cache_clear()


def test_unknown_names_get_a_suggestion():
    with pytest.raises(InputError, match=r"no shipped weights named 'E4/ae2wide'.*Did you mean 'E4/ae2_wide'\?"):
        pretrained.load("E4/ae2wide")
    with pytest.raises(InputError, match="no test codes shipped for 'E2'"):
        pretrained.test_codes("E2")
    with pytest.raises(InputError, match="no test images shipped for 'svhn'"):
        pretrained.test_images("svhn")


def test_loaded_params_are_shared_read_only():
    params = pretrained.load("E4/ae2")
    assert params is pretrained.load("E4/ae2")
    leaf = jax.tree.leaves(params)[0]
    with pytest.raises(ValueError, match="read-only"):
        leaf[...] = 0


def test_shipped_weights_give_pytorch_the_same_decodes():
    torch = pytest.importorskip("torch")
    from jaxae.torch_port import torch_reference

    net = torch_reference("mnist_conv_ae_2d").eval()
    net.load_state_dict(pretrained.torch_state_dict("E3"))
    z = np.array([[0.5, -1.0], [2.0, 3.0]], np.float32)
    mine = pretrained.model("E3").apply({"params": pretrained.load("E3")}, z, method="decode")
    with torch.no_grad():
        theirs = net.decoder(torch.from_numpy(z)).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(mine, theirs, atol=1e-5)


def test_a_model_name_means_its_one_shipped_set():
    assert pretrained.shipped_set("mnist_conv_ae_2d") == "E3" and pretrained.shipped_set("E3") == "E3"
    assert pretrained.info("cifar10_cnn") == pretrained.info("E1/cnn")
    assert pretrained.load("mnist_ae3") is pretrained.load("E4/ae3")
    assert pretrained.model("mnist_conv_vae_2d") == pretrained.model("E3-VAE")
    assert pretrained.test_codes("mnist_conv_ae_2d")[0] is pretrained.test_codes("E3")[0]


def test_a_model_with_several_or_no_shipped_sets_is_refused_with_the_choices():
    with pytest.raises(InputError, match=r"^mnist_ae2 has 2 shipped sets: E4/ae2, E4/ae2_wide; name one of them$"):
        pretrained.load("mnist_ae2")
    with pytest.raises(InputError, match=r"^no shipped weights for cifar10_fc_conv_ae \(E5's models are not shipped\)"):
        pretrained.info("cifar10_fc_conv_ae")
    with pytest.raises(InputError, match=r"Did you mean 'mnist_conv_ae_2d'\?"):
        pretrained.model("mnist_conv_ae2d")
